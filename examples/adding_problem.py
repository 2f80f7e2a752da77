"""The adding problem (Hochreiter & Schmidhuber 1997): can FusedRNN carry two numbers
across T steps? Compares W_hh initializations at T=50 and T=200.

Each step's input is a value drawn from U[0, 1] and a marker channel; exactly two
steps are marked, one in each half of the sequence, and the target is the sum of
the two marked values. Always predicting the mean, 1, gives MSE Var(U+U) = 1/6 ≈
0.167; knowing only the second marked value gives Var(U) = 1/12 ≈ 0.083. Below 1/12
the model carries the first value across at least T/2 steps.

Trains FusedRNN (tanh) + nn.Linear on the last state with init='orthogonal' (the
default: W_hh orthogonal), init='xavier' (W_hh Xavier-uniform) and init='torch'
(nn.RNN's uniform(±1/√H)), same data and seed for each, on the GPU when one is present
and rnn_fused has CUDA kernels. Prints a table and writes learning curves.

Usage: python examples/adding_problem.py [--quick] [--png PATH]
"""
import argparse
import contextlib
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from rnn_fused import FusedRNN, best_device

BASELINE_MSE = 1 / 6
ONE_VALUE_MSE = 1 / 12
INITS = ("orthogonal", "xavier", "torch")
HIDDEN = 64
BATCH = 256
TEST_SEQUENCES = 1000
LEARNING_RATE = 1e-3
# Clipping keeps one exploding step from wrecking a run; it does not help vanishing.
CLIP_NORM = 1.0
# (steps T, training iterations): about 3.5 minutes in all on 2 CPU cores.
FULL_SETTINGS = ((50, 2000), (200, 1000))
QUICK_SETTINGS = ((50, 1000),)
EVAL_EVERY = 50
# Final MSEs closer than this are within one run's noise (see the curves).
TIE_MARGIN = 0.1


@contextlib.contextmanager
def denormals_flushed():
    """Vanishing gradients underflow float32 into denormals, which x86 CPUs handle
    so slowly that a T=200 step with init='torch' takes 4x longer; as zeros they
    change nothing."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def adding_batch(batch: int, steps: int, generator: torch.Generator, device: str):
    """(inputs [T, B, 2]: value and marker, targets [B])."""
    values = torch.rand(steps, batch, generator=generator)
    half = steps // 2
    first = torch.randint(0, half, (batch,), generator=generator)
    second = torch.randint(half, steps, (batch,), generator=generator)
    markers = torch.zeros(steps, batch)
    columns = torch.arange(batch)
    markers[first, columns] = 1.0
    markers[second, columns] = 1.0
    targets = values[first, columns] + values[second, columns]
    return torch.stack([values, markers], dim=-1).to(device), targets.to(device)


class AddingModel(nn.Module):
    def __init__(self, init: str):
        super().__init__()
        self.rnn = FusedRNN(2, HIDDEN, init=init)
        self.head = nn.Linear(HIDDEN, 1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        _, last_state = self.rnn(inputs)
        return self.head(last_state[0]).squeeze(-1)


def train(init: str, steps: int, iterations: int, device: str, seed: int = 0):
    """Test MSE every EVAL_EVERY iterations: [(iteration, mse)], starting at 0."""
    test_inputs, test_targets = adding_batch(TEST_SEQUENCES, steps,
                                             torch.Generator().manual_seed(seed + 1), device)
    data = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = AddingModel(init).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)

    def test_mse() -> float:
        with torch.no_grad():
            return nn.functional.mse_loss(model(test_inputs), test_targets).item()

    curve = [(0, test_mse())]
    progress = tqdm(range(1, iterations + 1), desc=f"T={steps:<3} {init:<10}", leave=True)
    for iteration in progress:
        inputs, targets = adding_batch(BATCH, steps, data, device)
        loss = nn.functional.mse_loss(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
        optimizer.step()
        if iteration % EVAL_EVERY == 0:
            curve.append((iteration, test_mse()))
            progress.set_postfix(test_mse=f"{curve[-1][1]:.4f}")
    return curve


def final_mse(curve) -> float:
    """Mean of the last three evaluations: one evaluation is noisy."""
    return sum(mse for _, mse in curve[-3:]) / len(curve[-3:])


def first_below(curve, level: float):
    """The first evaluated iteration with test MSE below level, or None."""
    return next((iteration for iteration, mse in curve if mse < level), None)


def report(curves) -> None:
    print(f"\nTest MSE on {TEST_SEQUENCES} sequences; 'final' is the mean of the last 3 "
          f"evaluations. Predicting the mean: {BASELINE_MSE:.3f}; knowing only the second "
          f"value: {ONE_VALUE_MSE:.3f}")
    print(f"{'T':>4} {'init':<11} {'iters':>5} {'final':>7} {'best':>7} "
          f"{'iters to <0.167':>15} {'iters to <0.083':>15}")
    for (steps, init), curve in curves.items():
        reached = ["never" if iteration is None else str(iteration)
                   for iteration in (first_below(curve, BASELINE_MSE),
                                     first_below(curve, ONE_VALUE_MSE))]
        print(f"{steps:>4} {init:<11} {curve[-1][0]:>5} {final_mse(curve):7.4f} "
              f"{min(mse for _, mse in curve):7.4f} {reached[0]:>15} {reached[1]:>15}")
    for steps in sorted({steps for steps, _ in curves}):
        finals = {init: final_mse(curve) for (t, init), curve in curves.items() if t == steps}
        if len(finals) > 1:
            print(f"T={steps}: {verdict(finals)}")


def verdict(finals) -> str:
    """Only runs that learned the task (final MSE below 1/12) compete; finals within
    TIE_MARGIN of the best one tie."""
    learned = sorted((mse, init) for init, mse in finals.items() if mse < ONE_VALUE_MSE)
    if not learned:
        return ("no init learned the task (none below 0.083), so orthogonal does NOT "
                "win here")
    best_mse, best = learned[0]
    tied = [init for mse, init in learned if mse <= best_mse * (1 + TIE_MARGIN)]
    if tied == ["orthogonal"]:
        result = "orthogonal wins"
    elif "orthogonal" in tied:
        others = ", ".join(init for init in tied if init != "orthogonal")
        result = (f"orthogonal ties with {others} (final MSE within {TIE_MARGIN:.0%}), "
                  "so it does NOT clearly win")
    else:
        result = f"orthogonal does NOT win: {best} ends lowest"
    failed = [init for init in finals if init not in {init for _, init in learned}]
    return result + (f"; {', '.join(failed)} did not learn it" if failed else "")


def plot(curves, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    all_steps = sorted({steps for steps, _ in curves})
    colors = {"orthogonal": "tab:blue", "xavier": "tab:orange", "torch": "tab:green"}
    figure, axes = plt.subplots(1, len(all_steps), figsize=(5.5 * len(all_steps), 4.2),
                                squeeze=False, sharey=True)
    for axis, steps in zip(axes[0], all_steps, strict=True):
        for (t, init), curve in curves.items():
            if t == steps:
                iterations, mses = zip(*curve, strict=True)
                axis.semilogy(iterations, mses, color=colors[init], label=f"init='{init}'")
        axis.axhline(BASELINE_MSE, color="black", linestyle="--",
                     label="predict the mean (0.167)")
        axis.axhline(ONE_VALUE_MSE, color="gray", linestyle=":",
                     label="know the second value only (0.083)")
        axis.set_title(f"adding problem, T={steps}")
        axis.set_xlabel(f"training iteration (batch {BATCH})")
        axis.grid(True, which="both", alpha=0.3)
    # The untrained model's MSE (about 1.5) would squash the part that matters.
    axes[0][0].set_ylim(top=0.3)
    axes[0][0].set_ylabel("test MSE")
    axes[0][0].legend(fontsize=8)
    figure.suptitle(f"FusedRNN tanh, H={HIDDEN}, Adam lr {LEARNING_RATE}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"wrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"T=50, default init, {QUICK_SETTINGS[0][1]} iterations, no plot")
    parser.add_argument("--png", type=Path, default=Path(__file__).with_suffix(".png"))
    args = parser.parse_args(argv)
    device = best_device()
    settings = QUICK_SETTINGS if args.quick else FULL_SETTINGS
    inits = INITS[:1] if args.quick else INITS
    print(f"device: {device}, torch threads: {torch.get_num_threads()}")
    start = time.perf_counter()
    with denormals_flushed():
        curves = {(steps, init): train(init, steps, iterations, device)
                  for steps, iterations in settings for init in inits}
    report(curves)
    print(f"total {time.perf_counter() - start:.0f} s")
    default_mse = final_mse(curves[50, "orthogonal"])
    assert default_mse < BASELINE_MSE, (
        f"default init at T=50 ends at MSE {default_mse:.4f}, not below {BASELINE_MSE:.3f}")
    if not args.quick:
        plot(curves, args.png)
    return curves


if __name__ == "__main__":
    main()
