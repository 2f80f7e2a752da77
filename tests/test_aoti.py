"""AOTInductor (docs/export.md): torch.export, then aoti_compile_and_package; the
loaded package calls rnn_fused's own kernels and matches eager at other batch
sizes and lengths than it was compiled for."""
import torch
from torch import nn
from torch.export import Dim

from rnn_fused import FusedLSTM, FusedRNN

from helpers import make_mask, report


class Stack(nn.Module):
    """A masked bidirectional FusedRNN under a FusedLSTM."""

    def __init__(self):
        super().__init__()
        self.rnn = FusedRNN(3, 4, batch_first=True, bidirectional=True)
        self.lstm = FusedLSTM(8, 5, batch_first=True)

    def forward(self, x, mask):
        out, h_n = self.rnn(x, mask=mask, reset_state=0.0)
        out, (h, c) = self.lstm(out)
        return out, h_n, h, c


def test_aoti_package_matches_eager(device, tmp_path):
    model = Stack().to(device).eval()
    x, mask = torch.randn(3, 5, 3, device=device), make_mask("resets", 3, 5, device)
    batch, steps = Dim("batch"), Dim("steps")
    exported = torch.export.export(model, (x, mask),
                                   dynamic_shapes=({0: batch, 1: steps}, {0: batch, 1: steps}))
    path = torch._inductor.aoti_compile_and_package(exported,
                                                    package_path=str(tmp_path / "stack.pt2"))
    compiled = torch._inductor.aoti_load_package(path)
    for batch, steps in ((3, 5), (2, 9)):
        x = torch.randn(batch, steps, 3, device=device)
        mask = make_mask("resets", batch, steps, device)
        with torch.no_grad():
            expected = model(x, mask)
        actual = compiled(x, mask)
        assert len(actual) == len(expected)
        for name, a, e in zip(("output", "rnn h_n", "lstm h_n", "lstm c_n"), actual, expected):
            assert a.shape == e.shape and a.device == e.device, (name, a.shape, e.shape)
            report(f"B={batch} T={steps} {name}", a, e, atol=1e-6, rtol=1e-6)
