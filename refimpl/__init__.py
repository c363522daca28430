"""Deep spectrum features for speech emotion recognition, as a reference implementation.

Cummins, Amiriparian, Hagerer, Batliner, Steidl, Schuller: "An Image-based Deep Spectrum
Feature Representation for the Recognition of Emotional Speech", ACM Multimedia 2017.

One package per pipeline stage, imports flowing one way (README: "How the code is laid
out"): audio -> image -> network (blob, forward pass) -> features; the baselines
(openSMILE, BoAW); corpus -> conditions; protocol (the SVM); experiments (the grid, the
report); golden (make/verify); cli on top. The names below are the public API; they are
imported on first use (refimpl._util.lazy), so `import refimpl` stays cheap. Everything
else is importable from its subpackage (refimpl.features, refimpl.image, ...).

    ds = refimpl.DeepSpectrum(backend="c", layer="fc7")   # pandas + scikit-learn
    frame = ds.process_folder("wav/")                       # (file, start, end) x neuron_*
    refimpl.Functionals("egemaps"), refimpl.BoAWTransformer(size=500)   # the baselines
    for r in refimpl.iter_features(paths, refimpl.ExtractorConfig(...)): ...   # streaming
"""
from refimpl._util.lazy import lazy_attributes
from refimpl.errors import RefimplError

__all__ = ["DeepSpectrum", "ExtractorConfig", "iter_features", "extract_to_file", "find_audio",
           "Functionals", "BoAWTransformer", "load_corpus", "read_audio", "render_image",
           "SpectrogramOptions", "open_network", "RefimplError", "__version__"]

__getattr__, __dir__ = lazy_attributes(__name__, {
    "DeepSpectrum": "refimpl.features.api",
    "ExtractorConfig": "refimpl.features.config",
    "iter_features": "refimpl.features.engine",
    "extract_to_file": "refimpl.features.extraction",
    "find_audio": "refimpl.features.inputs",
    "Functionals": "refimpl.baselines.estimators",
    "BoAWTransformer": "refimpl.baselines.estimators",
    "load_corpus": "refimpl.corpus",
    "read_audio": "refimpl.audio",
    "render_image": "refimpl.image",
    "SpectrogramOptions": "refimpl.image.options",
    "open_network": "refimpl.network",
    "__version__": "refimpl._util.version",
})
