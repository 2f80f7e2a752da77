"""CleanRL's recurrent PPO agents (ppo_atari_lstm.py and its kin) compute their
LSTM states in `get_states` with a loop over steps, zeroing the states at each
`done`. fused_get_states is that loop's result from one masked call: give the
agent a FusedLSTM (`FusedLSTM.from_lstm(agent.lstm)`, same weights) and replace
the loop:

    new_hidden, lstm_state = fused_get_states(self.lstm, hidden, lstm_state, done)
"""
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
