"""Inputs, masks and comparisons shared by the tests."""
import torch

from rnn_fused.reference import layers_like
from rnn_fused.utils import lengths_to_mask

MASK_KINDS = ["none", "pre_padding", "post_padding", "resets", "blend"]

# Tolerances of each dtype against a float64 reference.
TOLERANCES = {
    torch.float64: dict(atol=1e-10, rtol=1e-9),
    torch.float32: dict(atol=1e-4, rtol=1e-4),
    torch.float16: dict(atol=1e-2, rtol=1e-2),
    torch.bfloat16: dict(atol=6e-2, rtol=6e-2),
}

# The GPU's multiprocessors (132 on an H200 or H100 SXM, 114 on an H100 PCIe;
# 132 without a GPU): tests whose kernels need all their blocks resident at
# once size their largest shapes by it.
MULTIPROCESSORS = (torch.cuda.get_device_properties(0).multi_processor_count
                   if torch.cuda.is_available() else 132)


def make_mask(kind: str, batch: int, steps: int, device="cpu") -> torch.Tensor:
    """[B, T] mask of the given kind, or None for 'none'. Padding masks give every
    sequence a different length, at least 1; 'resets' ends episodes at random."""
    if kind == "none":
        return None
    if kind in ("pre_padding", "post_padding"):
        lengths = torch.randint(1, steps + 1, (batch,))
        lengths[0] = steps
        return lengths_to_mask(lengths, steps, kind.split("_")[0]).to(device)
    if kind == "resets":
        return (torch.rand(batch, steps, device=device) > 0.3)
    if kind == "blend":
        return torch.rand(batch, steps, device=device, dtype=torch.float64)
    raise ValueError(kind)


def report(name: str, actual: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float):
    """Prints max/mean error, then asserts closeness."""
    actual = actual.detach().to(expected.dtype)
    expected = expected.detach()
    err = (actual - expected).abs()
    print(f"{name}: max err {err.max().item():.3e}, mean err {err.mean().item():.3e}")
    assert torch.isfinite(actual).all(), f"{name}: non-finite values"
    torch.testing.assert_close(actual, expected, atol=atol, rtol=rtol, msg=lambda m: f"{name}: {m}")


def reference_layers(fused):
    """float64 reference layers carrying copies of fused's weights."""
    return layers_like(fused, torch.float64)


def run_reference(layers, x_bf, mask_bf, h0, reset):
    """Stacked reference layers. x_bf [B, T, D], mask_bf [B, T] or None,
    h0 / reset [L·dirs, B, H]. Returns (sequence [B, T, ·], h_n [L·dirs, B, H])."""
    batch, steps = x_bf.shape[:2]
    if mask_bf is None:
        mask_bf = torch.ones(batch, steps, dtype=x_bf.dtype, device=x_bf.device)
    dirs = 2 if layers[0].bidirectional else 1
    finals = []
    seq = x_bf
    for i, layer in enumerate(layers):
        def pick(states):
            return tuple(states[i * dirs:(i + 1) * dirs]) if dirs == 2 else states[i]
        seq, last = layer(seq, mask_bf, initial_state=pick(h0), reset_state=pick(reset))
        finals.extend(last.chunk(dirs, dim=-1))
    return seq, torch.stack(finals)


def profiled_names(fn):
    """fn() under the profiler: the names of every op and rnn_fused scope it ran
    (on this thread and autograd's), in order."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return [event.name for event in prof.events()]


def layer(input, weight_ih, weight_hh, bias_ih, bias_hh, hx, cx, mask, reset_h, reset_c, cell,
          reverse, backend="auto"):
    """One layer of `cell` through the layer op: (output, h_n, c_n, cells)."""
    return torch.ops.rnn_fused.layer_forward(input, weight_ih, weight_hh, bias_ih, bias_hh, hx, cx,
                                             mask, reset_h, reset_c, cell, reverse, backend)[:4]


def rnn_layer(input, weight_ih, weight_hh, bias_ih, bias_hh, hx, mask, reset_state,
              nonlinearity, reverse, backend="auto"):
    """One Elman layer through the layer op: (output, h_n)."""
    return layer(input, weight_ih, weight_hh, bias_ih, bias_hh, hx, None, mask, reset_state,
                 None, f"rnn_{nonlinearity}", reverse, backend)[:2]
