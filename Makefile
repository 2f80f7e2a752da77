# `make test` and `make bench` each set up what they need on a fresh machine:
# a virtual environment with torch, then the compiled extension.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch's CUDA build also lets the CUDA kernels compile on machines with no GPU.
TORCH_SPEC ?= torch==2.14.1
JOBS ?= 2
# 1: the CUDA kernels must build, GPU or not (CI: a CUDA compile error fails the
# build); 0: CPU only; empty: CUDA only where torch sees a GPU (setup.py).
FORCE_CUDA ?=

DEPS_STAMP := $(VENV)/.deps-installed
TEST_DEPS_STAMP := $(VENV)/.test-deps-installed
BUILD_STAMP := $(VENV)/.rnn_fused-built
SOURCES := setup.py $(shell find csrc -type f)

.PHONY: install test bench aarch64-compile clean

# What building and benchmarking need; the tests' own tools come apart, so that
# the first `make bench` installs no more than it uses.
$(DEPS_STAMP):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install "$(TORCH_SPEC)" numpy ninja setuptools wheel matplotlib tqdm
	touch $@

# expecttest: torch.testing._internal imports it (tests/test_torch_module_db.py).
# torchrl 0.14.1 needs a tensordict before 0.15 (tests/test_torchrl_integration.py).
$(TEST_DEPS_STAMP): $(DEPS_STAMP)
	$(PY) -m pip install pytest pytest-xdist sb3-contrib gymnasium onnx onnxscript onnxruntime \
		build expecttest "torchrl==0.14.1" "tensordict<0.15"
	touch $@

$(BUILD_STAMP): $(DEPS_STAMP) $(SOURCES)
	FORCE_CUDA=$(FORCE_CUDA) MAX_JOBS=$(JOBS) $(PY) -m pip install --no-build-isolation --no-deps -e .
	@$(PY) -c 'from rnn_fused.utils import has_kernels; print("rnn_fused: built with its CUDA \
	kernels" if has_kernels("cuda") else "rnn_fused: built with the CPU kernels only \
	(FORCE_CUDA=1 builds the CUDA kernels too, GPU or not)")'
	touch $@

install: $(BUILD_STAMP)

test: install $(TEST_DEPS_STAMP)
	$(PY) -m pytest -q -n auto --durations=15

bench: install
	$(PY) benchmarks/run.py

# CI's check that the extension builds on ARM: every C++ source compiled for
# aarch64 with Debian's cross-compiler (installed where missing).
aarch64-compile: $(DEPS_STAMP)
	scripts/cross_compile_aarch64.sh $(PY)

clean:
	rm -rf build rnn_fused/*.so $(BUILD_STAMP)
