"""The paper's whole grid, from features to Tables 5-9 and Figures 2-3.

    feature sets {eGeMAPS, ComParE, BoAW, Deep Spectrum} x tasks {2-class, multi-class}
    x {Un., Ov.} x train condition {clean, noisy, denoised} x test condition {same three}

Three stages, each with a progress bar:
1. features: every (feature set, condition, file) is extracted once and kept in the
   per-file cache (refimpl._util.cache: keyed by the audio's content and the extractor's
   configuration; atomic writes), so an interrupted run resumes and a rerun only extracts
   what changed. A file that fails is reported by name and left out of the whole grid (so
   every feature set is scored on the same files, which the significance test assumes);
   the run goes on.
2. models: per (feature set, task, balancing, training condition) the protocol of
   refimpl.protocol picks alpha (and Cs, Na for BoAW) by the inner speaker-independent
   CV and trains the final model, which is then scored on the test partition of all three
   test conditions. Results are cached under `<cache>/experiments/` keyed by a hash of
   everything they depend on (features, labels, folds, seed, protocol), so a warm rerun
   only writes the outputs.
3. outputs: refimpl.experiments.report writes results/.

The corpus is a refimpl.corpus.Corpus; the feature sets are adapters
(refimpl.experiments.adapters).
"""
from __future__ import annotations

import json
import os
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from refimpl import protocol
from refimpl._util import locations
from refimpl._util.atomic import atomic_open
from refimpl._util.cache import FeatureCache
from refimpl._util.digest import arrays_digest, text_digest
from refimpl.corpus import CONDITIONS, Corpus
from refimpl.errors import CorpusError
from refimpl.experiments import report
from refimpl.experiments.adapters import FeatureSet

__all__ = ["run_grid", "run_experiment", "extract_condition", "check_corpus", "Failure",
           "CONDITIONS", "BALANCING", "PROTOCOL_VERSION"]

BALANCING = report.BALANCING
PROTOCOL_VERSION = "1"   # bump when a change in refimpl/protocol.py changes results


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


def extract_condition(extractor, corpus: Corpus, condition, *, cache_root=None,
                      show_progress=True) -> tuple[dict, list]:
    """Features of every file for one condition: {file id: array}, [Failure].

    Files whose features are in the cache (keyed by the audio's content and the
    extractor's config_id) are read, the rest extracted in batches and cached one by one.
    """
    cache = FeatureCache(extractor.name, extractor.config_id, root=cache_root)
    out, failures, todo = {}, [], []
    audio = ["" if p is None else str(p)
             for p in corpus.audio_paths(condition, check=False)]
    for file_id, path in zip(corpus.files(), audio):
        cached = cache.get(path, check=lambda v: _shape_problem(v, extractor)) \
            if os.path.isfile(path) else None
        if cached is not None:
            out[file_id] = cached
        else:
            todo.append((file_id, path))
    batch = max(1, int(getattr(extractor, "batch_size", 16)))
    bar = _progress(total=len(corpus), initial=len(out), unit="file",
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
                    value = np.asarray(value, dtype=np.float32)
                    problem = _shape_problem(value, extractor)
                    if problem:
                        failures.append(Failure(file_id, condition, extractor.name, problem))
                        continue
                    cache.put(path, value)
                    out[file_id] = value
            bar.update(len(chunk))
    finally:
        bar.close()
    return out, failures


def _shape_problem(value, extractor):
    """Why `value` cannot be this extractor's features of one file, or None."""
    ndim = 1 if extractor.kind == "functionals" else 2
    if value.ndim != ndim or value.size == 0 or not np.isfinite(value).all():
        return "empty or non-finite features"
    return None


# --------------------------------------------------------------------------- grid

def _protocol_id(alphas, sizes, assignments, seed):
    return json.dumps({"v": PROTOCOL_VERSION, "alphas": list(alphas), "sizes": list(sizes),
                       "na": list(assignments), "sgd": protocol.SGD_SETTINGS,
                       "ratio": protocol.OVERSAMPLE_RATIO, "seed": seed}, sort_keys=True)


def run_experiment(fs: FeatureSet, features: Mapping[str, list], corpus: Corpus,
                   settings: Sequence[tuple], train_cond, conditions, *, seed=0,
                   alphas=protocol.ALPHAS, sizes=protocol.BOAW_SIZES,
                   assignments=protocol.BOAW_ASSIGNMENTS) -> list[report.GridRow]:
    """Models for one feature set and training condition, each scored on every test
    condition. `settings` lists (task, balancing) pairs; `features[cond]` lists each
    file's features in view order. BoAW searches all settings in one pass over Cs x Na
    (they share every codebook)."""
    partition, folds = corpus.partitions(), corpus.folds()
    train = np.flatnonzero(partition == "train")
    test = np.flatnonzero(partition == "test")
    speakers = corpus.speakers()[train]
    labels = {task: corpus.label_names(task) for task, _ in settings}
    classes = {task: list(corpus.tasks[task]) for task in labels}
    rows = []
    if fs.boaw_fn is not None:
        train_llds = [features[train_cond][i] for i in train]
        test_llds = [features[c][i] for c in conditions for i in test]
        models = protocol.select_boaw_multi(
            train_llds, folds[train], fs.boaw_fn,
            {(task, bal): (labels[task][train], bal == "Ov.", classes[task])
             for task, bal in settings},
            sizes=sizes, assignments=assignments, alphas=alphas, seed=seed, speakers=speakers,
            test_llds=test_llds)
        for (task, bal), boaw in models.items():
            for k, cond in enumerate(conditions):
                bags = boaw.test_bags[k * len(test):(k + 1) * len(test)]
                r = protocol.evaluate(boaw.model, bags, labels[task][test],
                                        extra={"cs": boaw.size, "na": boaw.assignments})
                rows.append(_row(fs, task, bal, train_cond, cond, r))
        return rows
    X_train = np.stack([features[train_cond][i] for i in train])
    X_tests = {cond: np.stack([features[cond][i] for i in test]) for cond in conditions}
    for task, bal in settings:
        y = labels[task]
        model = protocol.train_model(X_train, y[train], folds[train],
                                       classes=classes[task], alphas=alphas,
                                       oversampling=bal == "Ov.", seed=seed, speakers=speakers)
        for cond in conditions:
            rows.append(_row(fs, task, bal, train_cond, cond,
                             protocol.evaluate(model, X_tests[cond], y[test])))
    return rows


def _row(fs, task, balancing, train_cond, test_cond, r: protocol.Result) -> report.GridRow:
    return report.GridRow(fs.key, task, balancing, train_cond, test_cond, r.uar, r.alpha,
                          r.n_test, [str(c) for c in r.classes], r.confusion.tolist(),
                          r.extra.get("cs"), r.extra.get("na"),
                          getattr(fs.extractor, "control", None))


def _unit_key(fs, feature_digest, corpus_fp, settings, train_cond, conditions, proto):
    return text_digest("\x1f".join([fs.key, fs.extractor.config_id, fs.boaw_config,
                                    feature_digest, corpus_fp, settings, train_cond,
                                    ",".join(conditions), proto]), 32)


def check_corpus(corpus: Corpus, conditions=CONDITIONS):
    """What the grid needs beyond a valid corpus: both partitions, both inner folds among
    the training speakers, and some audio for every condition."""
    partition = corpus.partitions()
    train = partition == "train"
    if not train.any() or train.all():
        raise CorpusError(f"{corpus.source or corpus.name}: the grid needs both a train and "
                          "a test partition")
    if set(corpus.folds()[train].tolist()) != {1, 2}:
        raise CorpusError(f"{corpus.source or corpus.name}: the training speakers must fill "
                          "both inner folds (1 and 2)")
    for condition in conditions:
        if all(p is None for p in corpus.audio_paths(condition, check=False)):
            raise CorpusError(f"{corpus.source or corpus.name}: no {condition} audio at all "
                              f"(column path_{condition})")


def run_grid(corpus: Corpus, feature_sets: Sequence[FeatureSet], *, out_dir="results",
             conditions=CONDITIONS, seed=0, alphas=protocol.ALPHAS,
             sizes=protocol.BOAW_SIZES, assignments=protocol.BOAW_ASSIGNMENTS,
             cache_root=None, jobs=1, show_progress=True, write=True, meta=None):
    """The whole grid: features (cached), models (cached), then out_dir/ via
    refimpl.experiments.report.

    Returns (rows, failures). Files that fail in any feature set or condition are left out
    of every experiment and listed in `failures` (and in results/report.md).
    """
    cache_root = Path(cache_root) if cache_root is not None else locations.cache_dir()
    conditions = tuple(conditions)
    check_corpus(corpus, conditions)
    tasks = corpus.task_order()
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
                got, failed = extract_condition(fs.extractor, corpus, cond,
                                                cache_root=cache_root,
                                                show_progress=show_progress)
                got_all[(fs.key, cond)] = got
                failed_all += failed
        finally:
            if hasattr(fs.extractor, "close"):
                fs.extractor.close()
        return got_all, failed_all, round(time.perf_counter() - t0, 1)

    if jobs > 1 and len(feature_sets) > 1:
        with ThreadPoolExecutor(min(jobs, len(feature_sets))) as pool:
            done = list(pool.map(extract_set, feature_sets))
    else:
        done = [extract_set(fs) for fs in feature_sets]
    for fs, (got, failed, seconds) in zip(feature_sets, done):
        raw.update(got)
        failures += failed
        timings[f"features {fs.key} [s]"] = seconds
    corpus = corpus.without({f.file for f in failures})
    features = {fs.key: {c: [raw[(fs.key, c)][f] for f in corpus.files()]
                         for c in conditions} for fs in feature_sets}
    del raw

    # Stage 2: models, cached per unit: (feature set, training condition, settings), where
    # settings are the (task, balancing) pairs, one per unit, except for BoAW, whose unit
    # holds them all because they share the codebook search.
    proto = _protocol_id(alphas, sizes, assignments, seed)
    corpus_fp = corpus.fingerprint()
    all_settings = [(task, bal) for task in tasks for bal in BALANCING]
    units = []
    for fs in feature_sets:
        digest = arrays_digest(a for c in conditions for a in features[fs.key][c])
        groups = [all_settings] if fs.boaw_fn else [[s] for s in all_settings]
        for settings in groups:
            for train_cond in conditions:
                key = _unit_key(fs, digest, corpus_fp, repr(settings), train_cond, conditions,
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
        got = run_experiment(fs, features[fs.key], corpus, settings, train_cond, conditions,
                             seed=seed, alphas=alphas, sizes=sizes, assignments=assignments)
        with atomic_open(exp_dir / f"{key}.json") as f:
            json.dump([r.__dict__ for r in got], f)
        return got

    bar = _progress(total=len(units), initial=len(units) - len(todo), unit="model",
                    desc="models", disable=not show_progress)
    try:
        if jobs > 1 and len(todo) > 1:
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
    rows.sort(key=lambda r: (fs_order.index(r.feature_set), list(tasks).index(r.task),
                             BALANCING.index(r.balancing), conditions.index(r.train),
                             conditions.index(r.test)))
    timings["total [s]"] = round(time.perf_counter() - started, 1)
    if write:
        partition = corpus.partitions()
        info = {"corpus": corpus.name, "files used": len(corpus),
                "train / test files": f"{(partition == 'train').sum()} / "
                                      f"{(partition == 'test').sum()}",
                "seed": seed, "feature sets": ", ".join(fs.key for fs in feature_sets),
                **({"corpus notes": "; ".join(corpus.notes)} if corpus.notes else {}),
                **(meta or {}), **timings}
        report.write_results(rows, out_dir, corpus=corpus.name, tasks=tasks,
                             conditions=conditions, failures=[str(f) for f in failures],
                             meta=info)
    return rows, failures
