"""rnn_fused inside reinforcement-learning libraries: their recurrent rollouts reset
the state at episode starts with a per-step Python loop; each integration makes
that one masked fused call. Each submodule imports its host library only when it
is imported itself (`import rnn_fused` never does):

  episodes  run_with_episode_starts: the one call every integration makes
  cleanrl   fused_get_states, for CleanRL-style agents' get_states loop
  sb3       FusedLstmPolicy, FusedCnnLstmPolicy, FusedMultiInputLstmPolicy for
            sb3-contrib's RecurrentPPO

docs/integrations.md gives the line that switches each one on, and its speed.
"""
