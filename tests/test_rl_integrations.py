"""rnn_fused.integrations: each one against the host library's own path, in
float64 where the two must agree to rounding, with episodes starting anywhere."""
import numpy as np
import pytest
import torch
from torch import nn

from rnn_fused import FusedGRU, FusedLSTM
from rnn_fused.integrations.cleanrl import fused_get_states, fused_get_states_ref
from rnn_fused.integrations.episodes import run_with_episode_starts

from helpers import TOLERANCES, report

T, B, F, H = 9, 3, 5, 4


def random_done():
    done = (torch.rand(T, B) < 0.2).to(torch.float64)
    done[0, 0] = done[4, 1] = done[T - 1, 2] = 1.0
    return done.flatten()


@pytest.mark.parametrize("cls, torch_cls", [(FusedLSTM, nn.LSTM), (FusedGRU, nn.GRU)])
def test_fused_get_states_is_cleanrls_loop(cls, torch_cls):
    loop_rnn = torch_cls(F, H, dtype=torch.float64)
    fused = cls(F, H, dtype=torch.float64)
    fused.load_state_dict(loop_rnn.state_dict())
    hidden = torch.randn(T * B, F, dtype=torch.float64)
    shapes = 2 if cls is FusedLSTM else 1
    state = [torch.randn(1, B, H, dtype=torch.float64) for _ in range(shapes)]
    done = random_done()
    weights = torch.randn(T * B, H, dtype=torch.float64)
    results = []
    for get_states, rnn in ((fused_get_states_ref, loop_rnn), (fused_get_states, fused)):
        leaves = [hidden.clone().requires_grad_()] + [s.clone().requires_grad_() for s in state]
        states = tuple(leaves[1:]) if shapes == 2 else leaves[1]
        out, final = get_states(rnn, leaves[0], states, done)
        finals = final if shapes == 2 else (final,)
        loss = (out * weights).sum() + sum(f.square().sum() for f in finals)
        grads = torch.autograd.grad(loss, leaves + list(rnn.parameters()))
        results.append([out, *finals, *grads])
    for k, (expected, actual) in enumerate(zip(*results)):
        report(f"tensor {k}", actual, expected, **TOLERANCES[torch.float64])


def test_integrations_refuse_a_torch_module():
    with pytest.raises(TypeError, match=r"FusedLSTM.from_lstm\(lstm\)"):
        fused_get_states(nn.LSTM(F, H), torch.randn(T * B, F),
                         (torch.zeros(1, B, H), torch.zeros(1, B, H)), torch.zeros(T * B))
    with pytest.raises(TypeError, match="got GRU"):
        run_with_episode_starts(nn.GRU(F, H), torch.randn(T, B, F), torch.zeros(1, B, H),
                                torch.zeros(T, B))


sb3_contrib = pytest.importorskip("sb3_contrib", reason="make installs stable-baselines3-contrib")


def sb3_policies():
    from sb3_contrib.common.recurrent import policies

    from rnn_fused.integrations import sb3
    return [(sb3.FusedLstmPolicy, policies.RecurrentActorCriticPolicy, "box"),
            (sb3.FusedCnnLstmPolicy, policies.RecurrentActorCriticCnnPolicy, "image"),
            (sb3.FusedMultiInputLstmPolicy, policies.RecurrentMultiInputActorCriticPolicy,
             "dict")]


def observation_space(kind):
    import gymnasium as gym
    box = gym.spaces.Box(-1.0, 1.0, (3,), dtype=np.float32)
    image = gym.spaces.Box(0, 255, (1, 36, 36), dtype=np.uint8)
    return {"box": box, "image": image,
            "dict": gym.spaces.Dict({"position": box, "velocity": box})}[kind]


@pytest.mark.parametrize("layers", [1, 2])
def test_sb3_process_sequence_is_the_stock_loop_in_float64(layers):
    """The fused policies' _process_sequence against sb3-contrib's own (its per-step
    loop whenever a start falls in the batch), float64, starts at t=0 and mid-row:
    output, final states and every gradient. (evaluate_actions casts observations to
    float32, so the policies are compared in float32 below.)"""
    from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy

    from rnn_fused.integrations.sb3 import FusedLstmPolicy
    n_seq = 3
    lstm = nn.LSTM(F, H, num_layers=layers, dtype=torch.float64)
    fused = FusedLSTM.from_lstm(lstm)
    features = torch.randn(n_seq * T, F, dtype=torch.float64)
    states = [torch.randn(layers, n_seq, H, dtype=torch.float64) for _ in range(2)]
    # sb3 lays its sequences out one after another: [n_seq · T].
    starts = random_done().view(T, B).t().flatten()
    results = []
    for process, rnn in ((RecurrentActorCriticPolicy._process_sequence, lstm),
                         (FusedLstmPolicy._process_sequence, fused)):
        leaves = [features.clone().requires_grad_()] + [s.clone().requires_grad_()
                                                        for s in states]
        output, final = process(leaves[0], tuple(leaves[1:]), starts, rnn)
        weights = torch.linspace(-1, 1, output.numel(), dtype=torch.float64).view_as(output)
        loss = (output * weights).sum() + sum(f.square().sum() for f in final)
        grads = torch.autograd.grad(loss, leaves + list(rnn.parameters()))
        results.append([output, *final, *grads])
    for k, (expected, actual) in enumerate(zip(*results)):
        report(f"tensor {k}", actual, expected, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("fused_cls, stock_cls, space", sb3_policies(),
                         ids=["mlp", "cnn", "multi-input"])
def test_sb3_policies_evaluate_like_the_stock_ones(fused_cls, stock_cls, space):
    """evaluate_actions on a batch of sequences with episode starts inside them
    (which sb3's stock policy handles with its per-step loop): values,
    log-probabilities, entropy and every gradient."""
    import gymnasium as gym
    from sb3_contrib.common.recurrent.type_aliases import RNNStates
    torch.manual_seed(0)
    obs_space, action_space = observation_space(space), gym.spaces.Discrete(3)
    kwargs = dict(lstm_hidden_size=H, n_lstm_layers=1)
    stock = stock_cls(obs_space, action_space, lambda _: 3e-4, **kwargs)
    fused = fused_cls(obs_space, action_space, lambda _: 3e-4, **kwargs)
    fused.load_state_dict(stock.state_dict())
    assert isinstance(fused.lstm_actor, FusedLSTM)
    assert {id(p) for group in fused.optimizer.param_groups for p in group["params"]} == \
        {id(p) for p in fused.parameters()}
    n_seq, steps = 2, 6

    def sample(space):
        return torch.as_tensor(np.stack([space.sample() for _ in range(n_seq * steps)]))
    observations = {k: sample(s) for k, s in obs_space.spaces.items()} if space == "dict" \
        else sample(obs_space)
    actions = torch.randint(0, 3, (n_seq * steps,))
    starts = torch.zeros(n_seq * steps)
    starts[[0, 3, steps + 4]] = 1.0
    states = tuple(torch.randn(1, n_seq, H) for _ in range(2))
    lstm_states = RNNStates(states, tuple(s.clone() for s in states))
    results = []
    for policy in (stock, fused):
        values, log_prob, entropy = policy.evaluate_actions(observations, actions, lstm_states,
                                                            starts)
        (values.sum() + log_prob.sum() + entropy.sum()).backward()
        results.append([values, log_prob, entropy] + [p.grad for p in policy.parameters()])
    for k, (expected, actual) in enumerate(zip(*results)):
        report(f"tensor {k}", actual, expected, atol=1e-5, rtol=1e-4)


def test_sb3_recurrent_ppo_learns_saves_and_loads(tmp_path):
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.env_util import make_vec_env

    from rnn_fused.integrations.sb3 import FusedLstmPolicy
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = RecurrentPPO(FusedLstmPolicy, env, n_steps=32, batch_size=32, n_epochs=1, seed=0,
                         device="cpu", policy_kwargs=dict(lstm_hidden_size=8))
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(64)
    assert any(not torch.equal(a, p) for a, p in zip(before, model.policy.parameters()))
    model.save(tmp_path / "model")
    loaded = RecurrentPPO.load(tmp_path / "model", env=env, device="cpu")
    assert type(loaded.policy) is FusedLstmPolicy
    assert isinstance(loaded.policy.lstm_actor, FusedLSTM)
    observations = env.reset()
    starts = np.ones(2, dtype=bool)
    actions = [m.predict(observations, state=None, episode_start=starts, deterministic=True)
               for m in (model, loaded)]
    assert np.array_equal(actions[0][0], actions[1][0])
    for a, b in zip(actions[0][1], actions[1][1]):
        assert np.array_equal(a, b)
