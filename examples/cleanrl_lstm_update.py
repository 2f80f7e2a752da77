"""A CleanRL-style recurrent PPO update: the per-step LSTM loop of
`ppo_atari_lstm.py`'s `get_states` against one masked FusedLSTM call.

In CleanRL's recurrent PPO a minibatch is the whole rollout of a subset of the
environments, and episodes end mid-rollout. `get_states` therefore loops over the
steps, calling the LSTM once per step on the state multiplied by (1 − done[t]):

    for h, d in zip(hidden, done):
        h, lstm_state = lstm(h.unsqueeze(0), ((1 - d).view(1, -1, 1) * lstm_state[0],
                                              (1 - d).view(1, -1, 1) * lstm_state[1]))

One FusedLSTM call does the same, `rnn_fused.integrations.cleanrl.fused_get_states`:
done[t] resets both states before step t, so mask[t-1] = 1 − done[t] with
reset_state=0, and the initial states are zeroed where done[0] is set
(docs/semantics.md, docs/integrations.md).

The script builds one minibatch (the LSTM's input stands in for the CNN's
features, with x requiring grad, as behind a CNN), checks that the loop and the
masked call give the same outputs, final states and gradients (of x, of the
initial states and of every weight), and times forward+backward of both, and of
one nn.LSTM call that ignores the dones (a floor, not the same computation), in
rotating order. Usage: python examples/cleanrl_lstm_update.py [--quick]
"""
import argparse
import statistics

import torch
from torch import nn
from torch.utils import benchmark

from rnn_fused import FusedLSTM, best_device
from rnn_fused.integrations.cleanrl import fused_get_states, fused_get_states_ref

# ppo_atari_lstm.py: 8 environments, 128 steps, 4 minibatches (2 environments
# each), a 512-feature CNN output into an LSTM of 128. Episodes end about every
# 100 steps here (Atari's are longer; more resets only favour the loop less).
FULL_SIZES = dict(envs=8, steps=128, minibatches=4, features=512, hidden=128, repeats=15)
QUICK_SIZES = dict(envs=4, steps=32, minibatches=2, features=64, hidden=32, repeats=3)
DONE_PROBABILITY = 0.01


def get_states_ignoring_done(lstm: nn.LSTM, hidden, lstm_state, done):
    """One nn.LSTM call that ignores the dones: not the same computation, but the
    floor of what a one-call implementation costs (oneDNN's fused LSTM on the CPU)."""
    out, lstm_state = lstm(hidden, lstm_state)
    return torch.flatten(out, 0, 1), lstm_state


def minibatch(sizes, device, dtype, generator):
    """One minibatch: the rollouts of envs/minibatches environments."""
    batch = sizes["envs"] // sizes["minibatches"]
    hidden = torch.randn(sizes["steps"], batch, sizes["features"], device=device, dtype=dtype,
                         generator=generator)
    state = tuple(torch.randn(1, batch, sizes["hidden"], device=device, dtype=dtype,
                              generator=generator) for _ in range(2))
    done = (torch.rand(sizes["steps"], batch, device=device, generator=generator)
            < DONE_PROBABILITY).to(dtype)
    done[0, 0] = 1.0  # the first environment starts a new episode: h_0 is zeroed there
    done[sizes["steps"] // 2, -1] = 1.0  # and one ends mid-rollout
    return hidden, state, done


def update(get_states, lstm, hidden, state, done, weights):
    """A stand-in for the PPO loss over the new hidden states; returns what it
    computed and the gradients of the inputs and the weights."""
    leaves = [hidden.detach().clone().requires_grad_()] + \
        [s.detach().clone().requires_grad_() for s in state]
    out, (h_n, c_n) = get_states(lstm, leaves[0], (leaves[1], leaves[2]), done)
    loss = (out * weights).sum() + h_n.sum() + c_n.sum()
    grads = torch.autograd.grad(loss, leaves + list(lstm.parameters()))
    return [out, h_n, c_n], list(grads)


def check_equal(loop_lstm, fused_lstm, hidden, state, done, dtype):
    weights = torch.randn(hidden.shape[0] * hidden.shape[1], loop_lstm.hidden_size,
                          device=hidden.device, dtype=dtype)
    values_loop, grads_loop = update(fused_get_states_ref, loop_lstm, hidden, state, done, weights)
    values_fused, grads_fused = update(fused_get_states, fused_lstm, hidden, state, done,
                                       weights)
    worst = 0.0
    for a, b in zip(values_loop + grads_loop, values_fused + grads_fused):
        worst = max(worst, (a - b).abs().max().item())
    return worst


def update_timer(get_states, lstm, hidden, state, done) -> benchmark.Timer:
    weights = torch.randn(hidden.shape[0] * hidden.shape[1], lstm.hidden_size,
                          device=hidden.device, dtype=hidden.dtype)

    def step():
        update(get_states, lstm, hidden, state, done, weights)
    # Timer runs one thread unless told; time what the process runs with.
    return benchmark.Timer("step()", globals={"step": step}, num_threads=torch.get_num_threads())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    device = best_device()
    generator = torch.Generator(device=device).manual_seed(0)
    torch.manual_seed(0)

    # Equality in float64, where the loop and the masked call must agree to rounding.
    loop64 = nn.LSTM(sizes["features"], sizes["hidden"], device=device, dtype=torch.float64)
    fused64 = FusedLSTM(sizes["features"], sizes["hidden"], device=device, dtype=torch.float64)
    fused64.load_state_dict(loop64.state_dict())
    worst = check_equal(loop64, fused64, *minibatch(sizes, device, torch.float64, generator),
                        torch.float64)
    print(f"loop vs masked FusedLSTM, float64: largest difference {worst:.2e} "
          "(outputs, final states, gradients of x, h0, c0 and every weight)")

    # Timing in float32, the two updates taking turns.
    loop = nn.LSTM(sizes["features"], sizes["hidden"], device=device)
    fused = FusedLSTM(sizes["features"], sizes["hidden"], device=device)
    fused.load_state_dict(loop.state_dict())
    inputs = minibatch(sizes, device, torch.float32, generator)
    timers = {"per-step loop (nn.LSTM)": update_timer(fused_get_states_ref, loop, *inputs),
              "one masked FusedLSTM call": update_timer(fused_get_states, fused, *inputs),
              "one nn.LSTM call ignoring the dones (floor, not equal)":
                  update_timer(get_states_ignoring_done, loop, *inputs)}
    samples = {name: [] for name in timers}
    order = list(timers)
    for repeat in range(sizes["repeats"]):
        start = repeat % len(order)
        for name in order[start:] + order[:start]:
            samples[name].append(timers[name].blocked_autorange(min_run_time=0.05).median)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(f"forward+backward of one minibatch ({device}, float32, torch {torch.__version__}; "
          f"B={sizes['envs'] // sizes['minibatches']} environments, T={sizes['steps']}, "
          f"{sizes['features']} features, H={sizes['hidden']}, dones ~{DONE_PROBABILITY}, "
          f"{torch.get_num_threads()} threads; medians of {sizes['repeats']} repeats in "
          f"rotating order):")
    for name, values in samples.items():
        print(f"  {name}: {medians[name] * 1e3:.2f} ms "
              f"(range {min(values) * 1e3:.2f}–{max(values) * 1e3:.2f})")
    speedup = medians["per-step loop (nn.LSTM)"] / medians["one masked FusedLSTM call"]
    floor = medians["one nn.LSTM call ignoring the dones (floor, not equal)"]
    print(f"  speedup of the masked call over the loop: {speedup:.2f}x; the masked call "
          f"takes {medians['one masked FusedLSTM call'] / floor:.2f}x the floor")
    return worst, speedup


if __name__ == "__main__":
    main()
