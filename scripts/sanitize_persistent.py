"""A small workload for compute-sanitizer: one of the CUDA recurrences
(SANITIZE_BACKEND: 'persistent', the default, 'cluster', 'gated': the GRU's
and LSTM's persistent kernel, or 'per-step': every cell's per-step loop)
forward and backward, both directions, with a mask and a reset state, several
blocks, on the vector-load path, the scalar-load path and a half type, and
with several batch tiles."""
import os

import torch

from rnn_fused import FusedGRU, FusedLSTM, FusedRNN

backend = os.environ.get("SANITIZE_BACKEND", "persistent")
if backend == "per-step":
    # H % 8 != 0 and an odd batch beside aligned sizes; float32 and a half type.
    for hidden, batch, dtype in ((256, 3, torch.float32), (100, 5, torch.bfloat16)):
        for cls in (FusedRNN, FusedGRU, FusedLSTM):
            module = cls(16, hidden, num_layers=2, bidirectional=True, device="cuda",
                         dtype=dtype, backend="per-step")
            x = torch.randn(5, batch, 16, device="cuda", dtype=dtype, requires_grad=True)
            mask = torch.rand(5, batch, device="cuda") > 0.3
            out, final = module(x, mask=mask, reset_state=0.5)
            finals = final if isinstance(final, tuple) else (final,)
            (out.float().sum() + sum(f.float().sum() for f in finals)).backward()
    torch.cuda.synchronize()
    print("sanitizer workload done (per-step)")
    raise SystemExit(0)
if backend == "gated":
    # Scalar loads at H=100 (100 % 8 != 0 forward; 300 and 400 % 16 != 0
    # backward); 4, 2 and 1 units per block.
    for hidden, batch, dtype in ((256, 3, torch.float32), (100, 3, torch.float32),
                                 (128, 3, torch.bfloat16), (256, 40, torch.float32),
                                 (64, 300, torch.float32)):
        for cls in (FusedGRU, FusedLSTM):
            module = cls(16, hidden, bidirectional=True, device="cuda", dtype=dtype,
                         backend="persistent")
            x = torch.randn(5, batch, 16, device="cuda", dtype=dtype, requires_grad=True)
            mask = torch.rand(5, batch, device="cuda") > 0.3
            out, final = module(x, mask=mask, reset_state=0.5)
            finals = final if isinstance(final, tuple) else (final,)
            (out.float().sum() + sum(f.float().sum() for f in finals)).backward()
    torch.cuda.synchronize()
    print("sanitizer workload done (gated)")
    raise SystemExit(0)
# Scalar loads: H=300 in the grid kernel (300 % 8 != 0); H=250 and 301 in the
# cluster kernel (J=16 and J=32, H % L != 0). The half types take the cluster
# kernel's tensor cores at J = 8, 16 and 32, with batch rows that fill no
# whole fragment (9, 11), and at J = 64 with W_hh in shared memory (H=777).
# The next two take TF32 where SANITIZE_BACKEND=cluster (J = 16 and 8, with
# tiles of fewer than the 16 rows of a fragment). The last three are beyond one
# cluster in float32 and float64, so SANITIZE_BACKEND=cluster takes the tiled
# kernel: 8 blocks of 128 columns with scalar loads (H=1001), 10 blocks of 64
# columns and 13 rows (H=600, B=9), and float64's 5 blocks of 64 (H=300).
for hidden, batch, dtype, tf32 in ((512, 3, torch.float32, False), (300, 3, torch.float32, False),
                                   (250, 3, torch.float32, False), (301, 2, torch.float32, False),
                                   (256, 3, torch.bfloat16, False), (128, 40, torch.float32, False),
                                   (301, 11, torch.bfloat16, False), (100, 9, torch.float16, False),
                                   (777, 5, torch.bfloat16, False), (250, 20, torch.float32, True),
                                   (100, 5, torch.float32, True), (1001, 3, torch.float32, False),
                                   (600, 9, torch.float32, False), (300, 3, torch.float64, False)):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    module = FusedRNN(16, hidden, bidirectional=True, device="cuda", dtype=dtype,
                      backend=backend)
    x = torch.randn(5, batch, 16, device="cuda", dtype=dtype, requires_grad=True)
    reset = torch.randn(2, batch, hidden, device="cuda", dtype=dtype, requires_grad=True)
    mask = torch.rand(5, batch, device="cuda") > 0.3
    out, h_n = module(x, mask=mask, reset_state=reset)
    (out.float().sum() + h_n.float().sum()).backward()
torch.cuda.synchronize()
print(f"sanitizer workload done ({backend})")
