"""FusedRNN, FusedGRU and FusedLSTM, each test run for every cell: parity with
torch.nn (outputs, final states, every gradient) after loading its state_dict,
masked runs against a per-step loop on torch.nn's cells and against the
reference equations, gradcheck of the module, lower precisions against
float64, layouts, conversions, and torch.nn's errors for bad input."""
import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnn_fused
from rnn_fused import FusedLSTM, FusedRNN, fused_rnn
from rnn_fused.reference import run_stack

from helpers import (CELLS, KINDS, NN_CELLS, TOLERANCES, as_hx, check_against_float64,
                     fused_module, make_mask, module_classes, nn_module, nn_step_cell,
                     outputs_and_grads, random_states, report)

T, B, D, H = 6, 3, 4, 5


def nn_pair(cell, device, dtype=torch.float64, **config):
    """A fused module and its torch.nn twin, holding the same weights."""
    reference = nn_module(cell, D, H, device=device, dtype=dtype, **config)
    fused = fused_module(cell, D, H, device=device, dtype=dtype, **config)
    fused.load_state_dict(reference.state_dict())
    return fused, reference


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


@pytest.mark.parametrize("cell", NN_CELLS)
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_matches_nn(device, cell, config):
    fused, reference = nn_pair(cell, device, **config)
    directions = 2 if config["bidirectional"] else 1
    shape = (B, T, D) if config["batch_first"] else (T, B, D)
    x = torch.randn(shape, device=device, dtype=torch.float64)
    states = random_states(cell, (config["num_layers"] * directions, B, H), device)
    compare_with_nn(fused, reference, [x, as_hx(states)])
    compare_with_nn(fused, reference, [x])  # hx defaults to zeros


@pytest.mark.parametrize("cell", KINDS)
@pytest.mark.parametrize("bias", [True, False])
def test_chunked_loop_matches_nn(device, cell, bias):
    """B=256, H=100, T=11: on the CPU the loop projects the input and takes the
    gate gradients in chunks of a few steps (CpuSteps::chunk_steps: 2¹⁸
    elements), the last one shorter, in both directions."""
    reference = nn_module(cell, D, 100, num_layers=2, bidirectional=True, bias=bias,
                          device=device, dtype=torch.float64)
    fused = fused_module(cell, D, 100, num_layers=2, bidirectional=True, bias=bias,
                         device=device, dtype=torch.float64)
    fused.load_state_dict(reference.state_dict())
    x = torch.randn(11, 256, D, device=device, dtype=torch.float64)
    compare_with_nn(fused, reference, [x, as_hx(random_states(cell, (4, 256, 100), device))])


@pytest.mark.parametrize("cell", KINDS)
def test_unbatched_matches_nn(device, cell):
    fused, reference = nn_pair(cell, device, num_layers=2, bidirectional=True)
    x = torch.randn(T, D, device=device, dtype=torch.float64)
    compare_with_nn(fused, reference, [x, as_hx(random_states(cell, (4, H), device))])


@pytest.mark.parametrize("cell", KINDS)
def test_unbatched_masked_equals_batch_of_one(device, cell):
    fused = fused_module(cell, D, H, 2, bidirectional=True, device=device, dtype=torch.float64)
    x = torch.randn(T, D, device=device, dtype=torch.float64)
    states = random_states(cell, (4, H), device)
    resets = random_states(cell, (4, H), device)
    mask = torch.rand(T, device=device) > 0.3
    batch_of_one = [s[:, None] for s in states], [r[:, None] for r in resets]
    unbatched = flat(fused(x, as_hx(states), mask=mask, reset_state=as_hx(resets)))
    batched = flat(fused(x[:, None], as_hx(batch_of_one[0]), mask=mask[:, None],
                         reset_state=as_hx(batch_of_one[1])))
    assert unbatched[0].shape == (T, 2 * H)
    for k, (a, b) in enumerate(zip(unbatched, batched)):
        assert torch.equal(a, b[:, 0]), k


@pytest.mark.parametrize("cell", KINDS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_packed_sequence_matches_nn(device, cell, bidirectional, enforce_sorted):
    fused, reference = nn_pair(cell, device, num_layers=2, bidirectional=bidirectional)
    lengths = torch.tensor([T, 4, 1]) if enforce_sorted else torch.tensor([4, T, 1])
    x = torch.randn(T, B, D, device=device, dtype=torch.float64)
    states = random_states(cell, (2 * (2 if bidirectional else 1), B, H), device)

    def call(module, x, states):
        packed = pack_padded_sequence(x, lengths, enforce_sorted=enforce_sorted)
        out, final = module(packed, as_hx(states))
        return pad_packed_sequence(out)[0], final
    compare_with_nn(fused, reference, [x, states], call)


LOW_PRECISION = [torch.float32,
                 pytest.param(torch.bfloat16, marks=pytest.mark.skipif(
                     not torch.cuda.is_available(), reason="half types run on CUDA only")),
                 pytest.param(torch.float16, marks=pytest.mark.skipif(
                     not torch.cuda.is_available(), reason="half types run on CUDA only"))]


@pytest.mark.parametrize("cell", KINDS)
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
    module = fused_module(cell, 1, 2, device="cuda", dtype=dtype, backend="per-step")
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
    torch.testing.assert_close(out.float().cpu(), torch.full((1, 1, 2), delta), atol=0, rtol=0)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("mask_kind", ["pre_padding", "post_padding", "resets", "blend"])
@pytest.mark.parametrize("given_reset", [False, True])
def test_bidirectional_stack_matches_reference(device, cell, mask_kind, given_reset):
    """Both directions of two layers against the reference equations, with the
    reverse direction resetting in its own processing order."""
    fused = fused_module(cell, D, H, num_layers=2, bidirectional=True, device=device,
                         dtype=torch.float64)
    x = torch.randn(9, B, D, device=device, dtype=torch.float64)
    states = random_states(cell, (4, B, H), device)
    resets = random_states(cell, (4, B, H), device) if given_reset else states
    mask = make_mask(mask_kind, B, 9, device).t().double()
    actual = outputs_and_grads(fused, x, states, mask, resets)

    class Reference(nn.Module):
        def forward(self, x, hx, mask, reset_state):
            hx = hx if isinstance(hx, tuple) else (hx,)
            reset = reset_state if isinstance(reset_state, tuple) else (reset_state,)
            out, finals = run_stack(cell, fused, x, hx, mask, reset)
            return out, as_hx(finals)

        def parameters(self):
            return fused.parameters()
    expected = outputs_and_grads(Reference(), x, states, mask, resets)
    for k, (a, b) in enumerate(zip(actual, expected)):
        report(f"tensor {k}", a, b, **TOLERANCES[torch.float64])


@pytest.mark.parametrize("cell", KINDS)
def test_batch_first_mask_follows_the_input_layout(device, cell):
    time_first = fused_module(cell, D, H, bidirectional=True, device=device,
                              dtype=torch.float64)
    batch_first = fused_module(cell, D, H, bidirectional=True, batch_first=True,
                               device=device, dtype=torch.float64)
    batch_first.load_state_dict(time_first.state_dict())
    x = torch.randn(T, B, D, device=device, dtype=torch.float64)
    mask = make_mask("resets", B, T, device)
    expected = flat(time_first(x, mask=mask.t(), reset_state=0.5))
    actual = flat(batch_first(x.transpose(0, 1), mask=mask, reset_state=0.5))
    assert torch.equal(actual[0], expected[0].transpose(0, 1))
    for a, b in zip(actual[1:], expected[1:]):
        assert torch.equal(a, b)


@pytest.mark.parametrize("cell", KINDS)
def test_infinite_reset_state_where_nothing_resets(cell):
    """A kept row never reads the reset state, in the forward or the backward."""
    module = fused_module(cell, D, H, dtype=torch.float64)
    x = torch.randn(T, B, D, dtype=torch.float64, requires_grad=True)
    out = module(x, mask=torch.ones(T, B), reset_state=float("inf"))[0]
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in module.parameters())


def cell_loop(step_cell, x, state, mask, reset):
    """The loop RL code runs today: nn.RNNCell, nn.GRUCell or nn.LSTMCell per
    step, the state blended with the reset state by the mask after each step.
    x [T, B, D]."""
    outputs = []
    for t in range(x.shape[0]):
        new = step_cell(x[t], state)
        new = new if isinstance(new, tuple) else (new,)
        outputs.append(new[0])
        m = mask[t].unsqueeze(-1)
        state = as_hx(tuple(m * n + (1 - m) * r for n, r in zip(new, reset)))
    return torch.stack(outputs), new


@pytest.mark.parametrize("cell", NN_CELLS)
@pytest.mark.parametrize("mask_kind", ["pre_padding", "post_padding", "resets", "blend"])
@pytest.mark.parametrize("reset_kind", ["initial", "tensor", "zero"])
def test_masked_matches_cell_loop_and_reference(device, cell, mask_kind, reset_kind):
    fused = fused_module(cell, D, H, device=device, dtype=torch.float64)
    step = nn_step_cell(cell, D, H, device=device, dtype=torch.float64)
    step.load_state_dict({k[:-3]: v for k, v in fused.state_dict().items()})
    mask = make_mask(mask_kind, B, T, device).t().double()
    x = torch.randn(T, B, D, device=device, dtype=torch.float64, requires_grad=True)
    states = tuple(s.requires_grad_() for s in random_states(cell, (B, H), device))
    resets = {"initial": states, "zero": tuple(torch.zeros_like(s) for s in states),
              "tensor": tuple(torch.randn_like(s).requires_grad_() for s in states)}[reset_kind]
    reset_arg = {"initial": None, "zero": 0.0,
                 "tensor": as_hx(tuple(r.unsqueeze(0) for r in resets))}[reset_kind]
    out, final = fused(x, as_hx(tuple(s.unsqueeze(0) for s in states)), mask=mask,
                       reset_state=reset_arg)
    finals = final if cell == "lstm" else (final,)
    loop_out, loop_final = cell_loop(step, x, as_hx(states), mask, resets)
    ref_out, ref_finals = run_stack(cell, fused, x, tuple(s.unsqueeze(0) for s in states),
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


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("mask_kind", ["none", "post_padding", "blend"])
def test_gradcheck_two_layer_bidirectional(device, cell, mask_kind):
    fused = fused_module(cell, 3, 4, num_layers=2, bidirectional=True, device=device,
                         dtype=torch.float64)
    params = dict(fused.named_parameters())
    x = torch.randn(4, 2, 3, device=device, dtype=torch.float64, requires_grad=True)
    states = tuple(s.requires_grad_() for s in random_states(cell, (4, 2, 4), device))
    resets = tuple(s.requires_grad_() for s in random_states(cell, (4, 2, 4), device))
    mask = make_mask(mask_kind, 2, 4, device)
    mask = None if mask is None else mask.t()
    count = len(states)

    def fn(x, *rest):
        hx, reset, weights = rest[:count], rest[count:2 * count], rest[2 * count:]
        return tuple(flat(torch.func.functional_call(
            fused, dict(zip(params, weights)), (x, as_hx(hx)),
            dict(mask=mask, reset_state=as_hx(reset)))))

    assert torch.autograd.gradcheck(fn, (x, *states, *resets, *params.values()))


@pytest.mark.parametrize("cell", KINDS)
def test_non_contiguous_inputs_give_identical_results(device, cell):
    fused = fused_module(cell, D, H, 2, batch_first=True, bidirectional=True, device=device,
                         dtype=torch.float64)
    x = torch.randn(D, T, 2 * B, device=device, dtype=torch.float64).permute(2, 1, 0)[::2]
    states = tuple(torch.randn(H, 4, B, device=device, dtype=torch.float64).permute(1, 2, 0)
                   for _ in range(2 if cell == "lstm" else 1))
    resets = tuple(torch.randn(4, B, 2 * H, device=device, dtype=torch.float64)[..., ::2]
                   for _ in states)
    mask = (torch.rand(T, B, device=device) > 0.3).t()
    assert not any(t.is_contiguous() for t in (x, *states, *resets, mask))
    strided = flat(fused(x, as_hx(states), mask=mask, reset_state=as_hx(resets)))
    dense = flat(fused(x.contiguous(), as_hx(tuple(s.contiguous() for s in states)),
                       mask=mask.contiguous(),
                       reset_state=as_hx(tuple(r.contiguous() for r in resets))))
    for a, b in zip(strided, dense):
        assert torch.equal(a, b)


@pytest.mark.parametrize("cell", KINDS)
def test_reset_state_number_and_default(device, cell):
    fused = fused_module(cell, D, H, device=device, dtype=torch.float64)
    x = torch.randn(T, B, D, device=device, dtype=torch.float64)
    states = random_states(cell, (1, B, H), device)
    mask = torch.rand(T, B, device=device) > 0.3
    zero = fused(x, as_hx(states), mask=mask, reset_state=0)[0]
    zeros = as_hx(tuple(torch.zeros_like(s) for s in states))
    assert torch.equal(zero, fused(x, as_hx(states), mask=mask, reset_state=zeros)[0])
    default = fused(x, as_hx(states), mask=mask)[0]
    assert torch.equal(default, fused(x, as_hx(states), mask=mask, reset_state=as_hx(states))[0])
    assert not torch.equal(default, zero)


@pytest.mark.parametrize("cell", KINDS)
def test_dropout_only_between_layers_in_training(cell):
    fused = fused_module(cell, D, H, num_layers=2, dropout=1.0)
    x = torch.randn(T, B, D)
    eval_out = fused.eval()(x)[0]
    no_dropout = fused_module(cell, D, H, num_layers=2)
    no_dropout.load_state_dict(fused.state_dict())
    assert torch.equal(eval_out, no_dropout(x)[0])
    # p=1 zeroes everything layer 1 passes on: layer 2 then sees only its biases.
    second = fused_module(cell, H, H)
    second.load_state_dict({k.replace("_l1", "_l0"): v for k, v in fused.state_dict().items()
                            if "_l1" in k})
    train_out = fused.train()(x)[0]
    assert torch.equal(train_out, second(torch.zeros(T, B, H))[0])
    assert not torch.equal(train_out, eval_out)
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        fused_module(cell, D, H, dropout=0.5)


@pytest.mark.parametrize("cell", CELLS)
def test_is_its_torch_nn_twin(cell):
    nn_cls = module_classes(cell)[1]
    fused = fused_module(cell, D, H, num_layers=2, bidirectional=True)
    assert isinstance(fused, nn_cls) and isinstance(fused, nn.RNNBase)
    assert fused.mode == cell.upper() and fused.proj_size == 0


@pytest.mark.parametrize("cell", KINDS)
def test_parametrized_weights_are_the_ones_used(cell):
    """A parametrization replaces the attribute; the kernels must read its value."""
    fused = fused_module(cell, D, H, dtype=torch.float64)
    x = torch.randn(T, B, D, dtype=torch.float64)
    plain = fused_module(cell, D, H, dtype=torch.float64)
    plain.load_state_dict(fused.state_dict())
    torch.nn.utils.parametrize.register_parametrization(fused, "weight_hh_l0", Doubled())
    with torch.no_grad():
        plain.weight_hh_l0.mul_(2)
    assert torch.equal(fused(x)[0], plain(x)[0])


class Doubled(nn.Module):
    def forward(self, weight):
        return 2 * weight


@pytest.mark.parametrize("cell", KINDS)
def test_nn_compatibility_members(cell):
    fused = fused_module(cell, D, H, num_layers=2, bias=False)
    before = [p.clone() for p in fused.parameters()]
    fused.flatten_parameters()
    assert all(torch.equal(a, b) for a, b in zip(before, fused.parameters()))
    reference = nn_module(cell, D, H, 2, bias=False)
    assert [p.shape for p in fused._flat_weights] == [p.shape for p in reference._flat_weights]
    assert ([[w.shape for w in layer] for layer in fused.all_weights]
            == [[w.shape for w in layer] for layer in reference.all_weights])


@pytest.mark.parametrize("cell", NN_CELLS)
def test_conversions_to_and_from_torch(cell):
    fused_cls, nn_cls, _ = module_classes(cell)
    name = nn_cls.__name__.lower()
    reference = nn_module(cell, D, H, num_layers=2, bias=False, batch_first=True, dropout=0.25,
                          bidirectional=True, dtype=torch.float64)
    fused = getattr(fused_cls, f"from_{name}")(reference, backend="per-step")
    assert isinstance(fused, fused_cls) and fused.backend == "per-step"
    assert list(fused.state_dict()) == list(reference.state_dict())
    back = getattr(fused, f"to_{name}")()
    assert type(back) is nn_cls
    for module in (fused, back):
        assert (module.mode, module.num_layers, module.bias, module.batch_first, module.dropout,
                module.bidirectional) == (cell.upper(), 2, False, True, 0.25, True)
        for (key, a), (_, b) in zip(module.state_dict().items(), reference.state_dict().items()):
            assert torch.equal(a, b), key
    x = torch.randn(B, T, D, dtype=torch.float64)
    report("converted output", fused.eval()(x)[0], reference.eval()(x)[0],
           **TOLERANCES[torch.float64])
    with pytest.raises(TypeError, match=f"expects a torch.nn.{nn_cls.__name__}"):
        getattr(fused_cls, f"from_{name}")(nn.Linear(D, H))
    if cell.startswith("rnn_"):
        with pytest.raises(ValueError, match="no 'identity' nonlinearity"):
            FusedRNN(D, H, nonlinearity="identity").to_rnn()


def test_repr_follows_nn():
    assert repr(FusedRNN(4, 5)) == "FusedRNN(4, 5)"
    assert (repr(FusedRNN(4, 5, 2, "relu", False, True, 0.5, True))
            == "FusedRNN(4, 5, num_layers=2, nonlinearity='relu', bias=False, "
               "batch_first=True, dropout=0.5, bidirectional=True)")
    assert repr(FusedRNN(4, 5, backend="per-step")) == "FusedRNN(4, 5, backend='per-step')"
    assert repr(FusedLSTM(4, 5, 2, backend="per-step")) == \
        "FusedLSTM(4, 5, num_layers=2, backend='per-step')"


def test_default_init_is_xavier_orthogonal_and_torch_init_is_uniform():
    """FusedRNN's own initializations (GRU and LSTM keep torch.nn's)."""
    fused = FusedRNN(6, 8, num_layers=2, bidirectional=True)
    for name, p in fused.named_parameters():
        if name.startswith("weight_hh"):
            report(name, p @ p.t(), torch.eye(8), atol=1e-5, rtol=0)
        elif name.startswith("weight_ih"):
            bound = (6 / sum(p.shape)) ** 0.5
            assert p.abs().max() <= bound and p.std() > 0.3 * bound, name
        else:
            assert torch.count_nonzero(p) == 0, name
    xavier = FusedRNN(6, 8, init="xavier")
    assert (xavier.weight_hh_l0 @ xavier.weight_hh_l0.t() - torch.eye(8)).abs().max() > 0.1
    torch_init = FusedRNN(6, 8, init="torch")
    bound = 8 ** -0.5
    for name, p in torch_init.named_parameters():
        assert p.abs().max() <= bound and p.abs().max() > 0.5 * bound, name


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_functional_matches_module(device, reverse, batch_first):
    fused = FusedRNN(D, H, batch_first=batch_first, bidirectional=True, device=device,
                     dtype=torch.float64)
    x = torch.randn(B, T, D, device=device, dtype=torch.float64)
    if not batch_first:
        x = x.transpose(0, 1)
    h0 = torch.randn(2, B, H, device=device, dtype=torch.float64)
    mask = torch.rand(x.shape[:2], device=device) > 0.3
    out, h_n = fused(x, h0, mask=mask, reset_state=0.5)
    direction = int(reverse)
    f_out, f_h_n = fused_rnn(x, *fused.layer_weights(0, direction), hx=h0[direction],
                             mask=mask, reset_state=0.5, batch_first=batch_first,
                             reverse=reverse)
    assert torch.equal(f_out, out[..., direction * H:(direction + 1) * H])
    assert torch.equal(f_h_n, h_n[direction])


def test_functional_unbatched_takes_states_shaped_like_unbatched_hx(device):
    w_ih, w_hh = torch.randn(H, D, device=device), torch.randn(H, H, device=device)
    x = torch.randn(T, D, device=device)
    hx, reset = torch.randn(H, device=device), torch.randn(H, device=device)
    mask = torch.rand(T, device=device) > 0.3
    out, h_n = fused_rnn(x, w_ih, w_hh, hx=hx, mask=mask, reset_state=reset)
    out1, h_n1 = fused_rnn(x[:, None], w_ih, w_hh, hx=hx[None], mask=mask[:, None],
                           reset_state=reset[None])
    assert torch.equal(out, out1[:, 0]) and torch.equal(h_n, h_n1[0])


@pytest.mark.parametrize("cell", KINDS)
def test_unknown_backends(cell):
    with pytest.raises(ValueError, match="Unknown backend 'fast'. Select from 'auto'"):
        fused_module(cell, D, H, backend="fast")
    module = fused_module(cell, D, H)
    module.backend = "fast"
    with pytest.raises(ValueError, match="backend must be 'auto'.*got 'fast'"):
        module(torch.randn(T, B, D))


@pytest.mark.skipif("persistent" not in rnn_fused.ops.backends(),
                    reason="a build without the CUDA kernels")
@pytest.mark.parametrize("cell", KINDS)
def test_the_persistent_kernel_is_cuda_only(cell):
    module = fused_module(cell, D, H, backend="persistent")
    with pytest.raises(ValueError, match="the 'persistent' backend does not run on the CPU"):
        module(torch.randn(T, B, D))


def bad_inputs(cell):
    def state(*shape, dtype=torch.float32):
        return as_hx(random_states(cell, shape, dtype=dtype))
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


@pytest.mark.parametrize("cell", KINDS)
def test_bad_inputs_raise_what_nn_raises(cell):
    fused, reference = fused_module(cell, D, H), nn_module(cell, D, H)
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


@pytest.mark.parametrize("cell", KINDS)
def test_autocast(device, cell):
    """Under autocast each layer computes in the autocast dtype on CUDA and in
    float32 on the CPU; float64 is never cast."""
    module = fused_module(cell, D, H, num_layers=2, device=device)
    exact = fused_module(cell, D, H, num_layers=2, device=device, dtype=torch.float64)
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


@pytest.mark.parametrize("cell", KINDS)
def test_backward_skips_the_products_nobody_needs(cell):
    """Without x requiring grad the backward computes no input gradient (one large
    product); the weights' gradients are as with it."""
    module = fused_module(cell, D, H, dtype=torch.float64)
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


@pytest.mark.parametrize("cell", KINDS)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_empty_batch_matches_nn(device, cell, masked, dtype):
    """B=0, as torch.nn takes it: empty outputs and states, and zero weight
    gradients (in float32 on the CPU, from the few-feature kernels)."""
    reference = nn_module(cell, D, H, num_layers=2, bidirectional=True, device=device,
                          dtype=dtype)
    fused = fused_module(cell, D, H, num_layers=2, bidirectional=True, device=device,
                         dtype=dtype)
    fused.load_state_dict(reference.state_dict())
    x = torch.randn(T, 0, D, device=device, dtype=dtype, requires_grad=True)
    states = as_hx(random_states(cell, (4, 0, H), device, dtype))
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
