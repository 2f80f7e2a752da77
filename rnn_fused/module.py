"""FusedRNN: an nn.RNN whose recurrence runs in fused kernels, with a
per-timestep mask-reset."""
from numbers import Number
from typing import List, Optional, Tuple, Union

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from ._checks import (check_backend, check_choice, check_nonlinearity, check_same_device,
                      prepare_mask, reset_like, split_reset_state)
from .functional import run_layers
from .utils import lengths_to_mask

INITS = ("orthogonal", "xavier", "torch")


def _let_dynamo_trace_rnn_modules() -> None:
    """torch.compile refuses every nn.RNN instance, ours included, unless
    torch._dynamo.config.allow_rnn is set; set it unless the user chose a value.
    Importing the config loads torch._dynamo (about a second, once per process)."""
    import torch._dynamo.config as dynamo_config
    is_default = getattr(dynamo_config, "_is_default", lambda name: True)
    if is_default("allow_rnn"):
        dynamo_config.allow_rnn = True


class FusedRNN(nn.RNN):
    """Elman RNN, h_t = φ(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh): an nn.RNN.

    nn.RNN's constructor (validated by nn.RNN itself), parameter names, shapes and
    state_dict, plus:
      nonlinearity='identity';
      init: 'orthogonal' (default): W_ih Xavier-uniform, W_hh orthogonal, biases
        zero; 'xavier': W_ih and W_hh Xavier-uniform, biases zero; 'torch':
        nn.RNN's uniform(−1/√H, 1/√H) for every parameter;
      backend: 'auto' (default), 'per-step', 'persistent' or 'cluster': which
        recurrence runs on CUDA (rnn_fused.plan says which one a call takes, and
        why; 'auto' never picks 'cluster' yet); an attribute, so it can change
        between calls.

    forward(input, hx=None, mask=None, reset_state=None) -> (output, h_n):
    mask has the shape of input's leading dims ([T, B], [B, T] with batch_first,
    [T] unbatched), bool or float; after step t each direction carries
    mask_t·h_t + (1 − mask_t)·reset_state into its next step (the reverse
    direction steps t = T−1 … 0). reset_state is shaped like hx (or a number)
    and defaults to hx. Every layer uses the same mask. A PackedSequence input
    takes its mask from its lengths. docs/semantics.md states the contract.

    Under torch.autocast each layer computes in the autocast dtype on CUDA and
    in float32 on the CPU (which has no half-precision kernels), and returns
    that dtype.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None, dtype=None,
                 *, init: str = "orthogonal", backend: str = "auto", **kwargs):
        check_nonlinearity(nonlinearity)
        check_choice("init", init, INITS)
        check_backend(backend)
        # Read by reset_parameters(), which nn.RNN's constructor calls.
        self.init = init
        # nn.RNN knows no 'identity'; it validates everything else.
        super().__init__(input_size, hidden_size, num_layers,
                         "tanh" if nonlinearity == "identity" else nonlinearity, bias,
                         batch_first, dropout, bidirectional, device=device, dtype=dtype,
                         **kwargs)
        if nonlinearity == "identity":
            self.nonlinearity = nonlinearity
            self.mode = "RNN_IDENTITY"
        self.backend = backend
        _let_dynamo_trace_rnn_modules()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def flatten_parameters(self) -> None:
        """A no-op: the kernels read each weight where it is, and need no cuDNN buffer."""

    def reset_parameters(self) -> None:
        if self.init == "torch":
            super().reset_parameters()
            return
        with torch.no_grad():
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
        if self.backend != "auto":
            s += ", backend={backend!r}"
        return s.format(**self.__dict__)

    def layer_weights(self, layer: int, direction: int = 0):
        """(weight_ih, weight_hh, bias_ih, bias_hh) of one layer and direction
        (1 = reverse); the biases are None without bias. fused_rnn takes them as is."""
        suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        names = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if self.bias else ())
        weights = tuple(getattr(self, name + suffix) for name in names)
        return weights if self.bias else weights + (None, None)

    def _current_weights(self) -> List[torch.Tensor]:
        """The weights in nn.RNN's flat order, read where they are at this call:
        torch.func.functional_call swaps entries of _parameters, and a
        parametrization replaces the attribute. (nn.RNN's _update_flat_weights
        finds the same ones, at several times the cost.)"""
        params = self._parameters
        weights = []
        for name in self._flat_weights_names:
            weight = params.get(name)
            weights.append(getattr(self, name) if weight is None else weight)
        return weights

    def forward(self, input: Union[torch.Tensor, PackedSequence],
                hx: Optional[torch.Tensor] = None, mask: Optional[torch.Tensor] = None,
                reset_state: Union[None, Number, torch.Tensor] = None):
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx, mask, reset_state)
        dim = input.dim()
        if dim != 3 and dim != 2:
            raise ValueError(f"FusedRNN: Expected input to be 2D or 3D, got {dim}D tensor "
                             "instead")
        batched = dim == 3
        if hx is not None and hx.dim() != dim:
            raise RuntimeError(f"For {'batched 3-D' if batched else 'unbatched 2-D'} input, hx "
                               f"should also be {dim}-D but got {hx.dim()}-D tensor")
        if mask is not None:
            layout = "[B, T]" if batched and self.batch_first else "[T, B]" if batched else "[T]"
            mask = prepare_mask(mask, input, layout)
        reset_tensor, reset_value = split_reset_state(reset_state)
        if not batched:
            if reset_tensor is not None and reset_tensor.dim() != 2:
                raise ValueError("For unbatched 2-D input, reset_state should be 2-D "
                                 f"[L*dirs, H] but got shape {tuple(reset_tensor.shape)}")
            input = input.unsqueeze(1)
            hx = None if hx is None else hx.unsqueeze(1)
            mask = None if mask is None else mask.unsqueeze(1)
            reset_tensor = None if reset_tensor is None else reset_tensor.unsqueeze(1)
        elif self.batch_first:
            input = input.transpose(0, 1)
            mask = None if mask is None else mask.t()
        output, h_n = self._forward_time_major(input, hx, mask, reset_tensor, reset_value)
        if not batched:
            return output.squeeze(1), h_n.squeeze(1)
        return (output.transpose(0, 1) if self.batch_first else output), h_n

    def _forward_packed(self, packed: PackedSequence, hx, mask, reset_state):
        if mask is not None or reset_state is not None:
            raise ValueError("FusedRNN: a PackedSequence input takes its mask from its "
                             "lengths and resets to hx; pass mask=None and reset_state=None")
        if hx is not None and hx.dim() != 3:
            raise RuntimeError("For a PackedSequence input, hx should be 3-D but got "
                               f"{hx.dim()}-D tensor")
        # pad_packed_sequence restores the user's batch order, which hx is in.
        padded, lengths = pad_packed_sequence(packed)
        lengths = lengths.to(padded.device)
        # Resets at the pads make the reverse direction start each sequence from hx.
        mask = lengths_to_mask(lengths, padded.shape[0]).t().to(padded.dtype)
        output, h_n = self._forward_time_major(padded, hx, mask, None, None,
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
                            mask: Optional[torch.Tensor], reset_tensor: Optional[torch.Tensor],
                            reset_value: Optional[float],
                            last_steps: Optional[torch.Tensor] = None,
                            ) -> Tuple[torch.Tensor, torch.Tensor]:
        """nn.RNN's checks (its exception types), then the layers. input [T, B, D],
        hx and reset_tensor [L·dirs, B, H], mask [T, B]."""
        steps, batch, features = input.shape
        weights = self._current_weights()
        if input.dtype != weights[0].dtype and not torch._C._is_any_autocast_enabled():
            raise ValueError(f"FusedRNN input dtype ({input.dtype}) does not match weight dtype "
                             f"({weights[0].dtype}). Convert input: input.to({weights[0].dtype}), "
                             f"or convert model: model.to({input.dtype})")
        if features != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected "
                               f"{self.input_size}, got {features}")
        if steps == 0:
            raise RuntimeError("Expected sequence length to be larger than 0 in FusedRNN")
        check_same_device(weights[0], "parameter", input)
        expected_hx = (self.num_layers * self.num_directions, batch, self.hidden_size)
        if hx is None:
            hx = input.new_zeros(expected_hx)
        else:
            if hx.shape != expected_hx:
                raise RuntimeError(f"Expected hidden size {expected_hx}, got {list(hx.shape)}")
            check_same_device(hx, "hidden", input)
            if hx.dtype != input.dtype and not torch._C._is_any_autocast_enabled():
                raise RuntimeError(f"FusedRNN: expected hx of dtype {input.dtype} (the input's), "
                                   f"got {hx.dtype}")
        # Without a mask nothing resets: a tensor is still checked, a number needs none.
        reset = reset_like(reset_tensor, None if mask is None else reset_value, hx)
        return run_layers(input, hx, weights, mask, None if mask is None else reset,
                          self.nonlinearity, self.num_layers, self.bidirectional, self.bias,
                          self.dropout, self.training, self.backend, last_steps)

    @classmethod
    def from_rnn(cls, rnn: nn.RNN, init: str = "orthogonal", backend: str = "auto"
                 ) -> "FusedRNN":
        """A FusedRNN with the configuration and a copy of the weights of `rnn`."""
        if not isinstance(rnn, nn.RNN):
            raise TypeError(f"from_rnn expects a torch.nn.RNN, got {type(rnn).__name__}")
        weight = rnn.weight_ih_l0
        fused = cls(rnn.input_size, rnn.hidden_size, rnn.num_layers, rnn.nonlinearity,
                    rnn.bias, rnn.batch_first, rnn.dropout, rnn.bidirectional,
                    device=weight.device, dtype=weight.dtype, init=init, backend=backend)
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
