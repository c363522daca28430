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
   only writes the outputs; a damaged entry is removed and recomputed with a warning. With
   several seeds (`seeds=`) this stage alone is repeated per seed: the features are the same.
3. outputs: refimpl.experiments.report writes results/.

The corpus is a refimpl.corpus.Corpus; the feature sets are adapters
(refimpl.experiments.adapters); the rows are refimpl.experiments.results.GridRow.
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
from tqdm import tqdm

from refimpl import protocol
from refimpl._util import locations
from refimpl._util.atomic import atomic_open
from refimpl._util.cache import FeatureCache, read_entry
from refimpl._util.digest import arrays_digest, text_digest
from refimpl.corpus import CONDITIONS, Corpus
from refimpl.errors import CorpusError, UsageError
from refimpl.experiments import report, trust
from refimpl.experiments.results import BALANCING, GridRow
from refimpl.experiments.adapters import FeatureSet

__all__ = ["run_grid", "run_experiment", "extract_condition", "check_corpus", "Failure",
           "CONDITIONS", "BALANCING", "PROTOCOL_VERSION", "BOAW_SELECT"]

PROTOCOL_VERSION = "1"   # bump when a change in refimpl/protocol/ changes results
ROW_FORMAT = "2"         # bump when GridRow gains a field the cached units must hold
# How BoAW's Cs and Na are chosen: "cv" by the inner CV on the training partition (the
# stated protocol), "per-test" on each test condition's UAR (how the paper's Tables 7-8
# report them; refimpl.experiments.paper).
BOAW_SELECT = ("cv", "per-test")


def _progress(iterable=None, **kw):
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

def _protocol_id(alphas, sizes, assignments, seed, boaw_select="cv"):
    return json.dumps({"v": PROTOCOL_VERSION, "alphas": list(alphas), "sizes": list(sizes),
                       "na": list(assignments), "sgd": protocol.SGD_SETTINGS,
                       "ratio": protocol.OVERSAMPLE_RATIO, "seed": seed, "rows": ROW_FORMAT,
                       **({"boaw": boaw_select} if boaw_select != "cv" else {})},
                      sort_keys=True)


def run_experiment(fs: FeatureSet, features: Mapping[str, list], corpus: Corpus,
                   settings: Sequence[tuple], train_cond, conditions, *, seed=0,
                   alphas=protocol.ALPHAS, sizes=protocol.BOAW_SIZES,
                   assignments=protocol.BOAW_ASSIGNMENTS,
                   boaw_select="cv") -> list[GridRow]:
    """Models for one feature set and training condition, each scored on every test
    condition. `settings` lists (task, balancing) pairs; `features[cond]` lists each
    file's features in view order. BoAW searches all settings in one pass over Cs x Na
    (they share every codebook); `boaw_select` (BOAW_SELECT) says how its Cs and Na are
    chosen."""
    partition, folds = corpus.partitions(), corpus.folds()
    train = np.flatnonzero(partition == "train")
    test = np.flatnonzero(partition == "test")
    speakers = corpus.speakers()[train]
    labels = {task: corpus.label_names(task) for task, _ in settings}
    classes = {task: list(corpus.tasks[task]) for task in labels}

    def row(task, bal, cond, result):
        return _row(fs, task, bal, train_cond, cond, result, seed, labels[task][test])

    rows = []
    if fs.boaw_fn is not None:
        train_llds = [features[train_cond][i] for i in train]
        test_llds = [features[c][i] for c in conditions for i in test]
        models = protocol.select_boaw_multi(
            train_llds, folds[train], fs.boaw_fn,
            {(task, bal): (labels[task][train], bal == "Ov.", classes[task])
             for task, bal in settings},
            sizes=sizes, assignments=assignments, alphas=alphas, seed=seed, speakers=speakers,
            test_llds=test_llds if boaw_select == "cv" else None)
        if boaw_select == "per-test":
            chosen = _boaw_per_test(fs.boaw_fn, models, train_llds, test_llds, len(test),
                                    {s: (labels[s[0]][train], labels[s[0]][test],
                                         classes[s[0]]) for s in settings},
                                    conditions, seed, sizes, assignments, alphas)
            return [row(task, bal, cond, chosen[((task, bal), cond)])
                    for task, bal in settings for cond in conditions]
        for (task, bal), boaw in models.items():
            for k, cond in enumerate(conditions):
                bags = boaw.test_bags[k * len(test):(k + 1) * len(test)]
                r = protocol.evaluate(boaw.model, bags, labels[task][test],
                                      extra={"cs": boaw.size, "na": boaw.assignments})
                rows.append(row(task, bal, cond, r))
        return rows
    X_train = np.stack([features[train_cond][i] for i in train])
    X_tests = {cond: np.stack([features[cond][i] for i in test]) for cond in conditions}
    for task, bal in settings:
        y = labels[task]
        model = protocol.train_model(X_train, y[train], folds[train],
                                     classes=classes[task], alphas=alphas,
                                     oversampling=bal == "Ov.", seed=seed, speakers=speakers)
        for cond in conditions:
            rows.append(row(task, bal, cond, protocol.evaluate(model, X_tests[cond], y[test])))
    return rows


def _boaw_per_test(boaw_fn, models, train_llds, test_llds, n_test, data, conditions, seed,
                   sizes, assignments, alphas):
    """{(setting, test condition): Result} with (Cs, Na) chosen on that test condition's
    UAR, as the paper's Tables 7-8 report them: for every (Cs, Na) the inner CV picks
    alpha (`models[setting].cv_uars`), the final model is trained on the whole training
    partition with the final codebook of protocol.select_boaw_multi, and the test
    condition keeps the best. Ties go to the smaller Cs, then the smaller Na."""
    best = {}
    many = getattr(boaw_fn, "many", None)
    bag_bytes = 4 * (len(train_llds) + len(test_llds))   # every file's float32 bag, per word
    searched = {k[:2] for m in models.values() for k in m.cv_uars}   # the buildable pairs
    grid = [pair for pair in protocol.boaw_grid(sizes, assignments) if pair in searched]
    for cs, group in protocol.na_groups(grid, bag_bytes, bool(many)):
        seed_cs = protocol.final_codebook_seed(seed, cs)
        bags = (many(train_llds, test_llds, cs, group, seed_cs) if many else
                {group[0]: boaw_fn(train_llds, test_llds, cs, group[0], seed_cs)})
        for na in group:
            B_train, B_test = bags.pop(na)
            for setting, boaw in models.items():
                y_train, y_test, classes = data[setting]
                scores = {a: boaw.cv_uars[(cs, na, a)] for a in alphas
                          if (cs, na, a) in boaw.cv_uars}
                model = protocol.fit_final(B_train, y_train, protocol.best_of(scores),
                                           classes=classes, oversampling=setting[1] == "Ov.",
                                           seed=seed, cv_uars=scores)
                for k, cond in enumerate(conditions):
                    r = protocol.evaluate(model, B_test[k * n_test:(k + 1) * n_test],
                                          y_test, extra={"cs": cs, "na": na})
                    if (setting, cond) not in best or r.uar > best[(setting, cond)].uar:
                        best[(setting, cond)] = r
    return best


def _row(fs, task, balancing, train_cond, test_cond, r: protocol.Result, seed,
         y_test) -> GridRow:
    index = {c: i for i, c in enumerate(r.classes)}
    y_true, y_pred = [index[c] for c in y_test], [index[c] for c in r.y_pred]
    low, high = trust.bootstrap_interval(y_true, y_pred)
    return GridRow(fs.key, task, balancing, train_cond, test_cond, r.uar, r.alpha,
                          r.n_test, [str(c) for c in r.classes], r.confusion.tolist(),
                          r.extra.get("cs"), r.extra.get("na"),
                          getattr(fs.extractor, "control", None), int(seed), y_true, y_pred,
                          low, high)


def _unit_key(fs, feature_digest, corpus_fp, settings, train_cond, conditions, proto):
    return text_digest("\x1f".join([fs.key, fs.extractor.config_id, fs.boaw_config,
                                    feature_digest, corpus_fp, settings, train_cond,
                                    ",".join(conditions), proto]), 32)


def _load_rows(entry):
    """A model cache entry -> its GridRows (an entry that is not a list of rows raises)."""
    rows = [GridRow(**r) for r in json.loads(Path(entry).read_text())]
    if not rows:
        raise ValueError("no rows")
    return rows


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
             conditions=CONDITIONS, seed=0, seeds=None, alphas=protocol.ALPHAS,
             sizes=protocol.BOAW_SIZES, assignments=protocol.BOAW_ASSIGNMENTS,
             boaw_select="cv", cache_root=None, jobs=1, show_progress=True, write=True,
             meta=None, choices=None):
    """The whole grid: features (cached), models (cached), then out_dir/ via
    refimpl.experiments.report.

    `seed` is the reference run's classifier seed; `seeds` adds more (the models stage is
    rerun for each, on the same features). Returns (rows, failures): the rows of every
    seed (GridRow.seed; the reference seed's first), and the files that failed in any
    feature set or condition, which are left out of every experiment and listed in
    results/report.md. `choices` names the options the report states (e.g. the Na grid).
    """
    if boaw_select not in BOAW_SELECT:
        raise UsageError(f"boaw_select must be one of {', '.join(BOAW_SELECT)}, not "
                         f"{boaw_select!r}")
    cache_root = Path(cache_root) if cache_root is not None else locations.cache_dir()
    conditions = tuple(conditions)
    seeds = list(dict.fromkeys([int(seed)] + [int(s) for s in (seeds or ())]))
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

    # Stage 2: models, cached per unit: (feature set, training condition, settings, seed),
    # where settings are the (task, balancing) pairs, one per unit, except for BoAW, whose
    # unit holds them all because they share the codebook search.
    corpus_fp = corpus.fingerprint()
    all_settings = [(task, bal) for task in tasks for bal in BALANCING]
    digests = {fs.key: arrays_digest(a for c in conditions for a in features[fs.key][c])
               for fs in feature_sets}
    units = []
    for run_seed in seeds:
        proto = _protocol_id(alphas, sizes, assignments, run_seed, boaw_select)
        for fs in feature_sets:
            groups = [all_settings] if fs.boaw_fn else [[s] for s in all_settings]
            for settings in groups:
                for train_cond in conditions:
                    key = _unit_key(fs, digests[fs.key], corpus_fp, repr(settings), train_cond,
                                    conditions, proto)
                    units.append((fs, settings, train_cond, run_seed, key))
    exp_dir = cache_root / "experiments"
    rows, todo = [], []
    for unit in units:
        cached = read_entry(exp_dir / f"{unit[-1]}.json", _load_rows)
        if cached is not None:
            rows += cached
        else:
            todo.append(unit)
    t0 = time.perf_counter()

    def work(unit):
        fs, settings, train_cond, run_seed, key = unit
        got = run_experiment(fs, features[fs.key], corpus, settings, train_cond, conditions,
                             seed=run_seed, alphas=alphas, sizes=sizes,
                             assignments=assignments, boaw_select=boaw_select)
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
    rows.sort(key=lambda r: (seeds.index(r.seed), fs_order.index(r.feature_set),
                             list(tasks).index(r.task), BALANCING.index(r.balancing),
                             conditions.index(r.train), conditions.index(r.test)))
    timings["total [s]"] = round(time.perf_counter() - started, 1)
    if write:
        partition = corpus.partitions()
        info = {"corpus": corpus.name, "files used": len(corpus),
                "train / test files": f"{(partition == 'train').sum()} / "
                                      f"{(partition == 'test').sum()}",
                "seed": seed, **({"seeds": ", ".join(map(str, seeds))} if len(seeds) > 1 else {}),
                "feature sets": ", ".join(fs.key for fs in feature_sets),
                **({"corpus notes": "; ".join(corpus.notes)} if corpus.notes else {}),
                **(meta or {}), **timings}
        report.write_results(rows, out_dir, corpus=corpus.name, tasks=tasks,
                             conditions=conditions, failures=[str(f) for f in failures],
                             meta=info, reference_seed=seed,
                             choices={"boaw_select": boaw_select, **(choices or {})})
    return rows, failures
