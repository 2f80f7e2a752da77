"""fused_rnn: one RNN layer as a function, through the modules' own op
(rnn_fused::module_forward), which checks its arguments as FusedRNN's."""
from numbers import Number
from typing import Optional, Tuple, Union

import torch

from ._checks import check_backend, check_nonlinearity
from ._onnx_exporting import onnx_exporter


def fused_rnn(input: torch.Tensor, weight_ih: torch.Tensor, weight_hh: torch.Tensor,
              bias_ih: Optional[torch.Tensor] = None, bias_hh: Optional[torch.Tensor] = None,
              hx: Optional[torch.Tensor] = None, mask: Optional[torch.Tensor] = None,
              reset_state: Union[None, Number, torch.Tensor] = None,
              nonlinearity: str = "tanh", batch_first: bool = False,
              reverse: bool = False, backend: str = "auto"
              ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Runs h_t = φ(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh) over a sequence.

    input [T, B, D] ([B, T, D] with batch_first) or unbatched [T, D];
    weight_ih [H, D]; weight_hh [H, H]; bias_ih, bias_hh [H] or both None;
    hx [B, H] ([H] unbatched), default zeros;
    mask shaped like input's leading dims ([T, B], [B, T] or [T]), bool or float:
    after step t the carried state is mask_t·h_t + (1 − mask_t)·reset_state;
    reset_state shaped like hx, or one per step shaped like the output
    ([T, B, H], [B, T, H], [T, H]), whose step t resets step t's carry, or a
    number; default hx.
    reverse processes t = T−1 … 0. backend: 'auto' or a kernel family's name
    (see rnn_fused.plan).

    Returns (output [T, B, H] ([B, T, H] with batch_first, [T, H] unbatched),
    h_n [B, H]): h_n is the state after the last processed step, before reset.
    """
    if onnx_exporter("fused_rnn") == "torchscript":
        raise torch.onnx.errors.OnnxExporterError(
            "fused_rnn: torch.onnx.export(dynamo=False) cannot write rnn_fused's ops; export "
            "with dynamo=True (torch.onnx.export's default; docs/export.md)")
    check_nonlinearity(nonlinearity)
    check_backend(backend)
    if (bias_ih is None) != (bias_hh is None):
        raise ValueError("fused_rnn: bias_ih and bias_hh must be given together")
    if mask is not None and not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a tensor, got {type(mask).__name__}")
    if reset_state is not None and not isinstance(reset_state, (torch.Tensor, Number)):
        raise TypeError("reset_state must be a tensor shaped like hx or a number, got "
                        f"{type(reset_state).__name__}")
    number = isinstance(reset_state, Number) and not isinstance(reset_state, bool)
    # The states have the input's batch dimensions: the op's layout adds the layer's.
    if hx is not None and input.dim() == 2 and hx.dim() != 1:
        raise ValueError(f"fused_rnn: for unbatched 2-D input, hx must be 1-D [H], got shape "
                         f"{tuple(hx.shape)}")
    if isinstance(reset_state, torch.Tensor) and input.dim() == 2 and reset_state.dim() > 2:
        raise ValueError("fused_rnn: for unbatched 2-D input, reset_state must be 1-D [H] or, "
                         f"one per step, 2-D [T, H], got shape {tuple(reset_state.shape)}")
    biases = [] if bias_ih is None else [bias_ih, bias_hh]
    # The module op's states: one layer and direction, [1, B, H] ([1, H] unbatched).
    output, finals, _ = torch.ops.rnn_fused.module_forward(
        input, [weight_ih, weight_hh, *biases], [] if hx is None else [hx.unsqueeze(0)], mask,
        [] if reset_state is None or number else [reset_state.unsqueeze(0)],
        float(reset_state) if number else None, f"rnn_{nonlinearity}", 1, False, bool(biases),
        batch_first, 0.0, False, backend, None, reverse)
    return output, finals[0][0]
