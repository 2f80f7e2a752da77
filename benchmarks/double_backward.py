"""What a gradient of gradients costs: each fused module against its torch.nn
twin, first-order gradients, the same with create_graph=True, and a gradient
penalty (‖∂L/∂x‖², then backward). timing.time_calls: one sample per row and
repeat, the rows of each size in balanced rotating orders; the range over the
repeats.

Usage: python benchmarks/double_backward.py [--steps 16 64 256] [--repeats 3]
"""
import argparse
import platform

import torch

import rnn_fused
from rnn_fused import FusedGRU, FusedLSTM, FusedRNN

from timing import time_calls

PAIRS = {"rnn": (FusedRNN, torch.nn.RNN), "gru": (FusedGRU, torch.nn.GRU),
         "lstm": (FusedLSTM, torch.nn.LSTM)}


def cases(module, x):
    def first_order():
        torch.autograd.grad(module(x)[0].sum(), [x, *module.parameters()])

    def graphed():
        torch.autograd.grad(module(x)[0].sum(), [x, *module.parameters()], create_graph=True)

    def penalty():
        (grad_x,) = torch.autograd.grad(module(x)[0].tanh().sum(), x, create_graph=True)
        grad_x.square().sum().backward()
    return {"first-order": first_order, "create_graph": graphed, "penalty": penalty}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, rnn_fused {rnn_fused.__version__}, "
          f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"CPU ISA {rnn_fused.cpu_isa()}; B={args.batch}, D=H={args.hidden}, float32; "
          f"ms per call, range over {args.repeats} repeats")
    print("| cell | T | case | fused | torch.nn |")
    print("|---|---|---|---|---|")
    torch.manual_seed(0)
    for cell, (fused_cls, nn_cls) in PAIRS.items():
        fused = fused_cls(args.hidden, args.hidden)
        twin = nn_cls(args.hidden, args.hidden)
        twin.load_state_dict(fused.state_dict())
        for steps in args.steps:
            x = torch.randn(steps, args.batch, args.hidden, requires_grad=True)
            rows = {(name, side): fn for side, module in (("fused", fused), ("nn", twin))
                    for name, fn in cases(module, x).items()}
            times = {key: [t * 1e3 for t in samples]
                     for key, samples in time_calls(rows, args.repeats).items()}
            for name in ("first-order", "create_graph", "penalty"):
                cells = [f"{min(times[name, s]):.2f}–{max(times[name, s]):.2f}"
                         for s in ("fused", "nn")]
                print(f"| {cell} | {steps} | {name} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
