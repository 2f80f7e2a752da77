"""The one-launch kernels' watchdog: a block that never arrives makes the
others' waits run out of budget, every block leaves, the call raises a
RuntimeError naming the kernel, its sizes and the step, and the next call on
the same CUDA context runs normally (csrc/cuda/common/waits.cuh)."""
import pytest
import torch

from rnn_fused import FusedGRU, FusedLSTM, FusedRNN, best_device, plan

CUDA_BUILD = hasattr(torch.ops.rnn_fused, "set_watchdog")


@pytest.fixture
def stalled_block():
    """Block 0 of every launch skips its arrival after step 1; waits give up
    after 0.2 s. Restores the default afterwards, whatever the test did."""
    torch.ops.rnn_fused.set_watchdog(0.2, 0, 1)
    yield
    torch.ops.rnn_fused.set_watchdog(10.0, -1, -1)


@pytest.mark.skipif(not CUDA_BUILD, reason="a build without the CUDA kernels has no watchdog")
def test_the_budget_must_be_positive():
    with pytest.raises(ValueError, match="must be positive"):
        torch.ops.rnn_fused.set_watchdog(0.0)


# (module, backend, batch, hidden, dtype): the grid kernel, the gated grid
# kernels, and the tiled cluster kernel's per-block flags (float32 beyond one
# cluster's H).
CASES = [(FusedRNN, "persistent", 8, 256, torch.float32, "persistent"),
         (FusedGRU, "persistent", 8, 256, torch.float32, "GRU persistent"),
         (FusedLSTM, "persistent", 8, 256, torch.bfloat16, "LSTM persistent"),
         (FusedRNN, "cluster", 8, 1024, torch.float32, "tiled cluster")]


@pytest.mark.skipif(best_device() != "cuda", reason="needs a GPU")
@pytest.mark.parametrize("cls, backend, batch, hidden, dtype, kernel", CASES)
def test_a_missed_arrival_raises_and_the_context_survives(stalled_block, cls, backend, batch,
                                                          hidden, dtype, kernel):
    cell = {FusedRNN: "rnn", FusedGRU: "gru", FusedLSTM: "lstm"}[cls]
    chosen = plan(batch, hidden, steps=6, dtype=dtype, device="cuda", backend=backend, cell=cell)
    assert chosen.backend == backend, chosen.reason
    module = cls(16, hidden, device="cuda", dtype=dtype, backend=backend)
    x = torch.randn(6, batch, 16, device="cuda", dtype=dtype)
    with pytest.raises(RuntimeError, match=f"the {kernel} forward kernel .*T=6, B={batch}, "
                                           f"H={hidden}.*timed out.*after step 1"):
        module(x)
    torch.ops.rnn_fused.set_watchdog(10.0, -1, -1)
    out = module(x)[0]
    module.backend = "per-step"
    expected = module.double()(x.double())[0]
    torch.testing.assert_close(out.double(), expected, atol=6e-2, rtol=6e-2)
