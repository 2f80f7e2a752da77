"""The benchmark cases: each pairs FusedRNN with the baselines that compute the
same outputs, on shared weights and inputs."""
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pack_sequence, pad_packed_sequence

from rnn_fused import FusedRNN, plan
from rnn_fused.reference import layers_like
from rnn_fused.utils import lengths_to_mask

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


def _layers(features, hidden, device, dtype, bidirectional=False):
    rnn = nn.RNN(features, hidden, batch_first=True, bidirectional=bidirectional,
                 device=device, dtype=dtype)
    return rnn, FusedRNN.from_rnn(rnn)


def on_backend(fused, backend, impl):
    """impl with `fused` set to `backend`; its backward follows, as the op saves it."""
    def run(i):
        fused.backend = backend
        return impl(i)
    return run


def plain(batch, steps, features, hidden, device, dtype) -> Case:
    rnn, fused = _layers(features, hidden, device, dtype)
    input_sets = []
    for _ in range(ROTATION):
        x = torch.randn(batch, steps, features, device=device, dtype=dtype)
        input_sets.append(dict(x=x, mask=torch.rand(batch, steps, device=device) > 0.01))
    impls = {
        "FusedRNN": on_backend(fused, "auto", lambda i: fused(i["x"])[0]),
        "FusedRNN + random resets": on_backend(fused, "auto",
                                               lambda i: fused(i["x"], mask=i["mask"])[0]),
    }
    if device == "cuda":
        # Both CUDA recurrences side by side, whichever 'auto' picks here.
        impls["FusedRNN, per-step loop"] = on_backend(fused, "per-step",
                                                      lambda i: fused(i["x"])[0])
        if plan(batch, hidden, steps, dtype, device, "persistent").backend == "persistent":
            impls["FusedRNN, persistent"] = on_backend(fused, "persistent",
                                                       lambda i: fused(i["x"])[0])
            impls["FusedRNN, persistent + random resets"] = on_backend(
                fused, "persistent", lambda i: fused(i["x"], mask=i["mask"])[0])
    impls["nn.RNN"] = lambda i: rnn(i["x"])[0]
    if batch * steps * hidden <= REFERENCE_MAX_ELEMENTS:
        reference = layers_like(fused)[0]
        impls["reference"] = lambda i: reference(i["x"], torch.ones_like(i["mask"]))[0]
    return Case("plain", f"B={batch} T={steps} D={features} H={hidden}",
                dict(B=batch, T=steps, D=features, H=hidden,
                     cudnn=cudnn_algorithm(batch, features, hidden, dtype, device)),
                input_sets, impls,
                notes=["'+ random resets' differs from the others by design and is not compared"])


def padded(batch, steps, features, hidden, pad_position, device, dtype) -> Case:
    """Variable-length sequences: post-padding, bidirectional (the reverse direction
    must start at each sequence's last real token); pre-padding, forward."""
    bidirectional = pad_position == "post"
    rnn, fused = _layers(features, hidden, device, dtype, bidirectional)
    reference = layers_like(fused)[0]
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
        "FusedRNN + mask": lambda i: fused(i["x"], mask=i["mask"])[0],
        "nn.RNN + PackedSequence": packed_post if pad_position == "post" else packed_pre,
        "reference + mask": lambda i: reference(i["x"], i["mask"])[0],
    }
    direction = "bidirectional" if bidirectional else "forward"
    return Case(f"padded ({pad_position})",
                f"B={batch} T={steps} D={features} H={hidden} {direction}",
                dict(B=batch, T=steps, D=features, H=hidden, pad_position=pad_position,
                     bidirectional=bidirectional), input_sets, impls,
                valid=lambda i: i["mask"])


def rl_rollout(batch, steps, features, hidden, device, dtype, reset_probability=0.01) -> Case:
    """Recurrent-PPO rollouts: the state is zeroed before step t where
    episode_start[t]; h0 comes from the previous rollout."""
    rnn, fused = _layers(features, hidden, device, dtype)
    input_sets = []
    for _ in range(ROTATION):
        start = torch.rand(batch, steps, device=device) < reset_probability
        mask = torch.ones_like(start)
        mask[:, :-1] = ~start[:, 1:]
        input_sets.append(dict(
            x=torch.randn(batch, steps, features, device=device, dtype=dtype),
            h0=torch.randn(1, batch, hidden, device=device, dtype=dtype),
            start=start, mask=mask))

    def first_state(i):
        return i["h0"] * (~i["start"][:, 0]).view(1, -1, 1)

    def per_step_loop(i):
        h, outs = i["h0"], []
        for t in range(steps):
            h = h * (~i["start"][:, t]).view(1, -1, 1)
            out, h = rnn(i["x"][:, t:t + 1], h)
            outs.append(out)
        return torch.cat(outs, dim=1)

    def split_and_pack(i):
        # One sequence per episode fragment; fragments after a reset start from 0.
        segments, states = [], []
        h0 = first_state(i)[0]
        for b, row in enumerate(i["start"].cpu()):
            cuts = [0] + [t for t in row.nonzero().flatten().tolist() if t > 0] + [steps]
            for begin, end in zip(cuts[:-1], cuts[1:]):
                segments.append((b, begin, end))
                states.append(h0[b] if begin == 0 else torch.zeros_like(h0[b]))
        packed = pack_sequence([i["x"][b, begin:end] for b, begin, end in segments],
                               enforce_sorted=False)
        out = pad_packed_sequence(rnn(packed, torch.stack(states).unsqueeze(0))[0],
                                  batch_first=True)[0]
        return torch.stack([torch.cat([out[k, :end - begin] for k, (b_, begin, end)
                                       in enumerate(segments) if b_ == b]) for b in range(batch)])

    impls = {
        "FusedRNN + mask": lambda i: fused(i["x"], first_state(i), mask=i["mask"],
                                           reset_state=0.0)[0],
        "per-step loop (nn.RNN)": per_step_loop,
        "split + PackedSequence (nn.RNN)": split_and_pack,
    }
    return Case("RL rollout", f"B={batch} T={steps} D={features} H={hidden} "
                f"resets~1/{round(1 / reset_probability)}",
                dict(B=batch, T=steps, D=features, H=hidden, reset_probability=reset_probability),
                input_sets, impls)


CPU_PLAIN = [(8, 512, 64, 128), (64, 256, 256, 512), (32, 256, 256, 256), (1, 1024, 128, 128)]
GPU_PLAIN = [(b, 256, h, h) for b in (8, 64, 256) for h in (256, 512, 1024)]
FULL_SWEEP = [(b, t, h, h) for b in (1, 8, 32, 64, 256) for h in (128, 256, 512, 1024)
              for t in (64, 256, 1024)]


def build_cases(device: str, dtype: torch.dtype, full: bool,
                quick: bool) -> List[Callable[[], Case]]:
    """Case factories (built lazily, so that one case's memory is freed before the next).
    quick: two plain shapes instead of the default set."""
    shapes = FULL_SWEEP if full else (GPU_PLAIN if device == "cuda" else CPU_PLAIN)
    if quick:
        shapes = shapes[:2] if device == "cpu" else [(8, 256, 512, 512), (64, 256, 1024, 1024)]
    cases = [lambda s=s: plain(*s, device, dtype) for s in shapes]
    b, t, h = (64, 256, 512) if device == "cuda" else (16, 256, 128)
    for pad_position in ("post", "pre"):
        cases.append(lambda p=pad_position: padded(b, t, h, h, p, device, dtype))
    cases.append(lambda: rl_rollout(b, t, h // 2, h, device, dtype))
    return cases
