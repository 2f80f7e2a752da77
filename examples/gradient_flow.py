"""How far back does a gradient reach? ||dL/dh_t|| for a loss on the last step of an
Elman RNN (FusedRNN), T=200, for identity and tanh activations, Xavier and
orthogonal W_hh, each rescaled to spectral radius 0.9, 1.0 and 1.1.

Exact gradients from the fused op: autograd cannot hook h_t inside FusedRNN's
kernel, but it does return dL/dx. With input_size == hidden_size, W_ih = I and zero
biases, a_t = x_t + h_{t-1} W_hhᵀ, so dL/dx_t = dL/da_t exactly, and since h_t only
reaches the loss through a_{t+1} (or directly, at t = T-1):

    dL/dh_t = dL/da_{t+1} W_hh   (t < T-1),        dL/dh_{T-1} = dL/dh_n.

The x_t fed in stands for the input projection x_t W_ihᵀ of any real input; what the
gradient does over time depends on W_hh and φ alone. The script checks these
gradients against a step-by-step autograd loop that keeps every h_t.

Usage: python examples/gradient_flow.py [--quick] [--png PATH]
"""
import argparse
from pathlib import Path

import torch

from rnn_fused import FusedRNN

STEPS = 200
HIDDEN = 64
BATCH = 32
# Small inputs keep tanh near its linear range at first; at radius >= 1 the state
# still grows until tanh saturates, which is part of what the plot shows.
DRIVE_STD = 0.1
RADII = (0.9, 1.0, 1.1)
INITS = ("orthogonal", "xavier")
ACTIVATIONS = ("identity", "tanh")
TABLE_STEPS = (STEPS - 1, 150, 100, 50, 0)


def spectral_radius(matrix: torch.Tensor) -> float:
    return torch.linalg.eigvals(matrix).abs().max().item()


def make_rnn(activation: str, init: str, radius: float, seed: int) -> FusedRNN:
    torch.manual_seed(seed)
    rnn = FusedRNN(HIDDEN, HIDDEN, nonlinearity=activation, init=init, dtype=torch.float64)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.eye(HIDDEN))
        rnn.weight_hh_l0.mul_(radius / spectral_radius(rnn.weight_hh_l0))
    return rnn


def state_gradients(rnn: FusedRNN, drive: torch.Tensor, loss_direction: torch.Tensor):
    """(dL/dh_t for every t [T, B, H], the states h_t [T, B, H]) for L = Σ_b <h_{T-1}, v>."""
    drive = drive.clone().requires_grad_()
    states, h_n = rnn(drive)
    (h_n[0] @ loss_direction).sum().backward()
    grads = torch.cat([drive.grad[1:] @ rnn.weight_hh_l0.detach(),
                       loss_direction.expand_as(drive[:1])])
    return grads, states.detach()


def loop_state_gradients(rnn: FusedRNN, drive: torch.Tensor, loss_direction: torch.Tensor):
    """The same gradients from plain autograd over a Python loop, kept per h_t."""
    activation = {"identity": lambda a: a, "tanh": torch.tanh}[rnn.nonlinearity]
    weight_hh = rnn.weight_hh_l0.detach()
    state = drive.new_zeros(drive.shape[1:])
    states = []
    # A drive that requires grad puts every state in autograd's graph.
    for drive_t in drive.clone().requires_grad_():
        state = activation(drive_t + state @ weight_hh.T)
        state.retain_grad()
        states.append(state)
    (states[-1] @ loss_direction).sum().backward()
    return torch.stack([s.grad for s in states])


def measure(seed: int = 0):
    """({(activation, init, radius): ||dL/dh_t|| [T], averaged over the batch},
    {same keys: mean φ'(a_t)}), each gradient checked against the loop."""
    generator = torch.Generator().manual_seed(seed)
    drive = DRIVE_STD * torch.randn(STEPS, BATCH, HIDDEN, generator=generator,
                                    dtype=torch.float64)
    loss_direction = torch.randn(HIDDEN, generator=generator, dtype=torch.float64)
    loss_direction /= loss_direction.norm()
    norms, slopes = {}, {}
    for activation in ACTIVATIONS:
        for init in INITS:
            for radius in RADII:
                rnn = make_rnn(activation, init, radius, seed)
                grads, states = state_gradients(rnn, drive, loss_direction)
                expected = loop_state_gradients(rnn, drive, loss_direction)
                # Relative to each step's size, so vanishing gradients are checked too.
                scale = expected.norm(dim=(1, 2), keepdim=True)
                torch.testing.assert_close(grads / scale, expected / scale)
                key = activation, init, radius
                # tanh'(a) = 1 - h²: how much of the gradient each step lets through.
                slopes[key] = float((1 - states.square()).mean()) if activation == "tanh" else 1.0
                norms[key] = grads.norm(dim=-1).mean(dim=-1)
    return norms, slopes


def check_theory(norms):
    """Identity activation: the gradient is W_hhᵀ^(T-1-t) v, so it shrinks at radius
    0.9 and grows at 1.1; orthogonal W_hh scales every direction by exactly the radius."""
    span = STEPS - 1
    for init in INITS:
        assert norms["identity", init, 0.9][0] < 1e-3, "radius 0.9 should vanish"
        assert norms["identity", init, 1.1][0] > 1e3, "radius 1.1 should explode"
    for radius in RADII:
        expected = radius ** torch.arange(span, -1, -1, dtype=torch.float64)
        torch.testing.assert_close(norms["identity", "orthogonal", radius], expected)


def print_table(norms, slopes):
    header = " | ".join(f"{f't={t}':>8}" for t in TABLE_STEPS)
    print(f"||dL/dh_t||, loss on h_{STEPS - 1}, mean over {BATCH} sequences, H={HIDDEN}, "
          f"input drive std {DRIVE_STD}")
    print(f"{'activation':<10} {'W_hh':<10} radius | mean φ' | {header}")
    for (activation, init, radius), curve in norms.items():
        values = " | ".join(f"{curve[t].item():8.2e}" for t in TABLE_STEPS)
        slope = slopes[activation, init, radius]
        print(f"{activation:<10} {init:<10} {radius:>6} | {slope:7.3f} | {values}")


def plot(norms, path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {0.9: "tab:blue", 1.0: "tab:green", 1.1: "tab:red"}
    styles = {"orthogonal": "-", "xavier": "--"}
    figure, axes = plt.subplots(1, len(ACTIVATIONS), figsize=(11, 4.2), sharey=True)
    for axis, activation in zip(axes, ACTIVATIONS, strict=True):
        for (act, init, radius), curve in norms.items():
            if act == activation:
                axis.semilogy(curve.numpy(), styles[init], color=colors[radius],
                              label=f"{init}, radius {radius}")
        axis.set_title(f"{activation} activation")
        axis.set_xlabel("timestep t (loss on the last step, t = 199)")
        axis.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("||dL/dh_t||")
    axes[0].legend(fontsize=8)
    figure.suptitle(f"Gradient reaching h_t, FusedRNN H={HIDDEN}, T={STEPS}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"wrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="measure and check only, no plot")
    parser.add_argument("--png", type=Path, default=Path(__file__).with_suffix(".png"))
    args = parser.parse_args(argv)
    norms, slopes = measure()
    print_table(norms, slopes)
    check_theory(norms)
    print("identity activation: decays at radius 0.9, grows at 1.1, as theory says")
    if not args.quick:
        plot(norms, args.png)
    return norms


if __name__ == "__main__":
    main()
