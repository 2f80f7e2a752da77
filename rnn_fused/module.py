"""FusedRNN: an nn.RNN whose recurrence runs in fused kernels, with a
per-timestep mask-reset."""
import torch
from torch import nn

from ._checks import check_backend, check_choice, check_nonlinearity
from .base import FusedRecurrentBase, let_dynamo_trace_rnn_modules
from .functional import run_layers

INITS = ("orthogonal", "xavier", "torch")


class FusedRNN(FusedRecurrentBase, nn.RNN):
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
        let_dynamo_trace_rnn_modules()

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

    def _run_layers(self, input, states, weights, mask, resets, last_steps):
        output, h_n = run_layers(input, states[0], weights, mask,
                                 None if resets is None else resets[0], self.nonlinearity,
                                 self.num_layers, self.bidirectional, self.bias, self.dropout,
                                 self.training, self.backend, last_steps)
        return output, (h_n,)

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
