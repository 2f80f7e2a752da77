"""The pure-PyTorch reference layer (docs/semantics.md), checked on its own."""
import pytest
import torch
from torch import nn

from rnn_fused import FusedRNN
from rnn_fused.reference import (RNNLayer, SimpleRNNCell, get_rnn_last_state, layers_like,
                                 run_stack)
from rnn_fused.utils import lengths_to_mask

from helpers import report

DT = torch.float64
TOL = dict(atol=1e-12, rtol=1e-10)


def test_cell_initializers_and_zero_state():
    cell = SimpleRNNCell(5, 8, dtype=DT)
    w_hh = cell.recurrent_linear.weight
    report("W_hh W_hhᵀ", w_hh @ w_hh.t(), torch.eye(8, dtype=DT), **TOL)
    bound = (6 / (5 + 8)) ** 0.5
    assert cell.input_linear.weight.abs().max() <= bound
    assert cell.input_linear.weight.std() > 0.1 * bound
    assert torch.count_nonzero(cell.input_linear.bias) == 0
    assert torch.count_nonzero(cell.recurrent_linear.bias) == 0
    assert torch.equal(cell.zero_initialization(3), torch.zeros(3, 8, dtype=DT))
    assert SimpleRNNCell(5, 8, use_bias=False).input_linear.bias is None
    half = SimpleRNNCell(5, 8, dtype=torch.bfloat16)
    assert half.recurrent_linear.weight.dtype == torch.bfloat16
    w = half.recurrent_linear.weight.float()
    report("bfloat16 W_hh W_hhᵀ", w @ w.t(), torch.eye(8), atol=3e-2, rtol=0)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_matches_nn_rnn_without_padding(bidirectional):
    rnn = nn.RNN(3, 5, batch_first=True, bidirectional=bidirectional, dtype=DT)
    (layer,) = layers_like(FusedRNN.from_rnn(rnn))
    x = torch.randn(4, 7, 3, dtype=DT)
    h0 = torch.randn(2 if bidirectional else 1, 4, 5, dtype=DT)
    expected, h_n = rnn(x, h0)
    sequence, last = layer(x, torch.ones(4, 7), initial_state=tuple(h0) if bidirectional else h0[0])
    report("sequence", sequence, expected, **TOL)
    report("last_state", last, torch.cat(list(h_n), dim=-1), **TOL)


def test_mask_inference_rules():
    cell = SimpleRNNCell(3, 4, dtype=DT)
    one = torch.randn(1, 6, 3, dtype=DT)
    many = torch.randn(2, 6, 3, dtype=DT)
    for layer in (RNNLayer(cell, pad_position="pre"), RNNLayer(cell, True, "post"),
                  RNNLayer(cell, True, "pre")):
        layer(one)  # batch size 1: the mask is all ones
        with pytest.raises(ValueError, match="padding cannot be inferred without a mask"):
            layer(many)
    explicit, _ = RNNLayer(cell)(many, torch.ones(2, 6))
    implicit, _ = RNNLayer(cell)(many)
    assert torch.equal(explicit, implicit)
    with pytest.raises(ValueError, match=r"expected mask of shape \[B, T\] = \(2, 6\)"):
        RNNLayer(cell)(many, torch.ones(6, 2))
    with pytest.raises(ValueError, match="Unknown pad_position 'left'. Select from 'pre' or 'post'."):
        RNNLayer(cell, pad_position="left")


@pytest.mark.parametrize("pad_position", ["pre", "post"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("shared_cell", [True, False])
def test_padding_equals_running_each_sequence_alone(pad_position, bidirectional, shared_cell):
    """With the mask, real tokens see exactly what an unpadded run sees, and
    get_rnn_last_state returns that run's last_state."""
    cell = SimpleRNNCell(3, 4, dtype=DT)
    cells = cell if shared_cell or not bidirectional else (cell, SimpleRNNCell(3, 4, dtype=DT))
    layer = RNNLayer(cells, bidirectional=bidirectional, pad_position=pad_position)
    lengths = torch.tensor([6, 2, 4, 1])
    x = torch.randn(4, 6, 3, dtype=DT)
    mask = lengths_to_mask(lengths, 6, pad_position)
    h0 = torch.randn(4, 4, dtype=DT)
    sequence, _ = layer(x, mask, initial_state=h0)
    last = get_rnn_last_state(sequence, mask, bidirectional)
    for b, n in enumerate(lengths.tolist()):
        real = mask[b]
        alone_seq, alone_last = layer(x[b:b + 1, real], initial_state=h0[b:b + 1])
        report(f"sequence {b}", sequence[b, real], alone_seq[0], **TOL)
        report(f"last state {b}", last[b], alone_last[0], **TOL)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_run_stack_matches_nn_lstm_with_projections(bidirectional):
    """The stack reference with proj_size: h is W_hr's projection (P wide), c stays
    H wide, and each layer above the first reads dirs·P features."""
    lstm = nn.LSTM(3, 6, num_layers=2, proj_size=4, bidirectional=bidirectional, dtype=DT)
    dirs = 2 if bidirectional else 1
    x = torch.randn(7, 2, 3, dtype=DT)
    states = (torch.randn(2 * dirs, 2, 4, dtype=DT), torch.randn(2 * dirs, 2, 6, dtype=DT))
    out, (h_n, c_n) = lstm(x, states)
    ref_out, (ref_h, ref_c) = run_stack("lstm", lstm, x, states)
    assert ref_out.shape == (7, 2, 4 * dirs) and ref_c.shape == (2 * dirs, 2, 6)
    report("output", ref_out, out, **TOL)
    report("h_n", ref_h, h_n, **TOL)
    report("c_n", ref_c, c_n, **TOL)


def test_resets_restart_from_reset_state():
    """m_t = 0 makes step t+1 start from r; outputs stay h_t (before the reset)."""
    cell = SimpleRNNCell(3, 4, dtype=DT)
    x = torch.randn(2, 8, 3, dtype=DT)
    h0, r = torch.randn(2, 4, dtype=DT), torch.randn(2, 4, dtype=DT)
    mask = torch.ones(2, 8)
    mask[:, 4] = 0
    sequence, last = RNNLayer(cell)(x, mask, initial_state=h0, reset_state=r)
    head, _ = RNNLayer(cell)(x[:, :5], initial_state=h0)
    tail, tail_last = RNNLayer(cell)(x[:, 5:], initial_state=r)
    report("before the reset", sequence[:, :5], head, **TOL)
    report("after the reset", sequence[:, 5:], tail, **TOL)
    report("last_state", last, tail_last, **TOL)


def test_blend_mask_follows_the_formula():
    cell = SimpleRNNCell(3, 4, dtype=DT)
    x = torch.randn(2, 3, 3, dtype=DT)
    h0, r = torch.randn(2, 4, dtype=DT), torch.randn(2, 4, dtype=DT)
    mask = torch.rand(2, 3, dtype=DT)
    sequence, _ = RNNLayer(cell)(x, mask, initial_state=h0, reset_state=r)
    carry = mask[:, 0, None] * sequence[:, 0] + (1 - mask[:, 0, None]) * r
    report("step 1", sequence[:, 1], cell(x[:, 1], carry), **TOL)


def test_reverse_last_state_is_position_zero():
    cell = SimpleRNNCell(3, 4, dtype=DT)
    x = torch.randn(1, 5, 3, dtype=DT)
    sequence, last = RNNLayer(cell, bidirectional=True)(x)
    assert torch.equal(last[:, 4:], sequence[:, 0, 4:])
    assert torch.equal(last[:, :4], sequence[:, -1, :4])


def test_rl_episode_start_mapping():
    """The RL loop that zeroes the state before step t where episode_start[t] is the
    mask m[t-1] = 1 - episode_start[t] with reset state 0."""
    cell = SimpleRNNCell(3, 4, dtype=DT)
    x = torch.randn(3, 20, 3, dtype=DT)
    h0 = torch.randn(3, 4, dtype=DT)
    episode_start = (torch.rand(3, 20) < 0.2).to(DT)
    h, looped = h0, []
    for t in range(20):
        h = cell(x[:, t], (1 - episode_start[:, t, None]) * h)
        looped.append(h)
    mask = torch.ones(3, 20, dtype=DT)
    mask[:, :-1] = 1 - episode_start[:, 1:]
    h0_masked = (1 - episode_start[:, 0, None]) * h0
    sequence, _ = RNNLayer(cell)(x, mask, initial_state=h0_masked,
                                 reset_state=torch.zeros(3, 4, dtype=DT))
    report("rollout", sequence, torch.stack(looped, 1), **TOL)


def test_get_rnn_last_state_rejects_bad_input():
    seq = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match=r"expected mask of shape \[B, T\]"):
        get_rnn_last_state(seq, torch.ones(3, 2))
    with pytest.raises(ValueError, match="at least one real"):
        get_rnn_last_state(seq, torch.tensor([[1, 1, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match="even feature size"):
        get_rnn_last_state(torch.randn(2, 3, 5), torch.ones(2, 3), bidirectional=True)


def test_episode_starts_to_mask():
    """A start at step t drops the carry after step t − 1; the last step keeps it."""
    from rnn_fused import episode_starts_to_mask
    starts = torch.tensor([[True, False], [False, True], [True, False], [False, False]])
    expected = torch.tensor([[True, False], [False, True], [True, True], [True, True]])
    assert torch.equal(episode_starts_to_mask(starts), expected)
    assert torch.equal(episode_starts_to_mask(starts.t(), batch_first=True), expected.t())
    as_float = episode_starts_to_mask(starts.double())
    assert as_float.dtype == torch.float64 and torch.equal(as_float, expected.double())
