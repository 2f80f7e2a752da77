"""A small workload for compute-sanitizer: the persistent kernel forward and
backward, both directions, with a mask and a reset state, on the vector-load
path (H % 8 == 0), the scalar-load path and a half type."""
import torch

from rnn_fused import FusedRNN

for hidden, dtype in ((512, torch.float32), (300, torch.float32), (256, torch.bfloat16)):
    module = FusedRNN(16, hidden, bidirectional=True, device="cuda", dtype=dtype,
                      backend="persistent")
    x = torch.randn(5, 3, 16, device="cuda", dtype=dtype, requires_grad=True)
    reset = torch.randn(2, 3, hidden, device="cuda", dtype=dtype, requires_grad=True)
    mask = torch.rand(5, 3, device="cuda") > 0.3
    out, h_n = module(x, mask=mask, reset_state=reset)
    (out.float().sum() + h_n.float().sum()).backward()
torch.cuda.synchronize()
print("sanitizer workload done")
