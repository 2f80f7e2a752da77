"""Single steps and short sequences: FusedRNN against nn.RNN where per-call costs
dominate, as when an RL policy acts one environment step at a time.

T ∈ {1, 4, 16}, B ∈ {1, 16, 64}, H ∈ {64, 128, 256} (D = H), hx given (the carried
state), under no_grad and as forward+backward with x requiring grad. Each repeat
times every implementation once (torch.utils.benchmark, enough calls for about
20 ms), in an order that rotates from repeat to repeat; a row reports the median
and the range over the repeats, and the speedup is nn.RNN's median over FusedRNN's.
"""
import itertools
from typing import Callable, Dict, List

import torch
from torch import nn
from torch.utils import benchmark

from rnn_fused import FusedRNN

STEPS = (1, 4, 16)
BATCHES = (1, 16, 64)
HIDDEN = (64, 128, 256)
MODES = ("no_grad", "forward+backward")
# Calls per timing: enough for this many seconds, so that the timer's own cost
# and clock resolution vanish.
TARGET_SECONDS = 0.02


def implementations(steps, batch, hidden, mode, device, dtype) -> Dict[str, Callable]:
    rnn = nn.RNN(hidden, hidden, device=device, dtype=dtype)
    fused = FusedRNN.from_rnn(rnn)
    x = torch.randn(steps, batch, hidden, device=device, dtype=dtype,
                    requires_grad=mode != "no_grad")
    h0 = torch.randn(1, batch, hidden, device=device, dtype=dtype)
    with torch.no_grad():
        difference = (fused(x, h0)[0] - rnn(x, h0)[0]).abs().max().item()
    assert difference < 1e-4, f"FusedRNN differs from nn.RNN by {difference:.2e}"

    def call(module):
        if mode == "no_grad":
            def run():
                with torch.no_grad():
                    module(x, h0)
        else:
            def run():
                out, h_n = module(x, h0)
                (out.sum() + h_n.sum()).backward()
        return run
    return {"FusedRNN": call(fused), "nn.RNN": call(rnn)}


def calls_per_timing(fn: Callable) -> int:
    once = benchmark.Timer("fn()", globals={"fn": fn}).timeit(10).mean
    return max(1, int(TARGET_SECONDS / once))


def time_case(impls: Dict[str, Callable], repeats: int) -> Dict[str, List[float]]:
    """Seconds per call, one sample per implementation and repeat, rotating order."""
    timers = {name: benchmark.Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
              for name, fn in impls.items()}
    number = {name: calls_per_timing(fn) for name, fn in impls.items()}
    samples = {name: [] for name in impls}
    order = list(impls)
    for repeat in range(repeats):
        start = repeat % len(order)
        for name in order[start:] + order[:start]:
            samples[name].append(timers[name].timeit(number[name]).mean)
    return samples


def run_short_sequences(device: str, dtype: torch.dtype, repeats: int, progress) -> List[Dict]:
    rows = []
    cases = list(itertools.product(MODES, STEPS, BATCHES, HIDDEN))
    for mode, steps, batch, hidden in progress(cases, "short sequences"):
        samples = time_case(implementations(steps, batch, hidden, mode, device, dtype), repeats)
        medians = {name: sorted(s)[len(s) // 2] for name, s in samples.items()}
        rows.append(dict(mode=mode, T=steps, B=batch, H=hidden,
                         samples_us={name: [t * 1e6 for t in s] for name, s in samples.items()},
                         median_us={name: t * 1e6 for name, t in medians.items()},
                         speedup=medians["nn.RNN"] / medians["FusedRNN"]))
    return rows


def markdown(rows: List[Dict]) -> str:
    lines = ["", "## single step and short sequences", "",
             "hx given; D = H; medians (min–max) of the repeats in µs per call; "
             "speedup = nn.RNN median / FusedRNN median", "",
             "| mode | T | B | H | FusedRNN µs | nn.RNN µs | speedup |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        cells = []
        for name in ("FusedRNN", "nn.RNN"):
            samples = row["samples_us"][name]
            cells.append(f"{row['median_us'][name]:.1f} ({min(samples):.1f}–{max(samples):.1f})")
        lines.append(f"| {row['mode']} | {row['T']} | {row['B']} | {row['H']} | "
                     f"{' | '.join(cells)} | {row['speedup']:.2f}x |")
    slowest = min(rows, key=lambda r: r["speedup"])
    lines += ["", f"Lowest speedup: {slowest['speedup']:.2f}x ({slowest['mode']}, T={slowest['T']}, "
                  f"B={slowest['B']}, H={slowest['H']})."]
    return "\n".join(lines) + "\n"
