"""Deep spectrum features for speech emotion recognition, as a reference implementation.

Cummins, Amiriparian, Hagerer, Batliner, Steidl, Schuller: "An Image-based Deep Spectrum
Feature Representation for the Recognition of Emotional Speech", ACM Multimedia 2017.

One package per pipeline stage, imports flowing one way (README: "How the code is laid
out"): audio -> image -> network (blob, forward pass) -> features; the baselines
(openSMILE, BoAW); corpus -> conditions; protocol (the SVM); experiments (the grid, the
report); golden (make/verify); cli on top. The names below are the public API; they are
imported on first use, so `import refimpl` stays cheap.

    ds = refimpl.DeepSpectrum(backend="c", layer="fc7")   # pandas + scikit-learn
    frame = ds.process_folder("wav/")                       # (file, start, end) x neuron_*
    refimpl.Functionals("egemaps"), refimpl.BoAWTransformer(size=500)   # the baselines
    for r in refimpl.iter_features(paths, refimpl.ExtractorConfig(...)): ...   # streaming
"""
import importlib

from refimpl.errors import (AudioError, CaffeError, CorpusError, FeatureError, ImageError,
                            RefimplError, UsageError, WeightsError)

__version__ = "0.1.0"

_PUBLIC = {
    "read_audio": "refimpl.audio",
    "Audio": "refimpl.audio",
    "SpectrogramOptions": "refimpl.image",
    "render_image": "refimpl.image",
    "spectrogram_image": "refimpl.image",
    "image_to_blob": "refimpl.network",
    "open_backend": "refimpl.network",
    "open_network": "refimpl.network",
    "DeepSpectrum": "refimpl.features.api",
    "ExtractorConfig": "refimpl.features",
    "Signal": "refimpl.features",
    "iter_features": "refimpl.features",
    "extract_to_file": "refimpl.features",
    "find_audio": "refimpl.features",
    "read_labels": "refimpl.features",
    "extract": "refimpl.features",
    "write_features": "refimpl.features",
    "Functionals": "refimpl.baselines.opensmile",
    "BoAWTransformer": "refimpl.baselines.boaw",
    "load_corpus": "refimpl.corpus",
    "Corpus": "refimpl.corpus",
    "functionals": "refimpl.baselines.opensmile",
    "lld": "refimpl.baselines.opensmile",
}

__all__ = sorted(_PUBLIC) + ["RefimplError", "AudioError", "ImageError", "WeightsError",
                             "CaffeError", "FeatureError", "CorpusError", "UsageError",
                             "__version__"]


def __getattr__(name):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'refimpl' has no attribute {name!r}")


def __dir__():
    return __all__
