"""FusedRNN against the reference layer, torch.nn.RNN and itself."""
import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from rnn_fused import FusedRNN, fused_rnn, plan

from helpers import (MASK_KINDS, TOLERANCES, make_mask, profiled_names, reference_layers, report,
                     run_reference)

B, T, D, H = 3, 7, 4, 5


def has_avx512():
    flags = open("/proc/cpuinfo").read()
    return all(f" {flag}" in flags for flag in ("avx512f", "avx512dq", "avx512bw", "avx512vl"))


def grads(tensors):
    return [t.grad.detach().clone() for t in tensors]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("mask_kind", ["pre_padding", "post_padding", "resets", "blend"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu", "identity"])
@pytest.mark.parametrize("given_reset", [False, True])
def test_matches_reference(device, dtype, mask_kind, bidirectional, num_layers, nonlinearity,
                           given_reset):
    fused = FusedRNN(D, H, num_layers, nonlinearity, batch_first=True,
                     bidirectional=bidirectional, device=device, dtype=dtype, init="torch")
    layers = reference_layers(fused)
    states = (num_layers * fused.num_directions, B, H)
    x = torch.randn(B, T, D, device=device, dtype=torch.float64)
    h0 = torch.randn(states, device=device, dtype=torch.float64)
    reset = torch.randn(states, device=device, dtype=torch.float64) if given_reset else None
    mask = make_mask(mask_kind, B, T, device)
    inputs = [t for t in (x, h0, reset) if t is not None]

    ours = [t.to(dtype).clone().requires_grad_() for t in inputs]
    out, h_n = fused(ours[0], ours[1], mask=mask, reset_state=ours[2] if given_reset else None)
    ref_in = [t.clone().requires_grad_() for t in inputs]
    ref_out, ref_h_n = run_reference(layers, ref_in[0], mask, ref_in[1],
                                     ref_in[2] if given_reset else ref_in[1])

    tol = TOLERANCES[dtype]
    report("output", out, ref_out, **tol)
    report("h_n", h_n, ref_h_n, **tol)
    weights = torch.randn_like(ref_out)
    ((out * weights.to(dtype)).sum() + h_n.sum()).backward()
    ((ref_out * weights).sum() + ref_h_n.sum()).backward()
    for name, a, b in zip(["x", "h0", "reset_state"], ours, ref_in):
        report(f"grad {name}", a.grad, b.grad, **tol)
    ref_params = [p for layer in layers for p in layer.parameters()]
    ref_grads = {}
    for layer_index, layer in enumerate(layers):
        cells = [layer.forward_cell, layer.reverse_cell][:fused.num_directions]
        for direction, cell in enumerate(cells):
            suffix = f"_l{layer_index}" + ("_reverse" if direction else "")
            ref_grads["weight_ih" + suffix] = cell.input_linear.weight.grad
            ref_grads["weight_hh" + suffix] = cell.recurrent_linear.weight.grad
            ref_grads["bias_ih" + suffix] = cell.input_linear.bias.grad
            ref_grads["bias_hh" + suffix] = cell.recurrent_linear.bias.grad
    assert len(ref_params) == len(ref_grads)
    for name, param in fused.named_parameters():
        report(f"grad {name}", param.grad, ref_grads[name], **tol)


CONSTRUCTOR_COMBOS = list(itertools.product([1, 2], ["tanh", "relu"], [True, False],
                                            [False, True], [False, True]))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("num_layers, nonlinearity, bias, batch_first, bidirectional",
                         CONSTRUCTOR_COMBOS)
def test_matches_nn_rnn(device, dtype, num_layers, nonlinearity, bias, batch_first,
                        bidirectional):
    rnn = nn.RNN(D, H, num_layers, nonlinearity, bias, batch_first, 0.0, bidirectional,
                 device=device, dtype=dtype)
    fused = FusedRNN(D, H, num_layers, nonlinearity, bias, batch_first, 0.0, bidirectional,
                     device=device, dtype=dtype)
    fused.load_state_dict(rnn.state_dict())
    x = torch.randn((B, T, D) if batch_first else (T, B, D), device=device, dtype=dtype)
    h0 = torch.randn(num_layers * fused.num_directions, B, H, device=device, dtype=dtype)
    results = []
    for module in (fused, rnn):
        xi, hi = x.clone().requires_grad_(), h0.clone().requires_grad_()
        out, h_n = module(xi, hi)
        (out.square().sum() + h_n.sum()).backward()
        results.append([out, h_n, xi.grad, hi.grad] + [p.grad for p in module.parameters()])
    tol = TOLERANCES[dtype]
    names = ["output", "h_n", "grad x", "grad hx"] + [n for n, _ in fused.named_parameters()]
    for name, ours, theirs in zip(names, *results):
        report(name, ours, theirs, **tol)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu", "identity"])
@pytest.mark.parametrize("mask_kind", MASK_KINDS)
def test_gradcheck_two_layer_bidirectional(device, nonlinearity, mask_kind):
    fused = FusedRNN(3, 4, num_layers=2, nonlinearity=nonlinearity, bidirectional=True,
                     device=device, dtype=torch.float64, init="torch")
    params = dict(fused.named_parameters())
    x = torch.randn(4, 2, 3, device=device, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 2, 4, device=device, dtype=torch.float64, requires_grad=True)
    reset = torch.randn(4, 2, 4, device=device, dtype=torch.float64, requires_grad=True)
    mask = make_mask(mask_kind, 2, 4, device)
    mask = None if mask is None else mask.t()

    def fn(x, h0, reset, *weights):
        out, h_n = torch.func.functional_call(
            fused, dict(zip(params, weights)), (x, h0), dict(mask=mask, reset_state=reset))
        return out, h_n

    assert torch.autograd.gradcheck(fn, (x, h0, reset, *params.values()))


@pytest.mark.parametrize("enforce_sorted", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_sequence_matches_nn_rnn(device, enforce_sorted, bidirectional):
    rnn = nn.RNN(D, H, 2, bidirectional=bidirectional, device=device, dtype=torch.float64)
    fused = FusedRNN.from_rnn(rnn)
    lengths = torch.tensor([7, 5, 5, 2]) if enforce_sorted else torch.tensor([2, 7, 1, 5])
    x = torch.randn(T, 4, D, device=device, dtype=torch.float64)
    h0 = torch.randn(2 * fused.num_directions, 4, H, device=device, dtype=torch.float64)
    results = []
    for module in (fused, rnn):
        xi, hi = x.clone().requires_grad_(), h0.clone().requires_grad_()
        packed = pack_padded_sequence(xi, lengths, enforce_sorted=enforce_sorted)
        out, h_n = module(packed, hi)
        (out.data.square().sum() + h_n.sum()).backward()
        results.append((out, h_n, xi.grad, hi.grad, *[p.grad for p in module.parameters()]))
    (ours, *rest_ours), (theirs, *rest_theirs) = results
    assert torch.equal(ours.batch_sizes, theirs.batch_sizes)
    for name, a, b in [("packed data", ours.data, theirs.data),
                       *zip(["h_n", "grad x", "grad hx", "grad params"], rest_ours, rest_theirs)]:
        report(name, a, b, **TOLERANCES[torch.float64])


@pytest.mark.parametrize("bidirectional", [False, True])
def test_unbatched_equals_batch_of_one(device, bidirectional):
    fused = FusedRNN(D, H, 2, bidirectional=bidirectional, device=device, dtype=torch.float64)
    x = torch.randn(T, D, device=device, dtype=torch.float64)
    h0 = torch.randn(2 * fused.num_directions, H, device=device, dtype=torch.float64)
    reset = torch.randn_like(h0)
    mask = torch.rand(T, device=device) > 0.3
    out, h_n = fused(x, h0, mask=mask, reset_state=reset)
    out1, h_n1 = fused(x[:, None], h0[:, None], mask=mask[:, None], reset_state=reset[:, None])
    assert out.shape == (T, H * fused.num_directions) and h_n.shape == h0.shape
    assert torch.equal(out, out1[:, 0]) and torch.equal(h_n, h_n1[:, 0])


def test_functional_unbatched_takes_states_shaped_like_unbatched_hx(device):
    w_ih, w_hh = torch.randn(H, D, device=device), torch.randn(H, H, device=device)
    x = torch.randn(T, D, device=device)
    hx, reset = torch.randn(H, device=device), torch.randn(H, device=device)
    mask = torch.rand(T, device=device) > 0.3
    out, h_n = fused_rnn(x, w_ih, w_hh, hx=hx, mask=mask, reset_state=reset)
    out1, h_n1 = fused_rnn(x[:, None], w_ih, w_hh, hx=hx[None], mask=mask[:, None],
                           reset_state=reset[None])
    assert torch.equal(out, out1[:, 0]) and torch.equal(h_n, h_n1[0])


def test_non_contiguous_inputs_give_identical_results(device):
    fused = FusedRNN(D, H, 2, batch_first=True, bidirectional=True, device=device,
                     dtype=torch.float64)
    x = torch.randn(D, T, 2 * B, device=device, dtype=torch.float64).permute(2, 1, 0)[::2]
    h0 = torch.randn(H, 4, B, device=device, dtype=torch.float64).permute(1, 2, 0)
    reset = torch.randn(4, B, 2 * H, device=device, dtype=torch.float64)[..., ::2]
    mask = (torch.rand(T, B, device=device) > 0.3).t()
    assert not any(t.is_contiguous() for t in (x, h0, reset, mask))
    strided = fused(x, h0, mask=mask, reset_state=reset)
    dense = fused(x.contiguous(), h0.contiguous(), mask=mask.contiguous(),
                  reset_state=reset.contiguous())
    assert torch.equal(strided[0], dense[0]) and torch.equal(strided[1], dense[1])


def test_reset_state_number_and_default(device):
    fused = FusedRNN(D, H, device=device, dtype=torch.float64)
    x = torch.randn(T, B, D, device=device, dtype=torch.float64)
    h0 = torch.randn(1, B, H, device=device, dtype=torch.float64)
    mask = torch.rand(T, B, device=device) > 0.3
    zero = fused(x, h0, mask=mask, reset_state=0)
    assert torch.equal(zero[0], fused(x, h0, mask=mask, reset_state=torch.zeros_like(h0))[0])
    default = fused(x, h0, mask=mask)
    assert torch.equal(default[0], fused(x, h0, mask=mask, reset_state=h0)[0])
    assert not torch.equal(default[0], zero[0])


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


def test_state_dict_interchange_and_conversions():
    rnn = nn.RNN(D, H, 2, nonlinearity="relu", bidirectional=True, batch_first=True)
    fused = FusedRNN(D, H, 2, nonlinearity="relu", bidirectional=True, batch_first=True)
    assert list(fused.state_dict()) == list(rnn.state_dict())
    fused.load_state_dict(rnn.state_dict())
    back = nn.RNN(D, H, 2, nonlinearity="relu", bidirectional=True, batch_first=True)
    back.load_state_dict(fused.state_dict())
    for (name, a), b in zip(back.state_dict().items(), rnn.state_dict().values()):
        assert torch.equal(a, b), name
    converted = FusedRNN.from_rnn(rnn)
    assert (converted.nonlinearity, converted.num_layers, converted.bidirectional,
            converted.batch_first) == ("relu", 2, True, True)
    x = torch.randn(B, T, D)
    assert torch.allclose(converted(x)[0], rnn(x)[0], atol=1e-6)
    assert torch.allclose(converted.to_rnn()(x)[0], rnn(x)[0], atol=1e-6)
    with pytest.raises(ValueError, match="no 'identity' nonlinearity"):
        FusedRNN(D, H, nonlinearity="identity").to_rnn()
    with pytest.raises(TypeError, match="expects a torch.nn.RNN, got LSTM"):
        FusedRNN.from_rnn(nn.LSTM(D, H))


def test_is_an_nn_rnn():
    fused = FusedRNN(D, H, num_layers=2, bidirectional=True)
    assert isinstance(fused, nn.RNN) and isinstance(fused, nn.RNNBase)
    assert fused.mode == "RNN_TANH" and fused.proj_size == 0
    identity = FusedRNN(D, H, nonlinearity="identity")
    assert identity.nonlinearity == "identity" and identity.mode == "RNN_IDENTITY"


def test_parametrized_weights_are_the_ones_used():
    """A parametrization replaces the attribute; the kernels must read its value."""
    fused = FusedRNN(D, H, dtype=torch.float64)
    x = torch.randn(T, B, D, dtype=torch.float64)
    plain = FusedRNN(D, H, dtype=torch.float64)
    plain.load_state_dict(fused.state_dict())
    torch.nn.utils.parametrize.register_parametrization(fused, "weight_hh_l0", Doubled())
    with torch.no_grad():
        plain.weight_hh_l0.mul_(2)
    assert torch.equal(fused(x)[0], plain(x)[0])


class Doubled(nn.Module):
    def forward(self, weight):
        return 2 * weight


def test_nn_rnn_compatibility_members():
    fused = FusedRNN(D, H, num_layers=2, bias=False)
    before = [p.clone() for p in fused.parameters()]
    fused.flatten_parameters()
    assert all(torch.equal(a, b) for a, b in zip(before, fused.parameters()))
    rnn = nn.RNN(D, H, 2, bias=False)
    assert [p.shape for p in fused._flat_weights] == [p.shape for p in rnn._flat_weights]
    assert ([[w.shape for w in layer] for layer in fused.all_weights]
            == [[w.shape for w in layer] for layer in rnn.all_weights])


def test_repr_follows_nn_rnn():
    assert repr(FusedRNN(4, 5)) == "FusedRNN(4, 5)"
    assert (repr(FusedRNN(4, 5, 2, "relu", False, True, 0.5, True))
            == "FusedRNN(4, 5, num_layers=2, nonlinearity='relu', bias=False, "
               "batch_first=True, dropout=0.5, bidirectional=True)")
    assert repr(FusedRNN(4, 5, backend="per-step")) == "FusedRNN(4, 5, backend='per-step')"


def test_default_init_is_xavier_orthogonal_and_torch_init_is_uniform():
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


def test_dropout_only_between_layers_in_training():
    fused = FusedRNN(D, H, num_layers=2, dropout=1.0)
    x = torch.randn(T, B, D)
    eval_out = fused.eval()(x)[0]
    no_dropout = FusedRNN(D, H, num_layers=2)
    no_dropout.load_state_dict(fused.state_dict())
    assert torch.equal(eval_out, no_dropout(x)[0])
    # p=1 zeroes everything layer 1 passes on: layer 2 then sees only its biases.
    train_out = fused.train()(x)[0]
    zeros_into_layer_2 = fused_rnn(torch.zeros(T, B, H), *fused.layer_weights(1, 0))[0]
    assert torch.equal(train_out, zeros_into_layer_2)
    assert not torch.equal(train_out, eval_out)
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        FusedRNN(D, H, dropout=0.5)


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


@pytest.mark.parametrize("batch, hidden", [(1, 1), (7, 15), (8, 16), (9, 17), (17, 33), (3, 100)])
def test_float32_small_batches_match_float64(device, batch, hidden):
    """The CPU's step product inside the pass (AVX-512 register tiles, float32,
    B <= 64, H <= 256, long enough sequences) works in tiles of up to 8 rows × 32
    columns; these shapes cut every kind of tile edge. The plan says whether the
    pass takes the product, and the profiler sees the path it names."""
    expected = FusedRNN(5, hidden, bidirectional=True, device=device, dtype=torch.float64)
    actual = FusedRNN(5, hidden, bidirectional=True, device=device)
    actual.load_state_dict(expected.state_dict())
    expected.load_state_dict(actual.state_dict())  # the float32-rounded weights
    x = torch.randn(11, batch, 5, device=device)
    mask = torch.rand(11, batch, device=device) > 0.2
    results, names = [], []
    for module, dtype in ((actual, torch.float32), (expected, torch.float64)):
        xi = x.to(dtype).detach().clone().requires_grad_()

        def run():
            out, h_n = module(xi, mask=mask)
            (out.sum() + h_n.square().sum()).backward()
            results.append([out, h_n, xi.grad] + [p.grad for p in module.parameters()])
        names.append(profiled_names(run))
    tiles = "register tiles inside the pass" in plan(batch, hidden, steps=11,
                                                      device=device).reason
    if not (device == "cpu" and has_avx512()):
        assert not tiles
    assert ("rnn_fused::cpu_steps(product in the pass)" in names[0]) == tiles
    for k, (a, b) in enumerate(zip(*results)):
        report(f"B={batch} H={hidden} tensor {k}", a, b, **TOLERANCES[torch.float32])
