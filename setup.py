"""Builds rnn_fused._C, the fused RNN kernels, against the installed torch.

Install with `pip install --no-build-isolation -e .` so that the torch already in
the environment is the one compiled against.
"""
import glob

from setuptools import find_packages, setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

SOURCES = sorted(glob.glob("csrc/*.cpp")) + sorted(glob.glob("csrc/cpu/*.cpp"))

setup(
    name="rnn_fused",
    version="0.1.0",
    description="Fused Elman RNN with mask-reset: C++ kernels as PyTorch custom ops",
    packages=find_packages(include=["rnn_fused", "rnn_fused.*"]),
    ext_modules=[
        CppExtension(
            "rnn_fused._C",
            SOURCES,
            # -fopenmp makes at::parallel_for use torch's own OpenMP thread pool;
            # -fno-trapping-math lets branch-free math (fast_tanh) vectorize.
            extra_compile_args={"cxx": ["-O3", "-fopenmp", "-fno-trapping-math"]},
            extra_link_args=["-fopenmp"],
        )
    ],
    cmdclass={"build_ext": BuildExtension},
    python_requires=">=3.9",
    install_requires=["torch>=2.4"],
)
