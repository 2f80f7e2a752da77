# `make test` and `make bench` each set up what they need on a fresh machine:
# a virtual environment with torch, then the compiled extension.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch's CUDA build also lets the CUDA kernels compile on machines with no GPU.
TORCH_SPEC ?= torch==2.14.1
JOBS ?= 2
# 1: the CUDA kernels must build (a CUDA compile error fails the build); 0: CPU only.
FORCE_CUDA ?= 1

DEPS_STAMP := $(VENV)/.deps-installed
BUILD_STAMP := $(VENV)/.rnn_fused-built
SOURCES := setup.py $(shell find csrc -type f)

.PHONY: install test bench clean

$(DEPS_STAMP):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install "$(TORCH_SPEC)" numpy pytest ninja setuptools wheel matplotlib tqdm \
		sb3-contrib gymnasium onnx onnxscript onnxruntime build
	touch $@

$(BUILD_STAMP): $(DEPS_STAMP) $(SOURCES)
	FORCE_CUDA=$(FORCE_CUDA) MAX_JOBS=$(JOBS) $(PY) -m pip install --no-build-isolation --no-deps -e .
	touch $@

install: $(BUILD_STAMP)

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/run.py

clean:
	rm -rf build rnn_fused/*.so $(BUILD_STAMP)
