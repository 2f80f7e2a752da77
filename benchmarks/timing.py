"""Timing: warm-up, rotated inputs, medians; CUDA events on the GPU."""
import statistics
import time
from itertools import cycle
from typing import Callable, Dict, Sequence

import torch

PHASES = ("forward", "backward", "forward+backward")


def time_training_step(forward: Callable, input_sets: Sequence, repeats: int, warmup: int,
                       device: str) -> Dict[str, float]:
    """Median seconds of forward (autograd on), backward, and both.

    forward(inputs) returns a scalar loss. The input sets are used in turn so that
    no repeat reads inputs that the previous one left hot in cache.
    """
    rotation = cycle(input_sets)
    for _ in range(warmup):
        forward(next(rotation)).backward()
    samples = {phase: [] for phase in PHASES}
    for _ in range(repeats):
        inputs = next(rotation)
        if device == "cuda":
            events = [torch.cuda.Event(enable_timing=True) for _ in range(3)]
            events[0].record()
            loss = forward(inputs)
            events[1].record()
            loss.backward()
            events[2].record()
            torch.cuda.synchronize()
            fwd = events[0].elapsed_time(events[1]) / 1e3
            bwd = events[1].elapsed_time(events[2]) / 1e3
        else:
            start = time.perf_counter()
            loss = forward(inputs)
            middle = time.perf_counter()
            loss.backward()
            fwd, bwd = middle - start, time.perf_counter() - middle
        samples["forward"].append(fwd)
        samples["backward"].append(bwd)
        samples["forward+backward"].append(fwd + bwd)
    return {phase: statistics.median(values) for phase, values in samples.items()}
