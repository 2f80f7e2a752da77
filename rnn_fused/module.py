"""FusedRNN: a drop-in for torch.nn.RNN whose recurrence runs in fused kernels,
with a per-timestep mask-reset."""
import math
import warnings
from numbers import Number
from typing import List, Optional, Tuple, Union

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from . import ops
from ._inputs import (autocast_dtype, check_nonlinearity, check_same_device,
                      from_time_major, prepare_reset_state, to_time_major)
from .utils import lengths_to_mask

INITS = ("orthogonal", "xavier", "torch")


def _autocast(input: torch.Tensor) -> torch.Tensor:
    """The input in the dtype FusedRNN computes in, under torch.autocast."""
    dtype = autocast_dtype(input)
    return input if dtype is None else input.to(dtype)


class FusedRNN(nn.Module):
    """Elman RNN, h_t = φ(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh), like nn.RNN.

    Same constructor, parameter names, shapes and state_dict as torch.nn.RNN,
    plus nonlinearity='identity' and `init`:
      'orthogonal' (default): W_ih Xavier-uniform, W_hh orthogonal, biases zero;
      'xavier': W_ih and W_hh Xavier-uniform, biases zero;
      'torch': nn.RNN's uniform(−1/√H, 1/√H) for every parameter.

    forward(input, hx=None, mask=None, reset_state=None) -> (output, h_n):
    mask has the shape of input's leading dims ([T, B], [B, T] with batch_first,
    [T] unbatched), bool or float; after step t each direction carries
    mask_t·h_t + (1 − mask_t)·reset_state into its next step (the reverse
    direction steps t = T−1 … 0). reset_state is shaped like hx (or a number)
    and defaults to hx. Every layer uses the same mask. A PackedSequence input
    takes its mask from its lengths.

    Under torch.autocast the layer computes in the autocast dtype on CUDA and in
    float32 on the CPU (which has no half-precision kernels); inputs and weights
    are cast to it, and the outputs come back in it.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None, dtype=None,
                 init: str = "orthogonal"):
        super().__init__()
        check_nonlinearity(nonlinearity)
        if init not in INITS:
            raise ValueError(f"Unknown init {init!r}. Select from {', '.join(map(repr, INITS))}.")
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                            ("num_layers", num_layers)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
            if value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        if (not isinstance(dropout, Number) or isinstance(dropout, bool)
                or not 0 <= dropout <= 1):
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             "probability of an element being zeroed")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                          f"non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.nonlinearity = nonlinearity
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.init = init
        self.proj_size = 0
        factory = {"device": device, "dtype": dtype}
        num_directions = 2 if bidirectional else 1
        self._flat_weights_names: List[str] = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * num_directions
            for direction in range(num_directions):
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes = [("weight_ih", (hidden_size, layer_input)),
                          ("weight_hh", (hidden_size, hidden_size))]
                if bias:
                    shapes += [("bias_ih", (hidden_size,)), ("bias_hh", (hidden_size,))]
                for name, shape in shapes:
                    setattr(self, name + suffix, nn.Parameter(torch.empty(shape, **factory)))
                    self._flat_weights_names.append(name + suffix)
        self.reset_parameters()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def all_weights(self) -> List[List[nn.Parameter]]:
        per_layer = 4 if self.bias else 2
        weights = self._flat_weights
        return [weights[i:i + per_layer] for i in range(0, len(weights), per_layer)]

    @property
    def _flat_weights(self) -> List[nn.Parameter]:
        return [getattr(self, name) for name in self._flat_weights_names]

    def flatten_parameters(self) -> None:
        """A no-op, for code written against nn.RNN: the kernels need no flat buffer."""

    def reset_parameters(self) -> None:
        with torch.no_grad():
            if self.init == "torch":
                bound = 1.0 / math.sqrt(self.hidden_size)
                for weight in self.parameters():
                    nn.init.uniform_(weight, -bound, bound)
                return
            for name in self._flat_weights_names:
                weight = getattr(self, name)
                if name.startswith("bias"):
                    nn.init.zeros_(weight)
                elif name.startswith("weight_hh") and self.init == "orthogonal":
                    # QR has no float16/bfloat16 kernels: factor in float32, then cast.
                    precise = weight.to(torch.promote_types(weight.dtype, torch.float32))
                    weight.copy_(nn.init.orthogonal_(precise))
                else:
                    nn.init.xavier_uniform_(weight)

    def extra_repr(self) -> str:
        s = "{input_size}, {hidden_size}"
        if self.num_layers != 1:
            s += ", num_layers={num_layers}"
        if self.nonlinearity != "tanh":
            s += ", nonlinearity={nonlinearity!r}"
        if self.bias is not True:
            s += ", bias={bias}"
        if self.batch_first is not False:
            s += ", batch_first={batch_first}"
        if self.dropout != 0:
            s += ", dropout={dropout}"
        if self.bidirectional is not False:
            s += ", bidirectional={bidirectional}"
        return s.format(**self.__dict__)

    def layer_weights(self, layer: int, direction: int = 0):
        """(weight_ih, weight_hh, bias_ih, bias_hh) of one layer and direction
        (1 = reverse); the biases are None without bias. fused_rnn takes them as is."""
        suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        names = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if self.bias else ())
        weights = tuple(getattr(self, name + suffix) for name in names)
        return weights if self.bias else weights + (None, None)

    def forward(self, input: Union[torch.Tensor, PackedSequence],
                hx: Optional[torch.Tensor] = None, mask: Optional[torch.Tensor] = None,
                reset_state: Union[None, Number, torch.Tensor] = None):
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx, mask, reset_state)
        input, mask, unbatched = to_time_major(_autocast(input), mask, self.batch_first)
        if unbatched:
            if hx is not None:
                if hx.dim() != 2:
                    raise RuntimeError("For unbatched 2-D input, hx should also be 2-D but "
                                       f"got {hx.dim()}-D tensor")
                hx = hx.unsqueeze(1)
            if isinstance(reset_state, torch.Tensor):
                if reset_state.dim() != 2:
                    raise ValueError("For unbatched 2-D input, reset_state should be 2-D "
                                     f"[L*dirs, H] but got shape {tuple(reset_state.shape)}")
                reset_state = reset_state.unsqueeze(1)
        elif hx is not None and hx.dim() != 3:
            raise RuntimeError("For batched 3-D input, hx should also be 3-D but got "
                               f"{hx.dim()}-D tensor")
        output, h_n = self._forward_time_major(input, hx, mask, reset_state, last_steps=None)
        return (from_time_major(output, self.batch_first, unbatched),
                h_n.squeeze(1) if unbatched else h_n)

    def _forward_packed(self, packed: PackedSequence, hx, mask, reset_state):
        if mask is not None or reset_state is not None:
            raise ValueError("FusedRNN: a PackedSequence input takes its mask from its "
                             "lengths and resets to hx; pass mask=None and reset_state=None")
        padded, lengths = pad_packed_sequence(packed)
        padded = _autocast(padded)
        steps = padded.shape[0]
        lengths = lengths.to(padded.device)
        # Resets at the pads make the reverse direction start each sequence from hx.
        mask = lengths_to_mask(lengths, steps).t().to(padded.dtype)
        if hx is not None and hx.dim() != 3:
            raise RuntimeError("For a PackedSequence input, hx should be 3-D but got "
                               f"{hx.dim()}-D tensor")
        output, h_n = self._forward_time_major(padded, hx, mask, reset_state,
                                               last_steps=lengths - 1)
        # Back to packed order: time-major over the length-sorted batch.
        if packed.sorted_indices is not None:
            output = output.index_select(1, packed.sorted_indices)
        batch_sizes = packed.batch_sizes
        valid = (torch.arange(output.shape[1]).unsqueeze(0) < batch_sizes.unsqueeze(1))
        data = output[valid.to(output.device)]
        return (PackedSequence(data, batch_sizes, packed.sorted_indices,
                               packed.unsorted_indices), h_n)

    def _forward_time_major(self, input: torch.Tensor, hx: Optional[torch.Tensor],
                            mask: Optional[torch.Tensor], reset_state,
                            last_steps: Optional[torch.Tensor],
                            ) -> Tuple[torch.Tensor, torch.Tensor]:
        """input [T, B, D], hx [L·dirs, B, H], mask [T, B]; last_steps [B] picks each
        sequence's forward final state (default T−1)."""
        steps, batch, features = input.shape
        weight = self.weight_ih_l0
        if features != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected "
                               f"{self.input_size}, got {features}")
        # forward() and _forward_packed() already cast the input under autocast.
        compute_dtype = autocast_dtype(input)
        if compute_dtype is not None:
            hx = None if hx is None else hx.to(compute_dtype)
            if isinstance(reset_state, torch.Tensor):
                reset_state = reset_state.to(compute_dtype)
        elif input.dtype != weight.dtype:
            raise ValueError(f"input must have the type {weight.dtype}, got type {input.dtype}")
        check_same_device(weight, "parameters", input)
        expected_hx = (self.num_layers * self.num_directions, batch, self.hidden_size)
        if hx is None:
            hx = input.new_zeros(expected_hx)
        else:
            if tuple(hx.shape) != expected_hx:
                raise RuntimeError(f"Expected hidden size {expected_hx}, got {list(hx.shape)}")
            if hx.dtype != input.dtype:
                raise ValueError(f"hx must have the type {input.dtype}, got type {hx.dtype}")
            check_same_device(hx, "hx", input)
        reset = prepare_reset_state(reset_state, hx)

        layer_input = input
        finals = []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                index = layer * self.num_directions + direction
                reverse = direction == 1
                weights = self.layer_weights(layer, direction)
                if compute_dtype is not None:
                    weights = [None if w is None else w.to(compute_dtype) for w in weights]
                out = ops.rnn_layer(layer_input, *weights,
                                    hx[index], mask, None if mask is None else reset[index],
                                    self.nonlinearity, reverse)
                outputs.append(out)
                if reverse:
                    finals.append(out[0])
                elif last_steps is None:
                    finals.append(out[-1])
                else:
                    finals.append(out[last_steps, torch.arange(batch, device=out.device)])
            layer_input = torch.cat(outputs, dim=-1) if self.bidirectional else outputs[0]
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = nn.functional.dropout(layer_input, self.dropout, training=True)
        return layer_input, torch.stack(finals)

    @classmethod
    def from_rnn(cls, rnn: nn.RNN, init: str = "orthogonal") -> "FusedRNN":
        """A FusedRNN with the configuration and a copy of the weights of `rnn`."""
        if not isinstance(rnn, nn.RNN):
            raise TypeError(f"from_rnn expects a torch.nn.RNN, got {type(rnn).__name__}")
        weight = rnn.weight_ih_l0
        fused = cls(rnn.input_size, rnn.hidden_size, rnn.num_layers, rnn.nonlinearity,
                    rnn.bias, rnn.batch_first, rnn.dropout, rnn.bidirectional,
                    device=weight.device, dtype=weight.dtype, init=init)
        fused.load_state_dict(rnn.state_dict())
        return fused

    def to_rnn(self) -> nn.RNN:
        """A torch.nn.RNN with this layer's configuration and a copy of its weights."""
        if self.nonlinearity == "identity":
            raise ValueError("to_rnn: torch.nn.RNN has no 'identity' nonlinearity")
        weight = self.weight_ih_l0
        rnn = nn.RNN(self.input_size, self.hidden_size, self.num_layers, self.nonlinearity,
                     self.bias, self.batch_first, self.dropout, self.bidirectional,
                     device=weight.device, dtype=weight.dtype)
        rnn.load_state_dict(self.state_dict())
        return rnn
