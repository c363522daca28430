"""Bags of audio words (BoAW), bit-identical to openXBOW 1.3.1 (Schmitt & Schuller).

The paper's third baseline quantises every low-level-descriptor frame of a recording
(MFCC 1-12 + log energy, refimpl.baselines.opensmile) against a codebook of "audio words" and describes the
recording by how often each word was hit.  openXBOW is the tool the paper used; this module
reproduces its every step (see csrc/_boaw.pyx for the arithmetic):

  read LLD CSV -> [standardise input] -> codebook (random / random++ / kmeans / kmeans++)
  -> assign each frame to its Na nearest words -> [log10(TF+1)] [IDF] [norm] -> [standardise
  output] -> CSV / ARFF / LibSVM, and the codebook file that openXBOW's -B writes and -b reads.

Usage
    lld = read_lld_csv("llds.csv")
    result = boaw(lld, size=500, assignments=10, log=True)     # openXBOW -size 500 -a 10 -log
    write_bags("boaw.csv", result.names, result.bags)          # = -o boaw.csv -writeName
    save_codebook("cb.txt", result.codebook)                   # = -B cb.txt
    test = boaw(read_lld_csv("test.csv"), codebook=load_codebook("cb.txt"))   # = -b cb.txt

`BoAWTransformer` (refimpl.baselines.estimators, offered here on first use: it imports
scikit-learn) wraps the same in scikit-learn's fit/transform.  `fast=True` computes the
distances with BLAS instead of openXBOW's float32 running sums (refimpl.baselines.boaw_fast):
identical except where two words are (nearly) equally far from a frame; see
assignment_differences(), counted on all of EmoDB by
tests/baselines/test_boaw_slow.py::test_fast_mode_differences_all_emodb.  With Gaussian
weighting the weights also differ in the last bits (BLAS distances).

Speed against openXBOW's jar: the benchmark tests/benchmarks/test_bench_boaw.py.
"""
from __future__ import annotations

import dataclasses
import functools
import warnings

import numpy as np

from refimpl._util.atomic import atomic_open
from refimpl._util.files import check_regular
from refimpl._util.lazy import lazy_attributes
from refimpl._util.native import import_kernel
from refimpl.baselines.boaw_fast import (assignment_differences, exact_assignments,
                                         fast_assignments, nearest_word_sets,
                                         pad_assignments)
from refimpl.errors import BoawError, BoawWarning

__all__ = ["LLD", "Codebook", "BoawResult", "BoawError", "METHODS", "read_lld_csv",
           "write_lld_csv", "learn_codebook", "boaw", "boaw_multi", "write_bags",
           "save_codebook", "load_codebook", "assignment_differences", "exact_assignments",
           "fast_assignments", "nearest_word_sets", "fast_bags", "instances", "kernels",
           "BoAWTransformer"]

# scikit-learn takes seconds to import; the command line does not need it
__getattr__, __dir__ = lazy_attributes(
    __name__, {"BoAWTransformer": "refimpl.baselines.estimators"})


@functools.cache
def kernels():
    """The compiled kernels of csrc/_boaw.pyx (JavaRandom, java_float_str, the bag
    kernels), imported on first use (so that commands that never quantise, `refimpl
    extract` say, work without them), with OpenMP's idle threads asleep: the bag kernel
    runs one OpenMP region per call, and on a shared machine spinning threads cost more
    than they save."""
    return import_kernel("refimpl.baselines._boaw")

METHODS = ("random", "random++", "kmeans", "kmeans++")
FLT_MIN_NORMAL = np.float32(1.17549435e-38)


# --------------------------------------------------------------------------------------
# LLD input
# --------------------------------------------------------------------------------------
@dataclasses.dataclass
class LLD:
    """Frames of low-level descriptors: names[i] is the instance (file) frame i belongs to."""
    names: list
    features: np.ndarray          # (frames, features) float32
    source: str = ""              # file name as given (openXBOW's ARFF relation comes from it)


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def _unquote(text):
    if text[:1] in ("'", '"'):
        text = text[1:]
        if text.endswith(("'", '"')):
            text = text[:-1]
    return text


def _read_lines(path, what):
    """A text file's lines without their line ends; an unreadable file is a BoawError."""
    try:
        check_regular(path)      # a FIFO or device would block or never end
        with open(path, encoding="utf-8") as f:
            return [ln.rstrip("\r\n") for ln in f]
    except OSError as e:
        raise BoawError(f"{path}: cannot read{what} ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise BoawError(f"{path}: not a text file (byte {e.start} is not UTF-8)") from None


def read_lld_csv(path) -> LLD:
    """Read LLDs as openXBOW reads a CSV: ';'-separated (',' if the first line has no ';'),
    instance name first, a header line only if the first line has no numeric field; numbers
    parsed like Java's Float.parseFloat."""
    path = str(path)
    lines = [ln for ln in _read_lines(path, "") if ln.strip()]
    if not lines:
        raise BoawError(f"{path}: no data")
    sep = ";" if len(lines[0].split(";")) > 1 else ","
    first = lines[0].split(sep)
    if not any(_is_number(t) for t in first):
        if first[-1].strip().lower() in ("class", "label"):
            raise BoawError(f"{path}: a label column is not supported here; give LLDs only")
        lines = lines[1:]
    if not lines:
        raise BoawError(f"{path}: header only, no frames")
    ncols = len(lines[0].split(sep))
    if ncols < 2:
        raise BoawError(f"{path}: need an instance name and at least one feature per line")
    names, tokens = [], []
    for lineno, ln in enumerate(lines, 1):
        parts = ln.split(sep)
        if len(parts) != ncols:
            raise BoawError(f"{path}: line {lineno} has {len(parts)} fields, expected {ncols}")
        names.append(_unquote(parts[0]))
        tokens.extend(parts[1:])
    try:
        values = kernels().parse_float32(tokens)
    except ValueError as e:
        raise BoawError(f"{path}: {e} (only numeric LLDs are supported)") from None
    values = values.reshape(len(names), ncols - 1)
    bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
    if len(bad):
        # a NaN distance has no nearest word: openXBOW's assignment would be arbitrary
        raise BoawError(f"{path}: {len(bad)} frame(s) with NaN or infinite values, the first "
                        f"on data line {bad[0] + 1} (instance {names[bad[0]]!r})")
    return LLD(names, values, path)


def write_lld_csv(path, names, features, times=None):
    """LLDs in the CSV layout openXBOW reads: 'name';[time;]v1;...;vM (no header)."""
    features = np.asarray(features, np.float32)
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as f:
        texts = kernels().java_float_strs(np.ascontiguousarray(features).ravel())
        m = features.shape[1]
        for i, name in enumerate(names):
            row = texts[i * m:(i + 1) * m]
            lead = f"'{name}';" + (f"{times[i]:.3f};" if times is not None else "")
            f.write(lead + ";".join(row) + "\n")


def instances(names):
    """openXBOW's mapping: instances in order of first appearance; frame -> instance index."""
    index = {}
    frame_bag = np.empty(len(names), np.intc)
    for i, n in enumerate(names):
        frame_bag[i] = index.setdefault(n, len(index))
    return list(index), frame_bag


# --------------------------------------------------------------------------------------
# Codebook
# --------------------------------------------------------------------------------------
@dataclasses.dataclass
class Codebook:
    """Everything openXBOW stores in a codebook file (-B), and so reuses with -b."""
    words: np.ndarray                         # (size, features) float32
    assignments: int = 1                      # Na
    gaussian: float = 0.0                     # sigma of the Gaussian weighting, 0 = off
    off: float = 0.0                          # ignore words farther than this, 0 = off
    input_mean: np.ndarray | None = None      # input standardisation (features only)
    input_std: np.ndarray | None = None
    input_name_stats: tuple = ("0.0", "1.0")  # openXBOW also 'standardises' the name column
    log: bool = False
    idf: np.ndarray | None = None             # document frequency factors
    output_mean: np.ndarray | None = None
    output_std: np.ndarray | None = None
    low_energy: tuple | None = None           # (attribute index 1-based, threshold)

    @property
    def size(self):
        return self.words.shape[0]


def learn_codebook(X, size=500, method="random++", seed=10):
    """Codebook words from (already standardised, if wanted) training frames X."""
    X = np.ascontiguousarray(X, np.float32)
    if method not in METHODS:
        raise BoawError(f"unknown codebook method {method!r} (choose from {', '.join(METHODS)})")
    if size < 1:
        raise BoawError(f"codebook size must be positive, got {size}")
    if X.shape[0] < size:
        # openXBOW prints "sizeCodebook is larger than number of training data" and fails.
        raise BoawError(f"codebook size {size} is larger than the number of frames {X.shape[0]}")
    if not -2**31 <= int(seed) < 2**31:
        raise BoawError(f"seed must be a 32-bit integer (openXBOW parses it as Java int), got {seed}")
    seed = int(seed)
    if method in ("random", "kmeans"):
        if method == "random" and size == X.shape[0]:
            # openXBOW's random sampling swaps past the end of its list here and crashes.
            raise BoawError("openXBOW cannot draw a random codebook as large as the data")
        words, filled = kernels().codebook_random(X, size, seed)
        if filled < size:
            warnings.warn(f"only {filled} distinct frames for {size} words; the rest are zero "
                          "(as openXBOW does)", BoawWarning, stacklevel=2)
    else:
        words = kernels().codebook_random_pp(X, size, seed)
    if method.startswith("kmeans"):
        words, _ = kernels().codebook_kmeans(X, words)
    return words


# --------------------------------------------------------------------------------------
# The whole openXBOW run
# --------------------------------------------------------------------------------------
@dataclasses.dataclass
class BoawResult:
    names: list           # instance names (first appearance order)
    bags: np.ndarray      # (instances, words) float32
    codebook: Codebook
    n_frames: np.ndarray  # frames counted per instance


def _active_frames(X, low_energy):
    if low_energy is None:
        return np.ones(X.shape[0], bool)
    index, threshold = low_energy
    col = int(index) - 2            # openXBOW counts attributes from 1, name first
    if not 0 <= col < X.shape[1]:
        raise BoawError(f"energy index {index} is not a feature column (2..{X.shape[1] + 1})")
    return ~(X[:, col] < np.float32(threshold))


def boaw(lld: LLD, codebook: Codebook | None = None, *, size=500, method="random++", seed=10,
         assignments=1, gaussian=0.0, off=0.0, log=False, idf=False, norm=0,
         standardize_input=False, standardize_output=False, low_energy=None,
         fast=False) -> BoawResult:
    """openXBOW's main(): with `codebook` given it behaves like -b (all weighting and
    standardisation settings come from the codebook), otherwise it learns one like -B."""
    if codebook is not None:
        na = codebook.assignments
        return boaw_multi(lld, [na], {na: codebook}, norm=norm, fast=fast)[na]
    return boaw_multi(lld, [assignments], size=size, method=method, seed=seed,
                      gaussian=gaussian, off=off, log=log, idf=idf, norm=norm,
                      standardize_input=standardize_input,
                      standardize_output=standardize_output, low_energy=low_energy,
                      fast=fast)[assignments]


def boaw_multi(lld: LLD, assignments, codebooks: dict | None = None, *, size=500,
               method="random++", seed=10, gaussian=0.0, off=0.0, log=False, idf=False,
               norm=0, standardize_input=False, standardize_output=False, low_energy=None,
               fast=False) -> dict:
    """boaw() for several numbers of assignments Na at once: {na: BoawResult}.

    Every result equals boaw(..., assignments=na) (or boaw(lld, codebooks[na])) bit for
    bit; what is shared is done once: input standardisation, the codebook (learnt once: its
    words depend on size, method and seed, not on Na) and, in the fast mode, the distances
    and one partial sort of each frame's distances to the words, with a cut after every na.
    `codebooks` (the -b case) maps each na to its codebook; they must share words and
    input settings (codebooks learnt by one boaw_multi call do), while their term
    weighting, IDF and output standardisation (learnt from each na's own bags) differ.
    """
    X = np.ascontiguousarray(lld.features, np.float32)
    if X.ndim != 2 or X.shape[0] == 0:
        raise BoawError(f"{lld.source or 'input'}: no frames")
    nas = [int(a) for a in assignments]
    if not nas:
        raise BoawError("no numbers of assignments given")
    names, frame_bag = instances(lld.names)
    learn = codebooks is None
    if learn:
        if norm not in (0, 1, 2, 3):
            raise BoawError(f"norm must be 0, 1, 2 or 3, got {norm}")
        if min(nas) < 1:
            raise BoawError(f"assignments must be positive, got {min(nas)}")
        base = Codebook(np.zeros((0, X.shape[1]), np.float32), nas[0],
                        float(np.float32(gaussian)), float(np.float32(off)), log=bool(log),
                        low_energy=low_energy)
    else:
        missing = [na for na in nas if na not in codebooks]
        if missing:
            raise BoawError(f"no codebook given for assignments {missing}")
        base = codebooks[nas[0]]
        for na in nas:
            _check_shared(base, codebooks[na])
            if codebooks[na].assignments != na:
                raise BoawError(f"codebook for {na} assignments says {codebooks[na].assignments}")
        if base.words.shape[1] != X.shape[1]:
            raise BoawError(f"{lld.source or 'input'}: {X.shape[1]} features, codebook has "
                            f"{base.words.shape[1]}")
    active = _active_frames(X, base.low_energy)
    # Input standardisation uses all frames, active or not (as openXBOW does).
    if learn and standardize_input:
        mean, std = kernels().fit_standardize(X)
        base.input_mean, base.input_std = mean, std
        base.input_name_stats = ("0.0", "1.0" if X.shape[0] > 1 else "NaN")
    if base.input_mean is not None:
        X = kernels().apply_standardize(X, base.input_mean, base.input_std)
    if learn:
        base.words = learn_codebook(X, size, method, seed)
    frame_bag = np.where(active, frame_bag, -1).astype(np.intc)
    n_frames = np.bincount(frame_bag[frame_bag >= 0], minlength=len(names)).astype(np.intc)
    if fast:
        all_bags = fast_bags(X, base.words, nas, frame_bag, len(names), base.gaussian, base.off)
    else:
        # each frame's distances computed once for every na (assign_bags per na, bit for bit)
        all_bags = dict(zip(nas, kernels().assign_bags_many(X, base.words, frame_bag,
                                                            len(names), nas, base.gaussian,
                                                            base.off)))
    results = {}
    for na in nas:
        cb = dataclasses.replace(base, assignments=na) if learn else codebooks[na]
        results[na] = _finish_bags(all_bags[na], cb, learn, idf, norm, standardize_output,
                                   n_frames, names)
    return results


def _check_shared(a: Codebook, b: Codebook):
    """Codebooks used together by boaw_multi must quantise identically."""
    same = (a.words.shape == b.words.shape and np.array_equal(a.words, b.words)
            and a.gaussian == b.gaussian and a.off == b.off and a.low_energy == b.low_energy
            and (a.input_mean is None) == (b.input_mean is None)
            and (a.input_mean is None or (np.array_equal(a.input_mean, b.input_mean)
                                          and np.array_equal(a.input_std, b.input_std))))
    if not same:
        raise BoawError("codebooks given together must share words, input standardisation, "
                        "Gaussian weighting, cut-off and low-energy setting")


def _finish_bags(bags, cb: Codebook, learn, idf, norm, standardize_output, n_frames, names):
    """openXBOW's post-processing of raw term frequencies (the order is openXBOW's)."""
    bags[n_frames == 0] = np.float32(0.001)     # openXBOW never leaves a bag all zero
    use_idf = (idf if learn else cb.idf is not None)
    if use_idf and learn:
        cb.idf = kernels().document_frequency_factors(bags)
    if cb.log or use_idf:
        kernels().term_weighting(bags, cb.log, cb.idf if use_idf else None)
    if norm:
        kernels().normalize_bags(bags, int(norm), n_frames)
    if learn and standardize_output:
        cb.output_mean, cb.output_std = kernels().fit_output_standardize(bags)
    if cb.output_mean is not None:
        kernels().apply_output_standardize(bags, cb.output_mean, cb.output_std)
    return BoawResult(names, bags, cb, n_frames)


# --------------------------------------------------------------------------------------
# Fast mode (the distances: refimpl.baselines.boaw_fast)
# --------------------------------------------------------------------------------------
def fast_bags(X, words, assignments, frame_bag, n_bags, gaussian=0.0, off=0.0, chunk=1024):
    """Raw bags {na: (n_bags, size) float32} for every na in `assignments`, from one
    partial sort of every frame's distances (nearest_word_sets). Frames are added in
    order, so each bag equals a separate pass with that na alone."""
    nas = sorted(set(int(a) for a in assignments))
    K = len(words)
    bags = {na: np.zeros((n_bags, K), np.float32) for na in nas}
    frame_bag = np.ascontiguousarray(frame_bag, np.intc)
    for s, w, d in nearest_word_sets(X, words, nas, chunk):
        w, d = pad_assignments(w, d, nas[-1])
        fb = frame_bag[s:s + len(w)]
        for na in nas:
            kernels().accumulate_assignments(w, d, fb, n_bags, K, gaussian, off, na, bags[na])
    return bags


# --------------------------------------------------------------------------------------
# Output files (what openXBOW writes with -writeName)
# --------------------------------------------------------------------------------------
def _relation(source):
    # openXBOW: the CSV file name up to '.csv', quotes removed.
    rel = source[:source.index(".csv")] if ".csv" in source else source
    return "'bag-of-features representation of " + rel.replace("'", "") + "'"


def write_bags(path, names, bags, source="", write_name=True, csv_sep=";"):
    """CSV / ARFF / LibSVM by the file ending, byte-identical to openXBOW's writer."""
    path = str(path)
    bags = np.ascontiguousarray(bags, np.float32)
    n, K = bags.shape
    texts = kernels().java_float_strs(bags.ravel()) if n * K else []
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as f:
        if path.endswith(".arff"):
            f.write(f"@relation {_relation(source)}\n\n")
            if write_name:
                f.write("@attribute name string\n")
            f.write("".join(f"@attribute W({i}) numeric\n" for i in range(K)))
            f.write("\n@data\n")
            for i in range(n):
                lead = f"'{names[i]}'," if write_name else ""
                f.write(lead + ",".join(texts[i * K:(i + 1) * K]) + "\n")
        elif path.endswith(".csv"):
            for i in range(n):
                lead = f"'{names[i]}'{csv_sep}" if write_name else ""
                f.write(lead + csv_sep.join(texts[i * K:(i + 1) * K]) + "\n")
        elif path.endswith(".libsvm"):
            tiny = FLT_MIN_NORMAL
            for i in range(n):
                row = bags[i]
                nz = np.nonzero((row > tiny) | (row < -tiny))[0]
                f.write("0 " + "".join(f"{j + 1}:{texts[i * K + j]} " for j in nz) + "\n")
        else:
            raise BoawError(f"{path}: output type unknown (use .csv, .arff or .libsvm)")


# --------------------------------------------------------------------------------------
# Codebook files (openXBOW -B / -b)
# --------------------------------------------------------------------------------------
def _floats(values):
    return ";".join(kernels().java_float_strs(np.ascontiguousarray(values, np.float32)))


def save_codebook(path, cb: Codebook):
    lines = []
    if cb.low_energy is not None:
        lines.append(f"removeLowEnergy;{int(cb.low_energy[0])};{kernels().java_float_str(cb.low_energy[1])}")
    if cb.input_mean is not None:
        lines += ["standardizeInput", cb.input_name_stats[0] + ";" + _floats(cb.input_mean),
                  cb.input_name_stats[1] + ";" + _floats(cb.input_std)]
    if cb.log:
        lines.append("log")
    if cb.idf is not None:
        lines += ["idf", _floats(cb.idf)]
    if cb.output_mean is not None:
        lines += ["standardizeOutput", _floats(cb.output_mean), _floats(cb.output_std)]
    K, M = cb.words.shape
    lines += ["codebookNumeric",
              f"{K};{M};{cb.assignments};{kernels().java_float_str(cb.gaussian)};{kernels().java_float_str(cb.off)}"]
    texts = kernels().java_float_strs(np.ascontiguousarray(cb.words, np.float32).ravel())
    lines += [";".join(texts[w * M:(w + 1) * M]) for w in range(K)]
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")


def load_codebook(path) -> Codebook:
    path = str(path)
    lines = _read_lines(path, " codebook")

    def floats(line):
        return kernels().parse_float32(line.split(";"))

    cb = Codebook(np.zeros((0, 0), np.float32))
    it = iter(lines)
    found = False
    try:
        for line in it:
            key = line.split(";")[0]
            if key == "removeLowEnergy":
                parts = line.split(";")
                cb.low_energy = (int(parts[1]), float(np.float32(parts[2])))
            elif key == "standardizeInput":
                m, s = next(it).split(";"), next(it).split(";")
                cb.input_name_stats = (m[0], s[0])
                cb.input_mean, cb.input_std = floats(";".join(m[1:])), floats(";".join(s[1:]))
            elif key == "log":
                cb.log = True
            elif key == "idf":
                cb.idf = floats(next(it))
            elif key == "standardizeOutput":
                cb.output_mean, cb.output_std = floats(next(it)), floats(next(it))
            elif key == "codebookNumeric":
                head = next(it).split(";")
                K, M = int(head[0]), int(head[1])
                cb.assignments = int(head[2])
                cb.gaussian = float(np.float32(head[3]))
                cb.off = float(np.float32(head[4]))
                rows = [next(it) for _ in range(K)]
                cb.words = floats(";".join(rows)).reshape(K, M)
                found = True
            elif key in ("normalizeInput", "normalizeOutput", "codebookNumericNGram",
                         "codebookNumericGMM", "codebookText"):
                raise BoawError(f"{path}: openXBOW feature '{key}' is not supported here")
            elif line.strip():
                raise BoawError(f"{path}: unexpected line {line[:40]!r}")
    except (StopIteration, ValueError, IndexError) as e:
        if isinstance(e, BoawError):
            raise
        raise BoawError(f"{path}: not an openXBOW codebook file ({e})") from None
    if not found:
        raise BoawError(f"{path}: no numeric codebook in file")
    return cb
