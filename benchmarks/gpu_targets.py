"""The GPU targets grid: FusedRNN against cuDNN, forward+backward, at every
B ∈ {1, 8, 32, 64, 256} × H ∈ {128, 256, 512, 1024}, T=256, D=H, TF32 off.

Per shape, in one rotating order (benchmarks/timing.py): cuDNN and FusedRNN's
'auto' with x requiring grad, both again with x not requiring grad (FusedRNN
then skips dx; cuDNN computes it anyway), 'auto' with random resets (about
1/100), and every CUDA backend that fits ('per-step', 'persistent',
'cluster'; in float32 at H=1024, the tiled cluster kernel, up to B=128), so that plan()'s
choices can be checked against measurements.
Speedup = cuDNN time / FusedRNN time, medians of --repeats.
Usage: python benchmarks/gpu_targets.py --dtype bfloat16 [--repeats 15] [--batches 1 8 ...]
    [--hidden 256 ...] [--backends per-step persistent] [--out DIR | --record]
"""
import argparse
import datetime
import json
import subprocess

import torch
from torch import nn

from progress import progress
from rnn_fused import FusedRNN, plan
from result_files import add_output_arguments, commit, result_stem
from timing import time_training_steps

BATCHES = (1, 8, 32, 64, 256)
HIDDEN = (128, 256, 512, 1024)
STEPS = 256
BACKENDS = ("per-step", "persistent", "cluster")
RESET_PROBABILITY = 0.01


def driver_version() -> str:
    found = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                           capture_output=True, text=True)
    return found.stdout.strip() or "unknown"


def case(batch, hidden, dtype, backends):
    """name -> fn(inputs) -> loss; the input sets they take turns on."""
    rnn = nn.RNN(hidden, hidden, device="cuda", dtype=dtype)
    fused = FusedRNN.from_rnn(rnn)
    input_sets = []
    for _ in range(3):
        x = torch.randn(STEPS, batch, hidden, device="cuda", dtype=dtype)
        input_sets.append(dict(x=x.requires_grad_(), x_const=x.detach().clone(),
                               mask=torch.rand(STEPS, batch, device="cuda") > RESET_PROBABILITY))

    def fused_on(backend, key="x", mask=False):
        def run(i):
            fused.backend = backend
            return fused(i[key], mask=i["mask"] if mask else None)[0].float().sum()
        return run

    impls = {
        "cuDNN": lambda i: rnn(i["x"])[0].float().sum(),
        "auto": fused_on("auto"),
        "cuDNN, x without grad": lambda i: rnn(i["x_const"])[0].float().sum(),
        "auto, x without grad": fused_on("auto", key="x_const"),
        "auto + resets": fused_on("auto", mask=True),
    }
    for backend in backends:
        if plan(batch, hidden, STEPS, dtype, "cuda", backend).backend == backend:
            impls[backend] = fused_on(backend)
    return impls, input_sets


def table(rows, dtype_name, backends) -> list:
    header = ["B", "H", "auto path", "cuDNN ms", "auto ms", "auto vs cuDNN",
              "x without grad", "resets cost", *(f"{b} vs cuDNN" for b in backends)]
    lines = [f"## {dtype_name}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        t = r["ms"]
        ratio = [f"{t['cuDNN'] / t[b]:.2f}x" if b in t else "-" for b in backends]
        lines.append(
            f"| {r['B']} | {r['H']} | {r['auto_path']} | {t['cuDNN']:.3f} | {t['auto']:.3f} | "
            f"{t['cuDNN'] / t['auto']:.2f}x | "
            f"{t['cuDNN, x without grad'] / t['auto, x without grad']:.2f}x | "
            f"{(t['auto + resets'] / t['auto'] - 1) * 100:+.1f}% | " + " | ".join(ratio) + " |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"],
                        choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    parser.add_argument("--hidden", type=int, nargs="+", default=list(HIDDEN))
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    add_output_arguments(parser)
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    env = dict(date=str(datetime.date.today()), commit=commit(),
               device=torch.cuda.get_device_name(), driver=driver_version(),
               multiprocessors=torch.cuda.get_device_properties(0).multi_processor_count,
               torch=torch.__version__, cuda=torch.version.cuda,
               cudnn=torch.backends.cudnn.version(), steps=STEPS, repeats=args.repeats,
               warmup=args.warmup, tf32=False, reset_probability=RESET_PROBABILITY)
    lines = [f"# GPU targets, {env['date']}", "", f"- commit {env['commit']}",
             f"- {env['device']} ({env['multiprocessors']} SMs), driver {env['driver']}, "
             f"torch {env['torch']}, CUDA {env['cuda']}, cuDNN {env['cudnn']}",
             f"- forward+backward, T={STEPS}, D=H, tanh, 1 layer, TF32 off; medians of "
             f"{args.repeats} repeats after {args.warmup} warm-ups, every row once per repeat "
             "in rotating order; x requires grad unless the column says otherwise; "
             "speedup = cuDNN ms / FusedRNN ms; resets cost = auto with ~1/100 random "
             "resets against auto without", ""]
    results = {}
    for dtype_name in args.dtype:
        dtype = getattr(torch, dtype_name)
        rows = []
        shapes = [(b, h) for h in args.hidden for b in args.batches]
        for batch, hidden in progress(shapes, desc=f"targets {dtype_name}"):
            impls, input_sets = case(batch, hidden, dtype, args.backends)
            timings = time_training_steps(impls, input_sets, args.repeats, args.warmup, "cuda")
            rows.append(dict(B=batch, H=hidden,
                             auto_path=plan(batch, hidden, STEPS, dtype, "cuda").backend,
                             ms={name: t["forward+backward"] * 1e3
                                 for name, t in timings.items()}))
            del impls, input_sets
            torch.cuda.empty_cache()
        results[dtype_name] = rows
        lines += table(rows, dtype_name, args.backends) + [""]
        print("\n".join(table(rows, dtype_name, args.backends)), flush=True)
    stem = result_stem(args.out, "targets", "cuda", "-".join(args.dtype))
    with open(stem + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(stem + ".json", "w") as f:
        json.dump(dict(environment=env, results=results), f, indent=1)
    print(f"wrote {stem}.md and .json")


if __name__ == "__main__":
    main()
