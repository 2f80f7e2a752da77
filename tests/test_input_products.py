"""The products with W_ih on the CPU: its own kernels for float32 inputs of few
features (at most 16; 13 on AVX2) on every vector ISA with register tiles (the
projection, and W_ih's and the bias's gradients in one pass), ATen's
elsewhere. Each is compared with nn's layers in float64 on each ISA the CPU
has with those kernels, and the profiler shows which ran."""
import pytest
import torch

from rnn_fused import FusedLSTM

from helpers import KINDS, TOLERANCES, fused_module, has_tiles, nn_module, profiled_names, report

KERNELS = ("rnn_fused::project_few_features", "rnn_fused::few_features_weight_grads")


def run(module, x, frozen_weight_ih):
    """Output, final states and the gradients of x and of every parameter that
    requires one, from a fixed random weighting of the output."""
    for name, parameter in module.named_parameters():
        parameter.requires_grad_(not (frozen_weight_ih and name.startswith("weight_ih")))
    x = x.detach().clone().requires_grad_()
    out, final = module(x)
    finals = list(final) if isinstance(final, tuple) else [final]
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(5),
                          dtype=torch.float64).to(out.dtype)
    loss = (out * weights).sum() + sum(f.sum() for f in finals)
    wanted = [x] + [p for p in module.parameters() if p.requires_grad]
    return [out, *finals, *torch.autograd.grad(loss, wanted)]


@pytest.mark.parametrize("cell", KINDS)
# 13 and 14: AVX2's last and first feature counts on either side of its limit.
@pytest.mark.parametrize("features", [1, 2, 5, 8, 13, 14, 16, 17])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("frozen_weight_ih", [False, True])
# H=37: gate widths of 37, 111 and 148 columns, none a whole number of vectors.
# B=256, H=100, T=7: the GRU projects, and both gated cells take the gradients,
# in chunks of 2¹⁸ elements (3 steps for the GRU, 2 for the LSTM), so the later
# chunks add to the first; FusedRNN's 1792 rows make two segments of rows.
# B=640, H=5, T=30: chunks of over 10⁴ rows (two for the gated cells), each
# summed in segments of 1024; few steps, so that torch.nn's float64 reference
# stays quick.
@pytest.mark.parametrize("steps, batch, hidden", [(9, 5, 37), (7, 256, 100), (30, 640, 5)])
def test_input_products_match_nn(cell, features, bias, frozen_weight_ih, steps, batch, hidden,
                                 tiles_isa):
    torch.manual_seed(0)
    reference = nn_module(cell, features, hidden, num_layers=2, bias=bias, dtype=torch.float64)
    fused = fused_module(cell, features, hidden, num_layers=2, bias=bias)
    fused.load_state_dict(reference.state_dict())
    reference.load_state_dict(fused.state_dict())  # the rounded weights
    x = torch.randn(steps, batch, features, dtype=torch.float64)
    expected = run(reference, x, frozen_weight_ih)
    results = []
    names = profiled_names(lambda: results.extend(run(fused, x.float(), frozen_weight_ih)))
    assert len(results) == len(expected)
    for k, (actual, wanted) in enumerate(zip(results, expected)):
        scale = max(wanted.abs().max().item(), 1.0)
        report(f"{cell} D={features} tensor {k} / {scale:.2f}", actual.double() / scale,
               wanted / scale, **TOLERANCES[torch.float32])
    # The first layer has `features` inputs; the second, `hidden`.
    own = has_tiles(tiles_isa) and min(features, hidden) <= (13 if tiles_isa == "avx2" else 16)
    assert (KERNELS[0] in names) == own
    assert (KERNELS[1] in names) == (own and not frozen_weight_ih)


def test_float64_takes_atens_products():
    module = FusedLSTM(3, 20, dtype=torch.float64)
    x = torch.randn(5, 4, 3, dtype=torch.float64)
    names = profiled_names(lambda: module(x)[0].sum().backward())
    assert not any(kernel in names for kernel in KERNELS)
