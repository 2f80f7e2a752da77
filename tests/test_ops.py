"""The compiled layer op itself, for every cell: gradcheck, opcheck, the fake
kernels, the backward's skipped products, the op's checks, and proof that the
recurrence runs inside it."""
import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode

import rnn_fused
from rnn_fused import FusedGRU, FusedLSTM, FusedRNN

import helpers
from helpers import CELLS, GATES, KINDS, MASK_KINDS, layer, make_mask, requiring
from helpers import layer_outputs as outputs

T, B, D, H = 5, 3, 4, 6


def layer_args(device, cell, **options):
    return helpers.layer_args(device, cell, (T, B, D, H), **options)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("mask_kind", MASK_KINDS)
@pytest.mark.parametrize("bias", [True, False])
def test_op_gradcheck(device, cell, bias, mask_kind, reverse):
    """Every output against every input, float64: the whole Jacobian with the
    biases in the forward direction; elsewhere (no biases, which changes only
    which terms are there; the reverse direction, which shares every kernel but
    the step order) gradcheck's fast mode (random projections of it) keeps the
    suite's time down."""
    args = layer_args(device, cell, mask_kind=mask_kind, bias=bias)
    names = requiring(args)

    def fn(*tensors):
        return outputs(dict(args, **dict(zip(names, tensors))), cell, reverse)

    assert torch.autograd.gradcheck(fn, [args[n] for n in names],
                                    fast_mode=not bias or reverse)


@pytest.mark.parametrize("cell", CELLS)
def test_op_gradcheck_on_each_cpu_isa(cell, cpu_isa):
    """The CPU's pass as compiled for each vector ISA this CPU has (the float64
    loops are vectorized too), with resets; the directions share that code."""
    args = layer_args("cpu", cell, mask_kind="resets")
    names = requiring(args)

    def fn(*tensors):
        return outputs(dict(args, **dict(zip(names, tensors))), cell)

    assert torch.autograd.gradcheck(fn, [args[n] for n in names])
    assert f"compiled for {cpu_isa}" in rnn_fused.plan(B, H, steps=T, dtype=torch.float64,
                                                       cell=cell).reason


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("value", [0.0, 0.4])
def test_op_gradcheck_with_a_single_reset(device, cell, reverse, value):
    """One reset or blended row among T·B: on the CPU, dW_hh is then the product
    with the outputs plus a correction over that row alone (the GRU reads the
    states its steps read instead). The reverse direction in gradcheck's fast mode."""
    args = layer_args(device, cell, mask_kind="none")
    mask = torch.ones(T, B, device=device, dtype=torch.float64)
    mask[2, 1] = value
    args["mask"] = mask
    for name in ("reset_h", "reset_c") if cell == "lstm" else ("reset_h",):
        args[name] = torch.randn(B, H, device=device, dtype=torch.float64, requires_grad=True)
    names = requiring(args)

    def fn(*tensors):
        return outputs(dict(args, **dict(zip(names, tensors))), cell, reverse)

    assert torch.autograd.gradcheck(fn, [args[n] for n in names], fast_mode=reverse)


@pytest.mark.parametrize("cell", KINDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("mask_kind", ["none", "resets"])
@pytest.mark.parametrize("reverse", [False, True])
def test_opcheck_forward(device, cell, dtype, mask_kind, reverse):
    args = layer_args(device, cell, dtype=dtype, mask_kind=mask_kind)
    torch.library.opcheck(torch.ops.rnn_fused.layer_forward.default,
                          (*args.values(), cell, reverse, "auto"))


def backward_args(args, cell, forward, with_grad_h_n=True, output_mask=(True,) * 3):
    out, h_n, c_n, cells, saved = forward
    lstm = cell == "lstm"
    return (torch.randn_like(out), torch.randn_like(h_n) if with_grad_h_n else None,
            torch.randn_like(c_n) if lstm else None, torch.randn_like(cells) if lstm else None,
            args["input"], args["weight_ih"], args["weight_hh"], args["hx"], args["cx"],
            args["mask"], args["reset_h"], args["reset_c"], out, cells, saved, cell, False,
            args["bias_ih"] is not None, list(output_mask), "auto")


@pytest.mark.parametrize("cell", KINDS)
@pytest.mark.parametrize("output_mask", [[True] * 3, [False, True, False], [True, False, True]])
@pytest.mark.parametrize("mask_kind", ["none", "resets"])
@pytest.mark.parametrize("with_grad_h_n", [False, True])
def test_opcheck_backward(device, cell, mask_kind, output_mask, with_grad_h_n):
    args = layer_args(device, cell, mask_kind=mask_kind, requires_grad=False)
    forward = torch.ops.rnn_fused.layer_forward(*args.values(), cell, False, "auto")
    torch.library.opcheck(torch.ops.rnn_fused.layer_backward.default,
                          backward_args(args, cell, forward, with_grad_h_n, output_mask))


@pytest.mark.parametrize("cell", KINDS)
def test_fake_kernels_match_real_strides_for_strided_inputs(device, cell):
    """torch.compile trusts the fake kernels' strides; the real ops return
    contiguous tensors whatever the inputs' strides."""
    args = layer_args(device, cell, requires_grad=False)
    args["input"] = args["input"].transpose(0, 1).contiguous().transpose(0, 1)
    args["weight_ih"] = args["weight_ih"].t().contiguous().t()
    args["hx"] = args["hx"].t().contiguous().t()
    assert not any(args[k].is_contiguous() for k in ("input", "weight_ih", "hx"))
    forward_args = (*args.values(), cell, False, "auto")
    forward = torch.ops.rnn_fused.layer_forward(*forward_args)
    grads = backward_args(args, cell, forward)
    grads = (grads[0].transpose(0, 1).contiguous().transpose(0, 1),) + grads[1:]
    real = [*forward, *torch.ops.rnn_fused.layer_backward(*grads)]
    with FakeTensorMode() as mode:
        def fake(a):
            return mode.from_tensor(a) if isinstance(a, torch.Tensor) else a
        fakes = [*torch.ops.rnn_fused.layer_forward(*map(fake, forward_args)),
                 *torch.ops.rnn_fused.layer_backward(*map(fake, grads))]
    assert [(f.shape, f.stride()) for f in fakes] == [(r.shape, r.stride()) for r in real]


def test_backward_op_without_cell_state_gradients(device):
    """grad_c_n and grad_cells may be None (autograd passes zeros; a direct call
    need not): the same gradients as explicit zeros."""
    args = layer_args(device, "lstm", requires_grad=False)
    forward = torch.ops.rnn_fused.layer_forward(*args.values(), "lstm", False, "auto")
    grads = backward_args(args, "lstm", forward)
    without = torch.ops.rnn_fused.layer_backward(*grads[:2], None, None, *grads[4:])
    zeros = torch.ops.rnn_fused.layer_backward(*grads[:2], torch.zeros_like(grads[2]),
                                               torch.zeros_like(grads[3]), *grads[4:])
    for a, b in zip(without, zeros):
        assert torch.equal(a, b)


@pytest.mark.parametrize("cell", KINDS)
@pytest.mark.parametrize("reverse", [False, True])
def test_h_n_is_the_last_processed_step_and_its_gradient_reaches_it(device, cell, reverse):
    """h_n is a copy of h_t at the last processed step; a loss on h_n alone, or on
    both outputs, gives the gradients that the same loss through output gives."""
    args = layer_args(device, cell)
    out, h_n = outputs(args, cell, reverse)[:2]
    last = 0 if reverse else -1
    assert torch.equal(h_n, out[last]) and h_n.data_ptr() != out[last].data_ptr()
    tensors = [args[n] for n in requiring(args)]
    weights = torch.randn_like(out)
    through_h_n = torch.autograd.grad((out * weights).sum() + h_n.square().sum(), tensors)
    out = outputs(args, cell, reverse)[0]
    through_output = torch.autograd.grad((out * weights).sum() + out[last].square().sum(),
                                         tensors)
    for a, b in zip(through_h_n, through_output):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    h_n_alone = torch.autograd.grad(outputs(args, cell, reverse)[1].sum(), tensors)
    output_last = torch.autograd.grad(outputs(args, cell, reverse)[0][last].sum(), tensors)
    for a, b in zip(h_n_alone, output_last):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell", KINDS)
@pytest.mark.parametrize("wanted", ["input", "weight_ih", "weight_hh", "bias_ih", "hx",
                                    "reset_h"])
def test_each_gradient_is_computed_alone_when_only_it_is_needed(device, cell, wanted):
    """The backward skips the products of gradients nobody asked for; what it
    computes is unchanged."""
    args = layer_args(device, cell, requires_grad=False)

    def gradients(requiring):
        tensors = {k: v.clone().requires_grad_(k in requiring) for k, v in args.items()
                   if v is not None and k != "mask"}
        outputs(dict(args, **tensors), cell)[0].square().sum().backward()
        return {k: t.grad for k, t in tensors.items()}

    everything = gradients(set(args) - {"mask"})
    alone = gradients({wanted})
    assert torch.equal(alone[wanted], everything[wanted])
    assert all(grad is None for name, grad in alone.items() if name != wanted)


def test_compiled_extension_is_loaded():
    assert rnn_fused.ops._C.__file__.endswith(".so")
    for name in ("layer_forward", "layer_backward"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"rnn_fused::{name}", "CPU")


class OpLog(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls.append(str(func.overloadpacket))
        return func(*args, **(kwargs or {}))


def logged_forward_backward(module_cls, steps, device):
    module = module_cls(4, 6, num_layers=2, bidirectional=True, device=device)
    x = torch.randn(steps, 3, 4, device=device, requires_grad=True)
    mask = torch.rand(steps, 3, device=device) > 0.2
    with OpLog() as log:
        out, final = module(x, mask=mask)
        (out.sum() + sum(f.sum() for f in (final if isinstance(final, tuple) else (final,)))
         ).backward()
    return log.calls


@pytest.mark.parametrize("module_cls", [FusedRNN, FusedGRU, FusedLSTM])
def test_kernels_run_and_python_does_not_loop_over_time(device, module_cls):
    """The recurrence runs inside the C++ op: one forward and one backward call per
    layer and direction, and the ops Python dispatches do not grow with T."""
    short = logged_forward_backward(module_cls, 5, device)
    long = logged_forward_backward(module_cls, 40, device)
    assert short.count("rnn_fused.layer_forward") == 4
    assert short.count("rnn_fused.layer_backward") == 4
    assert not any(name in ("aten.tanh", "aten.sigmoid", "aten.mm", "aten.addmm")
                   for name in short)
    assert sorted(short) == sorted(long)


@pytest.mark.parametrize("cell", KINDS)
def test_op_rejects_mask_without_reset_state(device, cell):
    args = layer_args(device, cell, requires_grad=False)
    args["reset_h"] = args["reset_c"] = None
    with pytest.raises(ValueError, match=r"a mask needs a reset state of shape \[B, H\]"):
        outputs(args, cell)


@pytest.mark.parametrize("cell", KINDS)
@pytest.mark.parametrize("name, shape, pattern", [
    ("input", (T, B), r"expected input of shape \[T, B, input_size\]"),
    ("weight_ih", (H, D + 1), r"expected weight_ih of shape \[{G}, 4\]"),
    ("weight_hh", (H, H + 1), r"expected weight_hh of shape \[{G}, 6\]"),
    ("bias_hh", (H + 1,), r"expected bias_hh of shape \[{G}\]"),
    ("hx", (B + 1, H), r"expected hx of shape \[3, 6\]"),
    ("mask", (B, T), r"expected mask of shape \[5, 3\]"),
    ("reset_h", (B, H + 1), r"expected reset_h of shape \[3, 6\]"),
    # Three dimensions are one reset state per step.
    ("reset_h", (B, H, 1), r"expected reset_h of shape \[5, 3, 6\]"),
])
def test_op_rejects_bad_shapes(device, cell, name, shape, pattern):
    args = layer_args(device, cell, requires_grad=False)
    gates = GATES.get(cell, 1)
    if name in ("weight_ih", "weight_hh", "bias_hh"):
        shape = (gates * shape[0], *shape[1:]) if name != "bias_hh" else (gates * H + 1,)
    args[name] = torch.randn(shape, device=device, dtype=torch.float64)
    with pytest.raises(ValueError, match=pattern.format(G=gates * H)):
        outputs(args, cell)


def test_op_rejects_what_does_not_fit_the_cell(device):
    args = layer_args(device, "gru", requires_grad=False)
    with pytest.raises(ValueError, match="the gru cell has no cell state"):
        outputs(dict(args, cx=args["hx"]), "gru")
    args = layer_args(device, "lstm", requires_grad=False)
    with pytest.raises(ValueError, match="the lstm cell needs cx of shape"):
        outputs(dict(args, cx=None), "lstm")
    with pytest.raises(ValueError, match="resets h and c together"):
        outputs(dict(args, reset_c=None), "lstm")


def test_op_rejects_dtype_mismatch_and_unknown_cell(device):
    args = layer_args(device, "rnn_tanh", requires_grad=False)
    args["hx"] = args["hx"].float()
    with pytest.raises(TypeError, match="expected hx of dtype Double"):
        outputs(args, "rnn_tanh")
    args = layer_args(device, "rnn_tanh", requires_grad=False)
    with pytest.raises(ValueError, match="unknown cell 'rnn_gelu'"):
        outputs(args, "rnn_gelu")


def test_float32_tanh_accuracy_over_the_whole_range(device):
    """With W_ih = I and W_hh = 0 every step returns tanh(x) itself, so the kernels'
    own float tanh is compared with float64 over [-12, 12] plus ±inf and NaN.
    200 000 values as 100 steps of 2000 sequences, a batch every kernel takes."""
    x = torch.cat([torch.linspace(-12, 12, 199_991, dtype=torch.float64),
                   torch.tensor([0.0, -0.0, 1e-30, -1e-30, 88.0, -88.0])])
    # The non-finite values come last, in the last step: no later step reads them.
    x32 = torch.cat([x.float(), torch.tensor([float("inf"), -float("inf"), float("nan")])])
    eye = torch.eye(1, device=device)
    out = layer(x32.view(100, 2000, 1).to(device), eye, torch.zeros(1, 1, device=device),
                    None, None, torch.zeros(2000, 1, device=device), None, None, None, None,
                    "rnn_tanh", False)[0].view(-1).cpu()
    err = (out[:-3].double() - torch.tanh(x.float().double())).abs()
    print(f"tanh float32: max err {err.max().item():.3e}, mean err {err.mean().item():.3e}")
    assert err.max() < 3e-7
    assert out[-3] == 1 and out[-2] == -1 and torch.isnan(out[-1])
    assert (out[:-3].abs() <= 1).all()
