"""sb3-contrib's RecurrentPPO with fused LSTMs: pass a policy class below where
the stock one goes,

    model = RecurrentPPO(FusedLstmPolicy, env)

The policy is sb3-contrib's, with its LSTMs replaced by FusedLSTMs holding the
same weights and its `_process_sequence` (a loop over steps whenever any episode
starts in the batch) replaced by one masked call. Rollouts, losses and
checkpoints (`model.save`, `RecurrentPPO.load`) are the stock policy's; the
state_dict is interchangeable with it. Importing this module imports sb3-contrib.
"""
import torch
from sb3_contrib.common.recurrent.policies import (RecurrentActorCriticCnnPolicy,
                                                   RecurrentActorCriticPolicy,
                                                   RecurrentMultiInputActorCriticPolicy)

from ..modules import FusedLSTM
from .episodes import run_with_episode_starts

__all__ = ["FusedCnnLstmPolicy", "FusedLstmPolicy", "FusedMultiInputLstmPolicy"]


class FusedLstmMixin:
    """Placed before one of sb3-contrib's recurrent policies."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("lstm_actor", "lstm_critic"):
            lstm = getattr(self, name)
            if lstm is not None:
                setattr(self, name, FusedLSTM.from_lstm(lstm))
        # sb3 built the optimizer over the modules it constructed.
        learning_rate = self.optimizer.param_groups[0]["lr"]
        self.optimizer = self.optimizer_class(self.parameters(), lr=learning_rate,
                                              **self.optimizer_kwargs)

    @staticmethod
    def _process_sequence(features, lstm_states, episode_starts, lstm):
        # sb3 lays its sequences out one after another ([n_seq · T]); the call
        # takes them time-major.
        n_seq = lstm_states[0].shape[1]
        sequence = features.reshape((n_seq, -1, lstm.input_size)).swapaxes(0, 1)
        starts = episode_starts.reshape((n_seq, -1)).swapaxes(0, 1)
        output, states = run_with_episode_starts(lstm, sequence, lstm_states, starts)
        return torch.flatten(output.transpose(0, 1), start_dim=0, end_dim=1), states


class FusedLstmPolicy(FusedLstmMixin, RecurrentActorCriticPolicy):
    """sb3-contrib's MlpLstmPolicy with fused LSTMs."""


class FusedCnnLstmPolicy(FusedLstmMixin, RecurrentActorCriticCnnPolicy):
    """sb3-contrib's CnnLstmPolicy with fused LSTMs."""


class FusedMultiInputLstmPolicy(FusedLstmMixin, RecurrentMultiInputActorCriticPolicy):
    """sb3-contrib's MultiInputLstmPolicy with fused LSTMs."""
