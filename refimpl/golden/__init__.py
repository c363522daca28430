"""Golden files: the expected output of every stage on small synthetic cases, and the
harness that checks any implementation against them.

golden/manifest.json lists the cases and records how they were made (library versions,
the BLAS Caffe ran on, the weights) and the tolerances a port must meet. For each case,
golden/cases/NAME/ holds
  signal.npy   int16 samples (the rate is in the manifest; float signal = samples/32768)
  image.png    the 227 x 227 RGB image the 2017 recipe draws, drawn by real matplotlib
               2.0.2 on Python 3.6 (refimpl.image.oracles; pixel rule "2017"), lossless
  fc7.npy      float32 (4096,) fc7 after ReLU, computed by REAL Caffe on the seed-0
               synthetic AlexNet (refimpl weights synth --seed 0)
The blob is fully determined by the image; its SHA-256 is in the manifest, and so is the
SHA-256 of each of the three files (entry["files"]), checked whenever the cases are loaded.
`refimpl golden make` builds the whole folder beside golden/ and swaps it in at the end.

`refimpl golden make` regenerates everything (it needs `make caffe` and `make oracles`);
the fast renderer must draw every image the same or nothing is written. `refimpl golden
verify --stage image|blob|fc7 --impl MODULE:CALLABLE` checks another implementation:
  image: f(signal: float64 1-D, rate: int) -> uint8 227 x 227 x 3 RGB
  blob:  f(image: uint8 227 x 227 x 3)      -> float32 3 x 227 x 227 or 1 x 3 x 227 x 227
  fc7:   f(blob: float32 N x 3 x 227 x 227, weights: path of the seed-0 caffemodel)
         -> float32 N x 4096

    cases    the manifest and the case files, read and checked (load_cases, TOLERANCES)
    make     make_golden
    verify   verify, load_callable, the reference callables and DEFAULT_IMPL
    signals, efficientnet, demo   the case generators, EfficientNet-Lite0's golden files,
             `refimpl demo`
"""
from refimpl.golden import signals
from refimpl.golden.cases import (CASE_FILES, MANIFEST, TOLERANCES, WEIGHTS_SEED, GoldenCase,
                                  array_sha256, check_case_files, load_cases, load_manifest)
from refimpl.golden.make import blas_of_caffe, make_golden
from refimpl.golden.verify import (DEFAULT_IMPL, CaseResult, load_callable, reference_blob,
                                   reference_image, verify)

__all__ = ["MANIFEST", "CASE_FILES", "WEIGHTS_SEED", "TOLERANCES", "array_sha256",
           "GoldenCase", "load_manifest", "check_case_files", "load_cases", "make_golden",
           "blas_of_caffe", "CaseResult", "load_callable", "verify", "reference_image",
           "reference_blob", "DEFAULT_IMPL", "signals"]
