"""Timing. Every function here times each implementation once per repeat, in an
order that rotates from one repeat to the next (`orders`: each one runs right
after each other one equally often), so that drifts of the machine (clock, other
load) and the effects of running after a particular one hit all alike; callers
report medians and ranges over the repeats.

`time_calls` measures whole calls with torch.utils.benchmark. `time_training_steps`
times the forward and the backward of one graph separately, which a Timer cannot
do (its warm-up reruns the statement, so it would call backward twice on one
graph): it uses CUDA events on the GPU and perf_counter on the CPU.
"""
import statistics
import time
from itertools import cycle
from typing import Callable, Dict, List, Sequence

import torch
from torch.utils import benchmark

PHASES = ("forward", "backward", "forward+backward")


def orders(count: int) -> List[List[int]]:
    """Orders of `count` implementations, one per repeat in turn, in which each
    runs right after each other one equally often (a balanced Latin square, and
    its mirror for an odd count). Plain rotations of one order always put the same
    one after the reference's large frees, which on the CPU pays fresh pages
    (0.6x against itself for FusedRNN's first row at B=8, T=512)."""
    first, low, high = [0], 1, count - 1
    while len(first) < count:
        first.append(low)
        low += 1
        if len(first) < count:
            first.append(high)
            high -= 1
    square = [[(i + shift) % count for i in first] for shift in range(count)]
    return square if count % 2 == 0 else square + [row[::-1] for row in square]


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

    Each forward(inputs) returns a scalar loss. The input sets are used in turn, so
    that no repeat reads inputs left hot in cache.
    """
    rotation = cycle(input_sets)
    for _ in range(warmup):
        inputs = next(rotation)
        for forward in forwards.values():
            forward(inputs).backward()
    samples = {name: {phase: [] for phase in PHASES} for name in forwards}
    items = list(forwards.items())
    turns = orders(len(items))
    for repeat in range(repeats):
        inputs = next(rotation)
        for name, forward in (items[i] for i in turns[repeat % len(turns)]):
            fwd, bwd = _time_once(forward, inputs, device)
            samples[name]["forward"].append(fwd)
            samples[name]["backward"].append(bwd)
            samples[name]["forward+backward"].append(fwd + bwd)
    return {name: {phase: statistics.median(values) for phase, values in phases.items()}
            for name, phases in samples.items()}


def time_calls(calls: Dict[str, Callable[[], object]], repeats: int,
               seconds_per_sample: float = 0.02) -> Dict[str, List[float]]:
    """Seconds per call of each fn(), one sample per implementation and repeat.

    A sample averages enough calls to last about `seconds_per_sample`, so that the
    timer's own cost and clock resolution vanish (and, on CUDA, the synchronization
    the Timer does around each sample). Threads: torch's current setting, not the
    Timer's default of one.
    """
    threads = torch.get_num_threads()
    timers = {name: benchmark.Timer("fn()", globals={"fn": fn}, num_threads=threads)
              for name, fn in calls.items()}
    # A few calls (after the Timer's own two warm-ups) size the samples.
    number = {name: max(1, int(seconds_per_sample / timer.timeit(3).mean))
              for name, timer in timers.items()}
    samples = {name: [] for name in calls}
    names = list(calls)
    turns = orders(len(names))
    for repeat in range(repeats):
        for name in (names[i] for i in turns[repeat % len(turns)]):
            samples[name].append(timers[name].timeit(number[name]).mean)
    return samples
