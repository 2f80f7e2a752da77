"""The one-launch CUDA kernels against the float64 per-step loop, at the sizes
they are built for: the persistent family (a grid barrier; every cell) and the
cluster family (Elman cells: one thread-block cluster per batch tile, or W_hh
tiled over several clusters). 'auto' takes none of them until a device check
passes them, so every test names its backend. Every other CUDA test runs on
the persistent kernel too when scripts/device_check.sh sets
RNN_FUSED_BACKEND=persistent."""
import threading

import pytest
import torch
from torch.testing._internal.optests import opcheck

from rnn_fused import FusedRNN, plan

from helpers import (CELLS, GATES, KINDS, MASK_KINDS, MULTIPROCESSORS, TOLERANCES, fused_module,
                     layer, make_mask, outputs_and_grads, random_states, report)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")

T, D = 12, 24
# The grid kernel's largest H at 8 rows a block: one block per multiprocessor
# (1024 on 132 of them, 912 on an H100 PCIe's 114).
GRID_LARGEST = min(1024, 8 * MULTIPROCESSORS)
# Elman (B, H): full warps, partly filled warps (H=1000, or the largest H, under
# 1000), scalar loads (H % 8 != 0), one block per row (H=6), the largest H
# that fits, and a wide batch.
PERSISTENT_SHAPES = [(1, 256), (8, 512), (32, 512), (5, min(1000, GRID_LARGEST)), (7, 300),
                     (2, 6), (64, GRID_LARGEST), (200, 128)]
# GRU and LSTM (B, H): 4 units per block at B <= 8 (H=256: 64 blocks), 2 where 1
# would need more blocks than SMs (B=32, H=256), the largest H that fits (512:
# 128 blocks of 4, one per multiprocessor; 456 on an H100 PCIe's 114), scalar
# loads (H % L != 0: 100, 6), a wide batch (200 rows, 1 unit per block), and B·J
# at its limit (1024 rows of 1 unit).
GATED_SHAPES = [(1, 128), (8, 256), (32, 256), (5, 100), (2, 6),
                (64, min(512, 4 * MULTIPROCESSORS)), (200, 128), (1024, 64)]
# The cluster kernel holds W_hh in one cluster, so H <= 512 in float32: each of its row
# counts (J = 8 at H=6, 100, 128; 16 at 250, 256; 32 at 300, 301, 512), a cluster
# of 13 blocks (H=100), scalar loads and exchange rows padded beyond H at each J
# (H % L != 0: 6, 100, 250, 301), batches split into tiles, one per resident
# cluster (200 rows; 70 rows at H=512) and more tiles than clusters resident at
# once (600 rows at H=512, where a float32 tile's shared memory holds 45 rows
# and a bfloat16 one 64, its threads' outputs: 14 and 10 tiles, in waves).
CLUSTER_SHAPES = [(1, 256), (8, 512), (32, 512), (70, 512), (7, 300), (2, 6), (5, 100),
                  (200, 128), (3, 250), (3, 301), (600, 512)]
# Above H=512 the half types' clusters keep W_hh in shared memory, 64 rows per
# block: 16 blocks of all 8 k-warps (H=1024), 9 blocks of 5 k-warps with 3 idle
# (H=520), 13 blocks with a partly filled last k-warp (H=777), each with tiles
# of one row and of many (200 rows: at H=777 tiles of 20, at most 21 fit; at
# H=1024 of 16, the most that fit, so 13 tiles, more than clusters resident).
SHARED_WEIGHT_SHAPES = [(3, 1024), (16, 1024), (64, 1024), (5, 520), (6, 777), (200, 520),
                        (200, 777), (200, 1024)]
# Where one cluster cannot hold W_hh, float32 and float64 tile it over several
# clusters of 128 rows, each block 64 or 128 columns (cluster/tiled_kernel.cuh),
# with the columns where only one width can fit, None where residency decides:
# 8 blocks of 128 columns at H=1024 and B <= 8 (16 rows each, the last 23 rows
# beyond H at H=1001, with scalar loads), 5 blocks of 26 rows with a short last
# one (H=600), 13 blocks of 64 columns and 10 rows (H=777), the most outputs a
# thread holds (B=157 at H=600: 10 blocks of 13 rows, 2041 outputs, 8 a
# thread; 128 columns would need 16), the largest batch at H=1024 and a batch
# of odd size.
# At 64 columns a block, ceil(H / 128) clusters of ceil(H / 64) blocks: 128 at
# H=1024, which 132 multiprocessors hold and an H100 PCIe's 114 do not (896:
# 98 blocks).
TILED_LARGEST = max(h for h in range(128, 1025, 128) if (h // 128) * (h // 64) <= MULTIPROCESSORS)
TILED_SHAPES = [(1, 1024, 128), (8, 1024, 128), (3, 1001, 128), (8, 600, 128), (16, 777, None),
                (30, 520, None), (64, TILED_LARGEST, None), (157, 600, 64),
                (128, TILED_LARGEST, None), (37, TILED_LARGEST, None)]
# (backend, cell, B, H, bidirectional)
CASES = ([("persistent", "rnn_tanh", *shape, bidirectional) for shape in PERSISTENT_SHAPES
          for bidirectional in (False, True)]
         + [("persistent", cell, *shape, False) for cell in ("gru", "lstm")
            for shape in GATED_SHAPES]
         + [("cluster", "rnn_tanh", *shape, bidirectional) for shape in CLUSTER_SHAPES
            for bidirectional in (False, True)])
# Each cell on each family that has it: the cluster family runs the Elman cells.
FAMILY_CELLS = ([("persistent", cell) for cell in CELLS]
                + [("cluster", cell) for cell in CELLS if cell.startswith("rnn_")])
# (backend, cell, H): the largest sizes each kernel is built for; the cluster
# backend beyond H=512 in float32 is the tiled kernel.
ONE_LAUNCH = [("persistent", "rnn_tanh", 512), ("cluster", "rnn_tanh", 512),
              ("cluster", "rnn_tanh", TILED_LARGEST), ("persistent", "gru", 256),
              ("persistent", "lstm", 256)]


def require(backend, cell, batch, hidden, dtype, steps=T):
    """These shapes fit on the Hopper GPUs this project targets; a plan that
    says otherwise is a failure, not a skip."""
    chosen = plan(batch, hidden, steps=steps, dtype=dtype, device="cuda", backend=backend,
                  cell=cell)
    assert chosen.backend == backend, chosen.reason


def compare_with_float64(backend, cell, batch, hidden, dtype, mask_kind, bidirectional=False,
                         steps=T, tolerances=None, **config):
    """Outputs, final states and every gradient on `backend` in `dtype`, against
    the float64 per-step loop on the rounded inputs and weights, relative to
    each tensor's largest entry."""
    require(backend, cell, batch, hidden, dtype, steps)
    expected_module = fused_module(cell, D, hidden, bidirectional=bidirectional, device="cuda",
                                   dtype=torch.float64, backend="per-step", **config)
    module = fused_module(cell, D, hidden, bidirectional=bidirectional, device="cuda",
                          dtype=dtype, backend=backend, **config)
    module.load_state_dict(expected_module.state_dict())
    expected_module.load_state_dict(module.state_dict())  # the rounded weights
    count = module.num_layers * (2 if bidirectional else 1)
    x = torch.randn(steps, batch, D, device="cuda", dtype=dtype)
    states = random_states(cell, (count, batch, hidden), "cuda", dtype)
    mask = make_mask(mask_kind, batch, steps, "cuda")
    mask = None if mask is None else mask.t().to(dtype)
    resets = random_states(cell, (count, batch, hidden), "cuda", dtype) if mask is not None \
        else ()
    expected = outputs_and_grads(expected_module, x.double(), [s.double() for s in states],
                                 None if mask is None else mask.double(),
                                 [r.double() for r in resets])
    actual = outputs_and_grads(module, x, states, mask, resets)
    assert len(actual) == len(expected)
    for k, (a, b) in enumerate(zip(actual, expected)):
        scale = max(b.abs().max().item(), 1.0)
        report(f"{backend} {cell} {dtype} T={steps} B={batch} H={hidden} tensor {k} / "
               f"{scale:.2f}", a.double() / scale, b / scale,
               **(tolerances or TOLERANCES[dtype]))


def gradcheck_layer(backend, cell, batch, hidden, steps, mask_kind, reverse, w_hh_scale,
                    parameters=True):
    """float64 gradcheck of the layer op on `backend`: every output (h_t, h_n,
    and the LSTM's c_n and every c_t) with respect to the input, the initial
    and reset states, and where `parameters`, the weights and biases."""
    gates, lstm = GATES.get(cell, 1), cell == "lstm"

    def rand(*shape, scale=1.0, grad=True):
        t = torch.randn(*shape, device="cuda", dtype=torch.float64) * scale
        return t.requires_grad_(grad)
    mask = make_mask(mask_kind, batch, steps, "cuda")
    args = dict(input=rand(steps, batch, 4),
                weight_ih=rand(gates * hidden, 4, scale=0.5, grad=parameters),
                weight_hh=rand(gates * hidden, hidden, scale=w_hh_scale, grad=parameters),
                bias_ih=rand(gates * hidden, grad=parameters),
                bias_hh=rand(gates * hidden, grad=parameters),
                hx=rand(batch, hidden), cx=rand(batch, hidden) if lstm else None,
                mask=None if mask is None else mask.t().double(),
                reset_h=None if mask is None else rand(batch, hidden),
                reset_c=None if mask is None or not lstm else rand(batch, hidden))
    names = [k for k, v in args.items() if isinstance(v, torch.Tensor) and v.requires_grad]

    def fn(*tensors):
        call = dict(args, **dict(zip(names, tensors)))
        out, h_n, c_n, cells = layer(**call, cell=cell, reverse=reverse, backend=backend)
        return (out, h_n, c_n, cells) if lstm else (out, h_n)

    assert torch.autograd.gradcheck(fn, [args[n] for n in names])


@pytest.mark.parametrize("backend, cell, batch, hidden, bidirectional", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("mask_kind", ["none", "resets", "blend"])
def test_kernel_matches_float64(backend, cell, batch, hidden, bidirectional, dtype, mask_kind):
    compare_with_float64(backend, cell, batch, hidden, dtype, mask_kind, bidirectional)


@pytest.mark.parametrize("cell", KINDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_persistent_two_layers_both_directions(cell, dtype):
    """The reverse direction, a second layer reading the first, without bias."""
    compare_with_float64("persistent", cell, 6, 64, dtype, "resets", bidirectional=True,
                         num_layers=2, bias=False)


@pytest.mark.parametrize("backend, cell", FAMILY_CELLS)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("mask_kind", MASK_KINDS)
def test_kernel_gradcheck(backend, cell, mask_kind, reverse):
    """On the kernel itself: 20 units, so several blocks (3 of W_hh rows for the
    Elman cells, 5 to 20 for the gated ones) and a partly filled warp."""
    require(backend, cell, 3, 20, torch.float64, steps=5)
    gradcheck_layer(backend, cell, 3, 20, 5, mask_kind, reverse, w_hh_scale=0.3)


@pytest.mark.parametrize("cell, mask_kind, reverse, hidden",
                         [("rnn_tanh", kind, reverse, 260) for kind in MASK_KINDS
                          for reverse in (False, True)]
                         + [("rnn_tanh", "resets", False, 261), ("rnn_relu", "resets", False, 261),
                            ("rnn_identity", "resets", True, 260)])
def test_tiled_cluster_gradcheck(cell, mask_kind, reverse, hidden):
    """float64 gradcheck of the layer op on the tiled kernel: H=260 is beyond
    what one float64 cluster holds (256), so 3 clusters of 5 blocks of 64
    columns; H=261 stages with scalar loads. With respect to what the kernel's
    backward reaches: the input, h_0 and the reset state; the weights' and
    biases' gradients are products of its dpre outside it, which
    test_tiled_cluster_matches_float64 compares, and W_hh's 67600 entries would
    take numerical differentiation too long."""
    reason = plan(3, hidden, steps=4, dtype=torch.float64, device="cuda", backend="cluster",
                  cell=cell).reason
    assert reason.startswith("the tiled cluster kernel, W_hh in tiles of 128 rows × 64 "
                             "columns"), reason
    gradcheck_layer("cluster", cell, 3, hidden, 4, mask_kind, reverse, w_hh_scale=0.06,
                    parameters=False)


@pytest.mark.parametrize("cell", KINDS)
def test_persistent_opcheck(cell):
    batch, hidden, gates = 3, 16, GATES.get(cell, 1)
    lstm = cell == "lstm"

    def rand(*shape):
        return torch.randn(*shape, device="cuda", requires_grad=True)
    mask = make_mask("resets", batch, T, "cuda").t().float()
    args = (rand(T, batch, 4), rand(gates * hidden, 4), rand(gates * hidden, hidden),
            rand(gates * hidden), rand(gates * hidden), rand(batch, hidden),
            rand(batch, hidden) if lstm else None, mask, rand(batch, hidden),
            rand(batch, hidden) if lstm else None)
    opcheck(torch.ops.rnn_fused.layer_forward.default, args + (cell, False, "persistent"))


@pytest.mark.parametrize("batch, hidden", SHARED_WEIGHT_SHAPES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("mask_kind", ["none", "resets", "blend"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_cluster_with_weights_in_shared_memory(batch, hidden, dtype, mask_kind, bidirectional):
    reason = plan(batch, hidden, steps=T, dtype=dtype, device="cuda", backend="cluster").reason
    assert "64 rows of W_hh per block in shared memory" in reason, reason
    compare_with_float64("cluster", "rnn_tanh", batch, hidden, dtype, mask_kind, bidirectional)


@pytest.mark.parametrize("batch, hidden, columns", TILED_SHAPES)
@pytest.mark.parametrize("mask_kind", ["none", "resets", "blend"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_tiled_cluster_matches_float64(batch, hidden, columns, mask_kind, bidirectional):
    reason = plan(batch, hidden, steps=T, device="cuda", backend="cluster").reason
    assert reason.startswith("the tiled cluster kernel, W_hh in tiles of 128 rows × "
                             + (f"{columns} columns" if columns else "")), reason
    compare_with_float64("cluster", "rnn_tanh", batch, hidden, torch.float32, mask_kind,
                         bidirectional)


# J = 8, 16 and 32; 200 rows at H=128 and 600 at H=512 make tiles of more than
# 16 rows (43 at H=512: three groups of 16 batch rows).
@pytest.mark.parametrize("batch, hidden", [(5, 100), (200, 128), (3, 250), (600, 512)])
def test_cluster_tf32_follows_the_matmul_flag(batch, hidden):
    """float32 multiplies on TF32 tensor cores only where
    torch.backends.cuda.matmul.allow_tf32 allows it: the plan says so, the
    results stay within TF32's tolerance (float16's 10-bit mantissa) of
    float64, and the recurrence's product differs from the FMA one."""
    module = FusedRNN(D, hidden, device="cuda", backend="cluster")
    with torch.no_grad():
        module.weight_ih_l0.zero_()  # an input projection exact with TF32 or without
    x = torch.randn(T, batch, D, device="cuda")
    saved = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        reason = plan(batch, hidden, device="cuda", backend="cluster").reason
        assert "TF32" not in reason, reason
        with torch.no_grad():
            fma = module(x)[0]
        torch.backends.cuda.matmul.allow_tf32 = True
        reason = plan(batch, hidden, device="cuda", backend="cluster").reason
        assert "on TF32 tensor cores" in reason, reason
        with torch.no_grad():
            tf32 = module(x)[0]
        compare_with_float64("cluster", "rnn_tanh", batch, hidden, torch.float32, "resets",
                             True, tolerances=TOLERANCES[torch.float16])
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved
    report(f"TF32 against FMA, B={batch} H={hidden}", tf32, fma, **TOLERANCES[torch.float16])
    assert not torch.equal(tf32, fma)


@pytest.mark.parametrize("steps", [1, 2, 3])
@pytest.mark.parametrize("batch, hidden, dtype", [(1, 256, torch.float32),
                                                  (70, 512, torch.float32),
                                                  (20, 1024, torch.bfloat16),
                                                  (8, 1024, torch.float32)])
def test_cluster_exchange_over_few_steps(steps, batch, hidden, dtype):
    """The cluster kernel's two shared-memory buffers at their edges: one step
    (h_0 from the buffer, no stores), two (one buffer stored), three (both), on
    one tile and on several, with the weights in registers and in shared
    memory; and the tiled kernel's (float32 at H=1024), whose first backward
    step has no link, no exchange and no cluster barrier."""
    compare_with_float64("cluster", "rnn_tanh", batch, hidden, dtype, "resets", steps=steps)


@pytest.mark.parametrize("backend", ["persistent", "cluster"])
@pytest.mark.parametrize("cell", ["rnn_relu", "rnn_identity"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_kernel_other_nonlinearities(backend, cell, dtype):
    # float64 clusters hold W_hh up to H=256.
    hidden = 512 if backend == "persistent" else 256
    compare_with_float64(backend, cell, 4, hidden, dtype, "resets")


@pytest.mark.parametrize("backend, cell, hidden", ONE_LAUNCH)
def test_kernel_is_deterministic(backend, cell, hidden):
    """No atomics in the sums: the same inputs give bit-identical results."""
    module = fused_module(cell, D, hidden, device="cuda", backend=backend)
    x = torch.randn(T, 16, D, device="cuda")
    states = random_states(cell, (1, 16, hidden), "cuda", torch.float32)
    resets = random_states(cell, (1, 16, hidden), "cuda", torch.float32)
    mask = make_mask("resets", 16, T, "cuda").t().float()
    runs = [outputs_and_grads(module, x, states, mask, resets) for _ in range(3)]
    for first, *others in zip(*runs):
        assert all(torch.equal(first, other) for other in others)


@pytest.mark.parametrize("backend, cell, hidden", ONE_LAUNCH)
def test_kernel_and_per_step_agree_over_long_sequences(backend, cell, hidden):
    """T=2000: errors do not grow along the sequence (each step's exchange is
    complete; the tiled kernel's flags count 2000 steps)."""
    module = fused_module(cell, 64, hidden, device="cuda")
    x = torch.randn(2000, 8, 64, device="cuda")
    mask = torch.rand(2000, 8, device="cuda") > 0.01
    with torch.no_grad():
        module.backend = "per-step"
        expected = module(x, mask=mask, reset_state=0.0)[0]
        module.backend = backend
        actual = module(x, mask=mask, reset_state=0.0)[0]
    report(f"{cell} T=2000 output", actual, expected, atol=1e-4, rtol=1e-4)
    report(f"{cell} T=2000 last 100 steps", actual[-100:], expected[-100:], atol=1e-4, rtol=1e-4)


# H=4096 is beyond every Elman kernel; at H=2048 the gated cells need more gate
# rows than a block's warps cover.
@pytest.mark.parametrize("backend, cell, hidden", [("persistent", "rnn_tanh", 4096),
                                                   ("cluster", "rnn_tanh", 4096),
                                                   ("persistent", "gru", 2048),
                                                   ("persistent", "lstm", 2048)])
def test_a_kernel_that_does_not_fit_raises_and_the_context_stays_usable(backend, cell, hidden):
    """Refused before launch: a ValueError, and CUDA keeps working (a launch
    that trapped would poison the context for the rest of the process)."""
    module = fused_module(cell, 8, hidden, device="cuda", backend=backend)
    chosen = plan(2, hidden, dtype=torch.float32, device="cuda", backend=backend, cell=cell)
    assert chosen.backend is None and f"does not fit B=2, H={hidden}" in chosen.reason
    with pytest.raises(ValueError, match=f"does not fit B=2, H={hidden}"):
        module(torch.randn(3, 2, 8, device="cuda"))
    module.backend = "auto"
    out = module(torch.randn(3, 2, 8, device="cuda"))[0]
    torch.cuda.synchronize()
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("backend", ["persistent", "cluster"])
def test_concurrent_launches_of_different_sizes(backend):
    """Launch limits are set once per device and cached under a lock: threads
    launching the same kernel with different shared memory (batch sizes) at
    once all get their single-threaded results."""
    module = FusedRNN(D, 256, device="cuda", backend=backend)
    inputs_by_thread = [torch.randn(T, batch, D, device="cuda") for batch in (1, 24, 60, 9)]
    with torch.no_grad():
        expected = [module(x)[0] for x in inputs_by_thread]
    failures = []

    def run(x, want):
        with torch.no_grad():
            for _ in range(50):
                if not torch.equal(module(x)[0], want):
                    failures.append(x.shape[1])

    threads = [threading.Thread(target=run, args=pair)
               for pair in zip(inputs_by_thread, expected)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    torch.cuda.synchronize()
    assert not failures


def test_cluster_plan_says_why_it_does_not_fit():
    # float32 and float64 fall back to the tiled kernel; both reasons are given.
    reason = plan(8, 4096, dtype=torch.float32, device="cuda", backend="cluster").reason
    assert "H <= 512 in this dtype" in reason and "H <= 2048 in this dtype" in reason, reason
    reason = plan(8, 1040, dtype=torch.bfloat16, device="cuda", backend="cluster").reason
    assert "H <= 1024 in this dtype" in reason and "in shared memory above H=512" in reason
    assert "tiled" not in reason, "no tiled kernel in half precision"
    reason = plan(8, 2048, dtype=torch.float64, device="cuda", backend="cluster").reason
    assert "H <= 256 in this dtype" in reason and "H <= 1024 in this dtype" in reason, reason
    # Beyond every tile's batch: 128 columns (16 rows a block) hold B <= 128 in
    # their threads' outputs, 64 columns hold B <= 181 in shared memory.
    reason = plan(257, 1024, dtype=torch.float32, device="cuda", backend="cluster").reason
    assert "the tiled cluster kernel does not fit B=257, H=1024" in reason, reason
    reason = plan(600, 512, dtype=torch.float32, device="cuda", backend="cluster").reason
    assert "batch tile of up to 43 rows" in reason, reason  # 14 tiles, 45 rows' shared memory
    for cell in ("gru", "lstm"):
        chosen = plan(8, 256, device="cuda", backend="cluster", cell=cell)
        assert chosen.backend is None and "Elman cells only" in chosen.reason


@pytest.mark.parametrize("backend, cell, hidden", ONE_LAUNCH)
def test_profiler_scopes_name_the_path(backend, cell, hidden):
    """The family's scopes, forward and backward, and the tiled kernel's within
    the cluster family's."""
    chosen = plan(8, hidden, device="cuda", backend=backend, cell=cell)
    assert chosen.backend == backend, chosen.reason
    module = fused_module(cell, 8, hidden, device="cuda", backend=backend)
    x = torch.randn(4, 8, 8, device="cuda", requires_grad=True)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        module(x)[0].sum().backward()
    names = [event.name for event in prof.events()]
    assert f"rnn_fused::cuda_forward({backend})" in names
    assert f"rnn_fused::cuda_backward({backend})" in names
    tiled = chosen.reason.startswith("the tiled cluster kernel")
    assert names.count("rnn_fused::cuda_steps(tiled cluster)") == (2 if tiled else 0)


@pytest.mark.parametrize("cell", KINDS)
@pytest.mark.parametrize("batch, hidden, dtype", [(8, 512, torch.float32),
                                                  (64, 1024, torch.float32),
                                                  (64, 1024, torch.bfloat16),
                                                  (256, 512, torch.float32)])
def test_auto_takes_the_path_plan_names(cell, batch, hidden, dtype):
    """What plan() says is what runs: the families' profiler scopes name the path."""
    expected = plan(batch, hidden, steps=4, dtype=dtype, device="cuda", cell=cell).backend
    module = fused_module(cell, 8, hidden, device="cuda", dtype=dtype)
    x = torch.randn(4, batch, 8, device="cuda", dtype=dtype, requires_grad=True)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        module(x)[0].float().sum().backward()
    names = {event.name for event in prof.events()}
    assert f"rnn_fused::cuda_forward({expected})" in names
    assert f"rnn_fused::cuda_backward({expected})" in names
