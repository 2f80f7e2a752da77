"""Double backward: gradients of gradients (gradient penalties, Hessian-vector
products, MAML), as torch.nn's modules support them on the CPU, for every cell.
With create_graph=True the backward runs a differentiable formulation: the
layer recomputed from each cell's own step in ATen ops (csrc/ops/double_backward.h)."""
import pytest
import torch

from rnn_fused.reference import run_stack

from helpers import (CELLS, KINDS, MASK_KINDS, TOLERANCES, as_hx, fused_module, layer_args,
                     layer_outputs, make_mask, random_states, report, requiring)

T, B, D, H = 3, 2, 2, 3


def gradgradcheck_layer(device, cell, mask_kind, reverse, bias=True):
    args = layer_args(device, cell, (T, B, D, H), mask_kind=mask_kind, bias=bias)
    names = requiring(args)

    def fn(*tensors):
        return layer_outputs(dict(args, **dict(zip(names, tensors))), cell, reverse)

    assert torch.autograd.gradgradcheck(fn, [args[n] for n in names])


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("mask_kind", MASK_KINDS)
@pytest.mark.parametrize("cell", CELLS)
def test_op_gradgradcheck(device, cell, mask_kind, reverse):
    gradgradcheck_layer(device, cell, mask_kind, reverse)


@pytest.mark.parametrize("mask_kind", ["none", "resets"])
@pytest.mark.parametrize("cell", KINDS)
def test_op_gradgradcheck_without_bias(device, cell, mask_kind):
    gradgradcheck_layer(device, cell, mask_kind, False, bias=False)


def module_inputs(device, cell, steps, hidden=H):
    x = torch.randn(steps, B, D, device=device, dtype=torch.float64, requires_grad=True)
    states = random_states(cell, (4, B, hidden), device)
    resets = random_states(cell, (4, B, hidden), device)
    for t in (*states, *resets):
        t.requires_grad_()
    return x, states, resets


@pytest.mark.parametrize("cell", KINDS)
def test_module_gradgradcheck_two_layers_bidirectional(device, cell):
    """How the layers and directions chain, with resets (the op's own test above
    covers every mask kind)."""
    # Smaller than the op's test: the Jacobians here span every weight of four layers.
    fused = fused_module(cell, D, 2, num_layers=2, bidirectional=True, device=device,
                         dtype=torch.float64)
    params = dict(fused.named_parameters())
    x, states, resets = module_inputs(device, cell, T, hidden=2)
    count = len(states)
    mask = make_mask("resets", B, T, device).t()

    def fn(x, *rest):
        states, resets, weights = rest[:count], rest[count:2 * count], rest[2 * count:]
        out, final = torch.func.functional_call(
            fused, dict(zip(params, weights)), (x, as_hx(states)),
            dict(mask=mask, reset_state=as_hx(resets)))
        return (out, *(final if count == 2 else (final,)))

    assert torch.autograd.gradgradcheck(fn, (x, *states, *resets, *params.values()))


@pytest.mark.parametrize("mask_kind", ["none", "resets", "blend"])
@pytest.mark.parametrize("cell", KINDS)
def test_create_graph_first_order_gradients_equal_the_fused_kernels(device, cell, mask_kind):
    """gradgradcheck differentiates the create_graph backward, so it cannot see a
    wrong first-order formula there: compare it with the fused kernels' gradients,
    for every input, with the final states in the loss."""
    fused = fused_module(cell, D, H, num_layers=2, bidirectional=True, device=device,
                         dtype=torch.float64)
    x, states, resets = module_inputs(device, cell, 7)
    mask = make_mask(mask_kind, B, 7, device)
    mask = None if mask is None else mask.t()
    inputs = [x, *states, *resets, *fused.parameters()]

    def loss():
        out, final = fused(x, as_hx(states), mask=mask, reset_state=as_hx(resets))
        finals = final if len(states) == 2 else (final,)
        weights = torch.arange(7, device=device).view(7, 1, 1)
        return (out.square() * weights).sum() + sum(f.sum() for f in finals)
    graphed = torch.autograd.grad(loss(), inputs, create_graph=True, allow_unused=True)
    fused_kernels = torch.autograd.grad(loss(), inputs, allow_unused=True)
    for k, (a, b) in enumerate(zip(graphed, fused_kernels)):
        if b is None:  # the reset states without a mask
            assert a is None and mask is None and any(inputs[k] is r for r in resets)
            continue
        assert a.requires_grad
        report(f"gradient {k}", a, b, **TOLERANCES[torch.float64])


@pytest.mark.parametrize("mask_kind", ["none", "resets", "blend"])
@pytest.mark.parametrize("cell", KINDS)
def test_gradient_penalty_matches_the_reference_stack(device, cell, mask_kind):
    """A WGAN-style penalty, ‖∂L/∂x‖², differentiated again: every parameter's
    gradient matches autograd through the step-by-step reference stack."""
    fused = fused_module(cell, D, H, num_layers=2, bidirectional=True, device=device,
                         dtype=torch.float64)
    x = torch.randn(6, B, D, device=device, dtype=torch.float64)
    states = random_states(cell, (4, B, H), device)
    mask = make_mask(mask_kind, B, 6, device)
    mask = None if mask is None else mask.t().to(torch.float64)

    def penalty(out, x):
        (grad_x,) = torch.autograd.grad(out.tanh().sum(), x, create_graph=True)
        return grad_x.square().sum()

    x_fused = x.clone().requires_grad_()
    penalty(fused(x_fused, as_hx(states), mask=mask)[0], x_fused).backward()
    fused_grads = [p.grad.clone() for p in fused.parameters()]
    fused.zero_grad()
    x_ref = x.clone().requires_grad_()
    penalty(run_stack(cell, fused, x_ref, states, mask)[0], x_ref).backward()
    for (name, p), expected in zip(fused.named_parameters(), fused_grads):
        report(f"penalty grad {name}", expected, p.grad, **TOLERANCES[torch.float64])


def test_the_fused_backward_op_itself_has_no_derivative():
    """Called directly under autograd, the backward op raises rather than return
    gradients with no graph."""
    args = layer_args("cpu", "gru", (T, B, D, H))
    out, _, _, cells, saved = torch.ops.rnn_fused.layer_forward(
        *args.values(), "gru", False, "auto")
    grads = torch.ops.rnn_fused.layer_backward(
        torch.ones_like(out), None, None, None, args["input"], args["weight_ih"],
        args["weight_hh"], args["hx"], None, args["mask"], args["reset_h"], None, out, cells,
        saved, "gru", False, True, [True, True, True])
    with pytest.raises(NotImplementedError, match="has no derivative of its own"):
        grads[0].sum().backward()
