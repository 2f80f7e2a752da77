"""fused_rnn, one RNN layer as a function; run_layers and run_gated_layers, the
stacks of layers and directions that FusedRNN, FusedGRU and FusedLSTM run."""
from numbers import Number
from typing import List, Optional, Tuple, Union

import torch
from torch.nn import functional as F

from ._checks import (check_backend, check_nonlinearity, prepare_mask, reset_like,
                      split_reset_state)
from .gated_ops import gated_layer
from .ops import rnn_layer


def _run_stack(input: torch.Tensor, weights: List[torch.Tensor], num_layers: int,
               bidirectional: bool, bias: bool, dropout: float, training: bool,
               run_direction) -> Tuple[torch.Tensor, List[List[torch.Tensor]]]:
    """The layers and directions of a stack, time-major, nn.RNN's flat weight
    order. run_direction(layer_input, index, w_ih, w_hh, b_ih, b_hh, reverse)
    runs one layer and direction (index = layer·dirs + direction) and returns
    (output, final states). Returns (the last layer's output, each state's
    finals in index order)."""
    directions = 2 if bidirectional else 1
    per_direction = 4 if bias else 2
    finals = []
    layer_input = input
    for layer in range(num_layers):
        outputs = []
        for direction in range(directions):
            index = layer * directions + direction
            w = weights[index * per_direction:(index + 1) * per_direction]
            out, final = run_direction(layer_input, index, w[0], w[1], w[2] if bias else None,
                                       w[3] if bias else None, direction == 1)
            outputs.append(out)
            finals.append(final)
        layer_input = torch.cat(outputs, dim=-1) if bidirectional else outputs[0]
        if dropout and training and layer < num_layers - 1:
            layer_input = F.dropout(layer_input, dropout, training=True)
    return layer_input, [list(column) for column in zip(*finals)]


def _forward_final(out: torch.Tensor, last_steps: torch.Tensor) -> torch.Tensor:
    """Each sequence's state at its own last step (out [T, B, H], last_steps [B])."""
    return out[last_steps, torch.arange(out.shape[1], device=out.device)]


def run_layers(input: torch.Tensor, hx: torch.Tensor, weights: List[torch.Tensor],
               mask: Optional[torch.Tensor], reset: Optional[torch.Tensor],
               nonlinearity: str, num_layers: int, bidirectional: bool, bias: bool,
               dropout: float, training: bool, backend: str,
               last_steps: Optional[torch.Tensor] = None
               ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Stacked layers, time-major, on checked arguments.

    input [T, B, D]; hx and reset [L·dirs, B, H] (reset only with a mask [T, B]);
    weights in nn.RNN's `_flat_weights` order. last_steps [B], when given, picks
    each sequence's forward final state (default T−1). Returns
    (output [T, B, dirs·H], h_n [L·dirs, B, H]).
    """
    def run_direction(layer_input, index, w_ih, w_hh, b_ih, b_hh, reverse):
        out, h_n = rnn_layer(layer_input, w_ih, w_hh, b_ih, b_hh, hx[index], mask,
                             None if reset is None else reset[index], nonlinearity, reverse,
                             backend)
        if last_steps is not None and not reverse:
            h_n = _forward_final(out, last_steps)
        return out, (h_n,)

    output, (finals,) = _run_stack(input, weights, num_layers, bidirectional, bias, dropout,
                                   training, run_direction)
    # One state needs no stack: h_n is the op's own tensor, not a view of output.
    return output, finals[0].unsqueeze(0) if len(finals) == 1 else torch.stack(finals)


def run_gated_layers(input: torch.Tensor, states: Tuple[torch.Tensor, ...],
                     weights: List[torch.Tensor], mask: Optional[torch.Tensor],
                     resets: Optional[Tuple[torch.Tensor, ...]], cell: str, num_layers: int,
                     bidirectional: bool, bias: bool, dropout: float, training: bool,
                     backend: str, last_steps: Optional[torch.Tensor] = None
                     ) -> Tuple[torch.Tensor, Tuple[torch.Tensor, ...]]:
    """run_layers for cell='gru' or 'lstm': states and resets are (h,) or (h, c),
    each [L·dirs, B, H] (resets only with a mask); weights in nn.GRU's or
    nn.LSTM's `_flat_weights` order. Returns (output [T, B, dirs·H], final
    states, each [L·dirs, B, H])."""
    lstm = cell == "lstm"

    def run_direction(layer_input, index, w_ih, w_hh, b_ih, b_hh, reverse):
        out, h_n, c_n, cells = gated_layer(
            layer_input, w_ih, w_hh, b_ih, b_hh, states[0][index],
            states[1][index] if lstm else None, mask,
            None if resets is None else resets[0][index],
            None if resets is None or not lstm else resets[1][index], cell, reverse, backend)
        if last_steps is not None and not reverse:
            h_n = _forward_final(out, last_steps)
            c_n = _forward_final(cells, last_steps) if lstm else c_n
        return out, (h_n, c_n) if lstm else (h_n,)

    output, finals = _run_stack(input, weights, num_layers, bidirectional, bias, dropout,
                                training, run_direction)
    # One layer and direction needs no stack (the op's states are its own tensors).
    return output, tuple(column[0].unsqueeze(0) if len(column) == 1 else torch.stack(column)
                         for column in finals)


def fused_rnn(input: torch.Tensor, weight_ih: torch.Tensor, weight_hh: torch.Tensor,
              bias_ih: Optional[torch.Tensor] = None, bias_hh: Optional[torch.Tensor] = None,
              hx: Optional[torch.Tensor] = None, mask: Optional[torch.Tensor] = None,
              reset_state: Union[None, Number, torch.Tensor] = None,
              nonlinearity: str = "tanh", batch_first: bool = False,
              reverse: bool = False, backend: str = "auto"
              ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Runs h_t = φ(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh) over a sequence.

    input [T, B, D] ([B, T, D] with batch_first) or unbatched [T, D];
    weight_ih [H, D]; weight_hh [H, H]; bias_ih, bias_hh [H] or both None;
    hx [B, H] ([H] unbatched), default zeros;
    mask shaped like input's leading dims ([T, B], [B, T] or [T]), bool or float:
    after step t the carried state is mask_t·h_t + (1 − mask_t)·reset_state;
    reset_state shaped like hx, or a number; default hx.
    reverse processes t = T−1 … 0. backend: 'auto', 'per-step', 'persistent' or
    'cluster' (see rnn_fused.plan).

    Returns (output [T, B, H] ([B, T, H] with batch_first, [T, H] unbatched),
    h_n [B, H]): h_n is the state after the last processed step, before reset.
    """
    check_nonlinearity(nonlinearity)
    check_backend(backend)
    if input.dim() not in (2, 3):
        raise ValueError(f"fused_rnn: Expected input to be 2D or 3D, got {input.dim()}D "
                         "tensor instead")
    unbatched = input.dim() == 2
    layout = "[T]" if unbatched else "[B, T]" if batch_first else "[T, B]"
    mask = prepare_mask(mask, input, layout)
    reset_tensor, reset_value = split_reset_state(reset_state)
    if unbatched:
        for name, state in (("hx", hx), ("reset_state", reset_tensor)):
            if state is not None and state.dim() != 1:
                raise ValueError(f"fused_rnn: for unbatched 2-D input, {name} must be 1-D "
                                 f"[H], got shape {tuple(state.shape)}")
        input = input.unsqueeze(1)
        hx = None if hx is None else hx.unsqueeze(0)
        mask = None if mask is None else mask.unsqueeze(1)
        reset_tensor = None if reset_tensor is None else reset_tensor.unsqueeze(0)
    elif batch_first:
        input = input.transpose(0, 1)
        mask = None if mask is None else mask.t()
    if weight_hh.dim() != 2:
        raise ValueError(f"fused_rnn: expected weight_hh of shape [H, H], got "
                         f"{tuple(weight_hh.shape)}")
    if hx is None:
        hx = input.new_zeros(input.shape[1], weight_hh.shape[0])
    # Without a mask nothing resets: a tensor is still checked, a number needs none.
    reset = reset_like(reset_tensor, None if mask is None else reset_value, hx)
    output, h_n = rnn_layer(input, weight_ih, weight_hh, bias_ih, bias_hh, hx, mask,
                            None if mask is None else reset, nonlinearity, reverse, backend)
    if unbatched:
        return output.squeeze(1), h_n.squeeze(0)
    return (output.transpose(0, 1) if batch_first else output), h_n
