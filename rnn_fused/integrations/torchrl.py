"""TorchRL: LSTMModule and GRUModule whose recurrent mode is one masked fused call.

    from rnn_fused.integrations.torchrl import FusedLSTMModule
    module = FusedLSTMModule(input_size=8, hidden_size=64, in_key="obs", out_key="features")

They are TorchRL's own modules (same arguments, keys, primers, set_recurrent_mode)
with a FusedLSTM or FusedGRU inside. In recurrent mode TorchRL splits every row at
its `is_init` marks into trajectories, pads them and runs a PackedSequence. Here the
rows run as they are, in one call: an episode starting at t+1 resets the carry after
step t (mask[t] = 1 − is_init[t+1]) to the state stored at t+1 (a reset state per
step, so a stored state that requires grad gets its gradient), and the states at
every episode's last step come from step_states=True, zeros elsewhere, as TorchRL
writes them. Sequential mode (one step at a time, in collectors) is TorchRL's own
code around the fused module. A bidirectional module's reverse direction would need
its own mask, so it takes TorchRL's split-and-pad path, still on the fused kernels.
After make_python_based() the module holds TorchRL's Python RNN and runs TorchRL's code.
Imports torchrl; `import rnn_fused` alone never does.
"""
from typing import Sequence

import torch
from tensordict.nn import dispatch
from torchrl.modules import GRUModule, LSTMModule

from ..modules import FusedGRU, FusedLSTM
from ..utils import episode_starts_to_mask

__all__ = ["FusedLSTMModule", "FusedGRUModule"]


def _time_rows(tensordict, name: str):
    """TorchRL's recurrent layout: [B, T] with time last among the batch dims."""
    if tensordict.ndim == 0:
        raise ValueError(f"{name}(recurrent_mode=True) requires the input tensordict to have "
                         "at least one batch dim (time). Got a 0-d tensordict.")
    if tensordict.ndim == 1:
        return tensordict.unsqueeze(0)
    return tensordict if tensordict.ndim == 2 else tensordict.flatten(0, -2)


def _run_rows(rnn, value: torch.Tensor, stored: Sequence[torch.Tensor],
              is_init: torch.Tensor):
    """value [B, T, D]; stored: TorchRL's states, each [B, T, L, W]; is_init [B, T].
    Returns the output and each state at every episode's last step, zeros elsewhere."""
    mask = episode_starts_to_mask(is_init, batch_first=True)
    hx = tuple(s[:, 0].transpose(0, 1) for s in stored)
    # Step t's reset state is the one stored where the next episode starts (t + 1);
    # the last step never resets.
    resets = tuple(torch.cat([s[:, 1:], s[:, -1:]], 1).permute(2, 0, 1, 3) for s in stored)
    single = len(stored) == 1
    output, _, every_step = rnn(value, hx[0] if single else hx, mask=mask,
                                reset_state=resets[0] if single else resets, step_states=True)
    # An episode ends where the carry resets, and at the row's last step.
    ends = ~mask
    ends[:, -1] = True
    ends = ends[..., None, None]
    states = (every_step,) if single else every_step
    return output, [torch.where(ends, s.permute(1, 2, 0, 3), torch.zeros((), dtype=s.dtype,
                                                                         device=s.device))
                    for s in states]


def _recurrent_forward(module, rnn, tensordict, widths, name: str):
    """TorchRL's recurrent-mode forward, its rows in one fused call."""
    shape = tensordict.shape
    rows = _time_rows(tensordict, name)
    value = rows.get(module.in_keys[0])
    stored = [rows.get(key, None) for key in module.in_keys[1:1 + len(widths)]]
    batch, steps = value.shape[:2]
    if all(s is None for s in stored):
        # One direction: bidirectional modules take TorchRL's own path.
        stored = [value.new_zeros(batch, steps, rnn.num_layers, width) for width in widths]
    elif any(s is None for s in stored):
        raise RuntimeError(f"{name}: got some hidden states and not others: "
                           f"{[type(s).__name__ for s in stored]}")
    is_init = rows["is_init"].squeeze(-1).to(torch.bool)
    output, states = _run_rows(rnn, value, stored, is_init)
    for key, tensor in zip(module.out_keys, (output, *states)):
        rows.set(key, tensor)
    if shape != rows.shape or rows is not tensordict:
        tensordict.update(rows.reshape(shape))
    return tensordict


class _FusedRecurrentMode:
    """What the two modules share, mixed in before TorchRL's class: its RNN (at
    the attribute `_attr`) swapped for the fused class `_fused`, and recurrent
    mode through _recurrent_forward."""

    _attr = ""
    _fused = None

    def __init__(self, *args, **kwargs):
        name = type(self).__name__
        if kwargs.get("python_based", False):
            raise ValueError(f"{name}: python_based=True is TorchRL's own Python "
                             f"{self._attr.upper()}; {name} runs rnn_fused's")
        super().__init__(*args, **kwargs)
        if self.recurrent_backend not in ("pad", "auto"):
            raise ValueError(f"{name} runs recurrent mode through rnn_fused: recurrent_backend "
                             f"must be 'pad' or 'auto', got {self.recurrent_backend!r}")
        rnn = getattr(self, self._attr)
        if not isinstance(rnn, self._fused):
            setattr(self, self._attr, getattr(self._fused, f"from_{self._attr}")(rnn))

    # dispatch: TorchRL's modules also take their keys as keyword arguments.
    @dispatch
    def forward(self, tensordict):
        rnn = getattr(self, self._attr)
        # make_python_based() swaps in TorchRL's own RNN, whose mask= means "freeze":
        # only a fused RNN takes the one-call path.
        if not self.recurrent_mode or rnn.bidirectional or not isinstance(rnn, self._fused):
            return super().forward(tensordict)
        # h's width (proj_size where an LSTM projects), then the LSTM's c.
        widths = (rnn.proj_size or rnn.hidden_size,) + (
            (rnn.hidden_size,) if isinstance(rnn, FusedLSTM) else ())
        return _recurrent_forward(self, rnn, tensordict, widths, type(self).__name__)


class FusedLSTMModule(_FusedRecurrentMode, LSTMModule):
    """torchrl.modules.LSTMModule with a FusedLSTM: the same arguments (an `lstm`
    given is copied into a FusedLSTM; python_based is refused), and recurrent mode
    in one masked fused call (module docstring)."""

    _attr, _fused = "lstm", FusedLSTM


class FusedGRUModule(_FusedRecurrentMode, GRUModule):
    """torchrl.modules.GRUModule with a FusedGRU, as FusedLSTMModule is for the LSTM."""

    _attr, _fused = "gru", FusedGRU
