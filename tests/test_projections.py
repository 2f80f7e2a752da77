"""An LSTM with projections (nn.LSTM's proj_size): h_t = W_hr (o_t ⊙ tanh(c_t)),
h P wide and c H wide, through the layer op's weight_hr and FusedLSTM's
proj_size. The CPU's per-step loop runs it; CUDA refuses it by plan() until its
per-step loop has run it on a GPU."""
import pytest
import torch
from torch import nn

import rnn_fused
from rnn_fused import FusedLSTM
from rnn_fused.reference import run_stack

import helpers
from helpers import MASK_KINDS, layer, make_mask, report, requiring

T, B, D, H, P = 5, 3, 4, 6, 4
# float32 against float64, as the other modules' comparisons.
TOLERANCES = {torch.float32: dict(atol=2e-5, rtol=1e-4),
              torch.float64: dict(atol=1e-12, rtol=1e-10)}


def layer_args(device, **options):
    return helpers.layer_args(device, "lstm", (T, B, D, H), proj_size=P, **options)


def outputs(args, reverse=False):
    return layer(**args, cell="lstm", reverse=reverse)


def skip_unless_cpu(device):
    """CUDA refuses a projecting LSTM; its own test below says how."""
    if device != "cpu":
        pytest.skip("projections run on the CPU only until CUDA's loop has run them on a GPU")


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("mask_kind", MASK_KINDS)
@pytest.mark.parametrize("bias", [True, False])
def test_op_gradcheck(device, mask_kind, reverse, bias):
    """Every output against every input, W_hr and the P-wide states included."""
    skip_unless_cpu(device)
    args = layer_args(device, mask_kind=mask_kind, bias=bias)
    names = requiring(args)

    def fn(*tensors):
        return outputs(dict(args, **dict(zip(names, tensors))), reverse)

    assert torch.autograd.gradcheck(fn, [args[n] for n in names], fast_mode=not bias or reverse)


@pytest.mark.parametrize("mask_kind", ["none", "resets"])
def test_op_gradgradcheck(device, mask_kind):
    """The double backward recomputes the projection with the cell's step."""
    skip_unless_cpu(device)
    args = layer_args(device, mask_kind=mask_kind)
    names = requiring(args)

    def fn(*tensors):
        return outputs(dict(args, **dict(zip(names, tensors))))

    assert torch.autograd.gradgradcheck(fn, [args[n] for n in names])


@pytest.mark.parametrize("mask_kind", ["none", "resets"])
def test_opcheck(mask_kind):
    """The fake kernels' P- and H-wide shapes, and the backward op's weight_hr gradient."""
    args = layer_args("cpu", mask_kind=mask_kind, dtype=torch.float32)
    weight_hr = args.pop("weight_hr")
    forward = (*args.values(), "lstm", False, "auto", weight_hr)
    torch.library.opcheck(torch.ops.rnn_fused.layer_forward.default, forward)
    # The backward op has no derivative: it runs on tensors that need none.
    args = {k: v.detach() if v is not None else None for k, v in args.items()}
    weight_hr = weight_hr.detach()
    out, h_n, c_n, cells, saved = torch.ops.rnn_fused.layer_forward(
        *args.values(), "lstm", False, "auto", weight_hr)
    assert out.shape == (T, B, P) and h_n.shape == (B, P) and c_n.shape == (B, H)
    backward = (torch.randn_like(out), torch.randn_like(h_n), torch.randn_like(c_n),
                torch.randn_like(cells), args["input"], args["weight_ih"], args["weight_hh"],
                args["hx"], args["cx"], args["mask"], args["reset_h"], args["reset_c"], out, cells,
                saved, "lstm", False, True, [True] * 3, "auto", weight_hr)
    torch.library.opcheck(torch.ops.rnn_fused.layer_backward.default, backward)
    grads = torch.ops.rnn_fused.layer_backward(*backward)
    assert grads[-1].shape == (P, H)


def module_pair(dtype, num_layers, bidirectional, batch_first=False):
    reference = nn.LSTM(D, H, num_layers, proj_size=P, bidirectional=bidirectional,
                        batch_first=batch_first, dtype=dtype)
    return reference, FusedLSTM.from_lstm(reference)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("num_layers, bidirectional", [(1, False), (2, True)])
def test_module_matches_nn_lstm(dtype, num_layers, bidirectional):
    """Outputs, both final states and every gradient against nn.LSTM(proj_size=P)."""
    reference, fused = module_pair(dtype, num_layers, bidirectional, batch_first=True)
    assert fused.proj_size == P and fused.weight_hr_l0.shape == (P, H)
    states = num_layers * (2 if bidirectional else 1)
    x = torch.randn(B, T, D, dtype=dtype, requires_grad=True)
    h0 = torch.randn(states, B, P, dtype=dtype, requires_grad=True)
    c0 = torch.randn(states, B, H, dtype=dtype, requires_grad=True)
    results = []
    for module in (reference, fused):
        out, (h_n, c_n) = module(x, (h0, c0))
        grads = [torch.randn_like(t, generator=torch.Generator().manual_seed(k))
                 for k, t in enumerate((out, h_n, c_n))]
        results.append((out, h_n, c_n, *torch.autograd.grad(
            (out, h_n, c_n), [x, h0, c0, *module.parameters()], grads)))
    names = ["output", "h_n", "c_n", "grad x", "grad h0", "grad c0",
             *(f"grad {n}" for n, _ in fused.named_parameters())]
    for name, actual, expected in zip(names, results[1], results[0]):
        report(name, actual, expected, **TOLERANCES[dtype])


@pytest.mark.parametrize("mask_kind", ["resets", "blend", "post_padding"])
def test_module_with_mask_matches_reference(mask_kind):
    """The mask-reset with P-wide h and H-wide c reset states, against the
    reference stack, gradients included (float64)."""
    _, fused = module_pair(torch.float64, 2, True)
    x = torch.randn(T, B, D, dtype=torch.float64, requires_grad=True)
    shapes = ((4, B, P), (4, B, H))
    states = tuple(torch.randn(s, dtype=torch.float64, requires_grad=True) for s in shapes)
    resets = tuple(torch.randn(s, dtype=torch.float64, requires_grad=True) for s in shapes)
    mask = make_mask(mask_kind, B, T).t().to(torch.float64)
    out, finals = fused(x, states, mask=mask, reset_state=resets)
    expected_out, expected_finals = run_stack("lstm", fused, x, states, mask, resets)
    leaves = [x, *states, *resets, *fused.parameters()]
    actual = torch.autograd.grad((out, *finals), leaves,
                                 [torch.ones_like(out), *map(torch.ones_like, finals)])
    expected = torch.autograd.grad((expected_out, *expected_finals), leaves,
                                   [torch.ones_like(out), *map(torch.ones_like, finals)])
    for name, a, e in [("output", out, expected_out), ("h_n", finals[0], expected_finals[0]),
                       ("c_n", finals[1], expected_finals[1]), *zip(
                           [f"grad {k}" for k in range(len(leaves))], actual, expected)]:
        report(name, a, e, **TOLERANCES[torch.float64])


def test_module_gradcheck_two_layers_bidirectional():
    """How the P-wide outputs feed the next layer, with resets."""
    _, fused = module_pair(torch.float64, 2, True)
    params = dict(fused.named_parameters())
    x = torch.randn(T, 2, D, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 2, P, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(4, 2, H, dtype=torch.float64, requires_grad=True)
    mask = make_mask("resets", 2, T).t()

    def fn(x, h0, c0, *weights):
        out, (h_n, c_n) = torch.func.functional_call(
            fused, dict(zip(params, weights)), (x, (h0, c0)), dict(mask=mask, reset_state=0.5))
        return out, h_n, c_n

    assert torch.autograd.gradcheck(fn, (x, h0, c0, *params.values()), fast_mode=True)


def test_plan_names_the_projection():
    assert "then the projection" in rnn_fused.plan(B, H, steps=T, cell="lstm",
                                                   proj_size=P).reason


def test_checks_name_the_projection_shapes():
    args = layer_args("cpu", requires_grad=False)
    with pytest.raises(ValueError, match=r"expected weight_hr of shape \[4, 6\], got \[4, 5\]"):
        outputs(dict(args, weight_hr=torch.randn(P, H - 1, dtype=torch.float64)))
    with pytest.raises(ValueError, match=r"expected hx of shape \[3, 4\], got \[3, 6\]"):
        outputs(dict(args, hx=torch.randn(B, H, dtype=torch.float64)))
    with pytest.raises(ValueError, match="0 < P < H"):
        outputs(dict(args, weight_hr=torch.randn(H, H, dtype=torch.float64),
                     weight_hh=torch.randn(4 * H, H, dtype=torch.float64),
                     hx=torch.randn(B, H, dtype=torch.float64),
                     reset_h=torch.randn(B, H, dtype=torch.float64)))
    gru = helpers.layer_args("cpu", "gru", (T, B, D, H), requires_grad=False)
    with pytest.raises(ValueError, match="only the lstm cell projects h"):
        layer(**gru, cell="gru", reverse=False, weight_hr=torch.randn(P, H, dtype=torch.float64))


def test_module_names_nn_state_sizes():
    """nn.LSTM's own message for an h_0 of the hidden size rather than proj_size."""
    _, fused = module_pair(torch.float32, 1, False)
    x = torch.randn(T, B, D)
    with pytest.raises(RuntimeError, match=r"Expected hidden\[0\] size \(1, 3, 4\), got "
                                           r"\[1, 3, 6\]"):
        fused(x, (torch.randn(1, B, H), torch.randn(1, B, H)))
