"""CUDA-only checks, for every cell: low-precision dtypes against float64,
cuDNN parity, streams, CUDA graphs, autocast, torch.compile's CUDA graphs.
Everything else runs on CUDA through the `device` fixture."""
import pytest
import torch

from rnn_fused import FusedLSTM, FusedRNN
from rnn_fused.reference import run_stack

from helpers import (CELLS, KINDS, TOLERANCES, as_hx, fused_module, make_mask, nn_module,
                     outputs_and_grads, random_states, report)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")

B, T, D, H = 4, 9, 6, 8


def test_cuda_kernels_are_built():
    for name in ("layer_forward", "layer_backward"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"rnn_fused::{name}", "CUDA")


def test_lstm_projections_are_declined_with_the_reason():
    """Until CUDA's per-step loop has run an LSTM with projections on a GPU."""
    lstm = FusedLSTM(D, H, proj_size=H // 2, device="cuda")
    with pytest.raises(ValueError, match="does not run an LSTM with proj_size > 0"):
        lstm(torch.randn(T, B, D, device="cuda"))


def test_resets_per_step_are_declined_with_the_reason():
    """Until CUDA's per-step loop has run reset states given per step on a GPU."""
    gru = fused_module("gru", D, H, device="cuda")
    with pytest.raises(ValueError, match="does not run reset states given per step"):
        gru(torch.randn(T, B, D, device="cuda"), mask=torch.ones(T, B, device="cuda"),
            reset_state=torch.zeros(1, T, B, H, device="cuda"))


def run(module, x, h0, reset, mask):
    x, h0, reset = (t.clone().requires_grad_() for t in (x, h0, reset))
    out, h_n = module(x, h0, mask=mask, reset_state=reset)
    weights = torch.linspace(-1, 1, out.numel(), device=out.device).view_as(out)
    ((out.float() * weights).sum() + h_n.float().sum()).backward()
    grads = [x.grad, h0.grad, reset.grad] + [p.grad for p in module.parameters()]
    return [out, h_n] + grads


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("mask_kind", ["none", "resets", "blend"])
@pytest.mark.parametrize("cell", CELLS)
def test_cuda_matches_cpu_and_reference(dtype, mask_kind, cell):
    """float64 on the CPU, from the same (rounded) weights, inputs and mask, is the
    expected value; errors are measured relative to each tensor's largest entry,
    because gradients are sums with cancellation."""
    cuda = fused_module(cell, D, H, 2, bidirectional=True, device="cuda", dtype=dtype)
    cpu = fused_module(cell, D, H, 2, bidirectional=True, dtype=torch.float64)
    cpu.load_state_dict(cuda.state_dict())
    x = torch.randn(T, B, D).to(dtype).double()
    states = [s.to(dtype).double() for s in random_states(cell, (4, B, H))]
    mask = make_mask(mask_kind, B, T)
    if mask is not None:
        mask = mask.t().to(dtype).double()  # the kernels blend with the input dtype's mask
    resets = [r.to(dtype).double() for r in random_states(cell, (4, B, H))] \
        if mask is not None else []
    expected = outputs_and_grads(cpu, x, states, mask, resets)
    actual = outputs_and_grads(cuda, x.cuda().to(dtype), [s.cuda().to(dtype) for s in states],
                               None if mask is None else mask.cuda(),
                               [r.cuda().to(dtype) for r in resets])
    # In half precision, relu pre-activations near zero flip sign, which moves
    # whole gradient rows; only the forward values are comparable there.
    half = dtype in (torch.float16, torch.bfloat16)
    compared = 1 + len(states) if half and cell == "rnn_relu" else len(expected)
    assert len(actual) == len(expected)
    for k, (a, b) in list(enumerate(zip(actual, expected)))[:compared]:
        scale = max(b.abs().max().item(), 1.0)
        report(f"{dtype} tensor {k} / {scale:.2f}", a.cpu() / scale, b / scale,
               **TOLERANCES[dtype])

    with torch.no_grad():
        ref_out = run_stack(cell, cpu, x, states, mask, resets or None)[0]
    scale = max(ref_out.abs().max().item(), 1.0)
    report(f"{dtype} output vs reference / {scale:.2f}", actual[0].cpu() / scale,
           ref_out / scale, **TOLERANCES[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_long_sequences_stay_accurate(dtype):
    """T=1024 with resets: outputs and the reset-state gradient, which sums over
    every step, stay within the dtype's tolerance of float64."""
    steps = 1024
    cpu = FusedRNN(16, 32, dtype=torch.float64)
    cuda = FusedRNN(16, 32, device="cuda", dtype=dtype)
    cuda.load_state_dict(cpu.state_dict())
    x = torch.randn(steps, 4, 16, dtype=torch.float64)
    h0 = torch.randn(1, 4, 32, dtype=torch.float64)
    reset = torch.randn(1, 4, 32, dtype=torch.float64)
    mask = torch.rand(steps, 4) > 0.05
    expected = run(cpu, x, h0, reset, mask)
    actual = run(cuda, x.cuda().to(dtype), h0.cuda().to(dtype), reset.cuda().to(dtype),
                 mask.cuda())
    for name, index in (("output", 0), ("grad x", 2), ("grad reset", 4)):
        scale = expected[index].abs().max()
        report(f"{dtype} T=1024 {name} / max", actual[index].cpu() / scale,
               expected[index] / scale, **TOLERANCES[dtype])


@pytest.mark.parametrize("cell", KINDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_matches_cudnn_at_larger_sizes(cell, dtype, bidirectional):
    reference = nn_module(cell, 64, 256, 2, batch_first=True, bidirectional=bidirectional,
                          device="cuda", dtype=dtype)
    fused = fused_module(cell, 64, 256, 2, batch_first=True, bidirectional=bidirectional,
                         device="cuda", dtype=dtype)
    fused.load_state_dict(reference.state_dict())
    x = torch.randn(16, 100, 64, device="cuda", dtype=dtype)
    results = []
    for module in (fused, reference):
        xi = x.clone().requires_grad_()
        out, final = module(xi)
        finals = final if isinstance(final, tuple) else (final,)
        (out.sum() + sum(f.sum() for f in finals)).backward()
        results.append([out, *finals, xi.grad] + [p.grad for p in module.parameters()])
    names = (["output"] + [f"final state {k}" for k in range(2 if cell == "lstm" else 1)]
             + ["grad x"] + [n for n, _ in fused.named_parameters()])
    for name, a, b in zip(names, *results):
        scale = max(b.abs().max().item(), 1.0)
        report(f"{name} / {scale:.1f}", a / scale, b / scale, **TOLERANCES[dtype])


def squares_and_finals(result):
    """A loss of the output's squares and the final states' sum."""
    out, final = result
    finals = final if isinstance(final, tuple) else (final,)
    return out.square().sum() + sum(f.sum() for f in finals)


@pytest.mark.parametrize("cell", KINDS)
def test_runs_on_the_current_stream(cell):
    fused = fused_module(cell, D, H, device="cuda")
    x = torch.randn(T, B, D, device="cuda")
    mask = torch.rand(T, B, device="cuda") > 0.3
    expected = fused(x, mask=mask)[0]
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            out = fused(x, mask=mask)[0]
    side.synchronize()
    assert torch.equal(out, expected)


@pytest.mark.parametrize("cell", KINDS)
def test_forward_and_backward_replay_in_a_cuda_graph(cell):
    fused = fused_module(cell, D, H, 2, bidirectional=True, device="cuda")
    static_x = torch.randn(T, B, D, device="cuda", requires_grad=True)
    static_mask = torch.rand(T, B, device="cuda") > 0.3

    def step():
        fused.zero_grad(set_to_none=False)
        static_x.grad = None
        result = fused(static_x, mask=static_mask)
        squares_and_finals(result).backward()
        return result[0]

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    fused.zero_grad(set_to_none=False)
    with torch.cuda.graph(graph):
        static_out = step()
    for _ in range(2):
        x = torch.randn(T, B, D, device="cuda")
        mask = torch.rand(T, B, device="cuda") > 0.3
        static_x.data.copy_(x)
        static_mask.copy_(mask)
        graph.replay()
        torch.cuda.synchronize()
        eager = fused_module(cell, D, H, 2, bidirectional=True, device="cuda")
        eager.load_state_dict(fused.state_dict())
        result = eager(x.clone().requires_grad_(), mask=mask)
        squares_and_finals(result).backward()
        report("graph output", static_out, result[0], atol=1e-6, rtol=1e-6)
        for (name, p), q in zip(fused.named_parameters(), eager.parameters()):
            report(f"graph grad {name}", p.grad, q.grad, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", KINDS)
def test_device_mismatch_is_a_clear_error(cell):
    fused = fused_module(cell, D, H)
    with pytest.raises(RuntimeError, match="Input and parameter tensors are not at the same "
                                           "device, found input tensor at cuda:0 and "
                                           "parameter tensor at cpu"):
        fused(torch.randn(T, B, D, device="cuda"))
    cuda = fused_module(cell, D, H, device="cuda")
    with pytest.raises(RuntimeError, match="Input and hidden tensors are not at the same "
                                           "device, found input tensor at cuda:0 and hidden "
                                           "tensor at cpu"):
        cuda(torch.randn(T, B, D, device="cuda"), as_hx(random_states(cell, (1, B, H))))


@pytest.mark.parametrize("cell", KINDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_autocast_runs_the_half_precision_kernels(cell, dtype):
    module = fused_module(cell, D, H, 2, bidirectional=True, device="cuda")
    x = torch.randn(T, B, D, device="cuda")
    mask = torch.rand(T, B, device="cuda") > 0.3
    expected = module(x, mask=mask)[0]
    with torch.autocast("cuda", dtype=dtype):
        out, final = module(x, mask=mask)
    finals = final if isinstance(final, tuple) else (final,)
    assert out.dtype == dtype and all(f.dtype == dtype for f in finals)
    report(f"autocast {dtype}", out.float(), expected, **TOLERANCES[dtype])
    out.float().sum().backward()
    assert all(p.grad.dtype == torch.float32 for p in module.parameters())


@pytest.mark.parametrize("cell", KINDS)
def test_compile_reduce_overhead_matches_eager(cell):
    """mode='reduce-overhead' replays the compiled forward and backward as CUDA graphs."""
    module = fused_module(cell, D, H, 2, batch_first=True, bidirectional=True, device="cuda")
    compiled = torch.compile(module, mode="reduce-overhead", fullgraph=True)
    for _ in range(3):
        x = torch.randn(B, T, D, device="cuda")
        mask = torch.rand(B, T, device="cuda") > 0.3
        module.zero_grad()
        result = compiled(x, mask=mask)
        squares_and_finals(result).backward()
        compiled_out = result[0].detach().clone()
        compiled_grads = [p.grad.clone() for p in module.parameters()]
        module.zero_grad()
        result = module(x, mask=mask)
        squares_and_finals(result).backward()
        report("reduce-overhead output", compiled_out, result[0], atol=1e-5, rtol=1e-5)
        for (name, p), g in zip(module.named_parameters(), compiled_grads):
            report(f"reduce-overhead grad {name}", g, p.grad, atol=1e-4, rtol=1e-4)
