"""An LSTM with projections: FusedLSTM(proj_size=H/2) against nn.LSTM with the
same proj_size (which PyTorch runs on its generic per-step path: oneDNN has no
projections), on the CPU plain shapes of the main benchmark, forward under
no_grad and forward+backward. timing.time_calls: one sample per row and
repeat, the rows of a shape in balanced rotating orders; the range over the
repeats.

Usage: python benchmarks/projections.py [--repeats 3]
"""
import argparse
import platform

import torch

import rnn_fused
from rnn_fused import FusedLSTM

from scenarios import CPU_PLAIN
from timing import time_calls


def cases(module, x):
    def forward():
        with torch.no_grad():
            module(x)

    def forward_backward():
        out, (h_n, c_n) = module(x)
        torch.autograd.grad(out.sum() + c_n.sum(), [x, *module.parameters()])
    return {"forward (no_grad)": forward, "forward+backward": forward_backward}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, rnn_fused {rnn_fused.__version__}, "
          f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"rnn_fused CPU ISA {rnn_fused.cpu_isa()}, torch CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}; float32, batch_first, P = H/2; "
          f"ms per call, range over {args.repeats} repeats")
    print("| B | T | D | H | P | case | FusedLSTM | nn.LSTM | nn / fused |")
    print("|---|---|---|---|---|---|---|---|---|")
    torch.manual_seed(0)
    for batch, steps, features, hidden in CPU_PLAIN:
        proj = hidden // 2
        twin = torch.nn.LSTM(features, hidden, proj_size=proj, batch_first=True)
        fused = FusedLSTM.from_lstm(twin)
        x = torch.randn(batch, steps, features, requires_grad=True)
        rows = {(name, side): fn for side, module in (("fused", fused), ("nn", twin))
                for name, fn in cases(module, x).items()}
        times = time_calls(rows, args.repeats)
        for name in cases(fused, x):
            fused_ms = [t * 1e3 for t in times[name, "fused"]]
            nn_ms = [t * 1e3 for t in times[name, "nn"]]
            ratios = [n / f for n, f in zip(nn_ms, fused_ms)]
            print(f"| {batch} | {steps} | {features} | {hidden} | {proj} | {name} | "
                  f"{min(fused_ms):.2f}–{max(fused_ms):.2f} | {min(nn_ms):.2f}–{max(nn_ms):.2f} | "
                  f"{min(ratios):.2f}–{max(ratios):.2f} |")


if __name__ == "__main__":
    main()
