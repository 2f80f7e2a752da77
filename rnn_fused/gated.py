"""FusedGRU and FusedLSTM: nn.GRU and nn.LSTM whose recurrence runs in fused
kernels (one W_hh product and one fused pointwise pass per step, or on CUDA one
persistent launch for the whole sequence), with the same per-timestep
mask-reset as FusedRNN."""
from torch import nn

from ._checks import check_choice
from .base import FusedRecurrentBase, let_dynamo_trace_rnn_modules
from .functional import run_gated_layers

GATED_BACKENDS = ("auto", "per-step", "persistent")


class _FusedGated(FusedRecurrentBase):
    _cell = "gru"

    def _init_backend(self, backend: str) -> None:
        self.backend = backend
        let_dynamo_trace_rnn_modules()

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s + (f", backend={self.backend!r}" if self.backend != "auto" else "")

    @classmethod
    def _copy_of(cls, module, torch_cls, backend):
        if not isinstance(module, torch_cls):
            raise TypeError(f"{cls.__name__}: expects a torch.nn.{torch_cls.__name__}, got "
                            f"{type(module).__name__}")
        weight = module.weight_ih_l0
        fused = cls(module.input_size, module.hidden_size, module.num_layers, module.bias,
                    module.batch_first, module.dropout, module.bidirectional,
                    device=weight.device, dtype=weight.dtype, backend=backend)
        fused.load_state_dict(module.state_dict())
        return fused

    def _as_torch(self, torch_cls):
        weight = self.weight_ih_l0
        module = torch_cls(self.input_size, self.hidden_size, self.num_layers, self.bias,
                           self.batch_first, self.dropout, self.bidirectional,
                           device=weight.device, dtype=weight.dtype)
        module.load_state_dict(self.state_dict())
        return module

    def _run_layers(self, input, states, weights, mask, resets, last_steps):
        return run_gated_layers(input, states, weights, mask, resets, self._cell,
                                self.num_layers, self.bidirectional, self.bias, self.dropout,
                                self.training, self.backend, last_steps)


class FusedGRU(_FusedGated, nn.GRU):
    """GRU with PyTorch's equations, r ⊙ (W_hn h + b_hn) included: an nn.GRU.

    nn.GRU's constructor (validated by nn.GRU itself), parameters, initialization
    and state_dict, plus the keyword `backend`: 'auto' (default), 'per-step' or
    'persistent'. 'auto' runs the per-step loop on every device; 'persistent'
    (CUDA only) runs each layer and direction in one launch that keeps W_hh on
    chip, where it fits (rnn_fused.plan(..., cell='gru') says where), and is not
    yet chosen by 'auto': it has not been measured on a GPU.

    forward(input, hx=None, mask=None, reset_state=None) -> (output, h_n), with
    mask and reset_state as in FusedRNN: after step t each direction carries
    mask_t·h_t + (1 − mask_t)·reset_state into its next step; reset_state is
    shaped like hx, or a number, and defaults to hx. docs/semantics.md states
    the contract. Under torch.autocast each layer computes in the autocast dtype
    on CUDA and in float32 on the CPU.
    """

    _name = "FusedGRU"
    _cell = "gru"

    def __init__(self, *args, backend: str = "auto", **kwargs):
        check_choice("backend", backend, GATED_BACKENDS)
        super().__init__(*args, **kwargs)
        self._init_backend(backend)

    @classmethod
    def from_gru(cls, gru: nn.GRU, backend: str = "auto") -> "FusedGRU":
        """A FusedGRU with the configuration and a copy of the weights of `gru`."""
        return cls._copy_of(gru, nn.GRU, backend)

    def to_gru(self) -> nn.GRU:
        """A torch.nn.GRU with this module's configuration and a copy of its weights."""
        return self._as_torch(nn.GRU)


class FusedLSTM(_FusedGated, nn.LSTM):
    """LSTM with PyTorch's equations: an nn.LSTM (proj_size = 0 only).

    nn.LSTM's constructor (validated by nn.LSTM itself), parameters,
    initialization and state_dict, plus the keyword `backend`, as FusedGRU's:
    'auto' (default), 'per-step' or 'persistent' (CUDA only).

    forward(input, hx=None, mask=None, reset_state=None) -> (output, (h_n, c_n)).
    hx is (h_0, c_0). An LSTM carries and resets both states: after step t each
    direction carries mask_t·h_t + (1 − mask_t)·r_h and mask_t·c_t +
    (1 − mask_t)·r_c into its next step, where reset_state = (r_h, r_c), each
    shaped like h_0, or a number for both, and defaults to (h_0, c_0).
    """

    _name = "FusedLSTM"
    _cell = "lstm"
    _state_names = ("hx", "cx")

    def __init__(self, *args, backend: str = "auto", **kwargs):
        check_choice("backend", backend, GATED_BACKENDS)
        super().__init__(*args, **kwargs)
        if self.proj_size > 0:
            raise NotImplementedError(
                "FusedLSTM: proj_size > 0 (an LSTM with projections) is not implemented; "
                "use torch.nn.LSTM for it")
        self._init_backend(backend)

    @classmethod
    def from_lstm(cls, lstm: nn.LSTM, backend: str = "auto") -> "FusedLSTM":
        """A FusedLSTM with the configuration and a copy of the weights of `lstm`
        (proj_size = 0)."""
        return cls._copy_of(lstm, nn.LSTM, backend)

    def to_lstm(self) -> nn.LSTM:
        """A torch.nn.LSTM with this module's configuration and a copy of its weights."""
        return self._as_torch(nn.LSTM)
