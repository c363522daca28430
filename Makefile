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

# The paper's whole grid -> results/ (Tables 5-9, Figures 2-3, report.md).
#   make reproduce                                   EmoDB (../shared/data or downloaded)
#   make reproduce CORPUS=aibo AIBO_ROOT=/path/to/FAU-AIBO
#   make reproduce CORPUS=path/to/manifest.csv
CORPUS ?= emodb
AIBO_ROOT ?=
RESULTS ?= results
SEED ?= 0
.PHONY: reproduce
reproduce: venv caffe
	$(BIN)/python -m refimpl reproduce --corpus $(CORPUS) $(if $(AIBO_ROOT),--root $(AIBO_ROOT)) --out $(RESULTS) --seed $(SEED)
