"""Validation and normalization of the user-facing arguments that FusedRNN and
fused_rnn share. Every check raises with the expected shape, dtype or device."""
from numbers import Number
from typing import Optional, Sequence, Union

import torch

NONLINEARITIES = ("tanh", "relu", "identity")


def check_nonlinearity(nonlinearity: str) -> None:
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"Unknown nonlinearity {nonlinearity!r}. Select from 'tanh', "
                         "'relu' or 'identity'.")


def autocast_dtype(input: torch.Tensor) -> Optional[torch.dtype]:
    """The dtype FusedRNN computes in under torch.autocast, or None outside it.

    On CUDA it is the autocast dtype (float16 and bfloat16 kernels exist); on the
    CPU, which has no half-precision kernels, float32. float64 is never cast."""
    device_type = input.device.type
    if (device_type not in ("cpu", "cuda") or input.dtype == torch.float64
            or not torch.is_autocast_enabled(device_type)):
        return None
    return torch.get_autocast_dtype(device_type) if device_type == "cuda" else torch.float32


def check_input_rank(input: torch.Tensor) -> None:
    if input.dim() not in (2, 3):
        raise ValueError(f"rnn_fused: Expected input to be 2D or 3D, got {input.dim()}D "
                         "tensor instead")


def to_time_major(input: torch.Tensor, mask: Optional[torch.Tensor], batch_first: bool):
    """(input [T, B, D], mask [T, B] or None, unbatched) from the user's layout,
    contiguous, so that the ops of every layer and direction need no copy.

    The mask is checked against the input's leading dims as the user passed them.
    """
    check_input_rank(input)
    mask = prepare_mask(mask, input.shape[:-1], input)
    unbatched = input.dim() == 2
    if unbatched:
        input, mask = input.unsqueeze(1), None if mask is None else mask.unsqueeze(1)
    elif batch_first:
        input, mask = input.transpose(0, 1), None if mask is None else mask.transpose(0, 1)
    return input.contiguous(), None if mask is None else mask.contiguous(), unbatched


def from_time_major(output: torch.Tensor, batch_first: bool, unbatched: bool) -> torch.Tensor:
    if unbatched:
        return output.squeeze(1)
    return output.transpose(0, 1) if batch_first else output


def check_same_device(tensor: torch.Tensor, name: str, input: torch.Tensor) -> None:
    if tensor.device != input.device:
        raise RuntimeError(f"rnn_fused: expected {name} on device {input.device} (the "
                           f"input's), got {tensor.device}")


def prepare_mask(mask: Optional[torch.Tensor], leading_shape: Sequence[int],
                 input: torch.Tensor) -> Optional[torch.Tensor]:
    """A bool or float mask shaped like input's leading dims, as input's dtype."""
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"rnn_fused: mask must be a tensor, got {type(mask).__name__}")
    if tuple(mask.shape) != tuple(leading_shape):
        raise ValueError(f"rnn_fused: expected mask of shape {tuple(leading_shape)} (the "
                         f"input's leading dims), got {tuple(mask.shape)}")
    if not (mask.dtype == torch.bool or mask.is_floating_point()):
        raise TypeError(f"rnn_fused: mask must be bool or floating point, got {mask.dtype}")
    check_same_device(mask, "mask", input)
    return mask.to(input.dtype)


def prepare_reset_state(reset_state: Union[None, Number, torch.Tensor],
                        hx: torch.Tensor) -> torch.Tensor:
    """reset_state as a tensor shaped like hx; None means hx itself."""
    if reset_state is None:
        return hx
    if isinstance(reset_state, Number) and not isinstance(reset_state, bool):
        return torch.full_like(hx, float(reset_state))
    if not isinstance(reset_state, torch.Tensor):
        raise TypeError("rnn_fused: reset_state must be a tensor shaped like hx or a number, "
                        f"got {type(reset_state).__name__}")
    if reset_state.shape != hx.shape:
        raise ValueError(f"rnn_fused: expected reset_state of shape {tuple(hx.shape)} (like "
                         f"hx), got {tuple(reset_state.shape)}")
    if reset_state.dtype != hx.dtype:
        raise TypeError(f"rnn_fused: expected reset_state of dtype {hx.dtype}, got "
                        f"{reset_state.dtype}")
    check_same_device(reset_state, "reset_state", hx)
    return reset_state
