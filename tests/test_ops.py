"""The compiled ops themselves: gradcheck, opcheck, and proof that they run."""
import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode

import rnn_fused
from rnn_fused import FusedRNN, ops

from helpers import MASK_KINDS, make_mask

T, B, D, H = 5, 3, 4, 6


def layer_args(device, dtype=torch.float64, mask_kind="resets", bias=True, requires_grad=True):
    def rand(*shape, scale=1.0):
        values = torch.randn(*shape, device=device, dtype=dtype) * scale
        return values.requires_grad_(requires_grad)
    mask = make_mask(mask_kind, B, T, device)
    mask = None if mask is None else mask.t().to(dtype)
    return dict(
        input=rand(T, B, D), weight_ih=rand(H, D, scale=0.5), weight_hh=rand(H, H, scale=0.4),
        bias_ih=rand(H) if bias else None, bias_hh=rand(H) if bias else None, hx=rand(B, H),
        mask=mask, reset_state=None if mask is None else rand(B, H))


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("mask_kind", MASK_KINDS)
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu", "identity"])
@pytest.mark.parametrize("bias", [True, False])
def test_op_gradcheck(device, bias, nonlinearity, mask_kind, reverse):
    args = layer_args(device, mask_kind=mask_kind, bias=bias)
    names = [k for k, v in args.items() if isinstance(v, torch.Tensor) and v.requires_grad]

    def fn(*tensors):
        call = dict(args, **dict(zip(names, tensors)))
        return ops.rnn_layer(**call, nonlinearity=nonlinearity, reverse=reverse)

    assert torch.autograd.gradcheck(fn, [args[n] for n in names])


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("value", [0.0, 0.4])
def test_op_gradcheck_with_a_single_reset(device, reverse, value):
    """One reset or blended row among T·B: on the CPU, dW_hh is then the product
    with the outputs plus a correction over that row alone."""
    args = layer_args(device, mask_kind="none")
    mask = torch.ones(T, B, device=device, dtype=torch.float64)
    mask[2, 1] = value
    args["mask"] = mask
    args["reset_state"] = torch.randn(B, H, device=device, dtype=torch.float64,
                                      requires_grad=True)
    names = [k for k, v in args.items() if isinstance(v, torch.Tensor) and v.requires_grad]

    def fn(*tensors):
        call = dict(args, **dict(zip(names, tensors)))
        return ops.rnn_layer(**call, nonlinearity="tanh", reverse=reverse)

    assert torch.autograd.gradcheck(fn, [args[n] for n in names])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("mask_kind", ["none", "resets"])
@pytest.mark.parametrize("reverse", [False, True])
def test_opcheck_forward(device, dtype, mask_kind, reverse):
    args = layer_args(device, dtype, mask_kind)
    torch.library.opcheck(torch.ops.rnn_fused.rnn_layer_forward.default,
                          (*args.values(), "tanh", reverse, "auto"))


def test_fake_kernels_match_real_strides_for_strided_inputs(device):
    """torch.compile trusts the fake kernels' strides; the real ops return
    contiguous tensors whatever the inputs' strides."""
    args = layer_args(device, requires_grad=False)
    args["input"] = args["input"].transpose(0, 1).contiguous().transpose(0, 1)
    args["weight_ih"] = args["weight_ih"].t().contiguous().t()
    args["hx"] = args["hx"].t().contiguous().t()
    assert not any(args[k].is_contiguous() for k in ("input", "weight_ih", "hx"))
    forward_args = (*args.values(), "tanh", False, "auto")
    out, h_n = torch.ops.rnn_fused.rnn_layer_forward(*forward_args)
    backward_args = (out.transpose(0, 1).contiguous().transpose(0, 1), h_n.t().contiguous().t(),
                     args["input"], args["weight_ih"], args["weight_hh"], args["hx"],
                     args["mask"], args["reset_state"], out, "tanh", False, "auto", [True] * 6)
    real = [out, h_n, *torch.ops.rnn_fused.rnn_layer_backward(*backward_args)]
    with FakeTensorMode() as mode:
        def fake(a):
            return mode.from_tensor(a) if isinstance(a, torch.Tensor) else a
        fakes = [*torch.ops.rnn_fused.rnn_layer_forward(*map(fake, forward_args)),
                 *torch.ops.rnn_fused.rnn_layer_backward(*map(fake, backward_args))]
    assert [(f.shape, f.stride()) for f in fakes] == [(r.shape, r.stride()) for r in real]


@pytest.mark.parametrize("output_mask", [[True] * 6, [False, True, False, True, False, True],
                                         [True, False, True, False, True, False]])
@pytest.mark.parametrize("mask_kind", ["none", "resets"])
@pytest.mark.parametrize("with_grad_h_n", [False, True])
def test_opcheck_backward(device, mask_kind, output_mask, with_grad_h_n):
    args = layer_args(device, mask_kind=mask_kind, requires_grad=False)
    out, h_n = ops.rnn_layer(**args, nonlinearity="tanh", reverse=False)
    torch.library.opcheck(
        torch.ops.rnn_fused.rnn_layer_backward.default,
        (torch.randn_like(out), torch.randn_like(h_n) if with_grad_h_n else None, args["input"],
         args["weight_ih"], args["weight_hh"], args["hx"], args["mask"], args["reset_state"], out,
         "tanh", False, "auto", output_mask))


@pytest.mark.parametrize("reverse", [False, True])
def test_h_n_is_the_last_processed_step_and_its_gradient_reaches_it(device, reverse):
    """h_n is a copy of h_t at the last processed step; a loss on h_n alone, or on
    both outputs, gives the gradients that the same loss through output gives."""
    args = layer_args(device)
    out, h_n = ops.rnn_layer(**args, nonlinearity="tanh", reverse=reverse)
    last = 0 if reverse else -1
    assert torch.equal(h_n, out[last]) and h_n.data_ptr() != out[last].data_ptr()
    tensors = [v for v in args.values() if isinstance(v, torch.Tensor) and v.requires_grad]
    weights = torch.randn_like(out)
    through_h_n = torch.autograd.grad((out * weights).sum() + h_n.square().sum(), tensors)
    out, _ = ops.rnn_layer(**args, nonlinearity="tanh", reverse=reverse)
    through_output = torch.autograd.grad((out * weights).sum() + out[last].square().sum(),
                                         tensors)
    for a, b in zip(through_h_n, through_output):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    h_n_alone = torch.autograd.grad(ops.rnn_layer(**args, nonlinearity="tanh",
                                                  reverse=reverse)[1].sum(), tensors)
    output_last = torch.autograd.grad(ops.rnn_layer(**args, nonlinearity="tanh",
                                                    reverse=reverse)[0][last].sum(), tensors)
    for a, b in zip(h_n_alone, output_last):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("wanted", ["input", "weight_ih", "weight_hh", "bias_ih", "hx",
                                    "reset_state"])
def test_each_gradient_is_computed_alone_when_only_it_is_needed(device, wanted):
    """The backward skips the products of gradients nobody asked for; what it
    computes is unchanged."""
    args = layer_args(device, requires_grad=False)

    def gradients(requiring):
        tensors = {k: v.clone().requires_grad_(k in requiring) for k, v in args.items()
                   if v is not None and k != "mask"}
        out, _ = ops.rnn_layer(**dict(args, **tensors), nonlinearity="tanh", reverse=False)
        out.square().sum().backward()
        return {k: t.grad for k, t in tensors.items()}

    everything = gradients(set(args) - {"mask"})
    alone = gradients({wanted})
    assert torch.equal(alone[wanted], everything[wanted])
    assert all(grad is None for name, grad in alone.items() if name != wanted)


def test_compiled_extension_is_loaded():
    assert rnn_fused.ops._C.__file__.endswith(".so")
    for name in ("rnn_layer_forward", "rnn_layer_backward"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"rnn_fused::{name}", "CPU")


class OpLog(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls.append(str(func.overloadpacket))
        return func(*args, **(kwargs or {}))


def logged_forward_backward(steps, device):
    rnn = FusedRNN(4, 6, num_layers=2, bidirectional=True, device=device)
    x = torch.randn(steps, 3, 4, device=device, requires_grad=True)
    mask = torch.rand(steps, 3, device=device) > 0.2
    with OpLog() as log:
        out, h_n = rnn(x, mask=mask)
        (out.sum() + h_n.sum()).backward()
    return log.calls


def test_kernels_run_and_python_does_not_loop_over_time(device):
    """The recurrence runs inside the C++ ops: one forward and one backward call per
    layer and direction, and the ops Python dispatches do not grow with T."""
    short = logged_forward_backward(5, device)
    long = logged_forward_backward(40, device)
    assert short.count("rnn_fused.rnn_layer_forward") == 4
    assert short.count("rnn_fused.rnn_layer_backward") == 4
    assert not any(name in ("aten.tanh", "aten.mm", "aten.addmm") for name in short)
    assert sorted(short) == sorted(long)


def test_op_rejects_mask_without_reset_state(device):
    args = layer_args(device, requires_grad=False)
    args["reset_state"] = None
    with pytest.raises(ValueError, match=r"a mask needs a reset_state of shape \[B, H\]"):
        ops.rnn_layer(**args, nonlinearity="tanh", reverse=False)


@pytest.mark.parametrize("name, shape, pattern", [
    ("input", (T, B), r"expected input of shape \[T, B, input_size\]"),
    ("weight_ih", (H, D + 1), r"expected weight_ih of shape \[6, 4\]"),
    ("weight_hh", (H, H + 1), r"expected weight_hh of shape \[6, 6\]"),
    ("bias_hh", (H + 1,), r"expected bias_hh of shape \[6\]"),
    ("hx", (B + 1, H), r"expected hx of shape \[3, 6\]"),
    ("mask", (B, T), r"expected mask of shape \[5, 3\]"),
    ("reset_state", (B, H, 1), r"expected reset_state of shape \[3, 6\]"),
])
def test_op_rejects_bad_shapes(device, name, shape, pattern):
    args = layer_args(device, requires_grad=False)
    args[name] = torch.randn(shape, device=device, dtype=torch.float64)
    with pytest.raises(ValueError, match=pattern):
        ops.rnn_layer(**args, nonlinearity="tanh", reverse=False)


def test_op_rejects_dtype_mismatch_and_unknown_nonlinearity(device):
    args = layer_args(device, requires_grad=False)
    args["hx"] = args["hx"].float()
    with pytest.raises(TypeError, match="expected hx of dtype Double"):
        ops.rnn_layer(**args, nonlinearity="tanh", reverse=False)
    args = layer_args(device, requires_grad=False)
    with pytest.raises(ValueError, match="unknown nonlinearity 'gelu'"):
        ops.rnn_layer(**args, nonlinearity="gelu", reverse=False)


def test_float32_tanh_accuracy_over_the_whole_range(device):
    """With W_ih = I and W_hh = 0 every step returns tanh(x) itself, so the kernels'
    own float tanh is compared with float64 over [-12, 12] plus ±inf and NaN.
    200 000 values as 100 steps of 2000 sequences, a batch every kernel takes."""
    x = torch.cat([torch.linspace(-12, 12, 199_991, dtype=torch.float64),
                   torch.tensor([0.0, -0.0, 1e-30, -1e-30, 88.0, -88.0])])
    # The non-finite values come last, in the last step: no later step reads them.
    x32 = torch.cat([x.float(), torch.tensor([float("inf"), -float("inf"), float("nan")])])
    eye = torch.eye(1, device=device)
    out = ops.rnn_layer(x32.view(100, 2000, 1).to(device), eye, torch.zeros(1, 1, device=device),
                        None, None, torch.zeros(2000, 1, device=device), None, None,
                        "tanh", False)[0].view(-1).cpu()
    err = (out[:-3].double() - torch.tanh(x.float().double())).abs()
    print(f"tanh float32: max err {err.max().item():.3e}, mean err {err.mean().item():.3e}")
    assert err.max() < 3e-7
    assert out[-3] == 1 and out[-2] == -1 and torch.isnan(out[-1])
    assert (out[:-3].abs() <= 1).all()
