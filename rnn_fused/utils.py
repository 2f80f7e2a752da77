"""Mask helpers shared by the reference layer, FusedRNN and user code, the
device that has kernels, and the choice of CUDA recurrence."""
import contextlib
import os

import torch

# Read by the CUDA ops at every call (csrc/cuda/recurrence_path.h).
CUDA_RECURRENCE_VARIABLE = "RNN_FUSED_CUDA_RECURRENCE"


def has_kernels(device_type: str) -> bool:
    """Whether this build of rnn_fused has kernels for 'cpu' or 'cuda'."""
    key = {"cpu": "CPU", "cuda": "CUDA"}[device_type]
    return torch._C._dispatch_has_kernel_for_dispatch_key("rnn_fused::rnn_layer_forward", key)


def best_device() -> str:
    """'cuda' when a GPU is present and the CUDA kernels are built, else 'cpu'."""
    return "cuda" if torch.cuda.is_available() and has_kernels("cuda") else "cpu"


def lengths_to_mask(lengths: torch.Tensor, steps: int, pad_position: str = "post") -> torch.Tensor:
    """Boolean mask [B, steps] that is True at each sequence's real tokens.

    lengths [B]: real tokens per sequence. pad_position 'post' puts the pads
    last (tokens at 0..len-1), 'pre' puts them first (tokens at steps-len..steps-1).
    """
    if pad_position not in ("pre", "post"):
        raise ValueError(f"pad_position must be 'pre' or 'post', got {pad_position!r}")
    positions = torch.arange(steps, device=lengths.device)
    lengths = lengths.to(positions.device).unsqueeze(1)
    if pad_position == "post":
        return positions < lengths
    return positions >= steps - lengths


def get_rnn_last_state(sequence: torch.Tensor, mask: torch.Tensor,
                       bidirectional: bool = False) -> torch.Tensor:
    """The real final state of each padded sequence, for either padding side.

    sequence [B, T, H] (or [B, T, 2H] bidirectional, forward half first),
    mask [B, T], nonzero at real tokens. Returns [B, H]: the forward output at
    each sequence's last real position; bidirectional, concatenated with the
    reverse output at its first real position ([B, 2H]).
    """
    if sequence.dim() != 3:
        raise ValueError(f"expected sequence of shape [B, T, H], got {tuple(sequence.shape)}")
    batch, steps, width = sequence.shape
    if tuple(mask.shape) != (batch, steps):
        raise ValueError(
            f"expected mask of shape [B, T] = {(batch, steps)}, got {tuple(mask.shape)}")
    if bidirectional and width % 2:
        raise ValueError(f"a bidirectional sequence has an even feature size, got {width}")
    valid = mask.to(device=sequence.device) != 0
    if not bool(valid.any(dim=1).all()):
        raise ValueError("every sequence needs at least one real (nonzero-mask) step")
    positions = torch.arange(steps, device=sequence.device).expand(batch, steps)
    last = torch.where(valid, positions, -1).amax(dim=1)
    rows = torch.arange(batch, device=sequence.device)
    if not bidirectional:
        return sequence[rows, last]
    first = torch.where(valid, positions, steps).amin(dim=1)
    hidden = width // 2
    return torch.cat([sequence[rows, last, :hidden], sequence[rows, first, hidden:]], dim=-1)


@contextlib.contextmanager
def cuda_recurrence(path: str):
    """Inside the block, the CUDA kernels run the recurrence as `path`:

    - 'auto' (the default outside): the persistent kernel where it is known to be
      faster, else the per-step loop;
    - 'per-step': one cuBLAS GEMM and one fused kernel per step;
    - 'persistent': one launch for the whole sequence with W_hh held on chip; raises
      ValueError where it does not fit (H above about 1000 in float32, 264 in
      float64, or B above 256 at the largest H).

    It sets RNN_FUSED_CUDA_RECURRENCE, which each op call reads, so a backward pass
    follows the path set when it runs: keep it inside the block too.
    """
    if path not in ("auto", "per-step", "persistent"):
        raise ValueError(f"path must be 'auto', 'per-step' or 'persistent', got {path!r}")
    previous = os.environ.get(CUDA_RECURRENCE_VARIABLE)
    os.environ[CUDA_RECURRENCE_VARIABLE] = path
    try:
        yield
    finally:
        if previous is None:
            del os.environ[CUDA_RECURRENCE_VARIABLE]
        else:
            os.environ[CUDA_RECURRENCE_VARIABLE] = previous
