"""The compiled ops, and how torch.compile traces them.

`torch.ops.rnn_fused.rnn_layer_forward` runs one layer in one direction,
time-major; its autograd and autocast kernels are C++ (csrc/ops/). This module
gives both layer ops fake implementations, so that torch.compile and
torch.export can trace them, and wraps the `plan` query.
"""
from typing import NamedTuple, Optional, Tuple

import torch

from . import _C  # noqa: F401  (loads the kernels and registers the ops)
from ._checks import check_backend, check_same_device

_forward = torch.ops.rnn_fused.rnn_layer_forward.default
_backward = torch.ops.rnn_fused.rnn_layer_backward.default


def rnn_layer(input: torch.Tensor, weight_ih: torch.Tensor, weight_hh: torch.Tensor,
              bias_ih: Optional[torch.Tensor], bias_hh: Optional[torch.Tensor],
              hx: torch.Tensor, mask: Optional[torch.Tensor],
              reset_state: Optional[torch.Tensor], nonlinearity: str, reverse: bool,
              backend: str = "auto") -> Tuple[torch.Tensor, torch.Tensor]:
    """One layer, one direction.

    input [T, B, D], weight_ih [H, D], weight_hh [H, H], bias_* [H] or None,
    hx [B, H], mask [T, B] (input's dtype) or None, reset_state [B, H]
    (required with a mask). Returns (h_t for every t [T, B, H], h_n [B, H]): h_n
    is h_t at the last processed step (T−1, or 0 with reverse), not a view of it.
    """
    return _forward(input, weight_ih, weight_hh, bias_ih, bias_hh, hx, mask, reset_state,
                    nonlinearity, reverse, backend)


class Plan(NamedTuple):
    """What a layer call runs: `backend` is 'per-step', 'persistent' or 'cluster', or None
    where the call would raise; `reason` says why, in words."""
    backend: Optional[str]
    reason: str


def plan(batch: int, hidden_size: int, steps: int = 1, dtype: torch.dtype = torch.float32,
         device="cpu", backend: str = "auto", cell: str = "rnn") -> Plan:
    """The path that one layer and direction of FusedRNN (or fused_rnn; cell='gru'
    or 'lstm': FusedGRU, FusedLSTM) takes for these sizes on `device` with
    `backend`, and why. The kernels decide with the same function, so this is
    what runs (RNN_FUSED_BACKEND included, which moves FusedRNN's 'auto' only)."""
    check_backend(backend)
    path, reason = torch.ops.rnn_fused.plan(steps, batch, hidden_size, dtype,
                                            torch.device(device), backend, cell)
    return Plan(path or None, reason)


def _check_devices(input, **tensors):
    """Mixed devices would otherwise reach these fake kernels through the Meta key
    (a meta tensor among CPU ones) and yield uninitialized outputs."""
    for name, tensor in tensors.items():
        if tensor is not None:
            check_same_device(tensor, name, input)


@torch.library.register_fake("rnn_fused::rnn_layer_forward")
def _(input, weight_ih, weight_hh, bias_ih, bias_hh, hx, mask, reset_state,
      nonlinearity, reverse, backend):
    torch._check(input.dim() == 3, lambda: "expected input of shape [T, B, input_size]")
    _check_devices(input, weight_ih=weight_ih, weight_hh=weight_hh, bias_ih=bias_ih,
                   bias_hh=bias_hh, hx=hx, mask=mask, reset_state=reset_state)
    return (input.new_empty((input.shape[0], input.shape[1], weight_hh.shape[0])),
            input.new_empty((input.shape[1], weight_hh.shape[0])))


@torch.library.register_fake("rnn_fused::rnn_layer_backward")
def _(grad_output, grad_h_n, input, weight_ih, weight_hh, hx, mask, reset_state, output,
      nonlinearity, reverse, backend, output_mask):
    _check_devices(input, grad_output=grad_output, grad_h_n=grad_h_n, weight_ih=weight_ih,
                   weight_hh=weight_hh, hx=hx, mask=mask, reset_state=reset_state,
                   output=output)
    shapes = (input.shape, weight_ih.shape, weight_hh.shape, weight_hh.shape[:1], hx.shape,
              hx.shape if mask is not None else (0,))
    # The kernels return contiguous gradients whatever the inputs' strides.
    return tuple(input.new_empty(shape if wanted else (0,))
                 for shape, wanted in zip(shapes, output_mask))
