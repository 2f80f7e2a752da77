"""What RL libraries need from the engine (issue 31): reset states given per
step ([T, B, ·], e.g. a rollout's stored states, with their gradients), and
every layer's states at every step (step_states=True), so that an episode ending
anywhere in a row leaves its last states at hand. The CPU's per-step loop runs
per-step resets; CUDA declines them by plan() until its loop has run them on a GPU."""
import pytest
import torch

import rnn_fused
from rnn_fused.reference import run_stack

import helpers
from helpers import CELLS, KINDS, fused_module, layer, make_mask, report, requiring

T, B, D, H = 5, 3, 4, 6
F64 = dict(atol=1e-12, rtol=1e-10)


def skip_unless_cpu(device):
    if device != "cpu":
        pytest.skip("per-step resets run on the CPU only until CUDA's loop has run them on a GPU")


def per_step_layer_args(device, cell, mask_kind="resets", proj_size=0, requires_grad=True,
                        sizes=(T, B, D, H)):
    """The layer op's arguments with reset states [T, B, ·], one per step."""
    args = helpers.layer_args(device, cell, sizes, mask_kind=mask_kind,
                              proj_size=proj_size, requires_grad=requires_grad)
    for name in ("reset_h", "reset_c"):
        if args[name] is not None:
            args[name] = torch.randn(sizes[0], *args[name].shape, dtype=torch.float64,
                                     device=device, requires_grad=requires_grad)
    return args


def outputs(args, cell, reverse=False):
    out, h_n, c_n, cells = layer(**args, cell=cell, reverse=reverse)
    return (out, h_n, c_n, cells) if cell == "lstm" else (out, h_n)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("mask_kind", ["resets", "blend"])
def test_op_gradcheck_with_resets_per_step(device, cell, mask_kind, reverse):
    skip_unless_cpu(device)
    args = per_step_layer_args(device, cell, mask_kind)
    names = requiring(args)

    def fn(*tensors):
        return outputs(dict(args, **dict(zip(names, tensors))), cell, reverse)

    assert torch.autograd.gradcheck(fn, [args[n] for n in names], fast_mode=reverse)


def test_op_gradcheck_with_resets_per_step_and_projections():
    args = per_step_layer_args("cpu", "lstm", proj_size=4)
    names = requiring(args)

    def fn(*tensors):
        return outputs(dict(args, **dict(zip(names, tensors))), "lstm")

    assert torch.autograd.gradcheck(fn, [args[n] for n in names])


@pytest.mark.parametrize("cell", KINDS)
def test_op_gradgradcheck_with_resets_per_step(cell):
    """The double backward (the Elman cells' output-based one, the others'
    recomputation) with a reset state per step; smaller than the other tests and
    in gradgradcheck's fast mode, since the second-order Jacobian spans every
    step's reset state."""
    args = per_step_layer_args("cpu", cell, sizes=(4, 2, 3, 3))
    names = requiring(args)

    def fn(*tensors):
        return outputs(dict(args, **dict(zip(names, tensors))), cell)

    assert torch.autograd.gradgradcheck(fn, [args[n] for n in names], fast_mode=True)


def test_one_reset_state_per_step_equals_the_same_for_every_step():
    """A per-step reset state that repeats one state is the shared reset state,
    forward and backward."""
    args = helpers.layer_args("cpu", "lstm", (T, B, D, H))
    shared = outputs(args, "lstm")
    repeated = dict(args, reset_h=args["reset_h"].expand(T, B, H),
                    reset_c=args["reset_c"].expand(T, B, H))
    per_step = outputs(repeated, "lstm")
    for k, (a, e) in enumerate(zip(per_step, shared)):
        report(f"output {k}", a, e, **F64)
    leaves = [args["reset_h"], args["reset_c"], args["weight_hh"]]
    grads = [torch.autograd.grad([t.sum() for t in o], leaves) for o in (per_step, shared)]
    for name, a, e in zip(("reset_h", "reset_c", "weight_hh"), *grads):
        report(f"grad {name}", a, e, **F64)


def stack_inputs(cell, num_layers=2, directions=2, batch=B, width=H):
    count = num_layers * directions
    states = helpers.random_states(cell, (count, batch, width), "cpu")
    resets = helpers.random_states(cell, (count, T, batch, width), "cpu")
    for t in (*states, *resets):
        t.requires_grad_()
    return states, resets


@pytest.mark.parametrize("cell", KINDS)
@pytest.mark.parametrize("batch_first", [False, True])
def test_module_step_states_and_resets_per_step_match_the_reference(cell, batch_first):
    """Outputs, final states, every step's states and every gradient, against the
    reference stack, two bidirectional layers, float64."""
    fused = fused_module(cell, D, H, 2, bidirectional=True, batch_first=batch_first,
                         dtype=torch.float64)
    states, resets = stack_inputs(cell)
    x = torch.randn(T, B, D, dtype=torch.float64, requires_grad=True)
    mask = make_mask("resets", B, T).t().to(torch.float64)

    def layout(t, dim):
        return t.transpose(dim, dim + 1) if batch_first else t
    hx = states if cell == "lstm" else states[0]
    reset_state = tuple(layout(r, 1) for r in resets)
    out, finals, every = fused(layout(x, 0), hx, mask=layout(mask, 0),
                               reset_state=reset_state if cell == "lstm" else reset_state[0],
                               step_states=True)
    finals = finals if cell == "lstm" else (finals,)
    every = tuple(layout(e, 1) for e in (every if cell == "lstm" else (every,)))
    expected_out, expected_finals, expected_every = run_stack(
        cell, fused, x, states, mask, resets, step_states=True)
    actual = (layout(out, 0), *finals, *every)
    expected = (expected_out, *expected_finals, *expected_every)
    weights = [torch.randn_like(e) for e in expected]
    leaves = [x, *states, *resets, *fused.parameters()]
    grads = [torch.autograd.grad(sum((w * t).sum() for w, t in zip(weights, ts)), leaves)
             for ts in (actual, expected)]
    for k, (a, e) in enumerate(zip(actual, expected)):
        report(f"result {k}", a, e, **F64)
    for k, (a, e) in enumerate(zip(*grads)):
        report(f"grad {k}", a, e, **F64)


def test_module_gradcheck_through_step_states():
    """A stored state that restarts an episode mid-row gets its gradient, and
    every step's c reaches the weights."""
    fused = fused_module("lstm", D, 2, 2, dtype=torch.float64)
    states, resets = stack_inputs("lstm", directions=1, batch=2, width=2)
    x = torch.randn(T, 2, D, dtype=torch.float64, requires_grad=True)
    mask = make_mask("resets", 2, T).t()

    def fn(x, h0, c0, r_h, r_c):
        _, _, (h_all, c_all) = fused(x, (h0, c0), mask=mask, reset_state=(r_h, r_c),
                                     step_states=True)
        return h_all, c_all

    assert torch.autograd.gradcheck(fn, (x, *states, *resets))


def test_unbatched_and_projected_step_states():
    lstm = rnn_fused.FusedLSTM(D, H, 2, proj_size=4, dtype=torch.float64)
    x = torch.randn(T, D, dtype=torch.float64)
    resets = (torch.randn(2, T, 4, dtype=torch.float64), torch.randn(2, T, H, dtype=torch.float64))
    mask = torch.rand(T) > 0.4
    out, (h_n, c_n), (h_all, c_all) = lstm(x, mask=mask, reset_state=resets, step_states=True)
    assert h_all.shape == (2, T, 4) and c_all.shape == (2, T, H)
    assert torch.equal(h_all[1], out) and torch.equal(h_all[:, -1], h_n)
    batched = lstm(x[:, None], mask=mask[:, None],
                   reset_state=tuple(r[:, :, None] for r in resets), step_states=True)
    assert torch.equal(batched[2][0][:, :, 0], h_all) and torch.equal(batched[2][1][:, :, 0],
                                                                      c_all)


def test_errors_name_the_per_step_shapes():
    rnn = rnn_fused.FusedRNN(D, H, 2)
    x, mask = torch.randn(T, B, D), torch.ones(T, B)
    with pytest.raises(ValueError, match=r"or, one per step, \(2, 5, 3, 6\)"):
        rnn(x, mask=mask, reset_state=torch.zeros(2, T + 1, B, H))
    # Shapes in the input's layout: batch_first wants [L·dirs, B, T, H].
    batch_first = rnn_fused.FusedRNN(D, H, 2, batch_first=True)
    with pytest.raises(ValueError, match=r"shape \(2, 3, 6\) \(like hx\) or, one per step, "
                                         r"\(2, 3, 5, 6\).*got \(2, 5, 3, 6\)"):
        batch_first(x.transpose(0, 1), mask=mask.t(), reset_state=torch.zeros(2, T, B, H))
    args = per_step_layer_args("cpu", "lstm", requires_grad=False)
    with pytest.raises(ValueError, match=r"expected reset_c of shape \[5, 3, 6\], got \[3, 6\]"):
        outputs(dict(args, reset_c=torch.zeros(B, H, dtype=torch.float64)), "lstm")
    with pytest.raises(ValueError, match="step_states takes a padded tensor"):
        packed = torch.nn.utils.rnn.pack_sequence([torch.randn(3, D), torch.randn(2, D)])
        rnn(packed, step_states=True)


def test_plan_names_per_step_resets():
    assert rnn_fused.plan(B, H, steps=T, cell="gru", resets_per_step=True).backend == "per-step"
    with pytest.raises(ValueError, match="proj_size is an LSTM's"):
        rnn_fused.plan(B, H, steps=T, cell="gru", proj_size=2)


@pytest.mark.parametrize("cell", KINDS)
def test_float32_resets_per_step_against_float64(cell):
    """float32 (whose small steps take the register tiles where the CPU has them)
    against the float64 reference, with a reset state per step."""
    fused = fused_module(cell, D, 32, 1, batch_first=True)
    count, steps, batch = 1, 16, 8
    states = helpers.random_states(cell, (count, batch, 32))
    resets = helpers.random_states(cell, (count, batch, steps, 32))
    x = torch.randn(batch, steps, D, dtype=torch.float64)
    mask = make_mask("resets", batch, steps)
    hx = tuple(s.float() for s in states)
    reset_state = tuple(r.float() for r in resets)
    out, finals = fused(x.float(), hx if cell == "lstm" else hx[0], mask=mask,
                        reset_state=reset_state if cell == "lstm" else reset_state[0])
    expected, _ = run_stack(cell, fused.double(), x.transpose(0, 1), states,
                            mask.t().double(), tuple(r.transpose(1, 2) for r in resets))
    report("output", out.transpose(0, 1), expected, **helpers.TOLERANCES[torch.float32])


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_opcheck_with_resets_per_step(cell):
    """The fake kernels give per-step reset states' gradients their [T, B, ·] shape."""
    args = per_step_layer_args("cpu", cell, requires_grad=False)
    args = {k: v.float() if v is not None else None for k, v in args.items()}
    forward = (*args.values(), cell, False, "auto")
    torch.library.opcheck(torch.ops.rnn_fused.layer_forward.default, forward)
    out, h_n, c_n, cells, saved = torch.ops.rnn_fused.layer_forward(*forward)
    lstm = cell == "lstm"
    backward = (torch.randn_like(out), torch.randn_like(h_n),
                torch.randn_like(c_n) if lstm else None, torch.randn_like(cells) if lstm else None,
                args["input"], args["weight_ih"], args["weight_hh"], args["hx"], args["cx"],
                args["mask"], args["reset_h"], args["reset_c"], out, cells, saved, cell, False,
                True, [True] * 3, "auto")
    torch.library.opcheck(torch.ops.rnn_fused.layer_backward.default, backward)
    grads = torch.ops.rnn_fused.layer_backward(*backward)
    assert grads[7].shape == (T, B, H)
