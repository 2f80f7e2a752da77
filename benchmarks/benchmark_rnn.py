"""Times FusedRNN against torch.nn.RNN and the pure-Python reference layer.

Forward+backward, median of repeats after warm-up, on the best device that has
rnn_fused kernels. Every ratio comes from timings taken in this one run.
Usage: python benchmarks/benchmark_rnn.py [--dtype D] [--repeats N] [--json PATH]
"""
import argparse
import datetime
import json
import platform
import statistics
import time

import torch
from torch import nn

from rnn_fused import FusedRNN
from rnn_fused.reference import RNNLayer, SimpleRNNCell

# (B, T, D, H): a latency-bound and a GEMM-bound shape.
SHAPES = [(8, 512, 64, 128), (64, 256, 256, 512)]


def pick_device() -> str:
    has_cuda_kernels = torch._C._dispatch_has_kernel_for_dispatch_key(
        "rnn_fused::rnn_layer_forward", "CUDA")
    return "cuda" if torch.cuda.is_available() and has_cuda_kernels else "cpu"


def median_seconds(fn, repeats: int, device: str) -> float:
    def sync():
        if device == "cuda":
            torch.cuda.synchronize()
    for _ in range(2):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def forward_backward(module, x, mask):
    def step():
        xi = x.detach().requires_grad_()
        out = module(xi) if mask is None else module(xi, mask=mask)
        out[0].sum().backward()
    return step


def reference_module(fused: FusedRNN):
    weight = fused.weight_ih_l0
    cell = SimpleRNNCell(fused.input_size, fused.hidden_size, device=weight.device,
                         dtype=weight.dtype)
    layer = RNNLayer(cell)

    def run(x, mask=None):
        return layer(x, torch.ones(x.shape[:2], device=x.device) if mask is None else mask)
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtype", default="float32",
                        choices=["float32", "float64", "float16", "bfloat16"],
                        help="float16/bfloat16 need a GPU")
    parser.add_argument("--json", help="also write the raw timings here")
    args = parser.parse_args()
    device = pick_device()
    dtype = getattr(torch, args.dtype)
    if device == "cpu" and dtype in (torch.float16, torch.bfloat16):
        parser.error(f"{args.dtype} kernels exist on CUDA only")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    name = torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu"
    print(f"# rnn_fused benchmark, {datetime.date.today()}")
    print(f"device: {device} ({name}), torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"cuDNN {torch.backends.cudnn.version()}, CPU threads {torch.get_num_threads()}, "
          f"TF32 matmul/cudnn {torch.backends.cuda.matmul.allow_tf32}/"
          f"{torch.backends.cudnn.allow_tf32}")
    print(f"{args.dtype}, batch_first, tanh, forward+backward, median of "
          f"{args.repeats} after 2 warm-ups; mask: random resets at 1 in 100 steps\n")
    print("| B | T | D | H | mask | nn.RNN ms | reference ms | FusedRNN ms | vs nn.RNN "
          "| vs reference |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for batch, steps, features, hidden in SHAPES:
        torch.manual_seed(0)
        fused = FusedRNN(features, hidden, batch_first=True, device=device, dtype=dtype)
        rnn = nn.RNN(features, hidden, batch_first=True, device=device, dtype=dtype)
        reference = reference_module(fused)
        x = torch.randn(batch, steps, features, device=device, dtype=dtype)
        for masked in (False, True):
            mask = (torch.rand(batch, steps, device=device) > 0.01) if masked else None
            fused_s = median_seconds(forward_backward(fused, x, mask), args.repeats, device)
            rnn_s = (median_seconds(forward_backward(rnn, x, None), args.repeats, device)
                     if not masked else float("nan"))
            ref_s = median_seconds(forward_backward(reference, x, mask), max(1, args.repeats // 2),
                                   device)
            rows.append(dict(B=batch, T=steps, D=features, H=hidden, mask=masked,
                             nn_rnn_s=rnn_s, reference_s=ref_s, fused_s=fused_s))
            vs_rnn = "n/a (no masks)" if masked else f"{rnn_s / fused_s:.2f}x"
            rnn_ms = "-" if masked else f"{rnn_s * 1e3:.1f}"
            print(f"| {batch} | {steps} | {features} | {hidden} | {'resets' if masked else 'none'} "
                  f"| {rnn_ms} | {ref_s * 1e3:.1f} | {fused_s * 1e3:.1f} | {vs_rnn} "
                  f"| {ref_s / fused_s:.1f}x |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(device=device, device_name=name, dtype=args.dtype,
                           torch=torch.__version__, cuda=torch.version.cuda,
                           cudnn=torch.backends.cudnn.version(),
                           threads=torch.get_num_threads(), date=str(datetime.date.today()),
                           rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
