"""FusedRNN, FusedGRU and FusedLSTM: torch.nn's RNN, GRU and LSTM whose
recurrence runs in fused kernels, with a per-timestep mask-reset.

Each is a thin front over one base: torch.nn's own class validates the
constructor, and the forward hands everything to one C++ op,
rnn_fused::module_forward (csrc/ops/module_forward.cpp), which checks it with
torch.nn's exception types and messages, runs every layer and direction of the
cell (torch.nn's `mode`, csrc/cells/registry.h) and returns the output and the
final states. Python unpacks a PackedSequence and the states' tuples only:
states travel as (h,) for RNN and GRU, (h, c) for LSTM. docs/semantics.md is
the contract.
"""
from numbers import Number
from typing import Optional, Tuple, Union

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from ._checks import check_backend, check_choice, check_nonlinearity
from ._onnx_exporting import onnx_exporter
from .ops import CELL_OF_MODE
from .utils import lengths_to_mask

States = Tuple[torch.Tensor, ...]
INITS = ("orthogonal", "xavier", "torch")


def let_dynamo_trace_rnn_modules() -> None:
    """torch.compile refuses every nn.RNN, nn.GRU and nn.LSTM instance, ours
    included, unless torch._dynamo.config.allow_rnn is set; set it unless the
    user chose a value. Importing the config loads torch._dynamo (about a
    second, once per process)."""
    import torch._dynamo.config as dynamo_config
    is_default = getattr(dynamo_config, "_is_default", lambda name: True)
    if is_default("allow_rnn"):
        dynamo_config.allow_rnn = True


class FusedRecurrentBase:
    """Mixed in before nn.RNN, nn.GRU or nn.LSTM, whose `mode` names the cell.
    Subclasses set `_name` and `_state_names`."""

    _name = "FusedRNN"
    _state_names: Tuple[str, ...] = ("hx",)

    def _init_backend(self, backend: str) -> None:
        check_backend(backend)
        self.backend = backend
        let_dynamo_trace_rnn_modules()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def flatten_parameters(self) -> None:
        """A no-op: the kernels read each weight where it is, and need no cuDNN buffer."""

    def _current_weights(self):
        """The weights in nn.RNN's flat order, read where they are at this call:
        torch.func.functional_call swaps entries of _parameters, and a
        parametrization replaces the attribute. (nn.RNN's _update_flat_weights
        finds the same ones, at several times the cost.)"""
        params = self._parameters
        return [getattr(self, name) if params.get(name) is None else params[name]
                for name in self._flat_weights_names]

    def _states_of(self, hx) -> Optional[States]:
        if hx is None:
            return None
        if len(self._state_names) == 1:
            return (hx,)
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError(f"{self._name}: hx must be an (h_0, c_0) pair of tensors, got "
                            f"{type(hx).__name__}")
        return tuple(hx)

    def _result(self, states: States):
        return states[0] if len(states) == 1 else tuple(states)

    def _split_reset_state(self, reset_state) -> Tuple[States, Optional[float]]:
        """(tensors, None), ((), number) or ((), None)."""
        if reset_state is None:
            return (), None
        if isinstance(reset_state, Number) and not isinstance(reset_state, bool):
            return (), float(reset_state)
        if len(self._state_names) == 1 and isinstance(reset_state, torch.Tensor):
            return (reset_state,), None
        if (len(self._state_names) == 2 and isinstance(reset_state, (tuple, list))
                and len(reset_state) == 2 and all(isinstance(t, torch.Tensor)
                                                   for t in reset_state)):
            return tuple(reset_state), None
        shape = "an (h, c) pair of tensors shaped like hx," if len(self._state_names) == 2 \
            else "a tensor shaped like hx"
        raise TypeError(f"{self._name}: reset_state must be {shape} or a number, got "
                        f"{type(reset_state).__name__}")

    def _run(self, input, states, mask, resets, reset_value, batch_first, last_steps=None,
             step_states=False):
        if mask is not None and not isinstance(mask, torch.Tensor):
            raise TypeError(f"mask must be a tensor, got {type(mask).__name__}")
        output, finals, every_step = torch.ops.rnn_fused.module_forward(
            input, self._current_weights(), list(states or ()), mask, list(resets), reset_value,
            CELL_OF_MODE[self.mode], self.num_layers, self.bidirectional, self.bias,
            batch_first, self.dropout, self.training, self.backend, last_steps,
            proj_size=self.proj_size, step_states=step_states)
        if step_states:
            return output, self._result(finals), self._result(every_step)
        return output, self._result(finals)

    def forward(self, input: Union[torch.Tensor, PackedSequence], hx=None,
                mask: Optional[torch.Tensor] = None,
                reset_state: Union[None, Number, torch.Tensor, States] = None,
                step_states: bool = False):
        # step_states is not keyword-only: torch.onnx.export(dynamo=False) passes
        # every parameter of forward positionally, defaults included.
        if onnx_exporter(self._name) == "torchscript":
            return self._forward_for_torchscript_onnx(input, hx, mask, reset_state, step_states)
        states = self._states_of(hx)
        if isinstance(input, PackedSequence):
            if step_states:
                raise ValueError(f"{self._name}: step_states takes a padded tensor input, "
                                 "not a PackedSequence")
            return self._forward_packed(input, states, mask, reset_state)
        resets, reset_value = self._split_reset_state(reset_state)
        return self._run(input, states, mask, resets, reset_value, self.batch_first,
                         step_states=step_states)

    def _forward_for_torchscript_onnx(self, input, hx, mask, reset_state, step_states):
        """torch.onnx.export(dynamo=False): torch's own operator, which that exporter
        writes as ONNX's RNN, GRU or LSTM; it has none of our options. (Without a
        mask, reset_state is never read.)"""
        options = [name for name, used in (
            ("mask", mask is not None), ("step_states", step_states),
            ("proj_size", self.proj_size > 0),
            ("nonlinearity='identity'", self.mode == "RNN_IDENTITY")) if used]
        if options:
            raise torch.onnx.errors.OnnxExporterError(
                f"{self._name}: torch.onnx.export(dynamo=False) writes ONNX's own "
                f"{self.mode.split('_')[0]} operator, which has no {', '.join(options)}; "
                "export with dynamo=True (torch.onnx.export's default), which runs every "
                "option (docs/export.md)")
        return super(FusedRecurrentBase, self).forward(input, hx)

    def _forward_packed(self, packed: PackedSequence, states: Optional[States], mask,
                        reset_state):
        if mask is not None or reset_state is not None:
            raise ValueError(f"{self._name}: a PackedSequence input takes its mask from its "
                             "lengths and resets to hx; pass mask=None and reset_state=None")
        if states is not None and any(s.dim() != 3 for s in states):
            raise RuntimeError("For a PackedSequence input, hx should be 3-D but got "
                               f"{tuple(s.dim() for s in states)}-D tensors")
        # pad_packed_sequence restores the user's batch order, which hx is in.
        padded, lengths = pad_packed_sequence(packed)
        lengths = lengths.to(padded.device)
        # Resets at the pads make the reverse direction start each sequence from hx.
        mask = lengths_to_mask(lengths, padded.shape[0]).t().to(padded.dtype)
        output, finals = self._run(padded, states, mask, (), None, False,
                                   last_steps=lengths - 1)
        # Back to packed order: time-major over the length-sorted batch.
        if packed.sorted_indices is not None:
            output = output.index_select(1, packed.sorted_indices)
        batch_sizes = packed.batch_sizes
        valid = (torch.arange(output.shape[1]).unsqueeze(0) < batch_sizes.unsqueeze(1))
        data = output[valid.to(output.device)]
        return (PackedSequence(data, batch_sizes, packed.sorted_indices,
                               packed.unsorted_indices), finals)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s + (f", backend={self.backend!r}" if self.backend != "auto" else "")

    @classmethod
    def _copy_of(cls, module, torch_cls, **kwargs):
        """A fused module with the configuration and a copy of the weights of `module`."""
        if not isinstance(module, torch_cls):
            raise TypeError(f"{cls.__name__}: expects a torch.nn.{torch_cls.__name__}, got "
                            f"{type(module).__name__}")
        weight = module.weight_ih_l0
        config = [module.input_size, module.hidden_size, module.num_layers]
        if torch_cls is nn.RNN:
            config.append(module.nonlinearity)
        if torch_cls is nn.LSTM:
            kwargs["proj_size"] = module.proj_size
        fused = cls(*config, module.bias, module.batch_first, module.dropout,
                    module.bidirectional, device=weight.device, dtype=weight.dtype, **kwargs)
        fused.load_state_dict(module.state_dict())
        return fused

    def _as_torch(self, torch_cls, *config, **kwargs):
        weight = self.weight_ih_l0
        module = torch_cls(self.input_size, self.hidden_size, self.num_layers, *config, self.bias,
                           self.batch_first, self.dropout, self.bidirectional,
                           device=weight.device, dtype=weight.dtype, **kwargs)
        module.load_state_dict(self.state_dict())
        return module


class FusedRNN(FusedRecurrentBase, nn.RNN):
    """Elman RNN, h_t = φ(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh): an nn.RNN.

    nn.RNN's constructor (validated by nn.RNN itself), parameter names, shapes and
    state_dict, plus:
      nonlinearity='identity';
      init: 'orthogonal' (default): W_ih Xavier-uniform, W_hh orthogonal, biases
        zero; 'xavier': W_ih and W_hh Xavier-uniform, biases zero; 'torch':
        nn.RNN's uniform(−1/√H, 1/√H) for every parameter;
      backend: 'auto' (default) or a kernel family's name ('per-step',
        'persistent', 'cluster'; rnn_fused.plan says which one a call takes, and
        why); an attribute, so it can change between calls.

    forward(input, hx=None, mask=None, reset_state=None, step_states=False)
    -> (output, h_n): mask has the shape of input's leading dims ([T, B], [B, T]
    with batch_first, [T] unbatched), bool or float; after step t each direction
    carries mask_t·h_t + (1 − mask_t)·reset_state into its next step (the
    reverse direction steps t = T−1 … 0). reset_state is shaped like hx (or a
    number) and defaults to hx; or one per step, [L·dirs, T, B, H] ([L·dirs, B,
    T, H] with batch_first, [L·dirs, T, H] unbatched), whose step t resets the
    carry of step t. Every layer uses the same mask. With step_states=True the
    call returns (output, h_n, states) where states holds every layer's and
    direction's h_t at every step, shaped like a per-step reset_state (so an
    episode's last state, wherever it ends, is at hand). A PackedSequence input
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
        self._init_backend(backend)

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

    @classmethod
    def from_rnn(cls, rnn: nn.RNN, init: str = "orthogonal", backend: str = "auto"
                 ) -> "FusedRNN":
        """A FusedRNN with the configuration and a copy of the weights of `rnn`."""
        return cls._copy_of(rnn, nn.RNN, init=init, backend=backend)

    def to_rnn(self) -> nn.RNN:
        """A torch.nn.RNN with this layer's configuration and a copy of its weights."""
        if self.nonlinearity == "identity":
            raise ValueError("to_rnn: torch.nn.RNN has no 'identity' nonlinearity")
        return self._as_torch(nn.RNN, self.nonlinearity)


class FusedGRU(FusedRecurrentBase, nn.GRU):
    """GRU with PyTorch's equations, r ⊙ (W_hn h + b_hn) included: an nn.GRU.

    nn.GRU's constructor (validated by nn.GRU itself), parameters, initialization
    and state_dict, plus the keyword `backend`, as FusedRNN's ('auto' runs the
    per-step loop on every device until a one-launch kernel is verified on a
    GPU; docs/device-verification.md).

    forward(input, hx=None, mask=None, reset_state=None) -> (output, h_n), with
    mask and reset_state as in FusedRNN: after step t each direction carries
    mask_t·h_t + (1 − mask_t)·reset_state into its next step; reset_state is
    shaped like hx, or a number, and defaults to hx. Under torch.autocast each
    layer computes in the autocast dtype on CUDA and in float32 on the CPU.
    """

    _name = "FusedGRU"

    def __init__(self, *args, backend: str = "auto", **kwargs):
        super().__init__(*args, **kwargs)
        self._init_backend(backend)

    @classmethod
    def from_gru(cls, gru: nn.GRU, backend: str = "auto") -> "FusedGRU":
        """A FusedGRU with the configuration and a copy of the weights of `gru`."""
        return cls._copy_of(gru, nn.GRU, backend=backend)

    def to_gru(self) -> nn.GRU:
        """A torch.nn.GRU with this module's configuration and a copy of its weights."""
        return self._as_torch(nn.GRU)


class FusedLSTM(FusedRecurrentBase, nn.LSTM):
    """LSTM with PyTorch's equations: an nn.LSTM.

    nn.LSTM's constructor (validated by nn.LSTM itself), parameters,
    initialization and state_dict, plus the keyword `backend`, as FusedGRU's.
    With proj_size = P > 0, h_t = W_hr (o_t ⊙ tanh(c_t)) as in nn.LSTM: h is
    P wide and c is hidden_size wide. That case runs on the CPU only for now
    (CUDA raises, naming the reason; rnn_fused.plan(..., proj_size=P) says so).

    forward(input, hx=None, mask=None, reset_state=None, step_states=False)
    -> (output, (h_n, c_n)). hx is (h_0, c_0). An LSTM carries and resets both
    states: after step t each direction carries mask_t·h_t + (1 − mask_t)·r_h
    and mask_t·c_t + (1 − mask_t)·r_c into its next step, where reset_state =
    (r_h, r_c), shaped like (h_0, c_0) or one per step as FusedRNN's, or a number
    for both, and defaults to (h_0, c_0). step_states=True adds every step's
    (h_t, c_t), as FusedRNN's.
    """

    _name = "FusedLSTM"
    _state_names = ("hx", "cx")

    def __init__(self, *args, backend: str = "auto", **kwargs):
        super().__init__(*args, **kwargs)
        self._init_backend(backend)

    @classmethod
    def from_lstm(cls, lstm: nn.LSTM, backend: str = "auto") -> "FusedLSTM":
        """A FusedLSTM with the configuration (proj_size included) and a copy of
        the weights of `lstm`."""
        return cls._copy_of(lstm, nn.LSTM, backend=backend)

    def to_lstm(self) -> nn.LSTM:
        """A torch.nn.LSTM with this module's configuration and a copy of its weights."""
        return self._as_torch(nn.LSTM, proj_size=self.proj_size)


# Whole-model checkpoints load under torch.load's default weights_only=True. Safe
# to allow: the classes hold only tensors and plain fields, their state is
# restored by nn.Module's and nn.RNNBase's __setstate__, which call nothing the
# file names, and every field a call reads is checked by the C++ op.
torch.serialization.add_safe_globals([FusedRNN, FusedGRU, FusedLSTM])
