"""FusedGRU and FusedLSTM: gradcheck of the gated op, parity with nn.GRU and
nn.LSTM (outputs, final states, every gradient) after loading their state_dict,
masked runs against a per-step loop on nn.GRUCell / nn.LSTMCell and against the
reference equations, and nn's errors for bad input."""
import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnn_fused
from rnn_fused import FusedGRU, FusedLSTM
from rnn_fused.reference import gated_stack

from helpers import MASK_KINDS, TOLERANCES, make_mask, report

T, B, D, H = 6, 3, 4, 5
CELLS = {"gru": (FusedGRU, nn.GRU, nn.GRUCell, 3), "lstm": (FusedLSTM, nn.LSTM, nn.LSTMCell, 4)}


def op_args(cell, device, mask_kind, bias=True):
    gates = CELLS[cell][3]

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, device=device, dtype=torch.float64) * scale).requires_grad_()
    mask = make_mask(mask_kind, B, T, device)
    lstm = cell == "lstm"
    return dict(
        input=rand(T, B, D), weight_ih=rand(gates * H, D, scale=0.5),
        weight_hh=rand(gates * H, H, scale=0.4), bias_ih=rand(gates * H) if bias else None,
        bias_hh=rand(gates * H) if bias else None, hx=rand(B, H),
        cx=rand(B, H) if lstm else None, mask=None if mask is None else mask.t().double(),
        reset_h=None if mask is None else rand(B, H),
        reset_c=None if mask is None or not lstm else rand(B, H))


def nn_pair(cell, device, dtype=torch.float64, **config):
    fused_cls, nn_cls = CELLS[cell][:2]
    reference = nn_cls(D, H, device=device, dtype=dtype, **config)
    fused = fused_cls(D, H, device=device, dtype=dtype, **config)
    fused.load_state_dict(reference.state_dict())
    return fused, reference


def states_for(cell, shape, device, dtype=torch.float64):
    h0 = torch.randn(shape, device=device, dtype=dtype)
    return (h0, torch.randn(shape, device=device, dtype=dtype)) if cell == "lstm" else h0


def flat(result):
    """(output, h_n) or (output, (h_n, c_n)) -> a list of tensors."""
    out, final = result
    return [out] + (list(final) if isinstance(final, tuple) else [final])


def compare_with_nn(fused, reference, inputs, call=lambda m, *a: m(*a), dtype=torch.float64):
    """Runs both on copies of `inputs` (each tensor requiring grad), compares
    outputs, final states and the gradients of the inputs and parameters."""
    results = []
    for module in (fused, reference):
        copies = [t.detach().clone().requires_grad_() if isinstance(t, torch.Tensor) else
                  tuple(s.detach().clone().requires_grad_() for s in t) for t in inputs]
        values = flat(call(module, *copies))
        torch.manual_seed(3)
        weights = [torch.randn_like(v) for v in values]
        sum((v * w).sum() for v, w in zip(values, weights)).backward()
        leaves = [c for t in copies for c in ([t] if isinstance(t, torch.Tensor) else t)]
        results.append((values, [leaf.grad for leaf in leaves],
                        [p.grad for p in module.parameters()]))
        module.zero_grad()
    tol = TOLERANCES[dtype]
    for kind, ours, theirs in zip(("value", "input grad", "parameter grad"), results[0],
                                  results[1]):
        for k, (a, b) in enumerate(zip(ours, theirs)):
            report(f"{kind} {k}", a, b, **tol)


CONFIGS = [dict(num_layers=layers, bidirectional=bidirectional, batch_first=batch_first,
                bias=bias)
           for layers, bidirectional, batch_first, bias
           in itertools.product([1, 2], [False, True], [False, True], [True, False])]


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_matches_nn(device, cell, config):
    fused, reference = nn_pair(cell, device, **config)
    directions = 2 if config["bidirectional"] else 1
    shape = (B, T, D) if config["batch_first"] else (T, B, D)
    x = torch.randn(shape, device=device, dtype=torch.float64)
    states = states_for(cell, (config["num_layers"] * directions, B, H), device)
    compare_with_nn(fused, reference, [x, states])
    compare_with_nn(fused, reference, [x])  # hx defaults to zeros


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("bias", [True, False])
def test_chunked_loop_matches_nn(device, cell, bias):
    """B=256, H=100, T=11: on the CPU the GRU projects the input and both cells
    take the gate gradients in chunks of 3 and 2 steps, the last one shorter
    (CpuRecurrence::gated_chunk_steps: 2¹⁸ elements), in both directions."""
    fused_cls, nn_cls = CELLS[cell][:2]
    reference = nn_cls(D, 100, num_layers=2, bidirectional=True, bias=bias, device=device,
                       dtype=torch.float64)
    fused = fused_cls(D, 100, num_layers=2, bidirectional=True, bias=bias, device=device,
                      dtype=torch.float64)
    fused.load_state_dict(reference.state_dict())
    x = torch.randn(11, 256, D, device=device, dtype=torch.float64)
    compare_with_nn(fused, reference, [x, states_for(cell, (4, 256, 100), device)])


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_unbatched_matches_nn(device, cell):
    fused, reference = nn_pair(cell, device, num_layers=2, bidirectional=True)
    x = torch.randn(T, D, device=device, dtype=torch.float64)
    compare_with_nn(fused, reference, [x, states_for(cell, (4, H), device)])


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_sequence_matches_nn(device, cell, bidirectional):
    fused, reference = nn_pair(cell, device, num_layers=2, bidirectional=bidirectional)
    lengths = torch.tensor([4, T, 1])
    x = torch.randn(T, B, D, device=device, dtype=torch.float64)
    states = states_for(cell, (2 * (2 if bidirectional else 1), B, H), device)

    def call(module, x, states):
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        out, final = module(packed, states)
        return pad_packed_sequence(out)[0], final
    compare_with_nn(fused, reference, [x, states], call)


LOW_PRECISION = [torch.float32,
                 pytest.param(torch.bfloat16, marks=pytest.mark.skipif(
                     not torch.cuda.is_available(), reason="half types run on CUDA only")),
                 pytest.param(torch.float16, marks=pytest.mark.skipif(
                     not torch.cuda.is_available(), reason="half types run on CUDA only"))]


def outputs_and_grads(module, x, states, mask, resets):
    """Outputs, final states and the gradients of x, the states, the reset
    states and every parameter, from a fixed random weighting of the outputs."""
    leaves = [x] + list(states) + list(resets)
    leaves = [t.detach().clone().requires_grad_() for t in leaves]
    count = len(states)
    hx = tuple(leaves[1:1 + count])
    reset = tuple(leaves[1 + count:])
    out, final = module(leaves[0], hx if count == 2 else hx[0], mask=mask,
                        reset_state=reset if count == 2 else reset[0])
    finals = final if count == 2 else (final,)
    generator = torch.Generator(device=out.device).manual_seed(5)
    weights = torch.randn(out.shape, device=out.device, generator=generator).to(out.dtype)
    loss = (out.float() * weights.float()).sum() + sum(f.float().sum() for f in finals)
    grads = torch.autograd.grad(loss, leaves + list(module.parameters()))
    return [out, *finals, *grads]


def check_against_float64(device, cell, dtype, batch, hidden, steps=12):
    """Forward and backward, two bidirectional layers, resets and blends,
    relative to each tensor's largest entry."""
    fused_cls = CELLS[cell][0]
    exact = fused_cls(D, hidden, num_layers=2, bidirectional=True, device=device,
                      dtype=torch.float64)
    low = fused_cls(D, hidden, num_layers=2, bidirectional=True, device=device, dtype=dtype)
    low.load_state_dict(exact.state_dict())
    exact.load_state_dict(low.state_dict())  # the rounded weights
    count = 2 if cell == "lstm" else 1
    x = torch.randn(steps, batch, D, device=device, dtype=dtype) * 2
    states = [torch.randn(4, batch, hidden, device=device, dtype=dtype) for _ in range(count)]
    resets = [torch.randn(4, batch, hidden, device=device, dtype=dtype) for _ in range(count)]
    mask = make_mask("resets", batch, steps, device).t().double()
    mask[3, 1] = 0.25  # a blend
    expected = outputs_and_grads(exact, x.double(), [s.double() for s in states], mask,
                                 [r.double() for r in resets])
    actual = outputs_and_grads(low, x, states, mask.to(dtype), resets)
    for k, (a, b) in enumerate(zip(actual, expected)):
        scale = max(b.abs().max().item(), 1.0)
        report(f"{dtype} B={batch} H={hidden} tensor {k} / {scale:.2f}", a.double() / scale,
               b / scale, **TOLERANCES[dtype])


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("dtype", LOW_PRECISION)
# On the CPU in float32: the step product in the pass (on two threads split by
# units at B=3, into full and partial vectors, by rows at B=11 and 17), and the
# BLAS product on the transposed view (T=12 < H·G·H/2048 at H=100).
@pytest.mark.parametrize("batch, hidden",
                         [(B, 37), (11, 70), (17, 37), (B, 100), (B, 150), (11, 150)])
def test_lower_precision_against_float64(device, cell, dtype, batch, hidden):
    if device == "cpu" and dtype != torch.float32:
        pytest.skip("the CPU computes in float32 and float64")
    check_against_float64(device, cell, dtype, batch, hidden)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="half types run on CUDA only")
@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("dtype, delta", [(torch.float16, 2.0 ** -11), (torch.bfloat16, 2.0 ** -9)])
def test_half_gate_products_are_not_rounded(cell, dtype, delta):
    """One step whose output is the fraction that rounding a gate pre-activation
    to the dtype would lose. Every gate saturates (bias ±20) except the GRU's n
    and the LSTM's g, whose pre-activation is −1 + h_0·w with h_0 = (1, 1) and
    w = (1, δ): 1 + δ in float32, but 1 in the dtype (a quarter or half of its
    spacing at 1). So h_1 = tanh(δ) (LSTM: tanh(tanh(δ))), which rounds to δ,
    where a rounded product would give 0."""
    gates = CELLS[cell][3]
    module = CELLS[cell][0](1, 2, device="cuda", dtype=dtype, backend="per-step")
    gate_bias = {"gru": [20.0, -20.0, -1.0], "lstm": [20.0, -20.0, -1.0, 20.0]}[cell]
    free = 2  # n (GRU) and g (LSTM) are the third gate
    with torch.no_grad():
        module.weight_ih_l0.zero_()
        module.bias_ih_l0.copy_(torch.tensor(gate_bias).repeat_interleave(2))
        module.bias_hh_l0.zero_()
        module.weight_hh_l0.zero_()
        module.weight_hh_l0[free * 2:free * 2 + 2] = torch.tensor([1.0, delta])
    h0 = torch.ones(1, 1, 2, device="cuda", dtype=dtype)
    hx = (h0, torch.zeros_like(h0)) if cell == "lstm" else h0
    out, _ = module(torch.randn(1, 1, 1, device="cuda", dtype=dtype), hx)
    assert gates * 2 == module.weight_hh_l0.shape[0]
    torch.testing.assert_close(out.float().cpu(), torch.full((1, 1, 2), delta), atol=0, rtol=0)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_cpu_runs_of_steps_across_chunks(cell):
    """B=16, H=128, T=100 in float32: the pass takes the product a run of steps
    at a time, one run per chunk (GRU forward 42 + 42 + 16 steps, both cells'
    backward 42 or 32 steps a chunk), in both directions."""
    check_against_float64("cpu", cell, torch.float32, 16, 128, steps=100)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("batch, steps", [(3, 200), (11, 48)])
def test_cpu_backward_reads_w_hh_in_panels(cell, batch, steps):
    """H=150 over at least 512 rows of steps (T·B): the backward pass reads W_hh
    packed in panels, its threads split by units (B=3) and by rows (B=11)."""
    check_against_float64("cpu", cell, torch.float32, batch, 150, steps=steps)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
# Below 4 rows a thread the threads split the units (B=3 on one thread, B=11 on
# three), else the rows (B=11 on one thread; B=13 on three: 5, 5 and 3 rows).
@pytest.mark.parametrize("threads, batch", [(1, 3), (1, 11), (3, 11), (3, 13)])
def test_cpu_step_product_split_over_threads(cell, threads, batch):
    """The pass's product with W_hh, split over teams of 1 and 3 threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        check_against_float64("cpu", cell, torch.float32, batch, 37)
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("mask_kind", ["post_padding", "resets", "blend"])
def test_bidirectional_stack_matches_reference(device, cell, mask_kind):
    """Both directions of two layers against the reference equations, with the
    reverse direction resetting in its own processing order."""
    fused = CELLS[cell][0](D, H, num_layers=2, bidirectional=True, device=device,
                           dtype=torch.float64)
    count = 2 if cell == "lstm" else 1
    x = torch.randn(9, B, D, device=device, dtype=torch.float64)
    states = [torch.randn(4, B, H, device=device, dtype=torch.float64) for _ in range(count)]
    resets = [torch.randn(4, B, H, device=device, dtype=torch.float64) for _ in range(count)]
    mask = make_mask(mask_kind, B, 9, device).t().double()
    actual = outputs_and_grads(fused, x, states, mask, resets)

    class Reference(torch.nn.Module):
        def forward(self, x, hx, mask, reset_state):
            hx = hx if count == 2 else (hx,)
            reset = reset_state if count == 2 else (reset_state,)
            out, finals = gated_stack(cell, fused, x, hx, mask, reset)
            return out, finals if count == 2 else finals[0]

        def parameters(self):
            return fused.parameters()
    expected = outputs_and_grads(Reference(), x, states, mask, resets)
    for k, (a, b) in enumerate(zip(actual, expected)):
        report(f"tensor {k}", a, b, **TOLERANCES[torch.float64])


def test_infinite_reset_state_where_nothing_resets():
    """A kept row never reads the reset state, in the forward or the backward."""
    module = FusedGRU(D, H, dtype=torch.float64)
    x = torch.randn(T, B, D, dtype=torch.float64, requires_grad=True)
    out = module(x, mask=torch.ones(T, B), reset_state=float("inf"))[0]
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in module.parameters())


def cell_loop(cell_module, x, state, mask, reset):
    """The loop RL code runs today: nn.GRUCell / nn.LSTMCell per step, the state
    blended with the reset state by the mask after each step. x [T, B, D]."""
    outputs = []
    for t in range(x.shape[0]):
        new = cell_module(x[t], state)
        new = new if isinstance(new, tuple) else (new,)
        outputs.append(new[0])
        m = mask[t].unsqueeze(-1)
        state = tuple(m * n + (1 - m) * r for n, r in zip(new, reset))
        state = state if len(state) == 2 else state[0]
    return torch.stack(outputs), new


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("mask_kind", ["pre_padding", "post_padding", "resets", "blend"])
@pytest.mark.parametrize("reset_kind", ["initial", "tensor", "zero"])
def test_masked_matches_cell_loop_and_reference(device, cell, mask_kind, reset_kind):
    fused_cls, _, cell_cls, _ = CELLS[cell]
    fused = fused_cls(D, H, device=device, dtype=torch.float64)
    step = cell_cls(D, H, device=device, dtype=torch.float64)
    step.load_state_dict({k[:-3]: v for k, v in fused.state_dict().items()})
    mask = make_mask(mask_kind, B, T, device).t().double()
    x = torch.randn(T, B, D, device=device, dtype=torch.float64, requires_grad=True)
    states = tuple(torch.randn(B, H, device=device, dtype=torch.float64, requires_grad=True)
                   for _ in range(2 if cell == "lstm" else 1))
    resets = {"initial": states, "zero": tuple(torch.zeros_like(s) for s in states),
              "tensor": tuple(torch.randn_like(s).requires_grad_() for s in states)}[reset_kind]
    reset_arg = {"initial": None, "zero": 0.0,
                 "tensor": resets if cell == "lstm" else resets[0]}[reset_kind]
    hx = tuple(s.unsqueeze(0) for s in states) if cell == "lstm" else states[0].unsqueeze(0)
    if reset_kind == "tensor":
        reset_arg = tuple(r.unsqueeze(0) for r in resets) if cell == "lstm" \
            else resets[0].unsqueeze(0)
    out, final = fused(x, hx, mask=mask, reset_state=reset_arg)
    finals = final if cell == "lstm" else (final,)
    loop_out, loop_final = cell_loop(step, x, states if cell == "lstm" else states[0], mask,
                                     resets)
    ref_out, ref_finals = gated_stack(cell, fused, x, tuple(s.unsqueeze(0) for s in states),
                                      mask, tuple(r.unsqueeze(0) for r in resets))
    tol = TOLERANCES[torch.float64]
    report("output vs cell loop", out, loop_out, **tol)
    report("output vs reference", out, ref_out, **tol)
    for k, (a, b, c) in enumerate(zip(finals, loop_final, ref_finals)):
        report(f"final state {k} vs cell loop", a[0], b, **tol)
        report(f"final state {k} vs reference", a, c, **tol)
    leaves = [x, *states] + (list(resets) if reset_kind == "tensor" else [])
    weights = torch.randn_like(out)
    ours = torch.autograd.grad((out * weights).sum() + sum(f.sum() for f in finals),
                               leaves + list(fused.parameters()))
    theirs = torch.autograd.grad((loop_out * weights).sum() + sum(f.sum() for f in loop_final),
                                 leaves + list(step.parameters()))
    for k, (a, b) in enumerate(zip(ours, theirs)):
        report(f"grad {k}", a, b, **tol)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_dropout_between_layers(cell):
    fused = CELLS[cell][0](D, H, num_layers=2, dropout=0.5)
    x = torch.randn(T, B, D)
    fused.train()
    a, b = fused(x)[0], fused(x)[0]
    assert not torch.equal(a, b)
    fused.eval()
    assert torch.equal(fused(x)[0], fused(x)[0])


def test_lstm_projections_are_not_implemented():
    with pytest.raises(NotImplementedError, match="proj_size > 0"):
        FusedLSTM(D, H, proj_size=2)


def test_unknown_backends():
    with pytest.raises(ValueError, match="Unknown backend 'fast'. Select from 'auto'"):
        FusedGRU(D, H, backend="fast")
    module = FusedGRU(D, H)
    module.backend = "fast"
    with pytest.raises(ValueError, match="backend must be 'auto'.*got 'fast'"):
        module(torch.randn(T, B, D))


@pytest.mark.skipif("persistent" not in rnn_fused.ops.backends(),
                    reason="a build without the CUDA kernels")
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_the_persistent_kernel_is_cuda_only(cell):
    module = CELLS[cell][0](D, H, backend="persistent")
    with pytest.raises(ValueError, match="the 'persistent' backend does not run on the CPU"):
        module(torch.randn(T, B, D))


def bad_inputs(cell):
    lstm = cell == "lstm"

    def state(*shape, dtype=torch.float32):
        h = torch.randn(*shape, dtype=dtype)
        return (h, torch.randn(*shape, dtype=dtype)) if lstm else h
    return [
        ("4-D input", (torch.randn(T, B, D, 1),)),
        ("input size", (torch.randn(T, B, 7),)),
        ("empty sequence", (torch.randn(0, B, D),)),
        ("2-D state for 3-D input", (torch.randn(T, B, D), state(B, H))),
        ("state batch", (torch.randn(T, B, D), state(1, B + 1, H))),
        ("state size", (torch.randn(T, B, D), state(1, B, H + 1))),
        ("state layers", (torch.randn(T, B, D), state(2, B, H))),
        ("input dtype", (torch.randn(T, B, D, dtype=torch.float64),)),
    ]


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_bad_inputs_raise_what_nn_raises(cell):
    fused_cls, nn_cls = CELLS[cell][:2]
    fused, reference = fused_cls(D, H), nn_cls(D, H)
    for name, args in bad_inputs(cell):
        with pytest.raises(Exception) as expected:
            reference(*args)
        with pytest.raises(type(expected.value)) as ours:
            fused(*args)
        print(f"{name}: nn {expected.value!r}; ours {ours.value!r}")


def test_lstm_reset_state_must_be_a_pair():
    module = FusedLSTM(D, H)
    with pytest.raises(TypeError, match=r"reset_state must be an \(h, c\) pair"):
        module(torch.randn(T, B, D), mask=torch.ones(T, B), reset_state=torch.zeros(1, B, H))
    with pytest.raises(ValueError, match="expected reset_state of shape"):
        module(torch.randn(T, B, D), mask=torch.ones(T, B),
               reset_state=(torch.zeros(1, B, H), torch.zeros(1, B, H + 1)))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_double_backward_is_a_clear_error(cell):
    module = CELLS[cell][0](D, H, dtype=torch.float64)
    x = torch.randn(T, B, D, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(module(x)[0].sum(), x, create_graph=True)
    with pytest.raises(NotImplementedError, match="no double backward"):
        grad.sum().backward()


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_autocast(device, cell):
    """Under autocast each layer computes in the autocast dtype on CUDA and in
    float32 on the CPU, as FusedRNN does; float64 is never cast."""
    module = CELLS[cell][0](D, H, num_layers=2, device=device)
    exact = CELLS[cell][0](D, H, num_layers=2, device=device, dtype=torch.float64)
    exact.load_state_dict(module.state_dict())
    x = torch.randn(T, B, D, device=device)
    mask = make_mask("resets", B, T, device).t()
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    with torch.autocast(device, dtype=torch.bfloat16):
        out = module(x, mask=mask, reset_state=0.5)[0]
        out64 = exact(x.double(), mask=mask, reset_state=0.5)[0]
    assert out.dtype == dtype and out64.dtype == torch.float64
    expected = exact(x.double(), mask=mask, reset_state=0.5)[0]
    report("autocast output", out, expected, **TOLERANCES[dtype])
    assert torch.equal(out64, expected)


def test_backward_skips_the_products_nobody_needs():
    """Without x requiring grad the backward computes no input gradient (one large
    product); the weights' gradients are as with it."""
    module = FusedLSTM(D, H, dtype=torch.float64)
    x = torch.randn(T, B, D, dtype=torch.float64)
    names = []

    def run(requires_grad):
        module.zero_grad()
        inputs = x.clone().requires_grad_(requires_grad)
        with torch.profiler.profile() as prof:
            module(inputs)[0].sum().backward()
        names.append([e.name for e in prof.events() if e.name == "aten::mm"])
        return [p.grad.clone() for p in module.parameters()]
    without, with_x = run(False), run(True)
    assert len(names[0]) == len(names[1]) - 1
    for a, b in zip(without, with_x):
        assert torch.equal(a, b)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_conversions_to_and_from_torch(cell):
    fused_cls, nn_cls = CELLS[cell][:2]
    reference = nn_cls(D, H, num_layers=2, bias=False, batch_first=True, dropout=0.25,
                       bidirectional=True, dtype=torch.float64)
    fused = getattr(fused_cls, f"from_{cell}")(reference, backend="per-step")
    assert isinstance(fused, fused_cls) and fused.backend == "per-step"
    back = getattr(fused, f"to_{cell}")()
    assert type(back) is nn_cls
    for module in (fused, back):
        assert (module.num_layers, module.bias, module.batch_first, module.dropout,
                module.bidirectional) == (2, False, True, 0.25, True)
        for (name, a), (_, b) in zip(module.state_dict().items(), reference.state_dict().items()):
            assert torch.equal(a, b), name
    with pytest.raises(TypeError, match=f"expects a torch.nn.{nn_cls.__name__}"):
        getattr(fused_cls, f"from_{cell}")(nn.RNN(D, H))


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_empty_batch_matches_nn(device, cell, masked, dtype):
    """B=0, as nn.RNN, nn.GRU and nn.LSTM take it: empty outputs and states, and
    zero weight gradients (in float32 on the CPU, from the few-feature kernels)."""
    fused_cls, nn_cls = (rnn_fused.FusedRNN, nn.RNN) if cell == "rnn" else CELLS[cell][:2]
    reference = nn_cls(D, H, num_layers=2, bidirectional=True, device=device, dtype=dtype)
    fused = fused_cls(D, H, num_layers=2, bidirectional=True, device=device, dtype=dtype)
    fused.load_state_dict(reference.state_dict())
    x = torch.randn(T, 0, D, device=device, dtype=dtype, requires_grad=True)
    states = states_for(cell if cell == "lstm" else "gru", (4, 0, H), device, dtype)
    keywords = dict(mask=torch.ones(T, 0, device=device), reset_state=0.0) if masked else {}
    results = [flat(fused(x, states, **keywords)), flat(reference(x, states))]
    for ours, theirs in zip(*results):
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    sum(v.sum() for v in results[0]).backward()
    assert x.grad.shape == x.shape
    for name, parameter in fused.named_parameters():
        assert torch.equal(parameter.grad, torch.zeros_like(parameter)), name


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_plan_names_the_gated_loop(device, cell):
    for backend in ("auto", "per-step"):
        chosen = rnn_fused.plan(B, H, steps=T, device=device, backend=backend, cell=cell)
        assert chosen.backend == "per-step" and "per-step loop" in chosen.reason
    if "cluster" in rnn_fused.ops.backends():
        chosen = rnn_fused.plan(B, H, steps=T, device=device, backend="cluster", cell=cell)
        assert chosen.backend is None
        assert ("does not run on the CPU" if device == "cpu" else "Elman cells only") in \
            chosen.reason
        chosen = rnn_fused.plan(B, H, steps=T, device=device, backend="persistent", cell=cell)
        if device == "cpu":
            assert chosen.backend is None and "on the CPU" in chosen.reason
        else:
            assert chosen.backend == "persistent", chosen.reason
    with pytest.raises(ValueError, match="Unknown cell 'rnn2'"):
        rnn_fused.plan(B, H, cell="rnn2")
