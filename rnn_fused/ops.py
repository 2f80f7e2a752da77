"""The compiled ops, made differentiable and traceable.

`torch.ops.rnn_fused.rnn_layer_forward` runs one layer in one direction,
time-major. This module gives it a fake (meta) implementation for
torch.compile and an autograd formula that calls `rnn_layer_backward`.
"""
from typing import Optional

import torch

from . import _C  # noqa: F401  (loads the kernels and registers the ops)

_ops = torch.ops.rnn_fused


def rnn_layer(
    input: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: Optional[torch.Tensor],
    bias_hh: Optional[torch.Tensor],
    hx: torch.Tensor,
    mask: Optional[torch.Tensor],
    reset_state: Optional[torch.Tensor],
    nonlinearity: str,
    reverse: bool,
) -> torch.Tensor:
    """One layer, one direction.

    input [T, B, D], weight_ih [H, D], weight_hh [H, H], bias_* [H] or None,
    hx [B, H], mask [T, B] (input's dtype) or None, reset_state [B, H]
    (required with a mask). Returns h_t for every t: [T, B, H].
    """
    return _ops.rnn_layer_forward(
        input, weight_ih, weight_hh, bias_ih, bias_hh, hx, mask, reset_state,
        nonlinearity, reverse,
    )


def _check_devices(input, **tensors):
    """Mixed devices would otherwise reach these fake kernels through the Meta key
    (a meta tensor among CPU ones) and yield uninitialized outputs."""
    for name, tensor in tensors.items():
        if tensor is not None:
            torch._check(tensor.device == input.device, lambda: (
                f"rnn_fused: expected {name} on device {input.device} (the input's), "
                f"got {tensor.device}"))


@torch.library.register_fake("rnn_fused::rnn_layer_forward")
def _(input, weight_ih, weight_hh, bias_ih, bias_hh, hx, mask, reset_state,
      nonlinearity, reverse):
    torch._check(input.dim() == 3, lambda: "expected input of shape [T, B, input_size]")
    _check_devices(input, weight_ih=weight_ih, weight_hh=weight_hh, bias_ih=bias_ih,
                   bias_hh=bias_hh, hx=hx, mask=mask, reset_state=reset_state)
    return input.new_empty((input.shape[0], input.shape[1], weight_hh.shape[0]))


@torch.library.register_fake("rnn_fused::rnn_layer_backward")
def _(grad_output, input, weight_ih, weight_hh, hx, mask, reset_state, output,
      nonlinearity, reverse, output_mask):
    _check_devices(input, grad_output=grad_output, weight_ih=weight_ih, weight_hh=weight_hh,
                   hx=hx, mask=mask, reset_state=reset_state, output=output)
    shapes = (input.shape, weight_ih.shape, weight_hh.shape, weight_hh.shape[:1], hx.shape,
              hx.shape if mask is not None else (0,))
    # The kernels return contiguous gradients whatever the inputs' strides.
    return tuple(input.new_empty(shape if wanted else (0,))
                 for shape, wanted in zip(shapes, output_mask))


def _setup_context(ctx, inputs, output):
    (input, weight_ih, weight_hh, _, _, hx, mask, reset_state, nonlinearity, reverse) = inputs
    ctx.save_for_backward(input, weight_ih, weight_hh, hx, mask, reset_state, output)
    ctx.nonlinearity = nonlinearity
    ctx.reverse = reverse


def _backward(ctx, grad_output):
    input, weight_ih, weight_hh, hx, mask, reset_state, output = ctx.saved_tensors
    needs = ctx.needs_input_grad
    output_mask = [needs[0], needs[1], needs[2], needs[3] or needs[4], needs[5],
                   mask is not None and needs[7]]
    grads = _ops.rnn_layer_backward(
        grad_output, input, weight_ih, weight_hh, hx, mask, reset_state, output,
        ctx.nonlinearity, ctx.reverse, output_mask,
    )
    grad_input, grad_weight_ih, grad_weight_hh, grad_bias, grad_hx, grad_reset = (
        grad if wanted else None for grad, wanted in zip(grads, output_mask))
    return (grad_input, grad_weight_ih, grad_weight_hh, grad_bias if needs[3] else None,
            grad_bias if needs[4] else None, grad_hx, None, grad_reset, None, None)


torch.library.register_autograd(
    "rnn_fused::rnn_layer_forward", _backward, setup_context=_setup_context
)


def _no_double_backward(ctx, *grads):
    raise NotImplementedError(
        "rnn_fused: double backward (differentiating FusedRNN's gradients, e.g. after "
        "create_graph=True) is not supported")


# Registered so that create_graph=True still gives first-order gradients, and a
# second differentiation fails loudly instead of silently returning zeros.
torch.library.register_autograd("rnn_fused::rnn_layer_backward", _no_double_backward)
