"""The persistent CUDA kernel against the float64 per-step path, at the sizes it
is built for. Every other CUDA test runs on it too when scripts/device_check.sh
sets RNN_FUSED_BACKEND=persistent."""
import pytest
import torch

from rnn_fused import FusedRNN, plan

from helpers import TOLERANCES, make_mask, report

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")

T, D = 12, 24
# (B, H): full warps, partly filled warps (H=1000), scalar loads (H % 8 != 0),
# one block per row (H=6), the largest H that fits, and a wide batch.
SHAPES = [(1, 256), (8, 512), (32, 512), (5, 1000), (7, 300), (2, 6), (64, 1024), (200, 128)]


def inputs(batch, hidden, mask_kind):
    x = torch.randn(T, batch, D, dtype=torch.float64)
    h0 = torch.randn(1, batch, hidden, dtype=torch.float64)
    reset = torch.randn(1, batch, hidden, dtype=torch.float64)
    mask = make_mask(mask_kind, batch, T)
    return x, h0, reset, None if mask is None else mask.t()


def outputs_and_grads(module, x, h0, reset, mask, backend):
    x, h0, reset = (t.clone().requires_grad_() for t in (x, h0, reset))
    module.backend = backend
    out, h_n = module(x, h0, mask=mask, reset_state=reset)
    weights = torch.randn(out.shape, device=out.device, dtype=torch.float64)
    ((out.double() * weights).sum() + h_n.double().sum()).backward()
    grads = [x.grad, h0.grad] + ([reset.grad] if mask is not None else [])
    return [out, h_n] + grads + [p.grad for p in module.parameters()]


@pytest.mark.parametrize("batch, hidden", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("mask_kind", ["none", "resets", "blend"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_persistent_matches_float64(batch, hidden, dtype, mask_kind, bidirectional):
    """Outputs and every gradient, relative to each tensor's largest entry."""
    expected_module = FusedRNN(D, hidden, bidirectional=bidirectional, device="cuda",
                               dtype=torch.float64)
    module = FusedRNN(D, hidden, bidirectional=bidirectional, device="cuda", dtype=dtype)
    module.load_state_dict(expected_module.state_dict())
    expected_module.load_state_dict(module.state_dict())  # the rounded weights
    directions = 2 if bidirectional else 1
    x, h0, reset, mask = inputs(batch, hidden, mask_kind)
    h0, reset = h0.repeat(directions, 1, 1), reset.repeat(directions, 1, 1)
    rounded = [t.to(dtype).cuda() for t in (x, h0, reset)]
    if mask is not None:
        mask = mask.to(dtype).cuda()
    torch.manual_seed(1)
    expected = outputs_and_grads(expected_module, *(t.double() for t in rounded),
                                 None if mask is None else mask.double(), "per-step")
    torch.manual_seed(1)
    actual = outputs_and_grads(module, *rounded, mask, "persistent")
    for k, (a, b) in enumerate(zip(actual, expected)):
        scale = max(b.abs().max().item(), 1.0)
        report(f"{dtype} B={batch} H={hidden} tensor {k} / {scale:.2f}", a / scale, b / scale,
               **TOLERANCES[dtype])


@pytest.mark.parametrize("nonlinearity", ["relu", "identity"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_persistent_other_nonlinearities(nonlinearity, dtype):
    batch, hidden = 4, 512
    expected_module = FusedRNN(D, hidden, nonlinearity=nonlinearity, device="cuda",
                               dtype=torch.float64)
    module = FusedRNN(D, hidden, nonlinearity=nonlinearity, device="cuda", dtype=dtype)
    module.load_state_dict(expected_module.state_dict())
    x, h0, reset, mask = (t.cuda() for t in inputs(batch, hidden, "resets"))
    torch.manual_seed(1)
    expected = outputs_and_grads(expected_module, x, h0, reset, mask, "per-step")
    torch.manual_seed(1)
    actual = outputs_and_grads(module, x.to(dtype), h0.to(dtype), reset.to(dtype),
                               mask.to(dtype), "persistent")
    for k, (a, b) in enumerate(zip(actual, expected)):
        scale = max(b.abs().max().item(), 1.0)
        report(f"{nonlinearity} {dtype} tensor {k} / {scale:.2f}", a / scale, b / scale,
               **TOLERANCES[dtype])


def test_persistent_is_deterministic():
    """No atomics in the sums: the same inputs give bit-identical results."""
    module = FusedRNN(D, 512, device="cuda")
    x, h0, reset, mask = (t.cuda().float() for t in inputs(16, 512, "resets"))
    runs = []
    for _ in range(3):
        torch.manual_seed(2)
        runs.append(outputs_and_grads(module, x, h0, reset, mask, "persistent"))
        module.zero_grad()
    for first, *others in zip(*runs):
        assert all(torch.equal(first, other) for other in others)


def test_persistent_and_per_step_agree_over_long_sequences():
    """T=2000: errors do not grow along the sequence (each step's exchange is complete)."""
    module = FusedRNN(64, 512, device="cuda")
    x = torch.randn(2000, 8, 64, device="cuda")
    mask = torch.rand(2000, 8, device="cuda") > 0.01
    with torch.no_grad():
        module.backend = "per-step"
        expected = module(x, mask=mask)[0]
        module.backend = "persistent"
        actual = module(x, mask=mask)[0]
    report("T=2000 output", actual, expected, atol=1e-4, rtol=1e-4)
    report("T=2000 last 100 steps", actual[-100:], expected[-100:], atol=1e-4, rtol=1e-4)


def test_forced_persistent_that_does_not_fit_is_a_clear_error():
    module = FusedRNN(8, 4096, device="cuda", backend="persistent")
    assert plan(2, 4096, dtype=torch.float32, device="cuda", backend="persistent").backend is None
    with pytest.raises(ValueError, match="does not fit B=2, H=4096"):
        module(torch.randn(3, 2, 8, device="cuda"))


@pytest.mark.parametrize("batch, hidden, dtype", [(8, 512, torch.float32), (64, 1024, torch.float32),
                                                  (64, 1024, torch.bfloat16), (256, 512, torch.float32)])
def test_auto_takes_the_path_plan_names(batch, hidden, dtype):
    """What plan() says is what runs: the kernels' profiler scopes name the path."""
    expected = plan(batch, hidden, steps=4, dtype=dtype, device="cuda").backend
    module = FusedRNN(8, hidden, device="cuda", dtype=dtype)
    x = torch.randn(4, batch, 8, device="cuda", dtype=dtype, requires_grad=True)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        module(x)[0].float().sum().backward()
    names = {event.name for event in prof.events()}
    assert f"rnn_fused::cuda_forward({expected})" in names
    assert f"rnn_fused::cuda_backward({expected})" in names
