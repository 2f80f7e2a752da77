"""The examples' quick modes, and the claims each example makes."""
import importlib.util
from pathlib import Path

import pytest
import torch

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gradient_flow_vanishes_below_radius_one_and_explodes_above():
    gradient_flow = load_example("gradient_flow")
    norms = gradient_flow.main(["--quick"])
    span = gradient_flow.STEPS - 1
    for init in gradient_flow.INITS:
        vanishing = norms["identity", init, 0.9]
        exploding = norms["identity", init, 1.1]
        # 0.9**199 ≈ 8e-10 and 1.1**199 ≈ 2e8; Xavier's non-normal W_hh lands near those.
        assert vanishing[0] < 1e-6 * vanishing[-1]
        assert exploding[0] > 1e6 * exploding[-1]
        assert (vanishing[1:] > vanishing[:-1]).all(), "should shrink at every step back"
    # An orthogonal W_hh times the radius scales every direction by exactly the radius.
    for radius in gradient_flow.RADII:
        expected = radius ** torch.arange(span, -1, -1, dtype=torch.float64)
        torch.testing.assert_close(norms["identity", "orthogonal", radius], expected)


@pytest.fixture
def one_thread():
    """For the examples that train: beside another xdist worker on two cores, two
    threads' spinning made them several times slower (the RecurrentPPO run: 124 s on
    two threads, 21 s on one; the adding problem: 85–147 s in CI, 17 s alone)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_adding_problem_default_init_beats_the_baselines_at_t50(one_thread):
    adding_problem = load_example("adding_problem")
    curves = adding_problem.main(["--quick"])
    final = adding_problem.final_mse(curves[50, "orthogonal"])
    assert final < adding_problem.BASELINE_MSE
    # Below Var(U) = 1/12 it must have carried the first marked value, 25+ steps back.
    assert final < adding_problem.ONE_VALUE_MSE


def test_rl_rollout_in_one_call_matches_the_per_step_loop():
    rl_rollout = load_example("rl_rollout")
    rollout, results, _ = rl_rollout.main(["--quick"])
    # The comparison must cover every path: a carried state, and resets both at step 0
    # (of h_0) and mid-rollout (through the mask).
    assert rollout.initial_state.abs().max() > 0
    assert rollout.episode_start[0].any() and rollout.episode_start[1:].any()
    states, final_state, gradients = results["one FusedRNN call + mask"]
    for loop in ("per-step loop, nn.RNN", "per-step loop, FusedRNN"):
        loop_states, loop_final_state, loop_gradients = results[loop]
        torch.testing.assert_close(states, loop_states)
        torch.testing.assert_close(final_state, loop_final_state)
        for gradient, loop_gradient in zip(gradients, loop_gradients, strict=True):
            torch.testing.assert_close(gradient, loop_gradient)


def test_cleanrl_lstm_update_masked_call_equals_the_loop():
    cleanrl = load_example("cleanrl_lstm_update")
    worst, _ = cleanrl.main(["--quick"])
    assert worst < 1e-10


def test_sb3_recurrent_ppo_policies_evaluate_like_the_stock_policy():
    """On a recorded rollout with episode starts, the FusedLSTM policy's
    evaluate_actions equals sb3-contrib's own: values, log-probs, entropy and
    every gradient (float32; FusedLSTM's CPU gates use a vectorized tanh)."""
    pytest.importorskip("sb3_contrib", reason="make installs stable-baselines3-contrib")
    sb3 = load_example("sb3_recurrent_ppo")
    worst, starts = sb3.main(["--quick"])
    assert starts > 0
    assert worst["FusedLSTM"] < 1e-4
    assert worst["one-call nn.LSTM"] < 1e-4


@pytest.mark.slow
def test_sb3_recurrent_ppo_learns_with_the_fused_policy(one_thread):
    """RecurrentPPO with FusedLstmPolicy learns CartPole with its velocities hidden
    (a task that needs memory): after 30k steps (about 20 s) its mean return is at
    least 1.5 times its first rollout's, an untrained policy's (19.0 to 45.0 with seed
    0 on the AVX2 machine: a margin for other CPUs' rounding). The full example
    compares it with the stock policy over two seeds (docs/integrations.md)."""
    pytest.importorskip("sb3_contrib", reason="make installs stable-baselines3-contrib")
    sb3 = load_example("sb3_recurrent_ppo")
    _, _, curve = sb3.train("FusedLSTM", dict(sb3.FULL, timesteps=30_000), seed=0)
    (_, first), (_, last) = curve[0], curve[-1]
    print(f"mean return: first rollout {first:.1f}, after {curve[-1][0]} steps {last:.1f}")
    assert last >= 1.5 * first
