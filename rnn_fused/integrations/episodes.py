"""The call every RL integration makes: a sequence whose episodes start anywhere,
run as one masked call of a fused module instead of a loop over steps."""
from typing import Tuple, Union

import torch

from ..modules import FusedGRU, FusedLSTM, FusedRNN
from ..utils import episode_starts_to_mask

States = Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]


def check_fused(rnn, caller: str) -> None:
    if not isinstance(rnn, (FusedRNN, FusedGRU, FusedLSTM)):
        raise TypeError(f"{caller}: expects a FusedLSTM, FusedGRU or FusedRNN (e.g. "
                        f"FusedLSTM.from_lstm(lstm)), got {type(rnn).__name__}")


def run_with_episode_starts(rnn, sequence: torch.Tensor, states: States,
                            episode_starts: torch.Tensor):
    """What RL code computes step by step, `rnn` called on each step with its
    states times (1 − episode_starts[t]), in one call: a start resets h (and c)
    to zeros before its step. sequence [T, B, features]; states as `rnn` takes
    hx, [layers, B, H]; episode_starts [T, B], bool or float. Returns (output
    [T, B, H], final states)."""
    check_fused(rnn, "run_with_episode_starts")
    starts = episode_starts.to(sequence.dtype)
    keep_first = (1.0 - starts[0]).view(1, -1, 1)
    if isinstance(states, torch.Tensor):
        first = keep_first * states
    else:
        first = tuple(keep_first * s for s in states)
    return rnn(sequence, first, mask=episode_starts_to_mask(starts), reset_state=0.0)
