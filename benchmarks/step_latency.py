"""Forward per-step latency on CUDA: the per-step loop, the persistent and the
cluster kernel (float32 at H=1024: the tiled one), and cuDNN, side by side in
one run. (RNN_FUSED_PERSISTENT_ROWS pins the persistent kernel's rows per block;
it is read once, so compare settings in separate runs.)

Per-step latency = (time at T=1024 − time at T=128) / 896, forward under
no_grad, so that the input projection and launch costs cancel out; medians of
--repeats, every row's runs timed once per repeat in rotating order.

The per-step loop and cuDNN are also timed replayed from a CUDA graph, which
leaves out all host work and most launch gaps: where a step takes far longer
eagerly than replayed, the host or the launches bound it, not the GPU's work.
Usage: python benchmarks/step_latency.py [--dtype bfloat16] [--out DIR | --record]
"""
import argparse
import statistics
from typing import Callable, Dict

import torch

from result_files import add_output_arguments, result_stem
from rnn_fused import FusedRNN, plan
from timing import time_calls

LONG, SHORT = 1024, 128
BATCHES = (1, 8, 32, 64, 256)
HIDDEN = (256, 512, 1024)
BACKENDS = ("per-step", "persistent", "cluster")


def in_cuda_graph(run: Callable) -> Callable:
    """run(x) replayed from a CUDA graph captured at its first call with each x
    (after a warm-up call on a side stream, as torch.cuda.graph asks)."""
    graphs = {}

    def replay(x):
        if id(x) not in graphs:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                run(x)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                run(x)
            graphs[id(x)] = graph
        graphs[id(x)].replay()
    return replay


def capturable(runs: Dict[str, Callable], batch, features, dtype) -> Dict[str, Callable]:
    """{name: in_cuda_graph(run)} for the runs whose capture works, tried on a
    two-step input; a failure is printed and the run left out."""
    graphed = {}
    for name, run in runs.items():
        try:
            with torch.no_grad():
                in_cuda_graph(run)(torch.randn(2, batch, features, device="cuda", dtype=dtype))
            graphed[name] = in_cuda_graph(run)
        except RuntimeError as error:
            print(f"{name}, B={batch}, H={features}: capture failed: {error}", flush=True)
    return graphed


def per_step_us(runs: Dict[str, Callable], batch, features, dtype, repeats) -> Dict[str, float]:
    """{name: median µs per step} of runs[name](x) under no_grad, all timed in one
    rotation (timing.time_calls), each at both sequence lengths."""
    xs = {steps: torch.randn(steps, batch, features, device="cuda", dtype=dtype)
          for steps in (LONG, SHORT)}
    calls = {(name, steps): (lambda run=run, x=xs[steps]: run(x))
             for name, run in runs.items() for steps in (LONG, SHORT)}
    with torch.no_grad():
        samples = time_calls(calls, repeats)
    median = {key: statistics.median(s) for key, s in samples.items()}
    return {name: (median[name, LONG] - median[name, SHORT]) / (LONG - SHORT) * 1e6
            for name in runs}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--repeats", type=int, default=7)
    add_output_arguments(parser)
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    graphed = ("cuDNN in a CUDA graph", "per-step in a CUDA graph")
    header = ["B", "H", "cuDNN", *BACKENDS, "auto + resets", *graphed, "auto path"]
    lines = [f"# Forward per-step latency, µs ({torch.cuda.get_device_name()}, {args.dtype}, "
             f"torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, TF32 off)", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    print("\n".join(lines), flush=True)
    for hidden in HIDDEN:
        for batch in BATCHES:
            fused = FusedRNN(hidden, hidden, device="cuda", dtype=dtype)
            rnn = fused.to_rnn()
            masks = {s: torch.rand(s, batch, device="cuda") > 0.01 for s in (LONG, SHORT)}

            def fused_on(backend, resets=False):
                def run(x):
                    fused.backend = backend
                    return fused(x, mask=masks[x.shape[0]] if resets else None)
                return run
            runs = {"cuDNN": rnn}
            for backend in BACKENDS:
                if plan(batch, hidden, LONG, dtype, "cuda", backend).backend is not None:
                    runs[backend] = fused_on(backend)
            runs["auto + resets"] = fused_on("auto", resets=True)
            runs.update(capturable(dict(zip(graphed, (rnn, fused_on("per-step")))), batch,
                                   hidden, dtype))
            latency = per_step_us(runs, batch, hidden, dtype, args.repeats)
            cells = [latency.get(name)
                     for name in ("cuDNN", *BACKENDS, "auto + resets", *graphed)]
            auto_path = plan(batch, hidden, LONG, dtype, "cuda").backend
            row = f"| {batch} | {hidden} | " + " | ".join(
                "-" if c is None else f"{c:.2f}" for c in cells) + f" | {auto_path} |"
            lines.append(row)
            print(row, flush=True)
    stem = result_stem(args.out, "step-latency", "cuda", args.dtype)
    with open(stem + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {stem}.md")


if __name__ == "__main__":
    main()
