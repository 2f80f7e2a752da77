"""The pure-PyTorch reference layer that the fused kernels are checked against.

Written for clarity: one timestep at a time, plain modules, no custom kernels.
Mask-reset semantics (docs/semantics.md): after computing h_t a direction carries
m_t·h_t + (1 − m_t)·r into its next step, where r is the reset state (default:
the initial state). Outputs are always h_t, taken before the reset.
"""
from functools import partial
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ._checks import check_mask_shape, check_pad_position
from .utils import get_rnn_last_state

__all__ = ["SimpleRNNCell", "RNNLayer", "get_rnn_last_state", "layers_like", "elman_step",
           "gru_step", "lstm_step", "STEPS", "run_stack"]

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "identity": nn.Identity}


class SimpleRNNCell(nn.Module):
    """h_t = activation(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh)."""

    def __init__(self, token_dim: int, hidden_dim: int, activation: nn.Module = nn.Tanh(),
                 use_bias: bool = True,
                 kernel_initializer=nn.init.xavier_uniform_,
                 recurrent_initializer=nn.init.orthogonal_,
                 bias_initializer=nn.init.zeros_,
                 device=None, dtype=None):
        super().__init__()
        self.token_dim = token_dim
        self.hidden_dim = hidden_dim
        self.activation = activation
        # Initializers such as orthogonal_ (QR) have no float16/bfloat16 kernels:
        # initialize in at least float32, then cast.
        init_dtype = torch.promote_types(dtype or torch.get_default_dtype(), torch.float32)
        self.input_linear = nn.Linear(token_dim, hidden_dim, bias=use_bias,
                                      device=device, dtype=init_dtype)
        self.recurrent_linear = nn.Linear(hidden_dim, hidden_dim, bias=use_bias,
                                          device=device, dtype=init_dtype)
        with torch.no_grad():
            kernel_initializer(self.input_linear.weight)
            recurrent_initializer(self.recurrent_linear.weight)
            if use_bias:
                bias_initializer(self.input_linear.bias)
                bias_initializer(self.recurrent_linear.bias)
        if dtype is not None:
            self.to(dtype)

    def forward(self, x_t: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """x_t [B, token_dim], state [B, hidden_dim] -> new state [B, hidden_dim]."""
        return self.activation(self.input_linear(x_t) + self.recurrent_linear(state))

    def zero_initialization(self, batch_size: int) -> torch.Tensor:
        weight = self.recurrent_linear.weight
        return torch.zeros(batch_size, self.hidden_dim, device=weight.device, dtype=weight.dtype)


StatePair = Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]


class RNNLayer(nn.Module):
    """Runs a SimpleRNNCell over [B, T, D] inputs, optionally in both directions.

    `cell` is one cell shared by both directions (the original design) or a pair
    (forward_cell, reverse_cell). `pad_position` says where padding sits when no
    mask is given: 'post' (pads last) or 'pre' (pads first).
    """

    def __init__(self, cell: Union[SimpleRNNCell, Sequence[SimpleRNNCell]],
                 bidirectional: bool = False, pad_position: str = "post"):
        super().__init__()
        check_pad_position(pad_position)
        if isinstance(cell, (tuple, list)):
            if len(cell) != 2 or not bidirectional:
                raise ValueError("a (forward_cell, reverse_cell) pair needs bidirectional=True")
            self.forward_cell, self.reverse_cell = cell
        else:
            self.forward_cell = self.reverse_cell = cell
        self.bidirectional = bidirectional
        self.pad_position = pad_position

    def forward(self, inputs: torch.Tensor, mask: Optional[torch.Tensor] = None,
                initial_state: Optional[StatePair] = None,
                reset_state: Optional[StatePair] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """inputs [B, T, D], mask [B, T] (bool or float) or None.

        initial_state and reset_state: [B, H] for every direction, or a
        (forward, reverse) pair. reset_state defaults to initial_state.
        Returns (sequence [B, T, H] or [B, T, 2H], last_state [B, H] or [B, 2H]);
        last_state is the forward output at T-1 (and the reverse output at 0).
        """
        batch, steps, _ = inputs.shape
        mask = self._resolve_mask(mask, batch, steps).to(inputs)
        h0_forward, h0_reverse = self._per_direction(initial_state, batch)
        if reset_state is None:
            r_forward, r_reverse = h0_forward, h0_reverse
        else:
            r_forward, r_reverse = self._per_direction(reset_state, batch)

        forward_seq = self._run(self.forward_cell, inputs, mask, h0_forward, r_forward,
                                range(steps))
        if not self.bidirectional:
            return forward_seq, forward_seq[:, -1]
        reverse_seq = self._run(self.reverse_cell, inputs, mask, h0_reverse, r_reverse,
                                range(steps - 1, -1, -1))
        sequence = torch.cat([forward_seq, reverse_seq], dim=-1)
        return sequence, torch.cat([forward_seq[:, -1], reverse_seq[:, 0]], dim=-1)

    @staticmethod
    def _run(cell, inputs, mask, state, reset, times) -> torch.Tensor:
        outputs = [None] * inputs.shape[1]
        for t in times:
            h_t = cell(inputs[:, t], state)
            outputs[t] = h_t
            m_t = mask[:, t, None]
            state = m_t * h_t + (1 - m_t) * reset
        return torch.stack(outputs, dim=1)

    def _resolve_mask(self, mask, batch, steps) -> torch.Tensor:
        if mask is not None:
            check_mask_shape(mask, (batch, steps), "[B, T]")
            return mask
        if batch > 1 and (self.pad_position == "pre" or self.bidirectional):
            raise ValueError(
                f"padding cannot be inferred without a mask (batch size {batch}, "
                f"pad_position={self.pad_position!r}, bidirectional={self.bidirectional}); "
                "pass mask=[B, T]")
        # Post-padding does not change a forward pass over the real tokens.
        return torch.ones(batch, steps)

    def _per_direction(self, state: Optional[StatePair], batch: int):
        if state is None:
            return (self.forward_cell.zero_initialization(batch),
                    self.reverse_cell.zero_initialization(batch))
        if isinstance(state, (tuple, list)):
            return tuple(state)
        return state, state


def layers_like(rnn, dtype: Optional[torch.dtype] = None) -> List[RNNLayer]:
    """Reference layers, one per layer of `rnn` (a FusedRNN), holding copies of its
    weights (in `dtype`, default theirs), each direction with its own cell."""
    layers = []
    for layer in range(rnn.num_layers):
        cells = []
        for direction in range(rnn.num_directions):
            w_ih, w_hh, b_ih, b_hh = rnn.layer_weights(layer, direction)
            cell = SimpleRNNCell(w_ih.shape[1], rnn.hidden_size,
                                 activation=ACTIVATIONS[rnn.nonlinearity](), use_bias=rnn.bias,
                                 device=w_ih.device, dtype=dtype or w_ih.dtype)
            with torch.no_grad():
                cell.input_linear.weight.copy_(w_ih)
                cell.recurrent_linear.weight.copy_(w_hh)
                if rnn.bias:
                    cell.input_linear.bias.copy_(b_ih)
                    cell.recurrent_linear.bias.copy_(b_hh)
            cells.append(cell)
        layers.append(RNNLayer(tuple(cells) if rnn.bidirectional else cells[0],
                               bidirectional=rnn.bidirectional))
    return layers


def elman_step(x_t, state, w_ih, w_hh, b_ih=None, b_hh=None, activation=torch.tanh):
    """One Elman step: state = (h,) [B, H]; returns (h',), h' the activation of
    x_t W_ihᵀ + b_ih + h W_hhᵀ + b_hh."""
    (h,) = state
    pre = nn.functional.linear(x_t, w_ih, b_ih) + nn.functional.linear(h, w_hh, b_hh)
    return (activation(pre),)


def gru_step(x_t, state, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step, PyTorch's equations: state = (h,) [B, H]; returns (h',)."""
    (h,) = state
    x_r, x_z, x_n = nn.functional.linear(x_t, w_ih, b_ih).chunk(3, dim=-1)
    h_r, h_z, h_n = nn.functional.linear(h, w_hh, b_hh).chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return ((1 - z) * n + z * h,)


def lstm_step(x_t, state, w_ih, w_hh, b_ih=None, b_hh=None, w_hr=None):
    """One LSTM step, PyTorch's equations: state = (h, c), h [B, P] and c [B, H];
    returns (h', c'). With projections (w_hr [P, H]), h' = (o ⊙ tanh(c')) W_hrᵀ;
    without, P = H and h' = o ⊙ tanh(c')."""
    h, c = state
    gates = nn.functional.linear(x_t, w_ih, b_ih) + nn.functional.linear(h, w_hh, b_hh)
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return (h if w_hr is None else nn.functional.linear(h, w_hr)), c


# Each cell's step, by the op's cell name (torch.nn's mode in lower case).
STEPS = {
    "rnn_tanh": elman_step,
    "rnn_relu": partial(elman_step, activation=torch.relu),
    "rnn_identity": partial(elman_step, activation=lambda v: v),
    "gru": gru_step,
    "lstm": lstm_step,
}


def run_stack(cell: str, module, input: torch.Tensor, states, mask=None, resets=None,
              step_states=False):
    """A stack of `cell` (a key of STEPS), one timestep at a time, from
    `module`'s weights (a FusedRNN, FusedGRU or FusedLSTM, or its torch.nn
    twin): input [T, B, D]; states (h0,) or (h0, c0), each [L·dirs, B, H] (h0
    [L·dirs, B, P] for an LSTM with projections, proj_size P); mask [T, B] or
    None; resets like states (default: states), or one per step, each
    [L·dirs, T, B, ·].
    After step t each direction carries mask_t·state_t + (1 − mask_t)·reset
    (reset[t] per step).
    Returns (output [T, B, dirs·H] (dirs·P), final states before reset, shaped
    like states), and with step_states every layer's and direction's states at
    every step before reset, each [L·dirs, T, B, ·]. No dropout."""
    step = STEPS[cell]
    steps, batch = input.shape[:2]
    mask = torch.ones(steps, batch, dtype=input.dtype, device=input.device) \
        if mask is None else mask.to(input.dtype)
    resets = states if resets is None else resets
    directions = 2 if module.bidirectional else 1
    finals = [[] for _ in states]
    every_step = [[] for _ in states]
    layer_input = input
    for layer in range(module.num_layers):
        outputs = []
        for direction in range(directions):
            index = layer * directions + direction
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            weights = [getattr(module, name + suffix) for name in ("weight_ih", "weight_hh")]
            biases = [getattr(module, name + suffix) if module.bias else None
                      for name in ("bias_ih", "bias_hh")]
            projection = {"w_hr": getattr(module, "weight_hr" + suffix)} \
                if getattr(module, "proj_size", 0) > 0 else {}
            state = tuple(s[index] for s in states)
            reset = tuple(r[index] for r in resets)
            times = range(steps - 1, -1, -1) if direction else range(steps)
            out = [[None] * steps for _ in states]
            for t in times:
                new = step(layer_input[t], state, *weights, *biases, **projection)
                for k, value in enumerate(new):
                    out[k][t] = value
                last = new
                m = mask[t].unsqueeze(-1)
                state = tuple(m * n + (1 - m) * (r[t] if r.dim() == 3 else r)
                              for n, r in zip(new, reset))
            for k, value in enumerate(last):
                finals[k].append(value)
                every_step[k].append(torch.stack(out[k]))
            outputs.append(torch.stack(out[0]))
        layer_input = torch.cat(outputs, dim=-1)
    finals = tuple(torch.stack(f) for f in finals)
    if step_states:
        return layer_input, finals, tuple(torch.stack(s) for s in every_step)
    return layer_input, finals
