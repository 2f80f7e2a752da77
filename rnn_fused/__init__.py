"""rnn_fused: Elman, GRU and LSTM layers whose recurrence runs in fused C++/CUDA
kernels, with a per-timestep mask-reset. `FusedRNN`, `FusedGRU` and `FusedLSTM` are
drop-ins for nn.RNN, nn.GRU and nn.LSTM; docs/semantics.md is the contract.

Where a call goes (docs/architecture.md follows it into the kernels):
  modules.py     FusedRNN, FusedGRU and FusedLSTM: thin fronts over one C++ op,
                 rnn_fused::module_forward (csrc/ops/module_forward.cpp), which checks
                 the call and runs one layer op per layer and direction
  functional.py  fused_rnn, one layer as a function, through the same op
  ops.py         the ops' fake kernels, plan(), backends(), the CPU's ISA (cpu_isa())
  onnx.py        ONNX export's translation table (import rnn_fused.onnx; docs/export.md)
  csrc/ops/      the ops' autograd, autocast and per-device layer code
  csrc/cpu/, csrc/cuda/{per_step,persistent,cluster,tiled}/   the recurrence kernels
"""
import warnings

import torch

from . import reference, utils
from .functional import fused_rnn
from .modules import FusedGRU, FusedLSTM, FusedRNN
from .ops import Plan, cpu_isa, cpu_isas, plan, set_cpu_isa
from .utils import best_device, episode_starts_to_mask, get_rnn_last_state, lengths_to_mask

from_rnn = FusedRNN.from_rnn

if torch.cuda.is_available() and not utils.has_kernels("cuda"):
    warnings.warn("rnn_fused was built without its CUDA kernels (there was no GPU at build "
                  "time), so it runs on the CPU only; rebuild with FORCE_CUDA=1 pip install "
                  "--no-build-isolation rnn_fused for the GPU", stacklevel=2)

__all__ = ["FusedGRU", "FusedLSTM", "FusedRNN", "Plan", "best_device", "cpu_isa", "cpu_isas",
           "episode_starts_to_mask", "fused_rnn", "from_rnn", "get_rnn_last_state",
           "lengths_to_mask", "plan", "reference", "set_cpu_isa"]
__version__ = "0.1.0"
