"""fused_rnn: one RNN layer in one direction, as a function."""
from numbers import Number
from typing import Optional, Tuple, Union

import torch

from . import ops
from ._inputs import (check_nonlinearity, from_time_major, prepare_reset_state,
                      to_time_major)


def fused_rnn(input: torch.Tensor, weight_ih: torch.Tensor, weight_hh: torch.Tensor,
              bias_ih: Optional[torch.Tensor] = None, bias_hh: Optional[torch.Tensor] = None,
              hx: Optional[torch.Tensor] = None, mask: Optional[torch.Tensor] = None,
              reset_state: Union[None, Number, torch.Tensor] = None,
              nonlinearity: str = "tanh", batch_first: bool = False,
              reverse: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """Runs h_t = φ(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh) over a sequence.

    input [T, B, D] ([B, T, D] with batch_first) or unbatched [T, D];
    weight_ih [H, D]; weight_hh [H, H]; bias_ih, bias_hh [H] or both None;
    hx [B, H] ([H] unbatched), default zeros;
    mask shaped like input's leading dims ([T, B], [B, T] or [T]), bool or float:
    after step t the carried state is mask_t·h_t + (1 − mask_t)·reset_state;
    reset_state shaped like hx, or a number; default hx.
    reverse processes t = T−1 … 0.

    Returns (output [T, B, H] ([B, T, H] with batch_first, [T, H] unbatched),
    h_n [B, H]): h_n is the state after the last processed step, before reset.
    """
    check_nonlinearity(nonlinearity)
    if weight_hh.dim() != 2:
        raise ValueError(f"fused_rnn: expected weight_hh of shape [H, H], got "
                         f"{tuple(weight_hh.shape)}")
    input, mask, unbatched = to_time_major(input, mask, batch_first)
    if hx is None:
        hx = input.new_zeros(input.shape[1], weight_hh.shape[0])
    elif unbatched:
        if hx.dim() != 1:
            raise ValueError(f"fused_rnn: for unbatched 2-D input, hx must be 1-D [H], "
                             f"got shape {tuple(hx.shape)}")
        hx = hx.unsqueeze(0)
    if unbatched and isinstance(reset_state, torch.Tensor):
        if reset_state.dim() != 1:
            raise ValueError(f"fused_rnn: for unbatched 2-D input, reset_state must be 1-D "
                             f"[H], got shape {tuple(reset_state.shape)}")
        reset_state = reset_state.unsqueeze(0)
    reset = prepare_reset_state(reset_state, hx)

    output = ops.rnn_layer(input, weight_ih, weight_hh, bias_ih, bias_hh, hx, mask,
                           None if mask is None else reset, nonlinearity, reverse)
    h_n = output[0] if reverse else output[-1]
    return (from_time_major(output, batch_first, unbatched),
            h_n.squeeze(0) if unbatched else h_n)
