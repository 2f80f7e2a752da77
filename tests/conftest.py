import os

# cuBLAS is deterministic with this workspace setting, which the poisoning
# fixture's deterministic mode asks for; it must be set before CUDA starts.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import pytest  # noqa: E402
import torch  # noqa: E402

from rnn_fused import best_device, cpu_isas  # noqa: E402
from helpers import cpu_isa_set, has_tiles  # noqa: E402

# Comparisons against float64 and cuDNN need true float32 products.
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


# Every test taking `device` runs once per device that has both hardware and kernels.
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(
        best_device() != "cuda",
        reason="needs a GPU and rnn_fused's CUDA kernels")),
]


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


@pytest.fixture(params=cpu_isas())
def cpu_isa(request):
    """Each vector ISA this CPU runs, in turn, as the CPU kernels' (csrc/cpu/isa.h)."""
    with cpu_isa_set(request.param):
        yield request.param


@pytest.fixture(params=[isa for isa in cpu_isas() if has_tiles(isa)] or cpu_isas()[:1])
def tiles_isa(request):
    """Each ISA this CPU runs that has the register-tile kernels (or the baseline
    where none has), in turn."""
    with cpu_isa_set(request.param):
        yield request.param


@pytest.fixture(autouse=True)
def poison_uninitialized_memory():
    """Fill every freshly allocated tensor with NaN, so unwritten output shows."""
    previous = (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled(),
                torch.utils.deterministic.fill_uninitialized_memory)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = True
    yield
    torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
    torch.utils.deterministic.fill_uninitialized_memory = previous[2]


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)
