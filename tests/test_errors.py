"""Bad input to FusedRNN and fused_rnn raises a clear exception, never a crash:
nn.RNN's exception type wherever nn.RNN rejects the same thing."""
import re
import warnings

import pytest
import torch
from torch import nn

from rnn_fused import FusedRNN, fused_rnn
from rnn_fused.ops import backends

B, T, D, H = 2, 5, 3, 4

# Constructor arguments nn.RNN rejects; FusedRNN must raise the same exception.
BAD_CONSTRUCTOR_ARGUMENTS = [
    dict(batch_first="False"), dict(bias=0), dict(bias=None), dict(num_layers=0),
    dict(num_layers=-1), dict(num_layers=1.5), dict(num_layers="2"), dict(hidden_size=0),
    dict(hidden_size=-3), dict(hidden_size=4.0), dict(hidden_size=True), dict(input_size=0),
    dict(input_size=3.0), dict(input_size="3"), dict(dropout=2), dict(dropout=-0.1),
    dict(dropout=True), dict(dropout="0.5"), dict(proj_size=1), dict(unknown_argument=1),
]


def constructor_arguments(overrides):
    return dict(dict(input_size=D, hidden_size=H), **overrides)


@pytest.mark.parametrize("overrides", BAD_CONSTRUCTOR_ARGUMENTS,
                         ids=[next(iter(o.items())).__repr__() for o in BAD_CONSTRUCTOR_ARGUMENTS])
def test_constructor_rejects_what_nn_rnn_rejects_with_its_exception(overrides):
    with pytest.raises(Exception) as expected:
        nn.RNN(**constructor_arguments(overrides))
    with pytest.raises(type(expected.value), match=re.escape(str(expected.value))):
        FusedRNN(**constructor_arguments(overrides))


def test_constructor_warns_as_nn_rnn_does():
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        FusedRNN(D, H, dropout=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FusedRNN(D, H, num_layers=2, dropout=0.5)


def test_constructor_rejects_unknown_choices():
    with pytest.raises(ValueError, match="Unknown nonlinearity 'gelu'. Select from 'tanh', "
                                         "'relu' or 'identity'."):
        FusedRNN(D, H, nonlinearity="gelu")
    with pytest.raises(ValueError) as nn_error:
        nn.RNN(D, H, nonlinearity="gelu")
    assert "Unknown nonlinearity 'gelu'" in str(nn_error.value)
    with pytest.raises(ValueError, match="Unknown init 'kaiming'. Select from 'orthogonal', "
                                         "'xavier' or 'torch'."):
        FusedRNN(D, H, init="kaiming")
    with pytest.raises(ValueError, match="Unknown backend 'fast'. Select from 'auto'.*"
                                         "'per-step'"):
        FusedRNN(D, H, backend="fast")


def x_(*shape, **kwargs):
    return torch.randn(*shape, **kwargs)


# (name, arguments of forward, what FusedRNN's message must say). nn.RNN rejects
# each of them; FusedRNN must raise the same exception type.
BAD_INPUTS = [
    ("4-D input", lambda: (x_(T, B, D, 1),), r"Expected input to be 2D or 3D, got 4D tensor"),
    ("1-D input", lambda: (x_(T),), r"Expected input to be 2D or 3D, got 1D tensor"),
    ("input size", lambda: (x_(T, B, 7),),
     r"input.size\(-1\) must be equal to input_size. Expected 3, got 7"),
    ("input dtype", lambda: (x_(T, B, D, dtype=torch.float64),),
     r"input dtype \(torch.float64\) does not match weight dtype \(torch.float32\)"),
    ("integer input", lambda: (torch.ones(T, B, D, dtype=torch.long),),
     r"input dtype \(torch.int64\) does not match weight dtype"),
    ("empty sequence", lambda: (x_(0, B, D),), "Expected sequence length to be larger than 0"),
    ("hx shape", lambda: (x_(T, B, D), x_(2, B, H)),
     r"Expected hidden size \(4, 2, 4\), got \[2, 2, 4\]"),
    ("2-D hx for batched input", lambda: (x_(T, B, D), x_(4, H)),
     "For batched 3-D input, hx should also be 3-D but got 2-D tensor"),
    ("3-D hx for unbatched input", lambda: (x_(T, D), x_(4, 1, H)),
     "For unbatched 2-D input, hx should also be 2-D but got 3-D tensor"),
    ("hx dtype", lambda: (x_(T, B, D), x_(4, B, H, dtype=torch.float64)),
     "expected hx of dtype torch.float32 \\(the input's\\), got torch.float64"),
    ("integer hx", lambda: (x_(T, B, D), torch.zeros(4, B, H, dtype=torch.long)),
     "expected hx of dtype torch.float32 \\(the input's\\), got torch.int64"),
    ("input on another device", lambda: (x_(T, B, D, device="meta"),),
     "Input and parameter tensors are not at the same device, found input tensor at meta "
     "and parameter tensor at cpu"),
    ("hx on another device", lambda: (x_(T, B, D), x_(4, B, H, device="meta")),
     "Input and hidden tensors are not at the same device, found input tensor at cpu and "
     "hidden tensor at meta"),
]


@pytest.mark.parametrize("name, arguments, pattern", BAD_INPUTS,
                         ids=[case[0] for case in BAD_INPUTS])
def test_inputs_nn_rnn_rejects_raise_its_exception_type(name, arguments, pattern):
    rnn = nn.RNN(D, H, num_layers=2, bidirectional=True)
    with pytest.raises(Exception) as expected:
        rnn(*arguments())
    fused = FusedRNN.from_rnn(rnn)
    with pytest.raises(type(expected.value), match=pattern):
        fused(*arguments())


@pytest.fixture
def rnn():
    return FusedRNN(D, H, num_layers=2, bidirectional=True)


def test_empty_batch_runs_as_in_nn_rnn(rnn):
    x = torch.randn(T, 0, D, requires_grad=True)
    out, h_n = rnn(x, mask=torch.ones(T, 0, dtype=torch.bool))
    assert out.shape == (T, 0, 2 * H) and h_n.shape == (4, 0, H)
    (out.sum() + h_n.sum()).backward()
    assert x.grad.shape == x.shape


def test_wrong_mask_shape(rnn):
    with pytest.raises(ValueError, match=r"expected mask of shape \[T, B\] = \(5, 2\), got "
                                         r"\(2, 5\)"):
        rnn(torch.randn(T, B, D), mask=torch.ones(B, T))
    batch_first = FusedRNN(D, H, batch_first=True)
    with pytest.raises(ValueError, match=r"expected mask of shape \[B, T\] = \(2, 5\)"):
        batch_first(torch.randn(B, T, D), mask=torch.ones(T, B))
    with pytest.raises(ValueError, match=r"expected mask of shape \[T\] = \(5,\)"):
        rnn(torch.randn(T, D), mask=torch.ones(T, 1))


def test_wrong_mask_type(rnn):
    with pytest.raises(TypeError, match="mask must be bool or floating point, got torch.int64"):
        rnn(torch.randn(T, B, D), mask=torch.ones(T, B, dtype=torch.long))
    with pytest.raises(TypeError, match="mask must be a tensor, got list"):
        rnn(torch.randn(T, B, D), mask=[[1] * B] * T)


def test_wrong_reset_state(rnn):
    x, mask = torch.randn(T, B, D), torch.ones(T, B)
    with pytest.raises(ValueError, match=r"expected reset_state of shape \(4, 2, 4\) \(like hx\)"):
        rnn(x, mask=mask, reset_state=torch.zeros(B, H))
    with pytest.raises(TypeError, match=r"expected reset_state of dtype torch.float32 \(like "
                                        r"hx\), got torch.float64"):
        rnn(x, mask=mask, reset_state=torch.zeros(4, B, H, dtype=torch.float64))
    for bad in ("zeros", True):
        with pytest.raises(TypeError, match="reset_state must be a tensor shaped like hx or a "
                                            "number"):
            rnn(x, mask=mask, reset_state=bad)
    with pytest.raises(ValueError, match="unbatched 2-D input, reset_state should be 2-D"):
        rnn(torch.randn(T, D), mask=torch.ones(T), reset_state=torch.zeros(4, T, 1, H))
    with pytest.raises(RuntimeError, match="Hx and reset_state tensors are not at the same "
                                           "device"):
        rnn(x, mask=mask, reset_state=torch.zeros(4, B, H, device="meta"))


def test_unsupported_dtype_on_cpu():
    half = FusedRNN(D, H, dtype=torch.float16)
    with pytest.raises(TypeError, match="on CPU the input must be float32 or float64, got Half"):
        half(torch.randn(T, B, D, dtype=torch.float16))


def test_mask_on_another_device(rnn):
    with pytest.raises(RuntimeError, match="Input and mask tensors are not at the same device"):
        rnn(torch.randn(T, B, D), mask=torch.ones(T, B, device="meta"))


def test_unknown_backend_set_after_construction(rnn):
    rnn.backend = "fast"
    with pytest.raises(ValueError, match="backend must be 'auto'.*'per-step'.*got 'fast'"):
        rnn(torch.randn(T, B, D))


@pytest.mark.skipif("persistent" not in backends(), reason="a build without the CUDA kernels")
@pytest.mark.parametrize("backend", ["persistent", "cluster"])
def test_cuda_backends_on_the_cpu_are_a_clear_error(rnn, backend):
    rnn.backend = backend
    with pytest.raises(ValueError, match=f"the '{backend}' backend does not run on the CPU"):
        rnn(torch.randn(T, B, D))


def test_reset_state_is_checked_even_without_mask(rnn):
    with pytest.raises(ValueError, match=r"expected reset_state of shape \(4, 2, 4\)"):
        rnn(torch.randn(T, B, D), reset_state=torch.zeros(7, 7, 7))


def test_packed_input_rejects_mask_and_reset_state(rnn):
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.randn(T, B, D), torch.tensor([5, 3]))
    for kwargs in (dict(mask=torch.ones(T, B)), dict(reset_state=0.0)):
        with pytest.raises(ValueError, match="takes its mask from its lengths and resets to hx"):
            rnn(packed, **kwargs)


def test_functional_errors():
    w_ih, w_hh = torch.randn(H, D), torch.randn(H, H)
    with pytest.raises(ValueError, match="Unknown nonlinearity 'sigmoid'"):
        fused_rnn(torch.randn(T, B, D), w_ih, w_hh, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="Unknown backend 'fast'"):
        fused_rnn(torch.randn(T, B, D), w_ih, w_hh, backend="fast")
    with pytest.raises(ValueError, match="Expected input to be 2D or 3D, got 1D tensor"):
        fused_rnn(torch.randn(T), w_ih, w_hh)
    with pytest.raises(ValueError, match="bias_ih and bias_hh must be given together"):
        fused_rnn(torch.randn(T, B, D), w_ih, w_hh, bias_ih=torch.zeros(H))
    with pytest.raises(RuntimeError, match="input.size\\(-1\\) must be equal to input_size. "
                                           "Expected 3, got 5"):
        fused_rnn(torch.randn(T, B, 5), w_ih, w_hh)
    with pytest.raises(ValueError, match="for unbatched 2-D input, hx must be 1-D"):
        fused_rnn(torch.randn(T, D), w_ih, w_hh, hx=torch.zeros(1, H))
    with pytest.raises(ValueError, match="for unbatched 2-D input, reset_state must be 1-D"):
        fused_rnn(torch.randn(T, D), w_ih, w_hh, mask=torch.ones(T),
                  reset_state=torch.zeros(1, T, H))
    with pytest.raises(RuntimeError, match="Expected sequence length to be larger than 0"):
        fused_rnn(torch.randn(0, B, D), w_ih, w_hh)
    with pytest.raises(ValueError, match=r"expected weight_ih and weight_hh of shapes "
                                         r"\[G·H, D\] and \[G·H, H\] \(\[G·H, P\] with "
                                         r"proj_size P\), got \(4, 3\) and \(\)"):
        fused_rnn(torch.randn(T, B, D), w_ih, torch.tensor(1.0))
    # The op's states have a layer dimension, which fused_rnn adds.
    with pytest.raises(ValueError, match=r"expected reset_state of shape \(1, 2, 4\)"):
        fused_rnn(torch.randn(T, B, D), w_ih, w_hh, reset_state=torch.zeros(3))
    with pytest.raises(ValueError, match=r"expected mask of shape \[B, T\] = \(2, 5\)"):
        fused_rnn(torch.randn(B, T, D), w_ih, w_hh, mask=torch.ones(T, B), batch_first=True)


@pytest.mark.parametrize("name", ["hx", "weight_hh", "mask"])
def test_functional_rejects_a_meta_tensor_among_cpu_ones(name):
    """A meta tensor routes the call to the fake kernel, which must refuse rather
    than return uninitialized memory."""
    args = dict(input=torch.randn(T, B, D), weight_ih=torch.randn(H, D),
                weight_hh=torch.randn(H, H), hx=torch.zeros(B, H), mask=torch.ones(T, B))
    args[name] = args[name].to("meta")
    role = {"hx": "hidden", "weight_hh": "parameter", "mask": "mask"}[name]
    with pytest.raises(RuntimeError, match=f"Input and {role} tensors are not at the same "
                                           "device, found input tensor at cpu"):
        fused_rnn(**args)
