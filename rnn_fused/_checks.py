"""The checks of constructor arguments and of the reference layer's and the mask
helpers' arguments; the modules' and fused_rnn's calls are checked in C++
(rnn_fused::module_forward)."""
from typing import Sequence

import torch

NONLINEARITIES = ("tanh", "relu", "identity")
PAD_POSITIONS = ("pre", "post")


def check_choice(name: str, value, choices: Sequence[str]) -> None:
    if value not in choices:
        listed = ", ".join(map(repr, choices[:-1])) + f" or {choices[-1]!r}"
        raise ValueError(f"Unknown {name} {value!r}. Select from {listed}.")


def check_nonlinearity(nonlinearity: str) -> None:
    check_choice("nonlinearity", nonlinearity, NONLINEARITIES)


def check_backend(backend: str) -> None:
    """One of the backend names of this build (rnn_fused::backends, from the
    kernel families that registered themselves)."""
    from .ops import backends
    check_choice("backend", backend, backends())


def check_pad_position(pad_position: str) -> None:
    check_choice("pad_position", pad_position, PAD_POSITIONS)


def check_mask_shape(mask: torch.Tensor, expected: Sequence[int], layout: str) -> None:
    """mask must have shape `expected`, which `layout` names (e.g. "[B, T]")."""
    if tuple(mask.shape) != tuple(expected):
        raise ValueError(f"expected mask of shape {layout} = {tuple(expected)}, got "
                         f"{tuple(mask.shape)}")
