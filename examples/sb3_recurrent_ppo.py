"""stable-baselines3-contrib's RecurrentPPO with FusedLSTM, run as its users run it.

sb3-contrib's RecurrentActorCriticPolicy evaluates each sequence with
`_process_sequence`, which loops over the steps, calling nn.LSTM once per step on
the states times (1 − episode_start[t]), whenever any episode starts in the batch.
Its buffer cuts sequences at every episode start, so in training a start only
ever falls on a sequence's first step; the loop still runs, because the fast path
requires no start at all. Three policies, none patching sb3's sources:

- stock: sb3-contrib's policy as it is;
- one-call nn.LSTM: the honest baseline, nn.LSTM called once per sequence on the
  initial states times (1 − episode_start[0]); exact for sb3's own batches only;
- FusedLSTM: `rnn_fused.integrations.sb3.FusedLstmPolicy`, the LSTMs swapped for
  FusedLSTM with the same weights (and the optimizer rebuilt over the new modules,
  as sb3 builds it), and one masked call that is exact for resets anywhere:
  mask[t-1] = 1 − episode_start[t], reset_state=0, the initial states zeroed where
  episode_start[0] is set.

The task is CartPole with its velocities hidden (a partially observable task the
policy must remember through). The full run trains each policy with the same seeds
and reports environment steps per second for the whole run and for the update
phase, and writes the learning curves to examples/sb3_recurrent_ppo.png. --quick
records a rollout with episode starts and checks that the two other policies'
evaluate_actions equal the stock policy's: values, log-probabilities, entropy and
the gradients of every parameter.
Usage: python examples/sb3_recurrent_ppo.py [--quick]
"""
import argparse
import statistics
import time

import gymnasium as gym
import numpy as np
import torch
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from stable_baselines3.common.env_util import make_vec_env

from rnn_fused.integrations.sb3 import FusedLstmPolicy

SEEDS = (0, 1)
FULL = dict(envs=8, n_steps=128, batch_size=256, timesteps=40_000, hidden=64)
QUICK = dict(envs=4, n_steps=64, batch_size=128, timesteps=0, hidden=32)


class HiddenVelocity(gym.ObservationWrapper):
    """CartPole that shows the cart position and the pole angle but not their
    velocities: the policy has to infer them from what it remembers."""

    def __init__(self, env):
        super().__init__(env)
        box = env.observation_space
        self.observation_space = gym.spaces.Box(box.low[[0, 2]], box.high[[0, 2]],
                                                dtype=np.float32)

    def observation(self, observation):
        return observation[[0, 2]].astype(np.float32)


def one_call(features, lstm_states, episode_starts, lstm):
    """_process_sequence in one nn.LSTM call, applying only the first step's
    starts: exact for sb3's own training batches only."""
    n_seq = lstm_states[0].shape[1]
    sequence = features.reshape((n_seq, -1, lstm.input_size)).swapaxes(0, 1)
    starts = episode_starts.reshape((n_seq, -1)).swapaxes(0, 1)
    first = (1.0 - starts[0]).view(1, n_seq, 1)
    output, states = lstm(sequence, (first * lstm_states[0], first * lstm_states[1]))
    return torch.flatten(output.transpose(0, 1), start_dim=0, end_dim=1), states


class OneCallLSTMPolicy(RecurrentActorCriticPolicy):
    @staticmethod
    def _process_sequence(features, lstm_states, episode_starts, lstm):
        return one_call(features, lstm_states, episode_starts, lstm)


POLICIES = {"stock": RecurrentActorCriticPolicy, "one-call nn.LSTM": OneCallLSTMPolicy,
            "FusedLSTM": FusedLstmPolicy}


def make_model(policy, sizes, seed):
    env = make_vec_env("CartPole-v1", n_envs=sizes["envs"], seed=seed,
                       wrapper_class=HiddenVelocity)
    return RecurrentPPO(policy, env, n_steps=sizes["n_steps"], batch_size=sizes["batch_size"],
                        seed=seed, device="cpu",
                        policy_kwargs=dict(lstm_hidden_size=sizes["hidden"]))


def recorded_batch(sizes):
    """A rollout of the stock policy with episode starts, and one training batch
    of it (sequences cut at episode starts, as sb3 trains)."""
    model = make_model(POLICIES["stock"], sizes, seed=0)
    _, callback = model._setup_learn(sizes["n_steps"] * sizes["envs"], None)
    callback.on_training_start(locals(), globals())
    model.collect_rollouts(model.env, callback, model.rollout_buffer, sizes["n_steps"])
    batch = next(model.rollout_buffer.get(sizes["batch_size"]))
    return model.policy.state_dict(), model.policy.observation_space, model.policy.action_space, batch


def evaluate(policy_cls, state_dict, observation_space, action_space, batch, hidden):
    policy = policy_cls(observation_space, action_space, lambda _: 3e-4, lstm_hidden_size=hidden)
    policy.load_state_dict(state_dict)
    values, log_prob, entropy = policy.evaluate_actions(
        batch.observations, batch.actions, batch.lstm_states, batch.episode_starts)
    loss = values.sum() + log_prob.sum() + entropy.sum()
    loss.backward()
    return [values, log_prob, entropy], {n: p.grad for n, p in policy.named_parameters()}


def check_evaluate_actions(sizes):
    """Largest difference to the stock policy, per policy, over evaluate_actions'
    outputs and every parameter's gradient, each relative to the stock tensor's
    largest entry (at least 1); and how many episode starts the batch has."""
    state_dict, observation_space, action_space, batch = recorded_batch(sizes)
    starts = int(batch.episode_starts.sum().item())
    stock_values, stock_grads = evaluate(POLICIES["stock"], state_dict, observation_space,
                                         action_space, batch, sizes["hidden"])
    worst = {}
    for name in ("one-call nn.LSTM", "FusedLSTM"):
        values, grads = evaluate(POLICIES[name], state_dict, observation_space, action_space,
                                 batch, sizes["hidden"])
        # Relative to each tensor's largest entry: gradients of sums over a batch are large.
        pairs = list(zip(values, stock_values)) + [(grads[n], g) for n, g in stock_grads.items()]
        worst[name] = max(((a - b).abs().max() / b.abs().max().clamp(min=1)).item()
                          for a, b in pairs)
    return worst, starts


def train(policy_name, sizes, seed):
    """Trains one policy; returns (seconds, update seconds, curve of (timestep,
    mean episode return))."""
    torch.manual_seed(seed)
    model = make_model(POLICIES[policy_name], sizes, seed)
    update_seconds = [0.0]
    train_once = model.train

    def timed_train():
        start = time.perf_counter()
        train_once()
        update_seconds[0] += time.perf_counter() - start
    model.train = timed_train
    curve = []

    from stable_baselines3.common.callbacks import BaseCallback

    class Curve(BaseCallback):
        def _on_rollout_end(self):
            episodes = [info["r"] for info in self.model.ep_info_buffer]
            if episodes:
                curve.append((self.num_timesteps, float(np.mean(episodes))))

        def _on_step(self):
            return True
    start = time.perf_counter()
    model.learn(sizes["timesteps"], callback=Curve())
    return time.perf_counter() - start, update_seconds[0], curve


def plot(curves, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    colors = {"stock": "tab:blue", "one-call nn.LSTM": "tab:orange", "FusedLSTM": "tab:green"}
    for (name, seed), curve in curves.items():
        steps, returns = zip(*curve)
        ax.plot(steps, returns, color=colors[name], alpha=0.8,
                label=name if seed == SEEDS[0] else None, linestyle="-" if seed == SEEDS[0] else "--")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("mean episode return (last 100)")
    ax.set_title("RecurrentPPO on CartPole without velocities (seeds: solid, dashed)", fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    worst, starts = check_evaluate_actions(sizes)
    for name, difference in worst.items():
        print(f"evaluate_actions, {name} against stock: largest relative difference {difference:.2e} "
              f"(values, log-probs, entropy, every gradient; {starts} episode starts)")
    if args.quick:
        return worst, starts
    torch.set_num_threads(torch.get_num_threads())
    results, curves = {}, {}
    for seed in SEEDS:
        for name in POLICIES:
            seconds, update, curve = train(name, sizes, seed)
            results[name, seed] = (seconds, update)
            curves[name, seed] = curve
            print(f"{name}, seed {seed}: {sizes['timesteps'] / seconds:.0f} env steps/s overall, "
                  f"update phase {update:.1f} s of {seconds:.1f} s, final mean return "
                  f"{curve[-1][1]:.1f}", flush=True)
    print(f"\n{sizes['envs']} envs × {sizes['n_steps']} steps per rollout, batch "
          f"{sizes['batch_size']}, LSTM {sizes['hidden']} (actor and critic), "
          f"{sizes['timesteps']} steps, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print("| policy | env steps/s, whole run | update phase s | update vs one-call nn.LSTM | "
          "update vs stock |")
    print("|---|---|---|---|---|")
    for name in POLICIES:
        overall = [sizes["timesteps"] / results[name, s][0] for s in SEEDS]
        update = [results[name, s][1] for s in SEEDS]
        baseline = [results["one-call nn.LSTM", s][1] for s in SEEDS]
        stock = [results["stock", s][1] for s in SEEDS]
        print(f"| {name} | {min(overall):.0f}–{max(overall):.0f} | "
              f"{min(update):.1f}–{max(update):.1f} | "
              f"{min(b / u for b, u in zip(baseline, update)):.2f}–"
              f"{max(b / u for b, u in zip(baseline, update)):.2f}x | "
              f"{min(s / u for s, u in zip(stock, update)):.2f}–"
              f"{max(s / u for s, u in zip(stock, update)):.2f}x |")
    plot(curves, "examples/sb3_recurrent_ppo.png")
    return results, curves


if __name__ == "__main__":
    main()
