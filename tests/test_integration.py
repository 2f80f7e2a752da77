"""FusedRNN in real training code: torch.compile, autocast, module protocol,
DistributedDataParallel."""
import copy
import io

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from rnn_fused import FusedRNN, fused_rnn, ops

from helpers import KINDS, fused_module, report, rnn_layer


class Tagger(nn.Module):
    """A small model: FusedRNN under a linear head, loss from outputs and h_n."""

    def __init__(self):
        super().__init__()
        self.rnn = FusedRNN(4, 8, num_layers=2, batch_first=True, bidirectional=True)
        self.head = nn.Linear(16, 1)

    def forward(self, x, mask):
        out, h_n = self.rnn(x, mask=mask)
        return self.head(out).square().mean() + h_n.square().mean()


def loss_and_grads(model, *args):
    model.zero_grad()
    loss = model(*args)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("dynamic", [False, True])
def test_torch_compile_fullgraph_matches_eager(dynamic):
    model = Tagger()
    compiled = torch.compile(model, fullgraph=True, dynamic=dynamic)
    for batch, steps in ((3, 5), (4, 7)) if dynamic else ((3, 5),):
        x = torch.randn(batch, steps, 4)
        mask = torch.rand(batch, steps) > 0.2
        eager_loss, eager_grads = loss_and_grads(model, x, mask)
        compiled_loss, compiled_grads = loss_and_grads(compiled, x, mask)
        report("compiled loss", compiled_loss, eager_loss, atol=1e-6, rtol=1e-6)
        for (name, _), a, b in zip(model.named_parameters(), compiled_grads, eager_grads):
            report(f"compiled grad {name}", a, b, atol=1e-6, rtol=1e-6)


def test_cpu_autocast_computes_in_float32():
    """No half-precision CPU kernels: under CPU autocast, bfloat16 inputs are cast
    up and the layer computes and returns float32, exactly as outside autocast."""
    rnn = FusedRNN(4, 8, batch_first=True)
    x = torch.randn(3, 5, 4).bfloat16()
    h0 = torch.randn(1, 3, 8).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, h_n = rnn(x, h0, mask=torch.rand(3, 5) > 0.2, reset_state=0.0)
        linear = nn.Linear(8, 2)(out)
    assert out.dtype == h_n.dtype == torch.float32
    assert linear.dtype == torch.bfloat16  # the rest of the model still autocasts
    torch.manual_seed(0)
    expected = rnn(x.float(), h0.float())[0]
    torch.manual_seed(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(rnn(x, h0)[0], expected)
    out.sum().backward()
    assert all(p.grad.dtype == torch.float32 for p in rnn.parameters())


def test_autocast_is_the_op_s_so_every_front_behaves_alike():
    """fused_rnn, FusedRNN and a direct op call compute alike under CPU autocast."""
    rnn = FusedRNN(4, 8)
    x, h0 = torch.randn(5, 3, 4).bfloat16(), torch.randn(3, 8).bfloat16()
    mask = torch.rand(5, 3) > 0.2
    with torch.autocast("cpu", dtype=torch.bfloat16):
        module = rnn(x, h0[None], mask=mask)
        functional = fused_rnn(x, *rnn.layer_weights(0), hx=h0, mask=mask)
        direct = rnn_layer(x, *rnn.layer_weights(0), h0, mask.bfloat16(), h0, "tanh", False)
    for out in (module[0], functional[0], direct[0]):
        assert out.dtype == torch.float32
        assert torch.equal(out, module[0])


@pytest.mark.parametrize("bidirectional", [False, True])
def test_torch_export_runs_the_exported_program(bidirectional):
    model = FusedRNN(4, 8, num_layers=2, batch_first=True, bidirectional=bidirectional)
    x, mask = torch.randn(3, 5, 4), torch.rand(3, 5) > 0.2
    batch, steps = torch.export.Dim("batch"), torch.export.Dim("steps")
    exported = torch.export.export(model, (x,), dict(mask=mask),
                                   dynamic_shapes=dict(input={0: batch, 1: steps},
                                                       mask={0: batch, 1: steps}))
    for shape in ((3, 5), (2, 9)):
        x, mask = torch.randn(*shape, 4), torch.rand(*shape) > 0.2
        for a, b in zip(exported.module()(x, mask=mask), model(x, mask=mask)):
            assert torch.equal(a, b)


def test_state_dict_save_load_deepcopy_and_to():
    model = Tagger()
    x, mask = torch.randn(3, 5, 4), torch.rand(3, 5) > 0.2
    expected = model(x, mask)

    restored = Tagger()
    restored.load_state_dict(model.state_dict())
    assert torch.equal(restored(x, mask), expected)

    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert torch.equal(loaded(x, mask), expected)

    clone = copy.deepcopy(model)
    assert torch.equal(clone(x, mask), expected)
    assert all(a.data_ptr() != b.data_ptr() for a, b in zip(clone.parameters(),
                                                             model.parameters()))

    double = copy.deepcopy(model).to(torch.float64)
    assert all(p.dtype == torch.float64 for p in double.parameters())
    report("float64 copy", double(x.double(), mask), expected.double(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", KINDS)
def test_whole_module_checkpoints_load_with_weights_only(cell):
    """torch.load's default (weights_only=True) takes our modules with nothing
    allowlisted; a model around them needs its own classes allowed, as with any
    checkpoint."""
    module = fused_module(cell, 4, 6, num_layers=2, bidirectional=True, backend="per-step")
    model = nn.Sequential(module)
    x = torch.randn(3, 2, 4)
    for saved, allowed in ((module, []), (model, [nn.Sequential])):
        buffer = io.BytesIO()
        torch.save(saved, buffer)
        buffer.seek(0)
        with torch.serialization.safe_globals(allowed):
            loaded = torch.load(buffer)
        restored = loaded if saved is module else loaded[0]
        assert type(restored) is type(module) and restored.backend == "per-step"
        assert torch.equal(restored(x)[0], module(x)[0])


def test_functional_call_uses_the_given_parameters():
    rnn = FusedRNN(4, 8, batch_first=True)
    x = torch.randn(3, 5, 4)
    zeros = {name: torch.zeros_like(p) for name, p in rnn.named_parameters()}
    out, h_n = torch.func.functional_call(rnn, zeros, (x,))
    assert torch.count_nonzero(out) == 0 and torch.count_nonzero(h_n) == 0
    assert torch.count_nonzero(rnn(x)[0]) > 0


def _ddp_worker(rank, world_size, store_path, state, x, mask, result_path):
    # A file store needs no free port, which a busy CI machine may not give.
    dist.init_process_group("gloo", init_method=f"file://{store_path}", rank=rank, world_size=world_size)
    torch.set_num_threads(1)
    model = Tagger()
    model.load_state_dict(state)
    ddp = nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
    shard = slice(rank * x.shape[0] // world_size, (rank + 1) * x.shape[0] // world_size)
    for _ in range(3):
        optimizer.zero_grad()
        ddp(x[shard], mask[shard]).backward()
        optimizer.step()
    if rank == 0:
        torch.save(model.state_dict(), result_path)
    # Without it, a rank that tears gloo down while its peer is still connected
    # can abort in gloo's threads ("terminate called without an active exception").
    dist.barrier()
    dist.destroy_process_group()


def test_distributed_data_parallel_matches_single_process(tmp_path):
    """Two gloo processes on half batches each take the same SGD steps as one
    process on the full batch (the loss is a mean, so gradients average)."""
    model = Tagger()
    state = copy.deepcopy(model.state_dict())
    x, mask = torch.randn(4, 6, 4), torch.rand(4, 6) > 0.2
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        model(x, mask).backward()
        optimizer.step()

    result_path = tmp_path / "ddp_state.pt"
    store_path = tmp_path / "ddp_store"
    mp.spawn(_ddp_worker, args=(2, store_path, state, x, mask, result_path), nprocs=2, join=True)
    distributed = torch.load(result_path)
    for name, value in model.state_dict().items():
        report(f"DDP {name}", distributed[name], value, atol=1e-6, rtol=1e-5)
