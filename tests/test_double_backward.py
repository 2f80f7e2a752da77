"""Double backward: gradients of gradients (gradient penalties, Hessian-vector
products, MAML), as nn.RNN supports them on the CPU. With create_graph=True the
backward runs a differentiable formulation (csrc/ops/differentiable_backward.cpp)."""
import pytest
import torch

from rnn_fused import FusedRNN, ops
from rnn_fused.reference import layers_like

from helpers import MASK_KINDS, TOLERANCES, make_mask, report, rnn_layer, run_reference

T, B, D, H = 3, 2, 2, 3


def layer_inputs(device, mask_kind, bias=True):
    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, device=device, dtype=torch.float64) * scale).requires_grad_()
    mask = make_mask(mask_kind, B, T, device)
    return dict(input=rand(T, B, D), weight_ih=rand(H, D, scale=0.6),
                weight_hh=rand(H, H, scale=0.5), bias_ih=rand(H) if bias else None,
                bias_hh=rand(H) if bias else None, hx=rand(B, H),
                mask=None if mask is None else mask.t().to(torch.float64),
                reset_state=rand(B, H))


def gradgradcheck_layer(args, nonlinearity, reverse):
    names = [k for k, v in args.items() if isinstance(v, torch.Tensor) and v.requires_grad]

    def fn(*tensors):
        call = dict(args, **dict(zip(names, tensors)))
        if call["mask"] is None:
            call["reset_state"] = None
        return rnn_layer(**call, nonlinearity=nonlinearity, reverse=reverse)

    assert torch.autograd.gradgradcheck(fn, [args[n] for n in names])


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("mask_kind", MASK_KINDS)
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu", "identity"])
def test_op_gradgradcheck(device, nonlinearity, mask_kind, reverse):
    gradgradcheck_layer(layer_inputs(device, mask_kind), nonlinearity, reverse)


@pytest.mark.parametrize("mask_kind", ["none", "resets"])
def test_op_gradgradcheck_without_bias(device, mask_kind):
    gradgradcheck_layer(layer_inputs(device, mask_kind, bias=False), "tanh", False)


@pytest.mark.parametrize("mask_kind", MASK_KINDS)
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_module_gradgradcheck_two_layers_bidirectional(device, nonlinearity, mask_kind):
    fused = FusedRNN(D, H, num_layers=2, nonlinearity=nonlinearity, bidirectional=True,
                     device=device, dtype=torch.float64)
    params = dict(fused.named_parameters())
    x = torch.randn(T, B, D, device=device, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, B, H, device=device, dtype=torch.float64, requires_grad=True)
    reset = torch.randn(4, B, H, device=device, dtype=torch.float64, requires_grad=True)
    mask = make_mask(mask_kind, B, T, device)
    mask = None if mask is None else mask.t()

    def fn(x, h0, reset, *weights):
        return torch.func.functional_call(fused, dict(zip(params, weights)), (x, h0),
                                          dict(mask=mask, reset_state=reset))

    assert torch.autograd.gradgradcheck(fn, (x, h0, reset, *params.values()))


@pytest.mark.parametrize("mask_kind", ["none", "resets", "blend"])
def test_create_graph_first_order_gradients_equal_the_fused_kernels(device, mask_kind):
    """gradgradcheck differentiates the create_graph backward, so it cannot see a
    wrong first-order formula there: compare it with the fused kernels' gradients,
    for every input, with h_n in the loss."""
    fused = FusedRNN(D, H, num_layers=2, bidirectional=True, device=device,
                     dtype=torch.float64)
    x, h0, reset = (torch.randn(*shape, device=device, dtype=torch.float64, requires_grad=True)
                    for shape in ((7, B, D), (4, B, H), (4, B, H)))
    mask = make_mask(mask_kind, B, 7, device)
    mask = None if mask is None else mask.t()
    inputs = [x, h0, reset, *fused.parameters()]

    def loss():
        out, h_n = fused(x, h0, mask=mask, reset_state=reset)
        return (out.square() * torch.arange(7, device=device).view(7, 1, 1)).sum() + h_n.sum()
    graphed = torch.autograd.grad(loss(), inputs, create_graph=True, allow_unused=True)
    fused_kernels = torch.autograd.grad(loss(), inputs, allow_unused=True)
    for k, (a, b) in enumerate(zip(graphed, fused_kernels)):
        if b is None:  # the reset state without a mask
            assert a is None and mask is None and k == 2
            continue
        assert a.requires_grad
        report(f"gradient {k}", a, b, **TOLERANCES[torch.float64])


@pytest.mark.parametrize("mask_kind", ["none", "resets", "blend"])
def test_gradient_penalty_matches_the_reference_layer(device, mask_kind):
    """A WGAN-style penalty, ‖∂L/∂x‖², differentiated again: every parameter's
    gradient matches autograd through the step-by-step reference layer."""
    fused = FusedRNN(D, H, num_layers=2, bidirectional=True, batch_first=True, device=device,
                     dtype=torch.float64)
    layers = layers_like(fused)
    x = torch.randn(B, 6, D, device=device, dtype=torch.float64)
    h0 = torch.randn(4, B, H, device=device, dtype=torch.float64)
    mask = make_mask(mask_kind, B, 6, device)

    def penalty(out, x):
        (grad_x,) = torch.autograd.grad(out.tanh().sum(), x, create_graph=True)
        return grad_x.square().sum()

    x_fused = x.clone().requires_grad_()
    penalty(fused(x_fused, h0, mask=mask)[0], x_fused).backward()
    x_ref = x.clone().requires_grad_()
    reference_mask = torch.ones(B, 6, device=device) if mask is None else mask
    penalty(run_reference(layers, x_ref, reference_mask.to(torch.float64), h0, h0)[0],
            x_ref).backward()
    reference_params = [p for layer in layers for cell in (layer.forward_cell, layer.reverse_cell)
                        for p in (cell.input_linear.weight, cell.recurrent_linear.weight,
                                  cell.input_linear.bias, cell.recurrent_linear.bias)]
    for (name, p), q in zip(fused.named_parameters(), reference_params):
        report(f"penalty grad {name}", p.grad, q.grad, **TOLERANCES[torch.float64])
