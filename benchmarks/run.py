"""`make bench`: FusedRNN, FusedGRU and FusedLSTM against nn.RNN, nn.GRU and
nn.LSTM (cuDNN on GPU, ATen/oneDNN on CPU), the pure-Python reference and the
loops RL code uses, on the best device.

By default a quick representative set (about a minute and a half on 2 CPU
cores): per cell the plain case at B=8, a padded batch, the RL rollout with
resets and 8 short-sequence points; it ends with a summary of a few lines.
--full runs every plain shape, both paddings and the 54-point short-sequence
grid; --sweep the B × H × T sweep.

Every case times forward (autograd on), backward and both, as medians over
rotated inputs after warm-up, the implementations taking turns in balanced
orders (timing.orders), the reference's Python loop after them; every speedup is
a ratio of timings from this one run. Writes
benchmarks/out/bench-<device>-<device name>-<dtype>-<date>.{md,json,png}, or with
--record the same under benchmarks/results/, to be committed.
"""
import argparse
import datetime
import json
import os

import torch

from progress import progress
from result_files import add_output_arguments, commit, device_name, result_stem
from rnn_fused import best_device, cpu_isa, plan
from scenarios import CELLS, build_cases
from short_sequences import markdown as short_markdown
from short_sequences import run_short_sequences
from timing import PHASES, time_training_steps

COMPARE_TOLERANCE = {torch.float64: 1e-8, torch.float32: 2e-3, torch.float16: 5e-2,
                     torch.bfloat16: 2e-1}


def cpu_isas() -> dict:
    """The vector ISA each side ran on the CPU: ours (rnn_fused.cpu_isa), ATen's
    kernels' capability, and the caps set for oneDNN (nn.LSTM) and MKL (the BLAS
    products), which those libraries otherwise choose for themselves."""
    return dict(rnn_fused=cpu_isa(), aten=torch.backends.cpu.get_cpu_capability(),
                onednn_cap=os.environ.get("ONEDNN_MAX_CPU_ISA", "none (its best)"),
                mkl_cap=os.environ.get("MKL_ENABLE_INSTRUCTIONS", "none (its best)"))


def isa_words(env) -> str:
    """The ISA each side ran (cpu_isas), in words."""
    return ", ".join(f"{k} {v}" for k, v in env["cpu_isas"].items())


def environment(device: str, dtype: torch.dtype, args) -> dict:
    return dict(date=str(datetime.date.today()), commit=commit(), device=device,
                device_name=device_name(device), cpu_isas=cpu_isas(),
                dtype=str(dtype).replace("torch.", ""), torch=torch.__version__,
                cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                cpu_threads=torch.get_num_threads(),
                tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
                tf32_cudnn=torch.backends.cudnn.allow_tf32,
                repeats=args.repeats, warmup=args.warmup, selection=args.selection)


def check_agreement(case, dtype):
    """Baselines must compute what the fused module computes, or the comparison is void."""
    inputs = case.input_sets[0]
    with torch.no_grad():
        outputs = {name: impl(inputs) for name, impl in case.impls.items()
                   if "random resets" not in name}
    expected = next(iter(outputs.values())).float()
    valid = case.valid(inputs) if case.valid else torch.ones(expected.shape[:2], dtype=torch.bool)
    valid = valid.to(expected.device)
    for name, out in outputs.items():
        err = (out.float() - expected)[valid].abs().max().item()
        if err > COMPARE_TOLERANCE[dtype]:
            raise AssertionError(f"{case.scenario} {case.label}: {name} differs from the fused module "
                                 f"by {err:.2e}")


def markdown(env, rows) -> str:
    lines = [f"# rnn_fused benchmark, {env['date']}", "",
             f"- commit {env['commit']}",
             f"- device: {env['device']} ({env['device_name']}), CPU threads {env['cpu_threads']}",
             f"- CPU ISAs: {isa_words(env)}",
             f"- torch {env['torch']}, CUDA {env['cuda']}, cuDNN {env['cudnn']}",
             f"- dtype {env['dtype']}, tanh, 1 layer, batch_first; TF32 matmul/cuDNN "
             f"{env['tf32_matmul']}/{env['tf32_cudnn']}",
             f"- medians of {env['repeats']} repeats (implementations taking turns in "
             "balanced orders, each right after each other equally often, the reference "
             f"timed apart; inputs rotated) after {env['warmup']} warm-ups; forward with "
             "autograd on; "
             "speedup = baseline time / the fused module's time", ""]
    scenario = None
    for row in rows:
        if row["scenario"] != scenario:
            scenario = row["scenario"]
            lines += ["", f"## {scenario}", "",
                      "| case | implementation | fwd ms | bwd ms | fwd+bwd ms | fused speedup "
                      "(fwd / bwd / fwd+bwd) | cuDNN algorithm (a guess, not observed) |",
                      "|---|---|---|---|---|---|---|"]
        ms = [f"{row[p] * 1e3:.2f}" for p in PHASES]
        speedup = " / ".join(f"{row['speedup'][p]:.2f}x" for p in PHASES)
        lines.append(f"| {row['label']} | {row['impl']} | {' | '.join(ms)} | {speedup} "
                     f"| {row.get('cudnn', '-')} |")
    return "\n".join(lines) + "\n"


def plot(env, rows, path) -> bool:
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    baselines = [r for r in rows if not r["impl"].startswith("Fused")]
    labels = [f"{r['scenario']}: {r['label']}\nvs {r['impl']}" for r in baselines]
    values = [r["speedup"]["forward+backward"] for r in baselines]
    fig, ax = plt.subplots(figsize=(10, 0.42 * len(values) + 1.5))
    colors = ["tab:green" if v >= 1 else "tab:red" for v in values]
    ax.barh(range(len(values)), values, color=colors)
    ax.set_yticks(range(len(values)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    for k, v in enumerate(values):
        ax.text(v, k, f" {v:.2f}x", va="center", fontsize=7)
    ax.set_xlabel("fused module's speedup, forward+backward (log scale; >1 means it is faster)")
    ax.set_title(f"rnn_fused on {env['device_name']} ({env['dtype']}, torch {env['torch']}, "
                 f"{env['date']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def summary(env, rows, short_rows, cells, device, dtype) -> list:
    """A few lines: per cell its speedup range (forward+backward, and the short
    points' speedups) against the torch.nn module and against the per-step loop
    RL code runs, and the path its plain case took."""
    lines = [f"## summary: {env['device_name']}, {env['dtype']}, torch {env['torch']}, "
             f"{env['cpu_threads']} CPU threads, CPU ISAs {isa_words(env)}"]
    for cell in cells:
        mine = [r for r in rows if cell in r["scenario"].split()]
        against_nn = [r["speedup"]["forward+backward"] for r in mine
                      if r["impl"].startswith("nn.")]
        against_nn += [r["speedup"] for r in short_rows if r["cell"] == cell]
        against_loop = [r["speedup"]["forward+backward"] for r in mine
                        if r["impl"].startswith("per-step loop")]
        parts = []
        if against_nn:
            parts.append(f"{min(against_nn):.2f}-{max(against_nn):.2f}x the torch.nn module "
                         f"({len(against_nn)} points)")
        if against_loop:
            parts.append(f"{min(against_loop):.2f}x the per-step loop of RL code")
        plain_rows = [r for r in mine if r["scenario"].startswith("plain")]
        if plain_rows:
            r = plain_rows[0]
            path = plan(r["B"], r["H"], r["T"], dtype, device, cell=cell)
            parts.append(f"path at {r['label']}: {path.backend} ({path.reason})")
        lines.append(f"- {cell}: " + "; ".join(parts))
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float32",
                        choices=["float32", "float64", "float16", "bfloat16"],
                        help="float16 and bfloat16 need a GPU")
    parser.add_argument("--full", dest="selection", action="store_const", const="full",
                        default="quick", help="every plain shape, both paddings, and the "
                        "whole short-sequence grid (the quick set is the default)")
    parser.add_argument("--sweep", dest="selection", action="store_const", const="sweep",
                        help="the full set with the B∈{1,8,32,64,256} × H∈{128..1024} × "
                        "T∈{64,256,1024} sweep as plain shapes")
    parser.add_argument("--cell", nargs="+", default=list(CELLS), choices=CELLS,
                        help="which cells (default: all three)")
    parser.add_argument("--only", choices=["sequences", "short"],
                        help="only the plain/padded/RL scenarios, or only the short sequences")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--short-repeats", type=int, default=15,
                        help="repeats of each short-sequence case")
    parser.add_argument("--warmup", type=int, default=2)
    add_output_arguments(parser)
    args = parser.parse_args()

    device = best_device()
    dtype = getattr(torch, args.dtype)
    if device == "cpu" and dtype in (torch.float16, torch.bfloat16):
        parser.error(f"{args.dtype} kernels exist on CUDA only")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    env = environment(device, dtype, args)
    print(f"device: {device} ({env['device_name']}), torch {env['torch']}, CUDA {env['cuda']}, "
          f"cuDNN {env['cudnn']}, CPU threads {env['cpu_threads']}, dtype {args.dtype}, "
          f"TF32 matmul/cuDNN {env['tf32_matmul']}/{env['tf32_cudnn']}, CPU ISAs "
          f"{isa_words(env)}", flush=True)

    rows = []
    factories = ([] if args.only == "short" else
                 build_cases(device, dtype, args.selection, args.cell))
    for factory in progress(factories, desc="benchmark cases"):
        case = factory()
        check_agreement(case, dtype)
        losses = {name: (lambda i, impl=impl: impl(i).sum())
                  for name, impl in case.impls.items()}
        # The reference's Python loop takes its turns apart: interleaved, its
        # frees left whatever ran next paying fresh pages (nn.LSTM at B=8, T=512
        # took 32 ms with it in the turns, 24 ms without).
        apart = [name for name in losses if name.startswith("reference")]
        timings = {}
        for group in ([n for n in losses if n not in apart], apart):
            if group:
                timings.update(time_training_steps({n: losses[n] for n in group},
                                                   case.input_sets, args.repeats,
                                                   args.warmup, device))
        fused = next(iter(timings.values()))
        for name, t in timings.items():
            rows.append(dict(scenario=case.scenario, label=case.label, impl=name,
                             **case.params, **t,
                             speedup={p: t[p] / fused[p] for p in PHASES}))
        del case
        if device == "cuda":
            torch.cuda.empty_cache()

    short_rows = ([] if args.only == "sequences" else
                  run_short_sequences(device, dtype, args.short_repeats, progress, args.cell,
                                      quick=args.selection == "quick"))

    stem = result_stem(args.out, "bench", device, args.dtype)
    report = markdown(env, rows) + (short_markdown(short_rows) if short_rows else "")
    with open(stem + ".md", "w") as f:
        f.write(report)
    with open(stem + ".json", "w") as f:
        json.dump(dict(environment=env, rows=rows, short_sequences=short_rows), f, indent=1)
    print(report)
    plotted = bool(rows) and plot(env, rows, stem + ".png")
    print("\n".join(summary(env, rows, short_rows, args.cell, device, dtype)))
    print(f"wrote {stem}.md, .json" + (" and .png" if plotted else ""))


if __name__ == "__main__":
    main()
