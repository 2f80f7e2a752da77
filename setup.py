"""Builds rnn_fused._C, the fused RNN kernels, against the installed torch.

Install with `pip install --no-build-isolation -e .` so that the torch already in
the environment is the one compiled against.

The CUDA kernels are built where they can run: torch is a CUDA build, nvcc is
found and torch sees a GPU. FORCE_CUDA=1 builds them without a GPU too (they
compile and link without one; CI does this) and turns a missing toolkit into an
error; FORCE_CUDA=0 skips them. Objects are kept in build/temp, so that a
rebuild (pip's editable install included) compiles only what changed.
"""
import glob
import os
import re
import shutil

import torch
from setuptools import find_packages, setup


def find_cuda_home():
    """The toolkit root, honouring CUDA_HOME/CUDA_PATH. torch guesses it from the
    nvcc on PATH, which can be a wrapper script far from the toolkit."""
    for variable in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(variable):
            return os.environ[variable]
    candidates = ["/usr/local/cuda"]
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
    for root in candidates:
        if os.path.exists(os.path.join(root, "include", "cuda_runtime.h")):
            return root
    return None


force_cuda = os.environ.get("FORCE_CUDA", "")
cuda_home = find_cuda_home()
can_build_cuda = torch.version.cuda is not None and cuda_home is not None
if force_cuda == "1" and not can_build_cuda:
    raise RuntimeError(
        f"FORCE_CUDA=1 but the CUDA kernels cannot be built: torch {torch.__version__} "
        f"(CUDA {torch.version.cuda}), toolkit {cuda_home or 'not found'}")
use_cuda = force_cuda == "1" or (force_cuda != "0" and can_build_cuda and
                                 torch.cuda.is_available())
if not use_cuda and force_cuda != "0":
    why = ("torch sees no GPU here" if can_build_cuda else
           f"torch {torch.__version__} is a CPU build" if torch.version.cuda is None else
           "no CUDA toolkit (nvcc) was found")
    print(f"rnn_fused: building the CPU kernels only ({why}); FORCE_CUDA=1 builds the CUDA "
          "kernels too, which compile without a GPU", flush=True)
if use_cuda:
    # Must be set before cpp_extension is imported: it reads CUDA_HOME once.
    os.environ["CUDA_HOME"] = cuda_home
    # Without a GPU to ask (torch otherwise builds for the GPUs it sees): Hopper.
    if not torch.cuda.is_available():
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "9.0")

from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension  # noqa: E402


# Relative paths, as setuptools wants them: pip and build run setup.py with its own
# directory (the clone or the unpacked sdist) as the working directory.
def sources_under(pattern):
    return sorted(glob.glob(pattern, recursive=True))


def package_version():
    """rnn_fused.__version__, read without importing the package (whose _C is not built yet)."""
    with open(os.path.join("rnn_fused", "__init__.py")) as init:
        return re.search(r'^__version__ = "([^"]+)"$', init.read(), re.MULTILINE).group(1)


cuda_sources = sources_under("csrc/cuda/**/*.cpp") + sources_under("csrc/cuda/**/*.cu")
sources = [s for s in sources_under("csrc/**/*.cpp") if s not in cuda_sources]
# -fopenmp makes at::parallel_for use torch's own OpenMP thread pool;
# -fno-trapping-math lets branch-free math (fast_tanh) vectorize.
# -g0: Python's own flags ask for debug info, which doubles the compile time.
# -Wno-psabi: GCC notes at every AVX vector passed by value in a baseline
# function that the ABI differs under AVX; those functions are always inlined
# into one of the ISA's own (csrc/cpu/isa.h).
# An -O level in the user's CFLAGS replaces -O3 (CFLAGS=-O0 builds in a third of
# the time, for checks that need a build but not its speed).
user_opt = re.findall(r"(?:^|\s)(-O\S*)", os.environ.get("CFLAGS", ""))
compile_args = {"cxx": [user_opt[-1] if user_opt else "-O3", "-g0", "-fopenmp",
                        "-fno-trapping-math", "-Wno-psabi"]}
include_dirs = []
if use_cuda:
    # The longest units first, so that a parallel build does not end on one.
    sources = cuda_sources + sources
    compile_args["cxx"].append("-DWITH_CUDA")
    compile_args["nvcc"] = ["-O3", "-DWITH_CUDA", "-lineinfo"]
    # A bare toolkit may lack the CUDA library headers (cuBLAS, cuSPARSE) that
    # ATen's CUDA headers include; pip's CUDA wheels carry them, installed beside
    # torch, which need not be in this environment's own site-packages.
    wheel_headers = os.path.join(os.path.dirname(os.path.dirname(torch.__file__)),
                                 "nvidia", "cu13", "include")
    if not os.path.exists(os.path.join(cuda_home, "include", "cublas_v2.h")) and \
            os.path.isdir(wheel_headers):
        include_dirs.append(wheel_headers)

Extension = CUDAExtension if use_cuda else CppExtension


class BuildInTree(BuildExtension):
    """Keeps the objects in build/temp beside setup.py rather than in the
    temporary folder of pip's editable install, so that ninja rebuilds only what
    changed."""

    def finalize_options(self):
        super().finalize_options()
        self.build_temp = os.path.join(os.path.dirname(os.path.abspath(__file__)), "build", "temp")

setup(
    name="rnn_fused",
    version=package_version(),
    description="Fused Elman, GRU and LSTM layers with mask-reset: C++/CUDA kernels as "
                "PyTorch custom ops",
    packages=find_packages(include=["rnn_fused", "rnn_fused.*"]),
    ext_modules=[
        Extension(
            "rnn_fused._C",
            sources,
            include_dirs=include_dirs,
            extra_compile_args=compile_args,
            extra_link_args=["-fopenmp"],
        )
    ],
    cmdclass={"build_ext": BuildInTree},

    python_requires=">=3.9",
    install_requires=["torch>=2.4"],
    # What ONNX export (rnn_fused.onnx) and checking its graph in onnxruntime need.
    extras_require={"onnx": ["onnx", "onnxscript", "onnxruntime"]},
)
