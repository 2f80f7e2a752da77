"""Timing: warm-up, rotated inputs, implementations taking turns, medians; CUDA
events on the GPU."""
import statistics
import time
from itertools import cycle
from typing import Callable, Dict, Sequence

import torch

PHASES = ("forward", "backward", "forward+backward")


def _time_once(forward: Callable, inputs, device: str):
    if device == "cuda":
        events = [torch.cuda.Event(enable_timing=True) for _ in range(3)]
        events[0].record()
        loss = forward(inputs)
        events[1].record()
        loss.backward()
        events[2].record()
        torch.cuda.synchronize()
        return events[0].elapsed_time(events[1]) / 1e3, events[1].elapsed_time(events[2]) / 1e3
    start = time.perf_counter()
    loss = forward(inputs)
    middle = time.perf_counter()
    loss.backward()
    return middle - start, time.perf_counter() - middle


def time_training_steps(forwards: Dict[str, Callable], input_sets: Sequence, repeats: int,
                        warmup: int, device: str) -> Dict[str, Dict[str, float]]:
    """Median seconds of forward (autograd on), backward, and both, per implementation.

    Each forward(inputs) returns a scalar loss. The implementations take turns within
    every repeat, in an order that rotates from one repeat to the next, so that
    drifts of the machine (clock, other load) and the effects of running after a
    particular one hit all alike; the input sets are used in turn, so that no
    repeat reads inputs left hot in cache.
    """
    rotation = cycle(input_sets)
    for _ in range(warmup):
        inputs = next(rotation)
        for forward in forwards.values():
            forward(inputs).backward()
    samples = {name: {phase: [] for phase in PHASES} for name in forwards}
    order = list(forwards.items())
    for repeat in range(repeats):
        inputs = next(rotation)
        # Each repeat starts with the next implementation: whichever runs right
        # after another one's large allocations (on the CPU, the reference's)
        # pays for fresh pages, and that must not always be the same one.
        start = repeat % len(order)
        for name, forward in order[start:] + order[:start]:
            fwd, bwd = _time_once(forward, inputs, device)
            samples[name]["forward"].append(fwd)
            samples[name]["backward"].append(bwd)
            samples[name]["forward+backward"].append(fwd + bwd)
    return {name: {phase: statistics.median(values) for phase, values in phases.items()}
            for name, phases in samples.items()}
