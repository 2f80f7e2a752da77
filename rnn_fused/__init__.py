"""rnn_fused: an Elman RNN whose recurrence runs in fused C++/CUDA kernels, with a
per-timestep mask-reset. `FusedRNN` is an nn.RNN; docs/semantics.md is the contract.

Where a call goes (docs/architecture.md follows it into the kernels):
  base.py        the forward FusedRNN, FusedGRU and FusedLSTM share (nn.RNN's checks)
  module.py      FusedRNN, then functional.run_layers
  gated.py       FusedGRU and FusedLSTM, then functional.run_gated_layers
  functional.py  fused_rnn and the layer stacks: one op call per layer and direction
  ops.py         the Elman ops (torch.ops.rnn_fused.*), their fake kernels, plan()
  gated_ops.py   the gated (GRU, LSTM) ops' fake kernels and autograd
  onnx.py        ONNX export's translation table (import rnn_fused.onnx; docs/export.md)
  csrc/ops/      the ops' autograd, autocast and per-device layer code
  csrc/cpu/, csrc/cuda/{per_step,persistent,cluster,tiled}/   the recurrence kernels
"""
import warnings

import torch

from . import reference, utils
from .functional import fused_rnn
from .gated import FusedGRU, FusedLSTM
from .module import FusedRNN
from .ops import Plan, plan
from .utils import best_device, episode_starts_to_mask, get_rnn_last_state, lengths_to_mask

from_rnn = FusedRNN.from_rnn

if torch.cuda.is_available() and not utils.has_kernels("cuda"):
    warnings.warn("rnn_fused was built without its CUDA kernels (there was no GPU at build "
                  "time), so it runs on the CPU only; rebuild with FORCE_CUDA=1 pip install "
                  "--no-build-isolation rnn_fused for the GPU", stacklevel=2)

__all__ = ["FusedGRU", "FusedLSTM", "FusedRNN", "Plan", "best_device", "episode_starts_to_mask",
           "fused_rnn", "from_rnn", "get_rnn_last_state", "lengths_to_mask", "plan", "reference"]
__version__ = "0.1.0"
