"""The persistent GRU/LSTM kernel (CUDA, one launch per layer and direction)
against the float64 per-step loop, at the sizes it is built for; and the plan
that names it. 'auto' does not take it yet, so every test forces it."""
import pytest
import torch
from torch.testing._internal.optests import opcheck

from rnn_fused import FusedGRU, FusedLSTM, plan

from helpers import layer as gated_layer
from helpers import MASK_KINDS, MULTIPROCESSORS, TOLERANCES, make_mask, report

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")

T, D = 12, 24
MODULES = {"gru": FusedGRU, "lstm": FusedLSTM}
# (B, H): 4 units per block at B <= 8 (H=256: 64 blocks), 2 where 1 would need
# more blocks than SMs (B=32, H=256), the largest H that fits (512: 128 blocks
# of 4, one per multiprocessor; 456 on an H100 PCIe's 114), scalar loads
# (H % L != 0: 100, 6), a wide batch (200 rows, 1 unit per block), and B·J at
# its limit (1024 rows of 1 unit).
SHAPES = [(1, 128), (8, 256), (32, 256), (5, 100), (2, 6), (64, min(512, 4 * MULTIPROCESSORS)),
          (200, 128), (1024, 64)]


def require(cell, batch, hidden, dtype):
    """These shapes fit on the Hopper GPUs this project targets; a plan that
    says otherwise is a failure, not a skip."""
    chosen = plan(batch, hidden, steps=T, dtype=dtype, device="cuda", backend="persistent",
                  cell=cell)
    assert chosen.backend == "persistent", chosen.reason


def inputs(cell, batch, hidden, mask_kind, directions=1):
    x = torch.randn(T, batch, D, dtype=torch.float64)
    states = [torch.randn(directions, batch, hidden, dtype=torch.float64)
              for _ in range(2 if cell == "lstm" else 1)]
    resets = [torch.randn(directions, batch, hidden, dtype=torch.float64) for _ in states]
    mask = make_mask(mask_kind, batch, T)
    return x, states, resets, None if mask is None else mask.t()


def outputs_and_grads(module, x, states, resets, mask, backend):
    """Outputs, final states and the gradients of a random weighting of all of
    them with respect to x, the initial states, the reset states and every weight."""
    x = x.clone().requires_grad_()
    states = [s.clone().requires_grad_() for s in states]
    resets = [r.clone().requires_grad_() for r in resets]
    lstm = len(states) == 2
    module.backend = backend
    out, final = module(x, tuple(states) if lstm else states[0], mask=mask,
                        reset_state=None if mask is None else
                        (tuple(resets) if lstm else resets[0]))
    finals = list(final) if lstm else [final]
    loss = sum((t.double() * torch.randn(t.shape, device=t.device, dtype=torch.float64)).sum()
               for t in [out] + finals)
    loss.backward()
    grads = [x.grad] + [s.grad for s in states] + ([r.grad for r in resets] if mask is not None
                                                   else [])
    return [out] + finals + grads + [p.grad for p in module.parameters()]


def compare(cell, module, expected_module, batch, hidden, dtype, mask_kind, directions=1):
    x, states, resets, mask = inputs(cell, batch, hidden, mask_kind, directions)
    rounded = [t.to(dtype).cuda() for t in [x] + states + resets]
    x, states, resets = rounded[0], rounded[1:1 + len(states)], rounded[1 + len(states):]
    if mask is not None:
        mask = mask.to(dtype).cuda()
    torch.manual_seed(1)
    expected = outputs_and_grads(expected_module, x.double(), [s.double() for s in states],
                                 [r.double() for r in resets],
                                 None if mask is None else mask.double(), "per-step")
    torch.manual_seed(1)
    actual = outputs_and_grads(module, x, states, resets, mask, "persistent")
    assert len(actual) == len(expected)
    for k, (a, b) in enumerate(zip(actual, expected)):
        scale = max(b.abs().max().item(), 1.0)
        report(f"{cell} {dtype} B={batch} H={hidden} tensor {k} / {scale:.2f}", a / scale,
               b / scale, **TOLERANCES[dtype])


def module_pair(cell, hidden, dtype, **config):
    expected = MODULES[cell](D, hidden, device="cuda", dtype=torch.float64, **config)
    module = MODULES[cell](D, hidden, device="cuda", dtype=dtype, **config)
    module.load_state_dict(expected.state_dict())
    expected.load_state_dict(module.state_dict())  # the rounded weights
    return module, expected


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("batch, hidden", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("mask_kind", ["none", "resets", "blend"])
def test_kernel_matches_float64(cell, batch, hidden, dtype, mask_kind):
    """Outputs, final states and every gradient, relative to each tensor's largest entry."""
    require(cell, batch, hidden, dtype)
    module, expected = module_pair(cell, hidden, dtype)
    compare(cell, module, expected, batch, hidden, dtype, mask_kind)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_two_layers_both_directions(cell, dtype):
    """The reverse direction, a second layer reading the first, without bias."""
    batch, hidden = 6, 64
    require(cell, batch, hidden, dtype)
    module, expected = module_pair(cell, hidden, dtype, num_layers=2, bidirectional=True,
                                   bias=False)
    compare(cell, module, expected, batch, hidden, dtype, "resets", directions=4)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("mask_kind", MASK_KINDS)
def test_kernel_gradcheck(cell, mask_kind, reverse):
    """float64 gradcheck of the gated op on the kernel: every output (h_t, h_n,
    and the LSTM's c_n and every c_t) against every input; 20 units, so 5 to 20
    blocks, and a partly filled warp."""
    batch, hidden, steps, gates = 3, 20, 5, 4 if cell == "lstm" else 3
    require(cell, batch, hidden, torch.float64)

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, device="cuda", dtype=torch.float64) * scale).requires_grad_()
    mask = make_mask(mask_kind, batch, steps, "cuda")
    lstm = cell == "lstm"
    args = dict(input=rand(steps, batch, 4), weight_ih=rand(gates * hidden, 4, scale=0.5),
                weight_hh=rand(gates * hidden, hidden, scale=0.3), bias_ih=rand(gates * hidden),
                bias_hh=rand(gates * hidden), hx=rand(batch, hidden),
                cx=rand(batch, hidden) if lstm else None,
                mask=None if mask is None else mask.t().double(),
                reset_h=None if mask is None else rand(batch, hidden),
                reset_c=None if mask is None or not lstm else rand(batch, hidden))
    names = [k for k, v in args.items() if isinstance(v, torch.Tensor) and v.requires_grad]

    def fn(*tensors):
        call = dict(args, **dict(zip(names, tensors)))
        out, h_n, c_n, cells = gated_layer(**call, cell=cell, reverse=reverse,
                                           backend="persistent")
        return (out, h_n, c_n, cells) if lstm else (out, h_n)

    assert torch.autograd.gradcheck(fn, [args[n] for n in names])


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_opcheck(cell):
    batch, hidden, gates = 3, 16, 4 if cell == "lstm" else 3
    lstm = cell == "lstm"

    def rand(*shape):
        return torch.randn(*shape, device="cuda", requires_grad=True)
    mask = make_mask("resets", batch, T, "cuda").t().float()
    args = (rand(T, batch, 4), rand(gates * hidden, 4), rand(gates * hidden, hidden),
            rand(gates * hidden), rand(gates * hidden), rand(batch, hidden),
            rand(batch, hidden) if lstm else None, mask, rand(batch, hidden),
            rand(batch, hidden) if lstm else None)
    opcheck(torch.ops.rnn_fused.layer_forward.default,
            args + (cell, False, "persistent"))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_kernel_is_deterministic(cell):
    """No atomics in the sums: the same inputs give bit-identical results."""
    module = MODULES[cell](D, 256, device="cuda")
    x, states, resets, mask = inputs(cell, 16, 256, "resets")
    x, mask = x.float().cuda(), mask.float().cuda()
    states, resets = [s.float().cuda() for s in states], [r.float().cuda() for r in resets]
    runs = []
    for _ in range(3):
        torch.manual_seed(2)
        runs.append(outputs_and_grads(module, x, states, resets, mask, "persistent"))
        module.zero_grad()
    for first, *others in zip(*runs):
        assert all(torch.equal(first, other) for other in others)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_kernel_and_per_step_agree_over_long_sequences(cell):
    """T=2000: errors do not grow along the sequence (each step's exchange is complete)."""
    module = MODULES[cell](64, 256, device="cuda")
    x = torch.randn(2000, 8, 64, device="cuda")
    mask = torch.rand(2000, 8, device="cuda") > 0.01
    with torch.no_grad():
        module.backend = "per-step"
        expected = module(x, mask=mask, reset_state=0.0)[0]
        module.backend = "persistent"
        actual = module(x, mask=mask, reset_state=0.0)[0]
    report(f"{cell} T=2000 output", actual, expected, atol=1e-4, rtol=1e-4)
    report(f"{cell} T=2000 last 100 steps", actual[-100:], expected[-100:], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_a_kernel_that_does_not_fit_raises_and_the_context_stays_usable(cell):
    """H=2048 needs more gate rows than a block's warps cover: refused before
    launch with a ValueError, and CUDA keeps working."""
    module = MODULES[cell](8, 2048, device="cuda", backend="persistent")
    chosen = plan(2, 2048, dtype=torch.float32, device="cuda", backend="persistent", cell=cell)
    assert chosen.backend is None and "does not fit B=2, H=2048" in chosen.reason
    with pytest.raises(ValueError, match="does not fit B=2, H=2048"):
        module(torch.randn(3, 2, 8, device="cuda"))
    module.backend = "auto"
    out = module(torch.randn(3, 2, 8, device="cuda"))[0]
    torch.cuda.synchronize()
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_plan_and_profile_name_the_path(cell):
    """'auto' keeps the per-step loop until the kernel is measured; 'persistent'
    runs it, forward and backward, as the profiler's scopes show."""
    assert plan(8, 256, device="cuda", cell=cell).backend == "per-step"
    chosen = plan(8, 256, device="cuda", backend="persistent", cell=cell)
    assert chosen.backend == "persistent" and "hidden units per block" in chosen.reason
    assert plan(8, 256, device="cuda", backend="cluster", cell=cell).backend is None
    module = MODULES[cell](8, 256, device="cuda", backend="persistent")
    x = torch.randn(4, 8, 8, device="cuda", requires_grad=True)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        module(x)[0].sum().backward()
    names = {event.name for event in prof.events()}
    assert "rnn_fused::cuda_forward(persistent)" in names
    assert "rnn_fused::cuda_backward(persistent)" in names
