"""The gated layer op (GRU, LSTM): its Python entry, and fake kernels for
torch.compile and torch.export. The kernels and the forward's autograd and
autocast are C++ (csrc/ops/gated_layer.h, gated_autograd.cpp, autocast.cpp)."""
from typing import Optional, Tuple

import torch

from . import _C  # noqa: F401  (loads the kernels and registers the ops)
from .ops import _check_devices

_forward = torch.ops.rnn_fused.gated_layer_forward.default
_backward = torch.ops.rnn_fused.gated_layer_backward.default


def gated_layer(input: torch.Tensor, weight_ih: torch.Tensor, weight_hh: torch.Tensor,
                bias_ih: Optional[torch.Tensor], bias_hh: Optional[torch.Tensor],
                hx: torch.Tensor, cx: Optional[torch.Tensor], mask: Optional[torch.Tensor],
                reset_h: Optional[torch.Tensor], reset_c: Optional[torch.Tensor], cell: str,
                reverse: bool, backend: str = "auto"
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One GRU or LSTM layer, one direction, time-major.

    input [T, B, D], weight_ih [G·H, D], weight_hh [G·H, H], bias_* [G·H] or None
    (G = 3 for cell='gru', 4 for 'lstm', PyTorch's gate order); hx [B, H]; cx
    [B, H] for the LSTM, None for the GRU; mask [T, B] (input's dtype) or None;
    reset_h (and reset_c for the LSTM) [B, H], required with a mask.
    Returns (h_t for every t [T, B, H], h_n [B, H], c_n [B, H] (empty for the GRU),
    c_t for every t [T, B, H] (empty for the GRU)).
    """
    output, h_n, c_n, cells, _ = _forward(input, weight_ih, weight_hh, bias_ih, bias_hh, hx, cx,
                                          mask, reset_h, reset_c, cell, reverse, backend)
    return output, h_n, c_n, cells


@torch.library.register_fake("rnn_fused::gated_layer_forward")
def _(input, weight_ih, weight_hh, bias_ih, bias_hh, hx, cx, mask, reset_h, reset_c, cell,
      reverse, backend):
    torch._check(input.dim() == 3, lambda: "expected input of shape [T, B, input_size]")
    _check_devices(input, weight_ih=weight_ih, weight_hh=weight_hh, bias_ih=bias_ih,
                   bias_hh=bias_hh, hx=hx, cx=cx, mask=mask, reset_h=reset_h, reset_c=reset_c)
    steps, batch = input.shape[:2]
    hidden = weight_hh.shape[1]
    lstm = cell == "lstm"
    return (input.new_empty((steps, batch, hidden)), input.new_empty((batch, hidden)),
            input.new_empty((batch, hidden) if lstm else (0,)),
            input.new_empty((steps, batch, hidden) if lstm else (0,)),
            input.new_empty((steps, batch, 4 * hidden)))


@torch.library.register_fake("rnn_fused::gated_layer_backward")
def _(grad_output, grad_h_n, grad_c_n, grad_cells, input, weight_ih, weight_hh, hx, cx, mask,
      reset_h, reset_c, output, cells, saved, cell, reverse, has_bias, output_mask,
      backend="auto"):
    _check_devices(input, grad_output=grad_output, weight_ih=weight_ih, weight_hh=weight_hh,
                   hx=hx, cx=cx, output=output)
    lstm = cell == "lstm"
    masked = mask is not None
    products = (input.shape, weight_ih.shape, weight_hh.shape)
    bias = weight_hh.shape[:1] if has_bias else (0,)
    shapes = tuple(shape if wanted else (0,) for shape, wanted in zip(products, output_mask)) + (
        bias, bias, hx.shape, hx.shape if lstm else (0,), hx.shape if masked else (0,),
        hx.shape if masked and lstm else (0,))
    return tuple(input.new_empty(shape) for shape in shapes)


def _no_double_backward(ctx, *grads):
    raise NotImplementedError(
        "rnn_fused: FusedGRU and FusedLSTM have no double backward (a gradient of their "
        "gradients, e.g. create_graph=True for a gradient penalty); FusedRNN has one")


def _no_context(ctx, inputs, output):
    pass


# The forward's autograd (C++) calls the backward op below autograd, except when
# autograd records the backward (create_graph=True): then a gradient of it raises
# a clear error instead of a failed product.
torch.library.register_autograd("rnn_fused::gated_layer_backward", _no_double_backward,
                                setup_context=_no_context)
