"""Each RL integration against its library's own path, forward+backward, with
and without episode starts inside the sequences: CleanRL's get_states loop
against fused_get_states, sb3-contrib's RecurrentActorCriticPolicy against
FusedLstmPolicy (evaluate_actions on one training batch), and TorchRL's
LSTMModule and GRUModule in recurrent mode (its default 'pad' backend) against
FusedLSTMModule and FusedGRUModule; and sb3-contrib's whole update phase,
RecurrentPPO.train(), stock against FusedLstmPolicy. timing.time_calls: one
sample per row and repeat, the two rows of a case in alternating order; the
median and the range over the repeats, and of the per-repeat ratios.

Usage: python benchmarks/integrations.py [--repeats 5]
"""
import argparse
import platform

import gymnasium as gym
import numpy as np
import statistics

import torch
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from sb3_contrib.common.recurrent.type_aliases import RNNStates
from stable_baselines3.common.env_util import make_vec_env
from tensordict import TensorDict
from torch import nn
from torchrl.modules import GRUModule, LSTMModule, set_recurrent_mode

import rnn_fused
from rnn_fused import FusedLSTM
from rnn_fused.integrations.cleanrl import fused_get_states, fused_get_states_ref
from rnn_fused.integrations.sb3 import FusedLstmPolicy
from rnn_fused.integrations.torchrl import FusedGRUModule, FusedLSTMModule
from timing import time_calls

START_PROBABILITY = 0.01


def starts_of(shape, inside, with_starts, generator):
    """Episode starts at random, plus one at `inside` (a step inside a sequence),
    or none at all."""
    starts = (torch.rand(shape, generator=generator) < START_PROBABILITY).float()
    if not with_starts:
        return starts.zero_()
    starts[inside] = 1.0
    return starts


def cleanrl_rows(with_starts, generator):
    """ppo_atari_lstm.py's sizes: a minibatch of 2 environments × 128 steps, 512
    CNN features into an LSTM of 128."""
    steps, batch, features, hidden = 128, 2, 512, 128
    lstm = nn.LSTM(features, hidden)
    fused = FusedLSTM.from_lstm(lstm)
    x = torch.randn(steps * batch, features, requires_grad=True)
    state = tuple(torch.randn(1, batch, hidden) for _ in range(2))
    done = starts_of((steps, batch), (steps // 2, 0), with_starts, generator).flatten()

    def row(get_states, module):
        def run():
            out, (h, c) = get_states(module, x, state, done)
            (out.sum() + h.sum() + c.sum()).backward()
        return run
    return {"CleanRL get_states loop": row(fused_get_states_ref, lstm),
            "fused_get_states": row(fused_get_states, fused)}


def sb3_rows(with_starts, generator):
    """RecurrentPPO's defaults on a vector observation: LSTM 256 for the actor and
    the critic, one training batch of 8 sequences × 16 steps."""
    n_seq, steps = 8, 16
    obs_space = gym.spaces.Box(-1.0, 1.0, (8,), dtype=np.float32)
    action_space = gym.spaces.Discrete(4)
    stock = RecurrentActorCriticPolicy(obs_space, action_space, lambda _: 3e-4)
    fused = FusedLstmPolicy(obs_space, action_space, lambda _: 3e-4)
    fused.load_state_dict(stock.state_dict())
    observations = torch.randn(n_seq * steps, 8, generator=generator)
    actions = torch.randint(0, 4, (n_seq * steps,), generator=generator)
    # sb3 lays its sequences out one after another.
    starts = starts_of((n_seq, steps), (0, steps // 2), with_starts, generator).flatten()
    hidden = stock.lstm_actor.hidden_size
    states = tuple(torch.randn(1, n_seq, hidden, generator=generator) for _ in range(2))
    lstm_states = RNNStates(states, states)

    def row(policy):
        def run():
            values, log_prob, entropy = policy.evaluate_actions(observations, actions,
                                                                lstm_states, starts)
            (values.sum() + log_prob.sum() + entropy.sum()).backward()
        return run
    return {"sb3-contrib RecurrentActorCriticPolicy": row(stock),
            "FusedLstmPolicy": row(fused)}


def sb3_update_rows():
    """RecurrentPPO's whole update phase, `train()`: n_epochs=10 passes of batch 256
    over one rollout of 8 CartPole environments × 128 steps (their episodes start
    wherever they end), LSTMs of 64 for the actor and the critic: the sizes
    examples/sb3_recurrent_ppo.py trains at, with all four observations. The stock model collects the rollout; the
    fused one, with the same weights, trains on the same buffer. Each call keeps
    training the model: every call does the same work."""
    env = make_vec_env("CartPole-v1", n_envs=8, seed=0)
    options = dict(n_steps=128, batch_size=256, seed=0, device="cpu",
                   policy_kwargs=dict(lstm_hidden_size=64))
    stock = RecurrentPPO("MlpLstmPolicy", env, **options)
    fused = RecurrentPPO(FusedLstmPolicy, env, **options)
    fused.policy.load_state_dict(stock.policy.state_dict())
    steps = stock.n_steps * env.num_envs
    _, callback = stock._setup_learn(steps)
    stock.collect_rollouts(env, callback, stock.rollout_buffer, n_rollout_steps=stock.n_steps)
    fused._setup_learn(steps)
    fused.rollout_buffer = stock.rollout_buffer
    starts = int(stock.rollout_buffer.episode_starts.sum())
    return {"sb3-contrib RecurrentPPO.train()": stock.train,
            "with FusedLstmPolicy": fused.train}, starts


def torchrl_rows(module_classes, with_starts, generator):
    """Issue 31's target point: B=64 rows of T=64 steps, 32 features, H=128."""
    batch, steps, features, hidden = 64, 64, 32, 128
    stock_cls, fused_cls = module_classes
    stock = stock_cls(input_size=features, hidden_size=hidden, in_key="x", out_key="y")
    fused = fused_cls(input_size=features, hidden_size=hidden, in_key="x", out_key="y")
    fused.load_state_dict(stock.state_dict())
    is_init = starts_of((batch, steps), (0, steps // 2), with_starts, generator).bool()
    is_init[:, 0] = True
    x = torch.randn(batch, steps, features, generator=generator, requires_grad=True)
    states = {key: torch.randn(batch, steps, 1, hidden, generator=generator)
              for key in stock.in_keys[1:-1]}

    def row(module):
        def run():
            td = TensorDict({"x": x, "is_init": is_init[..., None], **states},
                            batch_size=[batch, steps])
            with set_recurrent_mode(True):
                out = module(td)
            sum(out[key].sum() for key in module.out_keys).backward()
        return run
    return {f"TorchRL {stock_cls.__name__}": row(stock), fused_cls.__name__: row(fused)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, rnn_fused {rnn_fused.__version__}, "
          f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"CPU ISA {rnn_fused.cpu_isa()}, float32; forward+backward, ms per call and "
          f"speedup: median (range) over {args.repeats} repeats")
    print("| library | episode starts inside | library's path | integration | speedup |")
    print("|---|---|---|---|---|")

    def cell(values, unit=""):
        return f"{statistics.median(values):.2f}{unit} ({min(values):.2f}–{max(values):.2f})"
    libraries = (
        ("CleanRL", cleanrl_rows), ("sb3-contrib", sb3_rows),
        ("TorchRL LSTM", lambda *a: torchrl_rows((LSTMModule, FusedLSTMModule), *a)),
        ("TorchRL GRU", lambda *a: torchrl_rows((GRUModule, FusedGRUModule), *a)))
    for library, rows_of in libraries:
        for with_starts in (True, False):
            rows = rows_of(with_starts, generator)
            times = time_calls(rows, args.repeats)
            theirs, ours = ([t * 1e3 for t in times[name]] for name in rows)
            ratios = [t / o for t, o in zip(theirs, ours)]
            print(f"| {library} | {'yes' if with_starts else 'no'} | {cell(theirs)} | "
                  f"{cell(ours)} | {cell(ratios, '×')} |")
    rows, starts = sb3_update_rows()
    times = time_calls(rows, args.repeats)
    theirs, ours = times.values()
    ratios = [t / o for t, o in zip(theirs, ours)]
    print(f"\nsb3-contrib's update phase, RecurrentPPO.train() on one rollout ({starts} episode "
          f"starts in 8 × 128 steps), s per call: stock {cell(theirs)}, FusedLstmPolicy "
          f"{cell(ours)}, speedup {cell(ratios, '×')}")


if __name__ == "__main__":
    main()
