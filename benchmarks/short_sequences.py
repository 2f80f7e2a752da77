"""Single steps and short sequences: each fused module against its torch.nn
module where per-call costs dominate, as when an RL policy acts one
environment step at a time.

T ∈ {1, 4, 16}, B ∈ {1, 16, 64}, H ∈ {64, 128, 256} (D = H), hx given (the carried
state), under no_grad and as forward+backward with x requiring grad. Each repeat
times every implementation once (timing.time_calls: torch.utils.benchmark, enough
calls for about 20 ms), in an order that rotates from repeat to repeat; a row reports the median
and the range over the repeats, and the speedup is the torch.nn module's median
over the fused one's.
"""
import itertools
import statistics
from typing import Callable, Dict, List

import torch

from scenarios import _layers, as_hx, names
from timing import time_calls

STEPS = (1, 4, 16)
BATCHES = (1, 16, 64)
HIDDEN = (64, 128, 256)
MODES = ("no_grad", "forward+backward")
# make bench's quick set: a corner of the grid per mode, at one width.
QUICK_POINTS = [(steps, batch, 128) for steps in (1, 16) for batch in (1, 16)]


def implementations(steps, batch, hidden, mode, device, dtype, cell) -> Dict[str, Callable]:
    """{fused name: fn, torch.nn name: fn}, batch_first inputs, the state given."""
    rnn, fused = _layers(hidden, hidden, device, dtype, cell=cell)
    x = torch.randn(batch, steps, hidden, device=device, dtype=dtype,
                    requires_grad=mode != "no_grad")
    hx = as_hx(tuple(torch.randn(1, batch, hidden, device=device, dtype=dtype)
                     for _ in range(2 if cell == "lstm" else 1)))
    fused_name, nn_name = names(cell)
    with torch.no_grad():
        difference = (fused(x, hx)[0] - rnn(x, hx)[0]).abs().max().item()
    assert difference < 1e-4, f"{fused_name} differs from {nn_name} by {difference:.2e}"

    def call(module):
        if mode == "no_grad":
            def run():
                with torch.no_grad():
                    module(x, hx)
        else:
            def run():
                out, final = module(x, hx)
                finals = final if isinstance(final, tuple) else (final,)
                (out.sum() + sum(f.sum() for f in finals)).backward()
        return run
    return {fused_name: call(fused), nn_name: call(rnn)}


def run_short_sequences(device: str, dtype: torch.dtype, repeats: int, progress,
                        cells, quick: bool = False) -> List[Dict]:
    """Every point of the grid, or with quick only QUICK_POINTS."""
    rows = []
    points = QUICK_POINTS if quick else list(itertools.product(STEPS, BATCHES, HIDDEN))
    cases = [(cell, mode, *point) for cell in cells for mode in MODES for point in points]
    for cell, mode, steps, batch, hidden in progress(cases, desc="short sequences"):
        impls = implementations(steps, batch, hidden, mode, device, dtype, cell)
        samples = time_calls(impls, repeats)
        medians = {name: statistics.median(s) for name, s in samples.items()}
        fused_name, nn_name = names(cell)
        rows.append(dict(cell=cell, mode=mode, T=steps, B=batch, H=hidden, fused=fused_name,
                         baseline=nn_name,
                         samples_us={name: [t * 1e6 for t in s] for name, s in samples.items()},
                         median_us={name: t * 1e6 for name, t in medians.items()},
                         speedup=medians[nn_name] / medians[fused_name]))
    return rows


def markdown(rows: List[Dict]) -> str:
    lines = ["", "## single step and short sequences", "",
             "hx given; D = H; medians (min–max) of the repeats in µs per call; "
             "speedup = the torch.nn module's median / the fused module's", "",
             "| cell | mode | T | B | H | fused µs | torch.nn µs | speedup |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        cells = []
        for name in (row["fused"], row["baseline"]):
            samples = row["samples_us"][name]
            cells.append(f"{row['median_us'][name]:.1f} ({min(samples):.1f}–{max(samples):.1f})")
        lines.append(f"| {row['cell']} | {row['mode']} | {row['T']} | {row['B']} | {row['H']} | "
                     f"{' | '.join(cells)} | {row['speedup']:.2f}x |")
    for cell in dict.fromkeys(row["cell"] for row in rows):
        slowest = min((r for r in rows if r["cell"] == cell), key=lambda r: r["speedup"])
        lines += ["", f"Lowest {cell} speedup: {slowest['speedup']:.2f}x ({slowest['mode']}, "
                      f"T={slowest['T']}, B={slowest['B']}, H={slowest['H']})."]
    return "\n".join(lines) + "\n"
