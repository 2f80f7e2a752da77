"""Mask helpers shared by the reference layer, FusedRNN and user code, and the
device that has kernels."""
import torch

from ._checks import check_mask_shape, check_pad_position


def has_kernels(device_type: str) -> bool:
    """Whether this build of rnn_fused has kernels for 'cpu' or 'cuda'."""
    key = {"cpu": "CPU", "cuda": "CUDA"}[device_type]
    return torch._C._dispatch_has_kernel_for_dispatch_key("rnn_fused::layer_forward", key)


def best_device() -> str:
    """'cuda' when a GPU is present and the CUDA kernels are built, else 'cpu'."""
    return "cuda" if torch.cuda.is_available() and has_kernels("cuda") else "cpu"


def lengths_to_mask(lengths: torch.Tensor, steps: int, pad_position: str = "post") -> torch.Tensor:
    """Boolean mask [B, steps] that is True at each sequence's real tokens.

    lengths [B]: real tokens per sequence. pad_position 'post' puts the pads
    last (tokens at 0..len-1), 'pre' puts them first (tokens at steps-len..steps-1).
    """
    check_pad_position(pad_position)
    positions = torch.arange(steps, device=lengths.device)
    lengths = lengths.to(positions.device).unsqueeze(1)
    if pad_position == "post":
        return positions < lengths
    return positions >= steps - lengths


def episode_starts_to_mask(episode_starts: torch.Tensor, batch_first: bool = False
                           ) -> torch.Tensor:
    """The mask for RL's episode starts: episode_starts[t] set means the state is
    reset before step t, so the carry after step t − 1 is dropped:
    mask[t-1] = 1 − episode_starts[t], and mask[T-1] = 1.

    episode_starts [T, B] ([B, T] with batch_first), bool or float; the mask has
    its shape and dtype. With reset_state=0 this resets to zeros; a start at the
    first step concerns the initial state, which the caller zeroes
    (hx · (1 − episode_starts[0])).
    """
    time = 1 if batch_first else 0
    steps = episode_starts.shape[time]
    mask = torch.ones_like(episode_starts)
    later = episode_starts.narrow(time, 1, steps - 1)
    mask.narrow(time, 0, steps - 1).copy_(~later if later.dtype == torch.bool else 1 - later)
    return mask


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
    check_mask_shape(mask, (batch, steps), "[B, T]")
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
