"""The argument checks that FusedRNN, fused_rnn, the reference layer and the mask
helpers share. Each raises with the expected shape, dtype or device, with the
exception type nn.RNN raises for the same mistake."""
from numbers import Number
from typing import Optional, Sequence, Tuple, Union

import torch

NONLINEARITIES = ("tanh", "relu", "identity")
BACKENDS = ("auto", "per-step", "persistent", "cluster")
PAD_POSITIONS = ("pre", "post")


def check_choice(name: str, value, choices: Sequence[str]) -> None:
    if value not in choices:
        listed = ", ".join(map(repr, choices[:-1])) + f" or {choices[-1]!r}"
        raise ValueError(f"Unknown {name} {value!r}. Select from {listed}.")


def check_nonlinearity(nonlinearity: str) -> None:
    check_choice("nonlinearity", nonlinearity, NONLINEARITIES)


def check_backend(backend: str) -> None:
    check_choice("backend", backend, BACKENDS)


def check_pad_position(pad_position: str) -> None:
    check_choice("pad_position", pad_position, PAD_POSITIONS)


def check_same_device(tensor: torch.Tensor, name: str, like: torch.Tensor,
                      like_name: str = "input") -> None:
    if tensor.device != like.device:
        raise RuntimeError(f"{like_name.capitalize()} and {name} tensors are not at the same "
                           f"device, found {like_name} tensor at {like.device} and {name} "
                           f"tensor at {tensor.device}")


def check_mask_shape(mask: torch.Tensor, expected: Sequence[int], layout: str) -> None:
    """mask must have shape `expected`, which `layout` names (e.g. "[B, T]")."""
    if tuple(mask.shape) != tuple(expected):
        raise ValueError(f"expected mask of shape {layout} = {tuple(expected)}, got "
                         f"{tuple(mask.shape)}")


def prepare_mask(mask: Optional[torch.Tensor], input: torch.Tensor,
                 layout: str) -> Optional[torch.Tensor]:
    """A bool or float mask shaped like input's leading dims, in input's dtype."""
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a tensor, got {type(mask).__name__}")
    check_mask_shape(mask, input.shape[:-1], layout)
    if not (mask.dtype == torch.bool or mask.is_floating_point()):
        raise TypeError(f"mask must be bool or floating point, got {mask.dtype}")
    check_same_device(mask, "mask", input)
    return mask.to(input.dtype)


def split_reset_state(reset_state: Union[None, Number, torch.Tensor]
                      ) -> Tuple[Optional[torch.Tensor], Optional[float]]:
    """(tensor, None), (None, number) or (None, None)."""
    if reset_state is None or isinstance(reset_state, torch.Tensor):
        return reset_state, None
    if isinstance(reset_state, Number) and not isinstance(reset_state, bool):
        return None, float(reset_state)
    raise TypeError("reset_state must be a tensor shaped like hx or a number, got "
                    f"{type(reset_state).__name__}")


def reset_like(tensor: Optional[torch.Tensor], value: Optional[float],
               hx: torch.Tensor) -> torch.Tensor:
    """The reset state as a tensor shaped like hx: the tensor given, the number
    given, or hx itself."""
    if value is not None:
        return torch.full_like(hx, value)
    if tensor is None:
        return hx
    if tensor.shape != hx.shape:
        raise ValueError(f"expected reset_state of shape {tuple(hx.shape)} (like hx), got "
                         f"{tuple(tensor.shape)}")
    # Under autocast the op casts both to the dtype it computes in.
    if tensor.dtype != hx.dtype and not torch._C._is_any_autocast_enabled():
        raise TypeError(f"expected reset_state of dtype {hx.dtype} (like hx), got {tensor.dtype}")
    check_same_device(tensor, "reset_state", hx, "hx")
    return tensor
