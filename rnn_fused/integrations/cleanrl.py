"""CleanRL's recurrent PPO agents (ppo_atari_lstm.py and its kin) compute their
LSTM states in `get_states` with a loop over steps, zeroing the states at each
`done`. fused_get_states is that loop's result from one masked call: give the
agent a FusedLSTM (`FusedLSTM.from_lstm(agent.lstm)`, same weights) and replace
the loop:

    new_hidden, lstm_state = fused_get_states(self.lstm, hidden, lstm_state, done)

fused_get_states_ref, with the same signature, is CleanRL's loop itself: the
reference the fused call is tested and timed against.
"""
import torch

from .episodes import States, check_fused, run_with_episode_starts


def fused_get_states(rnn, hidden, state: States, done):
    """CleanRL's get_states after the network: hidden [T·B, features] (or
    [T, B, features]), state ([1, B, H], [1, B, H]) for an LSTM or [1, B, H],
    done [T·B] or [T, B], set where an episode starts at that step. Returns
    (new_hidden [T·B, H], final state), as the loop does."""
    check_fused(rnn, "fused_get_states")
    batch = (state if not isinstance(state, tuple) else state[0]).shape[1]
    sequence = hidden.reshape((-1, batch, rnn.input_size))
    output, state = run_with_episode_starts(rnn, sequence, state, done.reshape((-1, batch)))
    return output.flatten(0, 1), state


def fused_get_states_ref(rnn, hidden, state: States, done):
    """CleanRL's loop (ppo_atari_lstm.py's get_states after the network), for any
    LSTM's (h, c) or GRU's h, torch.nn's or ours: one call per step on the state
    times (1 − done[t])."""
    batch = (state if not isinstance(state, tuple) else state[0]).shape[1]
    hidden = hidden.reshape((-1, batch, rnn.input_size))
    done = done.reshape((-1, batch))
    new_hidden = []
    for h, d in zip(hidden, done):
        keep = (1.0 - d).view(1, -1, 1)
        kept = tuple(keep * s for s in state) if isinstance(state, tuple) else keep * state
        h, state = rnn(h.unsqueeze(0), kept)
        new_hidden += [h]
    return torch.flatten(torch.cat(new_hidden), 0, 1), state
