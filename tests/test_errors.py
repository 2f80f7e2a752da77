"""Bad input to FusedRNN and fused_rnn raises a clear exception, never a crash."""
import pytest
import torch

from rnn_fused import FusedRNN, fused_rnn

B, T, D, H = 2, 5, 3, 4


@pytest.fixture
def rnn():
    return FusedRNN(D, H, num_layers=2, bidirectional=True)


def test_wrong_input_rank(rnn):
    with pytest.raises(ValueError, match="Expected input to be 2D or 3D, got 4D tensor"):
        rnn(torch.randn(T, B, D, 1))


def test_wrong_input_size(rnn):
    with pytest.raises(RuntimeError, match="input.size\\(-1\\) must be equal to input_size. "
                                           "Expected 3, got 7"):
        rnn(torch.randn(T, B, 7))


def test_wrong_hx_shape(rnn):
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(4, 2, 4\), got \[2, 2, 4\]"):
        rnn(torch.randn(T, B, D), torch.randn(2, B, H))
    with pytest.raises(RuntimeError, match="hx should also be 3-D but got 2-D"):
        rnn(torch.randn(T, B, D), torch.randn(4, H))
    with pytest.raises(RuntimeError, match="unbatched 2-D input, hx should also be 2-D"):
        rnn(torch.randn(T, D), torch.randn(4, 1, H))


def test_wrong_mask_shape(rnn):
    with pytest.raises(ValueError, match=r"expected mask of shape \(5, 2\) \(the input's "
                                         r"leading dims\), got \(2, 5\)"):
        rnn(torch.randn(T, B, D), mask=torch.ones(B, T))
    batch_first = FusedRNN(D, H, batch_first=True)
    with pytest.raises(ValueError, match=r"expected mask of shape \(2, 5\)"):
        batch_first(torch.randn(B, T, D), mask=torch.ones(T, B))
    with pytest.raises(ValueError, match=r"expected mask of shape \(5,\)"):
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
    with pytest.raises(TypeError, match="expected reset_state of dtype torch.float32, got "
                                        "torch.float64"):
        rnn(x, mask=mask, reset_state=torch.zeros(4, B, H, dtype=torch.float64))
    with pytest.raises(TypeError, match="reset_state must be a tensor shaped like hx or a number"):
        rnn(x, mask=mask, reset_state="zeros")
    with pytest.raises(ValueError, match="unbatched 2-D input, reset_state should be 2-D"):
        rnn(torch.randn(T, D), mask=torch.ones(T), reset_state=torch.zeros(4, 1, H))


def test_dtype_mismatch(rnn):
    with pytest.raises(ValueError, match="input must have the type torch.float32, got type "
                                         "torch.float64"):
        rnn(torch.randn(T, B, D, dtype=torch.float64))
    with pytest.raises(ValueError, match="hx must have the type torch.float32"):
        rnn(torch.randn(T, B, D), torch.zeros(4, B, H, dtype=torch.float64))


def test_unsupported_dtype_on_cpu():
    half = FusedRNN(D, H, dtype=torch.float16)
    with pytest.raises(TypeError, match="on CPU the input must be float32 or float64, got Half"):
        half(torch.randn(T, B, D, dtype=torch.float16))


def test_tensors_on_different_devices(rnn):
    with pytest.raises(RuntimeError, match="expected parameters on device meta"):
        rnn(torch.randn(T, B, D, device="meta"))
    with pytest.raises(RuntimeError, match="expected hx on device cpu"):
        rnn(torch.randn(T, B, D), torch.zeros(4, B, H, device="meta"))
    with pytest.raises(RuntimeError, match="expected mask on device cpu"):
        rnn(torch.randn(T, B, D), mask=torch.ones(T, B, device="meta"))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="Unknown nonlinearity 'gelu'"):
        FusedRNN(D, H, nonlinearity="gelu")
    with pytest.raises(ValueError, match="Unknown init 'kaiming'"):
        FusedRNN(D, H, init="kaiming")
    with pytest.raises(ValueError, match="dropout should be a number in range"):
        FusedRNN(D, H, num_layers=2, dropout=1.5)
    with pytest.raises(ValueError, match="hidden_size must be a positive integer, got 0"):
        FusedRNN(D, 0)
    with pytest.raises(TypeError, match="input_size should be of type int, got: float"):
        FusedRNN(3.0, H)


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
    with pytest.raises(ValueError, match="bias_ih and bias_hh must be given together"):
        fused_rnn(torch.randn(T, B, D), w_ih, w_hh, bias_ih=torch.zeros(H))
    with pytest.raises(ValueError, match=r"expected weight_ih of shape \[4, 5\]"):
        fused_rnn(torch.randn(T, B, 5), w_ih, w_hh)
    with pytest.raises(ValueError, match="for unbatched 2-D input, hx must be 1-D"):
        fused_rnn(torch.randn(T, D), w_ih, w_hh, hx=torch.zeros(1, H))
    with pytest.raises(ValueError, match="for unbatched 2-D input, reset_state must be 1-D"):
        fused_rnn(torch.randn(T, D), w_ih, w_hh, mask=torch.ones(T),
                  reset_state=torch.zeros(1, H))
    with pytest.raises(RuntimeError, match="expected sequence length to be larger than 0"):
        fused_rnn(torch.randn(0, B, D), w_ih, w_hh)
    with pytest.raises(ValueError, match=r"expected weight_hh of shape \[H, H\], got \(\)"):
        fused_rnn(torch.randn(T, B, D), w_ih, torch.tensor(1.0))
    with pytest.raises(ValueError, match=r"expected reset_state of shape \(2, 4\)"):
        fused_rnn(torch.randn(T, B, D), w_ih, w_hh, reset_state=torch.zeros(3))


@pytest.mark.parametrize("name", ["hx", "weight_hh", "mask"])
def test_functional_rejects_a_meta_tensor_among_cpu_ones(name):
    """A meta tensor routes the call to the fake kernel, which must refuse rather
    than return uninitialized memory."""
    args = dict(input=torch.randn(T, B, D), weight_ih=torch.randn(H, D),
                weight_hh=torch.randn(H, H), hx=torch.zeros(B, H), mask=torch.ones(T, B))
    args[name] = args[name].to("meta")
    with pytest.raises(RuntimeError, match=f"expected {name} on device cpu"):
        fused_rnn(**args)
