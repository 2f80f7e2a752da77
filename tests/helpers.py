"""Cells, inputs, masks and comparisons shared by the tests."""
import platform
from contextlib import contextmanager

import torch
from torch import nn

from rnn_fused import FusedGRU, FusedLSTM, FusedRNN, cpu_isa, set_cpu_isa
from rnn_fused.reference import layers_like
from rnn_fused.utils import lengths_to_mask

# Every cell by the op's name (torch.nn's mode in lower case).
CELLS = ["rnn_tanh", "rnn_relu", "rnn_identity", "gru", "lstm"]
# One of each kind: the Elman nonlinearities differ only in the pointwise step.
KINDS = ["rnn_tanh", "gru", "lstm"]
# The cells torch.nn has.
NN_CELLS = ["rnn_tanh", "rnn_relu", "gru", "lstm"]
GATES = {"gru": 3, "lstm": 4}

MASK_KINDS = ["none", "pre_padding", "post_padding", "resets", "blend"]

# Tolerances of each dtype against a float64 reference.
TOLERANCES = {
    torch.float64: dict(atol=1e-10, rtol=1e-9),
    torch.float32: dict(atol=1e-4, rtol=1e-4),
    torch.float16: dict(atol=1e-2, rtol=1e-2),
    torch.bfloat16: dict(atol=6e-2, rtol=6e-2),
}

# The GPU's multiprocessors (132 on an H200 or H100 SXM, 114 on an H100 PCIe;
# 132 without a GPU): tests whose kernels need all their blocks resident at
# once size their largest shapes by it.
MULTIPROCESSORS = (torch.cuda.get_device_properties(0).multi_processor_count
                   if torch.cuda.is_available() else 132)


@contextmanager
def cpu_isa_set(isa):
    """The CPU kernels compiled for `isa` inside the block (None: unchanged)."""
    previous = cpu_isa()
    if isa is not None:
        set_cpu_isa(isa)
    try:
        yield
    finally:
        set_cpu_isa(previous)


def has_tiles(isa):
    """Whether the CPU's register-tile kernels (the step product in the pass, the
    few-features products) run on `isa`: on every ISA but x86's baseline, SSE2
    with no FMA (csrc/cpu/isa.h)."""
    return isa != "baseline" or platform.machine() not in ("x86_64", "AMD64", "i386", "i686")


def module_classes(cell):
    """(the fused module, torch.nn's module, torch.nn's one-step cell) of `cell`."""
    if cell.startswith("rnn_"):
        return FusedRNN, nn.RNN, nn.RNNCell
    return {"gru": (FusedGRU, nn.GRU, nn.GRUCell), "lstm": (FusedLSTM, nn.LSTM, nn.LSTMCell)}[cell]


def cell_options(cell):
    """The constructor's keyword that picks an Elman cell's nonlinearity."""
    return dict(nonlinearity=cell[4:]) if cell.startswith("rnn_") else {}


def fused_module(cell, *args, **kwargs):
    return module_classes(cell)[0](*args, **cell_options(cell), **kwargs)


def nn_module(cell, *args, **kwargs):
    return module_classes(cell)[1](*args, **cell_options(cell), **kwargs)


def nn_step_cell(cell, *args, **kwargs):
    return module_classes(cell)[2](*args, **cell_options(cell), **kwargs)


def random_states(cell, shape, device="cpu", dtype=torch.float64):
    """(h,) or, for the LSTM, (h, c): random tensors of `shape`."""
    return tuple(torch.randn(shape, device=device, dtype=dtype)
                 for _ in range(2 if cell == "lstm" else 1))


def as_hx(states):
    """A state tuple as the modules take hx: h, or (h, c)."""
    return states if len(states) == 2 else states[0]


def make_mask(kind: str, batch: int, steps: int, device="cpu") -> torch.Tensor:
    """[B, T] mask of the given kind, or None for 'none'. Padding masks give every
    sequence a different length, at least 1; 'resets' ends episodes at random."""
    if kind == "none":
        return None
    if kind in ("pre_padding", "post_padding"):
        lengths = torch.randint(1, steps + 1, (batch,))
        lengths[0] = steps
        return lengths_to_mask(lengths, steps, kind.split("_")[0]).to(device)
    if kind == "resets":
        return (torch.rand(batch, steps, device=device) > 0.3)
    if kind == "blend":
        return torch.rand(batch, steps, device=device, dtype=torch.float64)
    raise ValueError(kind)


def report(name: str, actual: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float):
    """Prints max/mean error, then asserts closeness."""
    actual = actual.detach().to(expected.dtype)
    expected = expected.detach()
    err = (actual - expected).abs()
    print(f"{name}: max err {err.max().item():.3e}, mean err {err.mean().item():.3e}")
    assert torch.isfinite(actual).all(), f"{name}: non-finite values"
    torch.testing.assert_close(actual, expected, atol=atol, rtol=rtol, msg=lambda m: f"{name}: {m}")


def reference_layers(fused):
    """float64 reference layers carrying copies of fused's weights."""
    return layers_like(fused, torch.float64)


def run_reference(layers, x_bf, mask_bf, h0, reset):
    """Stacked reference layers. x_bf [B, T, D], mask_bf [B, T] or None,
    h0 / reset [L·dirs, B, H]. Returns (sequence [B, T, ·], h_n [L·dirs, B, H])."""
    batch, steps = x_bf.shape[:2]
    if mask_bf is None:
        mask_bf = torch.ones(batch, steps, dtype=x_bf.dtype, device=x_bf.device)
    dirs = 2 if layers[0].bidirectional else 1
    finals = []
    seq = x_bf
    for i, layer in enumerate(layers):
        def pick(states):
            return tuple(states[i * dirs:(i + 1) * dirs]) if dirs == 2 else states[i]
        seq, last = layer(seq, mask_bf, initial_state=pick(h0), reset_state=pick(reset))
        finals.extend(last.chunk(dirs, dim=-1))
    return seq, torch.stack(finals)


def profiled_names(fn):
    """fn() under the profiler: the names of every op and rnn_fused scope it ran
    (on this thread and autograd's), in order."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return [event.name for event in prof.events()]


def layer(input, weight_ih, weight_hh, bias_ih, bias_hh, hx, cx, mask, reset_h, reset_c, cell,
          reverse, backend="auto", weight_hr=None):
    """One layer of `cell` through the layer op: (output, h_n, c_n, cells)."""
    return torch.ops.rnn_fused.layer_forward(input, weight_ih, weight_hh, bias_ih, bias_hh, hx, cx,
                                             mask, reset_h, reset_c, cell, reverse, backend,
                                             weight_hr)[:4]


def layer_args(device, cell, sizes, dtype=torch.float64, mask_kind="resets", bias=True,
               requires_grad=True, proj_size=0):
    """The layer op's tensor arguments for `cell`, in schema order; sizes: (T, B, D, H).
    proj_size > 0 (LSTM): h is that wide, through weight_hr [P, H] (last)."""
    steps, batch, features, hidden = sizes
    gates, lstm = GATES.get(cell, 1), cell == "lstm"
    width = proj_size or hidden

    def rand(*shape, scale=1.0):
        values = torch.randn(*shape, device=device, dtype=dtype) * scale
        return values.requires_grad_(requires_grad)
    mask = make_mask(mask_kind, batch, steps, device)
    mask = None if mask is None else mask.t().to(dtype)
    return dict(
        input=rand(steps, batch, features), weight_ih=rand(gates * hidden, features, scale=0.5),
        weight_hh=rand(gates * hidden, width, scale=0.4),
        bias_ih=rand(gates * hidden) if bias else None,
        bias_hh=rand(gates * hidden) if bias else None, hx=rand(batch, width),
        cx=rand(batch, hidden) if lstm else None, mask=mask,
        reset_h=None if mask is None else rand(batch, width),
        reset_c=None if mask is None or not lstm else rand(batch, hidden),
        **(dict(weight_hr=rand(proj_size, hidden, scale=0.5)) if proj_size else {}))


def layer_outputs(args, cell, reverse=False, backend="auto"):
    """h_t, h_n and, with a cell state, c_n and every c_t."""
    out, h_n, c_n, cells = layer(**args, cell=cell, reverse=reverse, backend=backend)
    return (out, h_n, c_n, cells) if cell == "lstm" else (out, h_n)


def requiring(args):
    """The names of the arguments that require grad."""
    return [k for k, v in args.items() if isinstance(v, torch.Tensor) and v.requires_grad]


def rnn_layer(input, weight_ih, weight_hh, bias_ih, bias_hh, hx, mask, reset_state,
              nonlinearity, reverse, backend="auto"):
    """One Elman layer through the layer op: (output, h_n)."""
    return layer(input, weight_ih, weight_hh, bias_ih, bias_hh, hx, None, mask, reset_state,
                 None, f"rnn_{nonlinearity}", reverse, backend)[:2]


def outputs_and_grads(module, x, states, mask, resets):
    """Outputs, final states and the gradients of x, the states, the reset
    states (none: the default) and every parameter, from a fixed random
    weighting of the outputs."""
    leaves = [t.detach().clone().requires_grad_() for t in [x, *states, *resets]]
    count = len(states)
    hx, reset = tuple(leaves[1:1 + count]), tuple(leaves[1 + count:])
    out, final = module(leaves[0], as_hx(hx), mask=mask,
                        reset_state=as_hx(reset) if reset else None)
    finals = final if count == 2 else (final,)
    generator = torch.Generator(device=out.device).manual_seed(5)
    weights = torch.randn(out.shape, device=out.device, generator=generator).to(out.dtype)
    loss = (out.float() * weights.float()).sum() + sum(f.float().sum() for f in finals)
    grads = torch.autograd.grad(loss, leaves + list(module.parameters()))
    return [out, *finals, *grads]


def check_against_float64(device, cell, dtype, batch, hidden, steps=12, features=4):
    """Forward and backward, two bidirectional layers, resets and blends,
    relative to each tensor's largest entry. Returns the names that the
    profiler saw in the run in `dtype`."""
    exact = fused_module(cell, features, hidden, num_layers=2, bidirectional=True, device=device,
                         dtype=torch.float64)
    low = fused_module(cell, features, hidden, num_layers=2, bidirectional=True, device=device,
                       dtype=dtype)
    low.load_state_dict(exact.state_dict())
    exact.load_state_dict(low.state_dict())  # the rounded weights
    x = torch.randn(steps, batch, features, device=device, dtype=dtype) * 2
    states = random_states(cell, (4, batch, hidden), device, dtype)
    resets = random_states(cell, (4, batch, hidden), device, dtype)
    mask = make_mask("resets", batch, steps, device).t().double()
    mask[3, min(1, batch - 1)] = 0.25  # a blend
    expected = outputs_and_grads(exact, x.double(), [s.double() for s in states], mask,
                                 [r.double() for r in resets])
    actual = []
    names = profiled_names(
        lambda: actual.extend(outputs_and_grads(low, x, states, mask.to(dtype), resets)))
    for k, (a, b) in enumerate(zip(actual, expected)):
        scale = max(b.abs().max().item(), 1.0)
        report(f"{dtype} B={batch} H={hidden} tensor {k} / {scale:.2f}", a.double() / scale,
               b / scale, **TOLERANCES[dtype])
    return names
