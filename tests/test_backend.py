"""The backend: an explicit argument of every call, saved for its backward;
plan() says which path a call takes and why; RNN_FUSED_BACKEND overrides 'auto'
for a whole process."""
import os
import subprocess
import sys
import threading

import pytest
import torch

from rnn_fused import FusedGRU, FusedLSTM, FusedRNN, best_device, plan
from rnn_fused.ops import backends

from helpers import profiled_names

T, B, D, H = 6, 4, 3, 8


# The CUDA kernel families are registered where the CUDA kernels are built (CI
# builds them everywhere); 'persistent' is then a backend the CPU refuses.
CUDA_FAMILIES = "persistent" in backends()
needs_cuda_families = pytest.mark.skipif(not CUDA_FAMILIES,
                                         reason="a build without the CUDA kernels")


def test_plan_on_the_cpu():
    for backend in ("auto", "per-step"):
        cpu = plan(B, H, steps=T, backend=backend)
        assert cpu.backend == "per-step" and cpu.reason.startswith("the per-step loop")
    with pytest.raises(ValueError, match="backend must be 'auto'.*'per-step'.*got 'fast'"):
        plan(B, H, backend="fast")


@needs_cuda_families
def test_cuda_families_on_the_cpu():
    persistent = plan(B, H, backend="persistent")
    assert persistent.backend is None
    assert "the 'persistent' backend does not run on the CPU" in persistent.reason


@pytest.mark.parametrize("module_cls", [FusedRNN, FusedGRU, FusedLSTM])
@pytest.mark.parametrize("batch, hidden", [(B, H), (64, 256)])
def test_the_kernels_run_the_path_the_plan_names(device, module_cls, batch, hidden):
    module = module_cls(D, hidden, device=device)
    x = torch.randn(T, batch, D, device=device, requires_grad=True)
    names = profiled_names(lambda: module(x)[0].sum().backward())
    cell = {FusedRNN: "rnn", FusedGRU: "gru", FusedLSTM: "lstm"}[module_cls]
    chosen = plan(batch, hidden, steps=T, device=device, cell=cell)
    expected = [f"rnn_fused::{device}_forward({chosen.backend})",
                f"rnn_fused::{device}_backward({chosen.backend})"]
    # The families' scopes (the CPU's runs of steps have their own, inside them).
    prefixes = (f"rnn_fused::{device}_forward(", f"rnn_fused::{device}_backward(")
    assert [name for name in names if name.startswith(prefixes)] == expected


def run_in_process(code: str, backend_variable: str) -> subprocess.CompletedProcess:
    environment = dict(os.environ, RNN_FUSED_BACKEND=backend_variable)
    return subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True,
                          text=True, timeout=120)


# Every module's call, in one process: one line each, what it printed or raised.
CALL = ("import torch; from rnn_fused import FusedGRU, FusedLSTM, FusedRNN\n"
        "for module in (FusedRNN, FusedGRU, FusedLSTM):\n"
        "    try:\n"
        "        m = module(3, 8, backend={backend!r}); m(torch.randn(4, 2, 3)); print(m)\n"
        "    except Exception as error:\n"
        "        print(module.__name__, type(error).__name__, error)")


@needs_cuda_families
def test_the_environment_variable_replaces_auto_for_the_process():
    """A whole test run can be put on one path, for every cell."""
    def lines(backend, variable):
        result = run_in_process(CALL.format(backend=backend), variable)
        assert result.returncode == 0, result.stderr
        printed = result.stdout.splitlines()
        assert len(printed) == 3, printed
        return printed
    for line in lines("auto", "persistent"):
        assert "ValueError rnn_fused: the 'persistent' backend does not run on the CPU" in line, line
    for line in lines("per-step", "persistent"):
        assert "backend='per-step'" in line, line
    for line in lines("auto", "fast"):
        assert ("ValueError rnn_fused: RNN_FUSED_BACKEND must be 'auto', 'per-step', 'persistent' or "
                "'cluster'") in line and "got 'fast'" in line, line


def run_concurrently(jobs, repeats):
    """Runs each job `repeats` times on its own thread, all threads at once;
    returns each job's outcomes (its result, or the exception it raised)."""
    outcomes = [[] for _ in jobs]
    start = threading.Barrier(len(jobs))

    def worker(k):
        start.wait()
        for _ in range(repeats):
            try:
                outcomes[k].append(jobs[k]())
            except Exception as error:  # noqa: BLE001 (recorded and asserted below)
                outcomes[k].append(error)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def modules_with_backends(backends, hidden, device):
    """FusedRNN modules sharing one set of weights, one per backend."""
    first = FusedRNN(D, hidden, device=device, backend=backends[0])
    others = [FusedRNN(D, hidden, device=device, backend=b) for b in backends[1:]]
    for module in others:
        module.load_state_dict(first.state_dict())
    return [first, *others]


@needs_cuda_families
def test_concurrent_calls_each_get_the_backend_they_ask_for_on_the_cpu():
    """One thread's FusedRNN asks for 'persistent', which the CPU refuses; the
    other's runs 'auto'. A process-wide setting would let one thread's choice leak
    into the other's calls."""
    persistent, auto = modules_with_backends(["persistent", "auto"], H, "cpu")
    x = torch.randn(T, B, D)
    expected = auto(x)[0]
    outcomes = run_concurrently([lambda: persistent(x)[0], lambda: auto(x)[0]], repeats=200)
    assert all(isinstance(o, ValueError) and "does not run on the CPU" in str(o)
               for o in outcomes[0])
    assert all(isinstance(o, torch.Tensor) and torch.equal(o, expected) for o in outcomes[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_concurrent_calls_each_get_the_backend_they_ask_for_on_cuda():
    """The two CUDA paths round differently and each is deterministic, so a
    thread that ran the other path would return different bits."""
    backends = ["per-step", "persistent"]
    modules = modules_with_backends(backends, 256, "cuda")
    x = torch.randn(T, 8, D, device="cuda")
    assert plan(8, 256, steps=T, device="cuda", backend="persistent").backend == "persistent"
    expected = [module(x)[0] for module in modules]
    assert not torch.equal(*expected)
    outcomes = run_concurrently([lambda m=m: m(x)[0] for m in modules], repeats=100)
    torch.cuda.synchronize()
    for backend, results, want in zip(backends, outcomes, expected):
        assert all(torch.equal(r, want) for r in results), backend


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_the_backward_follows_the_forward_s_backend():
    module = FusedRNN(D, 256, device="cuda", backend="persistent")
    x = torch.randn(T, 8, D, device="cuda", requires_grad=True)

    def run():
        out = module(x)[0]
        module.backend = "per-step"
        out.sum().backward()
    names = profiled_names(run)
    assert "rnn_fused::cuda_forward(persistent)" in names
    assert "rnn_fused::cuda_backward(persistent)" in names
    assert "rnn_fused::cuda_backward(per-step)" not in names


@pytest.mark.skipif(best_device() != "cuda", reason="needs a GPU")
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("batch, hidden", [(1, 128), (8, 256), (64, 512), (256, 1024)])
def test_auto_on_cuda_takes_only_verified_kernels(cell, batch, hidden):
    """Until a device check passes a one-launch kernel at its current code
    (tests/test_device_verified.py), 'auto' runs the per-step loop on CUDA."""
    if cell == "rnn" and "persistent" in torch.ops.rnn_fused.auto_kernels():
        pytest.skip("the persistent kernel is verified; 'auto' chooses by size")
    chosen = plan(batch, hidden, steps=T, device="cuda", cell=cell)
    assert chosen.backend == "per-step", chosen.reason
