# Deep spectrum reference implementation.
#   make run     the main job on the embedded default (see README)
#   make test    everything the tests need (venv, build, Caffe), then the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CAFFE_PREFIX ?= $(CURDIR)/.caffe/prefix
export REFIMPL_CAFFE_PREFIX := $(CAFFE_PREFIX)
PYTEST_ARGS ?=

.PHONY: all venv build caffe test test-all run clean

all: venv caffe

# The virtual environment: pinned requirements, then the package (editable, which
# also compiles csrc/ into refimpl/*.so).
venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-build-isolation --no-deps -e .
	touch $@

# Rebuild the compiled core after editing csrc/.
build: venv
	$(BIN)/python setup.py -q build_ext --inplace

# Real Caffe (CPU), unpacked from Debian bullseye's packages into .caffe/ (about 600 MB).
caffe: $(CAFFE_PREFIX)/.complete
$(CAFFE_PREFIX)/.complete:
	sh tools/install_caffe.sh $(CAFFE_PREFIX)

test: venv build caffe
	$(BIN)/python -m pytest -q $(PYTEST_ARGS) tests

clean:
	rm -rf build refimpl/*.so csrc/*.c .pytest_cache

# EmoDB's noisy (simulated room microphone) and denoised (LSTM mask enhancer) conditions,
# into .cache/conditions/emodb/seed0 (refimpl/conditions.py, refimpl/denoise.py).
conditions: venv
	$(BIN)/refimpl corpus conditions emodb --seed 0

# Retrain the enhancer's committed weights (weights/denoiser/README.md) with real Caffe.
denoiser: venv caffe
	$(BIN)/refimpl corpus conditions emodb --seed 0 --only noisy
	$(BIN)/refimpl denoiser train emodb --seed 0 --iters 1500
.PHONY: conditions denoiser
