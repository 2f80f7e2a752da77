"""A recurrent policy re-evaluated over a rollout buffer in one FusedRNN call, with
the episode ends as a mask, instead of one RNN call per step.

Recurrent RL code today (e.g. Stable-Baselines3's RecurrentPPO) evaluates the buffer
with a loop that calls the RNN once per step and multiplies the state by
(1 - episode_start[t]) first. Collecting a rollout is step by step by nature (each
action needs the last state), but every training epoch re-evaluates the whole
buffer with gradients, and that is where one call over the sequence pays.

The convention is docs/semantics.md's: episode_start[t] resets the state to zeros before
step t, so mask[t-1] = 1 - episode_start[t] with reset_state=0, and h_0 is the
state carried over from the previous rollout, zeroed where episode_start[0] is set.

The script collects two rollouts from a toy environment (random observations,
episodes that end at random), so the second starts from a carried, nonzero state;
evaluates the second with a PPO-style policy-gradient loss three ways: a per-step
loop over nn.RNN (the same weights), the same loop over FusedRNN, and one masked
FusedRNN call; checks that outputs, final states and gradients match; and times them.

Usage: python examples/rl_rollout.py [--quick]
"""
import argparse
import statistics
import time
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from rnn_fused import FusedRNN, best_device, episode_starts_to_mask

# (envs B, rollout steps T, observation size, hidden size, action count, timing repeats)
FULL_SIZES = (16, 256, 32, 128, 6, 20)
QUICK_SIZES = (16, 64, 8, 32, 4, 3)
MEAN_EPISODE_LENGTH = 40
# At both sizes this seed's second rollout has episodes that start at its first
# step, so the comparison covers zeroing h_0 as well as mid-rollout resets.
ENVIRONMENT_SEED = 8


def per_step_states(rnn: nn.Module, observations, episode_start, h0):
    """Today's loop: one call per step, the state zeroed where an episode starts.
    Works with nn.RNN and FusedRNN alike."""
    state = h0
    outputs = []
    for observation, starts in zip(observations, episode_start, strict=True):
        keep = (1.0 - starts.float()).view(1, -1, 1)
        output, state = rnn(observation.unsqueeze(0), keep * state)
        outputs.append(output)
    return torch.cat(outputs), state


def masked_states(rnn: FusedRNN, observations, episode_start, h0):
    """One call: the reset before step t becomes mask[t-1] = 0 with reset_state=0."""
    keep_first = 1.0 - episode_start[0].float()
    return rnn(observations, h0 * keep_first.view(1, -1, 1),
               mask=episode_starts_to_mask(episode_start), reset_state=0.0)


class RecurrentPolicy(nn.Module):
    def __init__(self, observation_size: int, hidden_size: int, action_count: int):
        super().__init__()
        self.rnn = FusedRNN(observation_size, hidden_size)
        self.head = nn.Linear(hidden_size, action_count)


@dataclass
class Rollout:
    observations: torch.Tensor  # [T, B, D]
    episode_start: torch.Tensor  # [T, B] bool: the state is reset before step t
    actions: torch.Tensor  # [T, B]
    initial_state: torch.Tensor  # [1, B, H], carried over from the previous rollout


def collect_rollout(policy: RecurrentPolicy, steps: int, state, starts,
                    environment: torch.Generator):
    """Acts step by step in a toy environment whose episodes end at random.
    state [1, B, H] and starts [B] come from the last rollout; returns the Rollout
    and the state and starts the next rollout begins with. The environment's own
    generator makes its episodes the same on every device."""
    envs = state.shape[1]
    device = state.device
    initial_state = state
    observations, episode_start, actions = [], [], []
    with torch.no_grad():
        for _ in range(steps):
            observation = torch.randn(envs, policy.rnn.input_size, generator=environment)
            observation, starts = observation.to(device), starts.to(device)
            output, state = policy.rnn(observation.unsqueeze(0),
                                       (~starts).float().view(1, -1, 1) * state)
            probabilities = policy.head(output[0]).softmax(-1)
            action = torch.multinomial(probabilities, 1)
            observations.append(observation)
            episode_start.append(starts)
            actions.append(action.squeeze(-1))
            starts = torch.rand(envs, generator=environment) < 1 / MEAN_EPISODE_LENGTH
    rollout = Rollout(torch.stack(observations), torch.stack(episode_start),
                      torch.stack(actions), initial_state)
    return rollout, state, starts


def policy_loss(head: nn.Linear, states, actions, advantages):
    log_probs = head(states).log_softmax(-1).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    return -(log_probs * advantages).mean()


def evaluate(rnn, head, forward, rollout: Rollout, advantages):
    """Forward and backward over the buffer: (states, final state, gradients)."""
    rnn.zero_grad(set_to_none=True)
    head.zero_grad(set_to_none=True)
    states, final_state = forward(rnn, rollout.observations, rollout.episode_start,
                                  rollout.initial_state)
    policy_loss(head, states, rollout.actions, advantages).backward()
    gradients = [p.grad for p in (*rnn.parameters(), *head.parameters())]
    return states.detach(), final_state.detach(), gradients


def median_ms(runs, repeats: int, device: str):
    """{name: median milliseconds} of each callable in runs. The runs take turns, so a
    change in the machine's load hits them all alike."""
    def finish():
        if device == "cuda":
            torch.cuda.synchronize()
    times = {name: [] for name in runs}
    for repeat in range(repeats + 1):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            finish()
            if repeat:  # the first round warms up
                times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(seconds) for name, seconds in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    args = parser.parse_args(argv)
    envs, steps, observation_size, hidden_size, action_count, repeats = (
        QUICK_SIZES if args.quick else FULL_SIZES)
    device = best_device()
    # Both sides must do true float32 products to agree to float32 precision.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    environment = torch.Generator().manual_seed(ENVIRONMENT_SEED)
    policy = RecurrentPolicy(observation_size, hidden_size, action_count).to(device)
    # The first rollout starts every episode; the second carries its state over.
    state = torch.zeros(1, envs, hidden_size, device=device)
    _, state, starts = collect_rollout(policy, steps, state, torch.ones(envs, dtype=torch.bool),
                                       environment)
    rollout, _, _ = collect_rollout(policy, steps, state, starts, environment)
    advantages = torch.randn(steps, envs, device=device)
    print(f"device: {device}; {envs} envs x {steps} steps, obs {observation_size}, "
          f"hidden {hidden_size}; {int(rollout.episode_start.sum())} episode starts, "
          f"{int(rollout.episode_start[0].sum())} at step 0; "
          f"|h_0| = {rollout.initial_state.norm():.2f}")

    torch_rnn = policy.rnn.to_rnn()
    runs = {
        "per-step loop, nn.RNN": (torch_rnn, per_step_states),
        "per-step loop, FusedRNN": (policy.rnn, per_step_states),
        "one FusedRNN call + mask": (policy.rnn, masked_states),
    }
    results = {name: evaluate(rnn, policy.head, forward, rollout, advantages)
               for name, (rnn, forward) in runs.items()}
    fused = results["one FusedRNN call + mask"]
    for name in ("per-step loop, nn.RNN", "per-step loop, FusedRNN"):
        for fused_value, loop_value in zip(fused, results[name], strict=True):
            torch.testing.assert_close(fused_value, loop_value)
    print("outputs, final states and gradients of the masked call match both loops")

    times = median_ms({name: partial(evaluate, rnn, policy.head, forward, rollout, advantages)
                       for name, (rnn, forward) in runs.items()}, repeats, device)
    print(f"forward + backward over the buffer, median of {repeats}:")
    one_call = times["one FusedRNN call + mask"]
    for name, milliseconds in times.items():
        speedup = milliseconds / one_call
        print(f"  {name:<26} {milliseconds:8.2f} ms"
              + (f"   one call is {speedup:.1f}x faster" if speedup > 1 else ""))
    return rollout, results, times


if __name__ == "__main__":
    main()
