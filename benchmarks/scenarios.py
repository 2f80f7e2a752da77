"""The benchmark cases: each pairs a fused module (FusedRNN, FusedGRU or
FusedLSTM, by `cell`) with the baselines that compute the same outputs, on
shared weights and inputs. States travel as tuples: (h,), or (h, c) for LSTM."""
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pack_sequence, pad_packed_sequence

from rnn_fused import FusedGRU, FusedLSTM, FusedRNN, plan
from rnn_fused.ops import CELL_OF_MODE
from rnn_fused.reference import run_stack
from rnn_fused.utils import episode_starts_to_mask, lengths_to_mask

CELLS = ("rnn", "gru", "lstm")
MODULES = {"rnn": (nn.RNN, FusedRNN), "gru": (nn.GRU, FusedGRU), "lstm": (nn.LSTM, FusedLSTM)}

# Timed input sets per case, used in turn.
ROTATION = 3
# The reference layer's Python loop is only timed where it finishes in seconds.
REFERENCE_MAX_ELEMENTS = 64 * 256 * 512


@dataclass
class Case:
    scenario: str
    label: str
    params: Dict
    input_sets: List[Dict]
    # name -> fn(inputs) -> output [B, T, features]; the first is FusedRNN.
    impls: Dict[str, Callable]
    # [B, T] positions where every implementation's output is meaningful.
    valid: Optional[Callable] = None
    notes: List[str] = field(default_factory=list)


def cudnn_algorithm(batch, features, hidden, dtype, device) -> str:
    """A guess at the algorithm cuDNN chooses for nn.RNN here, from FACTS.md's rules;
    nothing in the benchmark observes it."""
    if device != "cuda":
        return "-"
    if (dtype == torch.float16 and hidden <= 1024 and hidden % 128 == 0
            and features % 128 == 0 and batch % 8 == 0 and batch <= 128):
        return "PERSIST_STATIC"
    if dtype != torch.float64 and hidden <= 256:
        return "PERSIST_STATIC_SMALL_H"
    if dtype != torch.float64 and hidden <= 384:
        return "PERSIST_STATIC_SMALL_H (fwd only)"
    return "STANDARD"


def _layers(features, hidden, device, dtype, bidirectional=False, cell="rnn"):
    """(the torch.nn module, the fused module with its weights), batch_first."""
    nn_cls, fused_cls = MODULES[cell]
    rnn = nn_cls(features, hidden, batch_first=True, bidirectional=bidirectional,
                 device=device, dtype=dtype)
    fused = fused_cls(features, hidden, batch_first=True, bidirectional=bidirectional,
                      device=device, dtype=dtype)
    fused.load_state_dict(rnn.state_dict())
    return rnn, fused


def names(cell):
    """(the fused module's name, the torch.nn module's)."""
    nn_cls, fused_cls = MODULES[cell]
    return fused_cls.__name__, f"nn.{nn_cls.__name__}"


def as_hx(states):
    """A state tuple as the modules take hx: h, or (h, c)."""
    return states if len(states) == 2 else states[0]


def as_states(hx):
    return tuple(hx) if isinstance(hx, tuple) else (hx,)


def reference_impl(fused, cell):
    """The pure-PyTorch reference over batch_first inputs: fn(x, mask) -> output."""
    def run(x, mask):
        states = tuple(torch.zeros(fused.num_directions, x.shape[0], fused.hidden_size,
                                   device=x.device, dtype=x.dtype)
                       for _ in range(2 if cell == "lstm" else 1))
        out = run_stack(CELL_OF_MODE[fused.mode], fused, x.transpose(0, 1), states, mask.t())[0]
        return out.transpose(0, 1)
    return run


def on_backend(fused, backend, impl):
    """impl with `fused` set to `backend`; its backward follows, as the op saves it."""
    def run(i):
        fused.backend = backend
        return impl(i)
    return run


def plain(batch, steps, features, hidden, device, dtype, cell="rnn") -> Case:
    rnn, fused = _layers(features, hidden, device, dtype, cell=cell)
    fused_name, nn_name = names(cell)
    input_sets = []
    for _ in range(ROTATION):
        x = torch.randn(batch, steps, features, device=device, dtype=dtype)
        input_sets.append(dict(x=x, mask=torch.rand(batch, steps, device=device) > 0.01))
    impls = {
        fused_name: on_backend(fused, "auto", lambda i: fused(i["x"])[0]),
        f"{fused_name} + random resets": on_backend(fused, "auto",
                                                    lambda i: fused(i["x"], mask=i["mask"])[0]),
    }
    if device == "cuda":
        # Both CUDA recurrences side by side, whichever 'auto' picks here.
        impls[f"{fused_name}, per-step loop"] = on_backend(fused, "per-step",
                                                           lambda i: fused(i["x"])[0])
        if plan(batch, hidden, steps, dtype, device, "persistent",
                cell).backend == "persistent":
            impls[f"{fused_name}, persistent"] = on_backend(fused, "persistent",
                                                            lambda i: fused(i["x"])[0])
            impls[f"{fused_name}, persistent + random resets"] = on_backend(
                fused, "persistent", lambda i: fused(i["x"], mask=i["mask"])[0])
    impls[nn_name] = lambda i: rnn(i["x"])[0]
    if batch * steps * hidden <= REFERENCE_MAX_ELEMENTS:
        reference = reference_impl(fused, cell)
        impls["reference"] = lambda i: reference(i["x"], torch.ones_like(i["mask"]))
    return Case(f"plain {cell}", f"B={batch} T={steps} D={features} H={hidden}",
                dict(B=batch, T=steps, D=features, H=hidden,
                     cudnn=cudnn_algorithm(batch, features, hidden, dtype, device)),
                input_sets, impls,
                notes=["'+ random resets' differs from the others by design and is not compared"])


def padded(batch, steps, features, hidden, pad_position, device, dtype, cell="rnn") -> Case:
    """Variable-length sequences: post-padding, bidirectional (the reverse direction
    must start at each sequence's last real token); pre-padding, forward."""
    bidirectional = pad_position == "post"
    rnn, fused = _layers(features, hidden, device, dtype, bidirectional, cell)
    fused_name, nn_name = names(cell)
    reference = reference_impl(fused, cell)
    input_sets = []
    for _ in range(ROTATION):
        lengths = torch.randint(steps // 4, steps + 1, (batch,))
        input_sets.append(dict(
            x=torch.randn(batch, steps, features, device=device, dtype=dtype), lengths=lengths,
            mask=lengths_to_mask(lengths, steps, pad_position).to(device)))

    def packed_post(i):
        packed = pack_padded_sequence(i["x"], i["lengths"], batch_first=True,
                                      enforce_sorted=False)
        return pad_packed_sequence(rnn(packed)[0], batch_first=True, total_length=steps)[0]

    def packed_pre(i):
        # Left-align the tokens, run packed, and shift the outputs back.
        shift = (steps - i["lengths"]).to(device).unsqueeze(1)
        positions = torch.arange(steps, device=device).unsqueeze(0)
        rows = torch.arange(batch, device=device).unsqueeze(1)
        aligned = i["x"][rows, (positions + shift) % steps]
        packed = pack_padded_sequence(aligned, i["lengths"], batch_first=True,
                                      enforce_sorted=False)
        out = pad_packed_sequence(rnn(packed)[0], batch_first=True, total_length=steps)[0]
        return out[rows, (positions - shift) % steps]

    impls = {
        f"{fused_name} + mask": lambda i: fused(i["x"], mask=i["mask"])[0],
        f"{nn_name} + PackedSequence": packed_post if pad_position == "post" else packed_pre,
        "reference + mask": lambda i: reference(i["x"], i["mask"]),
    }
    direction = "bidirectional" if bidirectional else "forward"
    return Case(f"padded {cell} ({pad_position})",
                f"B={batch} T={steps} D={features} H={hidden} {direction}",
                dict(B=batch, T=steps, D=features, H=hidden, pad_position=pad_position,
                     bidirectional=bidirectional), input_sets, impls,
                valid=lambda i: i["mask"])


def rl_rollout(batch, steps, features, hidden, device, dtype, reset_probability=0.01,
               cell="rnn") -> Case:
    """Recurrent-PPO rollouts: the state is zeroed before step t where
    episode_start[t]; the initial state comes from the previous rollout."""
    rnn, fused = _layers(features, hidden, device, dtype, cell=cell)
    fused_name, nn_name = names(cell)
    count = 2 if cell == "lstm" else 1
    input_sets = []
    for _ in range(ROTATION):
        start = torch.rand(batch, steps, device=device) < reset_probability
        mask = episode_starts_to_mask(start, batch_first=True)
        input_sets.append(dict(
            x=torch.randn(batch, steps, features, device=device, dtype=dtype),
            states=tuple(torch.randn(1, batch, hidden, device=device, dtype=dtype)
                         for _ in range(count)),
            start=start, mask=mask))

    def kept(states, keep):
        return tuple(s * keep.view(1, -1, 1) for s in states)

    def first_state(i):
        return kept(i["states"], ~i["start"][:, 0])

    def per_step_loop(i):
        states, outs = i["states"], []
        for t in range(steps):
            out, hx = rnn(i["x"][:, t:t + 1], as_hx(kept(states, ~i["start"][:, t])))
            states = as_states(hx)
            outs.append(out)
        return torch.cat(outs, dim=1)

    def split_and_pack(i):
        # One sequence per episode fragment; fragments after a reset start from 0.
        segments, states = [], []
        first = tuple(s[0] for s in first_state(i))
        for b, row in enumerate(i["start"].cpu()):
            cuts = [0] + [t for t in row.nonzero().flatten().tolist() if t > 0] + [steps]
            for begin, end in zip(cuts[:-1], cuts[1:]):
                segments.append((b, begin, end))
                states.append(tuple(s[b] if begin == 0 else torch.zeros_like(s[b])
                                    for s in first))
        packed = pack_sequence([i["x"][b, begin:end] for b, begin, end in segments],
                               enforce_sorted=False)
        hx = tuple(torch.stack(column).unsqueeze(0) for column in zip(*states))
        out = pad_packed_sequence(rnn(packed, as_hx(hx))[0], batch_first=True)[0]
        return torch.stack([torch.cat([out[k, :end - begin] for k, (b_, begin, end)
                                       in enumerate(segments) if b_ == b]) for b in range(batch)])

    impls = {
        f"{fused_name} + mask": lambda i: fused(i["x"], as_hx(first_state(i)), mask=i["mask"],
                                                reset_state=0.0)[0],
        f"per-step loop ({nn_name})": per_step_loop,
        f"split + PackedSequence ({nn_name})": split_and_pack,
    }
    return Case(f"RL rollout {cell}", f"B={batch} T={steps} D={features} H={hidden} "
                f"resets~1/{round(1 / reset_probability)}",
                dict(B=batch, T=steps, D=features, H=hidden, reset_probability=reset_probability),
                input_sets, impls)


CPU_PLAIN = [(8, 512, 64, 128), (64, 256, 256, 512), (32, 256, 256, 256), (1, 1024, 128, 128)]
GPU_PLAIN = [(b, 256, h, h) for b in (8, 64, 256) for h in (256, 512, 1024)]
SWEEP = [(b, t, h, h) for b in (1, 8, 32, 64, 256) for h in (128, 256, 512, 1024)
         for t in (64, 256, 1024)]
SETS = ("quick", "full", "sweep")


def build_cases(device: str, dtype: torch.dtype, selection: str = "quick",
                cells=CELLS) -> List[Callable[[], Case]]:
    """Case factories (built lazily, so that one case's memory is freed before the
    next). quick: per cell the first plain shape (B=8), the post-padded batch and
    the RL rollout; full: every plain shape of the device, both paddings and the
    RL rollout; sweep: the same with the B × H × T sweep as plain shapes."""
    plain_shapes = GPU_PLAIN if device == "cuda" else CPU_PLAIN
    shapes = {"quick": plain_shapes[:1], "full": plain_shapes, "sweep": SWEEP}[selection]
    paddings = ("post",) if selection == "quick" else ("post", "pre")
    b, t, h = (64, 256, 512) if device == "cuda" else (16, 256, 128)
    cases = []
    for cell in cells:
        cases += [lambda s=s, c=cell: plain(*s, device, dtype, c) for s in shapes]
        for pad_position in paddings:
            cases.append(lambda p=pad_position, c=cell: padded(b, t, h, h, p, device, dtype, c))
        cases.append(lambda c=cell: rl_rollout(b, t, h // 2, h, device, dtype, cell=c))
    return cases
