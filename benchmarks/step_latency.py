"""Forward per-step latency on CUDA: the per-step loop, the persistent and the
cluster kernel, and cuDNN, side by side in one run. (RNN_FUSED_PERSISTENT_ROWS pins the persistent
kernel's rows per block; it is read once, so compare settings in separate runs.)

Per-step latency = (time at T=1024 − time at T=128) / 896, forward under
no_grad, so that the input projection and launch costs cancel out.
Usage: python benchmarks/step_latency.py [--dtype bfloat16] [--out DIR]
"""
import argparse
import datetime
import os
import statistics

import torch

from rnn_fused import FusedRNN, plan

LONG, SHORT = 1024, 128
BATCHES = (1, 8, 32, 64, 256)
HIDDEN = (256, 512, 1024)
BACKENDS = ("per-step", "persistent", "cluster")


def median_ms(fn, repeats=7):
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def per_step_us(run, batch, features, dtype):
    xs = {steps: torch.randn(steps, batch, features, device="cuda", dtype=dtype)
          for steps in (LONG, SHORT)}
    with torch.no_grad():
        long, short = (median_ms(lambda s=s: run(xs[s])) for s in (LONG, SHORT))
    return (long - short) / (LONG - SHORT) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    header = ["B", "H", "cuDNN", *BACKENDS, "auto + resets", "auto path"]
    lines = [f"# Forward per-step latency, µs ({torch.cuda.get_device_name()}, {args.dtype}, "
             f"torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, TF32 off)", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    print("\n".join(lines), flush=True)
    for hidden in HIDDEN:
        for batch in BATCHES:
            fused = FusedRNN(hidden, hidden, device="cuda", dtype=dtype)
            rnn = fused.to_rnn()
            cells = [per_step_us(lambda x: rnn(x), batch, hidden, dtype)]
            for backend in BACKENDS:
                fused.backend = backend
                fits = plan(batch, hidden, LONG, dtype, "cuda", backend).backend is not None
                cells.append(per_step_us(lambda x: fused(x), batch, hidden, dtype) if fits else None)
            fused.backend = "auto"
            masks = {s: torch.rand(s, batch, device="cuda") > 0.01 for s in (LONG, SHORT)}
            cells.append(per_step_us(lambda x: fused(x, mask=masks[x.shape[0]]), batch, hidden,
                                     dtype))
            auto_path = plan(batch, hidden, LONG, dtype, "cuda").backend
            row = f"| {batch} | {hidden} | " + " | ".join(
                "-" if c is None else f"{c:.2f}" for c in cells) + f" | {auto_path} |"
            lines.append(row)
            print(row, flush=True)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        name = f"cuda-step-latency-{args.dtype}-{datetime.date.today().isoformat()}.md"
        with open(os.path.join(args.out, name), "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
