"""The per-step loop's paths, each asserted by its profiler scope and checked
against float64: on the CPU the runs of steps whose pass takes the product
with W_hh (float32, register tiles, on each vector ISA the CPU has), chunk by
chunk, split over threads by rows or by units, W_hh read in panels; and the
weight gradient of W_hh under a mask."""
from collections import Counter
from contextlib import contextmanager

import pytest
import torch

from rnn_fused import FusedRNN, cpu_isas, plan

from helpers import (KINDS, TOLERANCES, check_against_float64, cpu_isa_set, has_tiles,
                     make_mask, profiled_names, reference_layers, report, run_reference)


def product_scope(side, split, panels=False):
    """The scope of a run of steps whose pass takes the product (cpu/per_step.cpp)."""
    return (f"rnn_fused::cpu_steps({side}, product in the pass, split by {split}"
            + (", W_hh in panels)" if panels else ")"))


@contextmanager
def threads(count):
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def product_runs(names):
    """How many runs of steps took the product in the pass, by scope."""
    return Counter(name for name in names if "product in the pass" in name)


def expected_runs(isa, runs):
    """`runs` where `isa` has the register tiles, else none."""
    return Counter(runs) if has_tiles(isa) else Counter()


# Runs per layer and direction at B=16, H=128, T=100 (CpuSteps::chunk_steps:
# 2¹⁸ elements of B·G·H a chunk, 100, 42 and 32 steps): the Elman and LSTM
# forward passes keep the projection whole; the GRU's projects 42 + 42 + 16.
CHUNK_RUNS = {"rnn_tanh": (1, 1), "gru": (3, 3), "lstm": (1, 4)}


@pytest.mark.parametrize("cell", KINDS)
def test_cpu_runs_of_steps_across_chunks(cell, cpu_isa):
    """Two bidirectional layers: the pass takes the product a run of steps at a
    time, one run per chunk, on 2 threads split by rows (8 rows each)."""
    with threads(2):
        names = check_against_float64("cpu", cell, torch.float32, 16, 128, steps=100)
    forward, backward = CHUNK_RUNS[cell]
    assert product_runs(names) == expected_runs(cpu_isa, {
        product_scope("forward", "rows"): 4 * forward,
        product_scope("backward", "rows"): 4 * backward})


@pytest.mark.parametrize("cell", KINDS)
@pytest.mark.parametrize("batch, steps, split", [(3, 200, "units"), (11, 48, "rows")])
def test_cpu_backward_reads_w_hh_in_panels(cell, batch, steps, split, cpu_isa):
    """H=150 over at least 512 rows of steps (T·B): the backward pass reads W_hh
    packed in panels, its 2 threads split by units (B=3) and by rows (B=11)."""
    with threads(2):
        names = check_against_float64("cpu", cell, torch.float32, batch, 150, steps=steps)
    scopes = {product_scope("forward", split), product_scope("backward", split, panels=True)}
    assert set(product_runs(names)) == set(expected_runs(cpu_isa, dict.fromkeys(scopes, 1)))


# Below 4 rows a thread the threads split the units (B=3 on one thread, B=11 on
# three), else the rows (B=11 on one thread; B=13 on three: 5, 5 and 3 rows).
@pytest.mark.parametrize("cell", KINDS)
@pytest.mark.parametrize("count, batch, split",
                         [(1, 3, "units"), (1, 11, "rows"), (3, 11, "units"), (3, 13, "rows")])
def test_cpu_step_product_split_over_threads(cell, count, batch, split, cpu_isa):
    """The pass's product with W_hh, split over teams of 1 and 3 threads."""
    with threads(count):
        names = check_against_float64("cpu", cell, torch.float32, batch, 37)
    scopes = {product_scope(side, split) for side in ("forward", "backward")}
    assert set(product_runs(names)) == set(expected_runs(cpu_isa, dict.fromkeys(scopes, 1)))


@pytest.mark.parametrize("cell", KINDS)
@pytest.mark.parametrize("batch, hidden", [(1, 1), (7, 15), (8, 16), (9, 17), (17, 33), (3, 100)])
def test_float32_small_batches_match_float64(device, cell, batch, hidden):
    """The pass's product (register tiles, float32, B <= 64, H <= 256, long
    enough sequences) works in tiles of up to 8 rows × 32 columns (AVX-512),
    6 × 16 (AVX2, NEON); these shapes cut every kind of tile edge, on each ISA
    the CPU has. The plan says whether the pass takes the product and for which
    ISA, and the profiler sees the path it names."""
    for isa in cpu_isas() if device == "cpu" else [None]:
        with cpu_isa_set(isa):
            names = check_against_float64(device, cell, torch.float32, batch, hidden, steps=11)
            reason = plan(batch, hidden, steps=11, device=device, cell=cell).reason
        tiles = "register tiles inside the pass" in reason
        if device == "cpu":
            assert f"compiled for {isa}" in reason
        if not (device == "cpu" and has_tiles(isa)):
            assert not tiles
        forward_runs = [name for name in product_runs(names) if "(forward," in name]
        assert bool(forward_runs) == tiles


def test_masked_weight_hh_gradient_spanning_several_chunks(device):
    """With a mask, dW_hh accumulates over the per-step loop's chunks of steps:
    on the CPU 16 steps at B=32, G·H=512 (CpuSteps::chunk_steps), so T=150 spans
    10 in each direction, each rebuilding its carries (30% of the rows reset);
    CUDA's loop takes the whole sequence."""
    fused = FusedRNN(3, 512, bidirectional=True, device=device, dtype=torch.float64,
                     init="torch")
    layers = reference_layers(fused)
    x = torch.randn(32, 150, 3, device=device, dtype=torch.float64)
    h0, reset = torch.randn(2, 2, 32, 512, device=device, dtype=torch.float64)
    mask = make_mask("resets", 32, 150, device)

    def run():
        out, h_n = fused(x.transpose(0, 1), h0, mask=mask.t(), reset_state=reset)
        (out.sum() + h_n.sum()).backward()
    names = profiled_names(run)
    chunks = 2 * (10 if device == "cpu" else 1)
    assert names.count("rnn_fused::grad_weight_hh(carry chunks)") == chunks
    assert names.count("aten::lerp") == chunks
    ref_out, ref_h_n = run_reference(layers, x, mask, h0, reset)
    (ref_out.sum() + ref_h_n.sum()).backward()
    for name, cell in (("weight_hh_l0", layers[0].forward_cell),
                       ("weight_hh_l0_reverse", layers[0].reverse_cell)):
        report(f"grad {name}", getattr(fused, name).grad, cell.recurrent_linear.weight.grad,
               **TOLERANCES[torch.float64])


def test_infinite_reset_state_of_a_row_that_never_resets(device):
    """Row 0 keeps its state at every step, so its reset state, infinite here, is
    never read: with the other rows resetting often (dW_hh through the carry
    chunks) every value and gradient equals a run with a finite one there."""
    fused = FusedRNN(3, 16, device=device, dtype=torch.float64)
    x = torch.randn(30, 8, 3, device=device, dtype=torch.float64)
    mask = (torch.rand(30, 8, device=device) > 0.3).double()
    mask[:, 0] = 1.0
    finite = torch.randn(1, 8, 16, device=device, dtype=torch.float64)
    infinite = finite.clone()
    infinite[:, 0] = float("inf")

    def run(reset):
        fused.zero_grad()
        reset = reset.clone().requires_grad_()
        out, h_n = fused(x, mask=mask, reset_state=reset)
        (out.sum() + h_n.sum()).backward()
        return [out, h_n, reset.grad] + [p.grad for p in fused.parameters()]
    names = profiled_names(lambda: run(infinite))
    assert names.count("rnn_fused::grad_weight_hh(carry chunks)") == 1
    for k, (a, b) in enumerate(zip(run(infinite), run(finite))):
        assert torch.isfinite(a).all(), f"tensor {k}"
        report(f"tensor {k}", a, b, **TOLERANCES[torch.float64])


@pytest.mark.parametrize("mask_kind", ["few_resets", "few_blends"])
def test_masked_weight_hh_gradient_with_few_resets(device, mask_kind):
    """Under 1/8 of the rows reset or blend: the CPU computes dW_hh as the
    product with the outputs plus a correction over those rows only."""
    fused = FusedRNN(3, 16, bidirectional=True, device=device, dtype=torch.float64,
                     init="torch")
    layers = reference_layers(fused)
    x = torch.randn(8, 60, 3, device=device, dtype=torch.float64)
    h0, reset = torch.randn(2, 2, 8, 16, device=device, dtype=torch.float64)
    mask = torch.ones(8, 60, device=device, dtype=torch.float64)
    rows, steps = torch.randint(0, 8, (6,)), torch.randint(0, 60, (6,))
    mask[rows, steps] = 0.0 if mask_kind == "few_resets" else 0.3
    x_t, h0_t, reset_t = (t.clone().requires_grad_() for t in (x.transpose(0, 1), h0, reset))

    def run():
        out, h_n = fused(x_t, h0_t, mask=mask.t(), reset_state=reset_t)
        (out.sum() + h_n.sum()).backward()
    names = profiled_names(run)
    if device == "cpu":
        assert names.count("rnn_fused::grad_weight_hh(few resets)") == 2
    ref_reset = reset.clone().requires_grad_()
    ref_out, ref_h_n = run_reference(layers, x, mask, h0, ref_reset)
    (ref_out.sum() + ref_h_n.sum()).backward()
    for name, cell in (("weight_hh_l0", layers[0].forward_cell),
                       ("weight_hh_l0_reverse", layers[0].reverse_cell)):
        report(f"grad {name}", getattr(fused, name).grad, cell.recurrent_linear.weight.grad,
               **TOLERANCES[torch.float64])
    report("grad reset", reset_t.grad, ref_reset.grad, **TOLERANCES[torch.float64])
