"""rnn_fused.integrations.torchrl against TorchRL's own LSTMModule and GRUModule
(the pad backend: rows split at is_init into padded trajectories), float64, with
episodes starting at t=0 and mid-row: outputs, the states TorchRL writes at each
trajectory's end, and every gradient, stored states included."""
import pytest
import torch

torchrl = pytest.importorskip("torchrl")
from tensordict import TensorDict  # noqa: E402
from torchrl.modules import GRUModule, LSTMModule, set_recurrent_mode  # noqa: E402

import rnn_fused.integrations.torchrl  # noqa: E402
from rnn_fused import FusedGRU, FusedLSTM  # noqa: E402
from rnn_fused.integrations.torchrl import FusedGRUModule, FusedLSTMModule  # noqa: E402

from helpers import report  # noqa: E402

B, T, D, H = 3, 8, 4, 5
EXACT = dict(atol=1e-12, rtol=1e-12)
PAIRS = {"lstm": (LSTMModule, FusedLSTMModule), "gru": (GRUModule, FusedGRUModule)}


def module_pair(kind, **options):
    torchrl_cls, fused_cls = PAIRS[kind]
    reference = torchrl_cls(input_size=D, hidden_size=H, in_key="x", out_key="y",
                            **options).double()
    fused = fused_cls(input_size=D, hidden_size=H, in_key="x", out_key="y", **options).double()
    fused.load_state_dict(reference.state_dict())
    return reference, fused


def state_widths(module):
    rnn = module.lstm if isinstance(module, LSTMModule) else module.gru
    count = rnn.num_layers * (2 if rnn.bidirectional else 1)
    if isinstance(module, LSTMModule):
        return count, [rnn.proj_size or rnn.hidden_size, rnn.hidden_size]
    return count, [rnn.hidden_size]


def random_is_init(batch_shape):
    is_init = torch.rand(*batch_shape, 1) < 0.25
    is_init[..., 0, :] = True
    steps = batch_shape[-1]
    is_init.view(-1, steps, 1)[0, steps // 2] = True  # one start mid-row at least
    return is_init


def run(module, inputs, recurrent=True):
    """Outputs and the gradients of every input and parameter, as TorchRL hands them on."""
    leaves = {k: v.clone().requires_grad_() for k, v in inputs.items() if k != "is_init"}
    td = TensorDict({**leaves, "is_init": inputs["is_init"]},
                    batch_size=inputs["is_init"].shape[:-1])
    with set_recurrent_mode(recurrent):
        out = module(td)
    results = [out[key] for key in module.out_keys]
    weights = [torch.linspace(-1, 1, r.numel(), dtype=r.dtype).view_as(r) for r in results]
    loss = sum((w * r).sum() for w, r in zip(weights, results))
    grads = torch.autograd.grad(loss, [*leaves.values(), *module.parameters()])
    return results + list(grads)


def inputs_for(module, batch_shape=(B, T), with_states=True):
    count, widths = state_widths(module)
    inputs = {"x": torch.randn(*batch_shape, D, dtype=torch.float64),
              "is_init": random_is_init(batch_shape)}
    if with_states:
        for key, width in zip(module.in_keys[1:], widths):
            inputs[key] = torch.randn(*batch_shape, count, width, dtype=torch.float64)
    return inputs


def assert_same(name, actual, expected):
    assert len(actual) == len(expected)
    for k, (a, e) in enumerate(zip(actual, expected)):
        report(f"{name} {k}", a, e, **EXACT)


@pytest.mark.parametrize("kind", list(PAIRS))
@pytest.mark.parametrize("options", [dict(), dict(num_layers=2), dict(num_layers=2, proj_size=3)],
                         ids=["one-layer", "two-layers", "projections"])
def test_recurrent_mode_matches_torchrl(kind, options, monkeypatch):
    if "proj_size" in options and kind == "gru":
        pytest.skip("GRUs have no projections")
    reference, fused = module_pair(kind, **options)
    inputs = inputs_for(reference)
    expected = run(reference, inputs)

    def no_split(*args):
        raise AssertionError("the fused module took TorchRL's split-and-pad path")
    monkeypatch.setattr(torchrl.modules.tensordict_module.rnn, "_split_and_pad_for_reset",
                        no_split)
    assert_same(f"{kind} {options}", run(fused, inputs), expected)


@pytest.mark.parametrize("kind", list(PAIRS))
def test_three_batch_dims_and_no_stored_states(kind):
    """[E, B, T] rows flatten as TorchRL flattens them; absent states are zeros."""
    reference, fused = module_pair(kind, num_layers=2)
    inputs = inputs_for(reference, batch_shape=(2, B, T), with_states=False)
    assert_same(kind, run(fused, inputs), run(reference, inputs))


@pytest.mark.parametrize("kind", list(PAIRS))
@pytest.mark.parametrize("options", [dict(), dict(num_layers=2, bidirectional=True)],
                         ids=["unidirectional", "bidirectional"])
def test_sequential_mode_and_bidirectional_take_torchrls_path(kind, options):
    """One step at a time (collectors), and a bidirectional module in recurrent
    mode, run TorchRL's own code around the fused module: the same results."""
    reference, fused = module_pair(kind, **options)
    recurrent = "bidirectional" in options
    batch_shape = (B, T) if recurrent else (B, 1)
    inputs = inputs_for(reference, batch_shape=batch_shape)
    assert_same(kind, run(fused, inputs, recurrent), run(reference, inputs, recurrent))


def test_modules_are_torchrls_with_fused_inside():
    reference, fused = module_pair("lstm", num_layers=2)
    assert isinstance(fused, LSTMModule) and isinstance(fused.lstm, FusedLSTM)
    assert fused.in_keys == reference.in_keys and fused.out_keys == reference.out_keys
    primer = fused.make_tensordict_primer()
    assert set(primer.primers.keys()) == set(reference.make_tensordict_primer().primers.keys())
    gru = FusedGRUModule(input_size=D, hidden_size=H, in_key="x", out_key="y")
    assert isinstance(gru, GRUModule) and isinstance(gru.gru, FusedGRU)


def test_refuses_what_it_cannot_run():
    with pytest.raises(ValueError, match="python_based=True is TorchRL's own Python LSTM"):
        FusedLSTMModule(input_size=D, hidden_size=H, in_key="x", out_key="y", python_based=True)
    with pytest.raises(ValueError, match="recurrent_backend must be 'pad' or 'auto'"):
        FusedGRUModule(input_size=D, hidden_size=H, in_key="x", out_key="y",
                       recurrent_backend="scan")


@pytest.mark.parametrize("kind", list(PAIRS))
def test_keys_as_keywords_and_make_python_based(kind, monkeypatch):
    """TorchRL's modules take their in_keys as keyword arguments. After
    make_python_based() the inner RNN is TorchRL's, whose mask= freezes the carry:
    the fused call must not take it. (In float32: TorchRL's Python GRU keeps
    float32 weights for a float64 module.)"""
    reference, fused = module_pair(kind, num_layers=2)
    inputs = inputs_for(reference)
    run_rows = rnn_fused.integrations.torchrl._run_rows
    calls = []

    def counted(*args):
        calls.append(args)
        return run_rows(*args)
    monkeypatch.setattr(rnn_fused.integrations.torchrl, "_run_rows", counted)
    with set_recurrent_mode(True):
        # A keyword call returns the out_keys' values, in order.
        assert_same(f"{kind} by keyword", fused(**inputs), reference(**inputs))
        assert len(calls) == 1
        inputs = {k: v if k == "is_init" else v.float() for k, v in inputs.items()}
        for module in (reference, fused):
            module.float().make_python_based()
        assert_same(f"{kind} python-based", fused(**inputs), reference(**inputs))
    assert len(calls) == 1
