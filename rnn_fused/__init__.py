"""rnn_fused: an Elman RNN whose recurrence runs in fused C++/CUDA kernels, with a
per-timestep mask-reset. `FusedRNN` is a drop-in for torch.nn.RNN."""
from . import reference
from .functional import fused_rnn
from .module import FusedRNN
from .utils import best_device, cuda_recurrence, get_rnn_last_state, lengths_to_mask

from_rnn = FusedRNN.from_rnn

__all__ = ["FusedRNN", "best_device", "cuda_recurrence", "fused_rnn", "from_rnn",
           "get_rnn_last_state", "lengths_to_mask", "reference"]
__version__ = "0.1.0"
