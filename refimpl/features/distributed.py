"""Extraction on many machines through dask.distributed (an optional extra:
`pip install refimpl[dask]`); dask schedules, this module only says what a task is.

    with dask_client("local:2") as client:            # or "tcp://scheduler:8786"
        for r in iter_features_dask(paths, config, client):
            ...                                       # FileResults, in the inputs' order

The files go to the workers in chunks (one task per chunk). Each worker opens the
network once per configuration and keeps it (NetworkPlugin, a worker plugin, closes it
when the worker stops) and runs the chunk through refimpl.features.iter_features, which
writes every finished file into the per-file cache as it goes. So a worker that is lost
loses only the file it was on: dask reruns its chunk elsewhere, and the files already
finished come from the cache; a run that is stopped and started again resumes the same
way. The results come back to the caller, which writes them in the inputs' order; a
file's features depend only on the file and the configuration (see engine), so the
output is the same bytes as a serial run's. The cache folder must be one that every
worker can reach (a shared filesystem on a cluster) for the resuming to work; the
results themselves never depend on it.
"""
import contextlib
import math
import os
import sys
import threading
from collections import deque

from tqdm import tqdm

from refimpl._util.cache import FeatureCache
from refimpl._util.optional import optional_import
from refimpl.errors import UsageError
from refimpl.features.config import CACHE_NAME
from refimpl.features.engine import iter_features

dask = optional_import("dask", "running on dask")
distributed = optional_import("distributed", "running on dask")

__all__ = ["dask_client", "iter_features_dask", "local_workers", "NetworkPlugin",
           "MAX_CHUNK"]

PLUGIN_NAME = "refimpl-networks"
# dask's nannies start workers with MALLOC_TRIM_THRESHOLD_ set, which turns off glibc's
# adaptive mmap threshold: every large buffer of a forward pass is then mapped and
# unmapped anew, which makes every file slower (the figure: the performance page of the
# docs); local:N workers go without it
NO_TRIM = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
MAX_CHUNK = 16          # files per task at most: small enough to balance, large enough to
                        # keep the scheduler's per-task overhead (milliseconds) negligible


def local_workers(address):
    """N for "local:N" (a LocalCluster of N worker processes), None for a scheduler's
    address; a UsageError for anything else."""
    address = str(address).strip()
    if address.startswith("local:"):
        count = address[len("local:"):]
        if not count.isdigit() or int(count) < 1:
            raise UsageError(f"--dask {address}: local:N needs a number of workers N >= 1")
        return int(count)
    if not address or "://" not in address and ":" not in address:
        raise UsageError(f"--dask {address!r}: expected a scheduler address "
                         f"(tcp://HOST:PORT) or local:N")
    return None


@contextlib.contextmanager
def dask_client(address):
    """A dask Client for `address`: "local:N" starts a LocalCluster of N worker
    processes with one thread each; anything else is a running scheduler's address.
    The workers inherit the environment (REFIMPL_CAFFE_PREFIX, REFIMPL_THREADS, ...):
    the C core's thread count moves the last bits of the features (it partitions the
    products by thread), so workers that keep this process's count give this
    process's bytes."""
    workers = local_workers(address)
    if workers is None:
        try:
            client = distributed.Client(address, timeout="30s")
        except (OSError, TimeoutError) as e:
            raise UsageError(f"--dask {address}: cannot reach the scheduler ({e})") from None
        with client:
            yield client
        return
    with dask.config.set({NO_TRIM: None}):     # read when the nannies are made
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                           processes=True, dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        yield client


class NetworkPlugin(distributed.WorkerPlugin):
    """Per worker: the open network and the cache of each configuration it was given,
    opened on first use and kept for the worker's life (opening AlexNet costs seconds:
    reading 240 MB of weights, or starting Caffe)."""
    name = PLUGIN_NAME

    def setup(self, worker):
        self._networks = {}      # config -> (network, lock)
        self._caches = {}        # (config, cache root, enabled) -> FeatureCache
        self._lock = threading.Lock()

    def teardown(self, worker):
        for network, _ in self._networks.values():
            network.close()
        self._networks.clear()

    def open(self, config, cache_root, use_cache):
        """(network, cache, lock) for `config`; hold the lock while the network runs (a
        worker with several threads shares one network)."""
        with self._lock:
            if config not in self._networks:
                self._networks[config] = (config.open_network(), threading.Lock())
            key = (config, cache_root, use_cache)
            if key not in self._caches:
                self._caches[key] = FeatureCache(
                    CACHE_NAME, config.config_id() if use_cache else "", cache_root,
                    enabled=use_cache, keyed=True)
            network, lock = self._networks[config]
            return network, self._caches[key], lock


def _extract_chunk(items, config, cache_root, use_cache, spectrogram_dir):
    """A task: one chunk of inputs on this worker -> their FileResults, in order (each
    finished file is in the cache before the next one starts)."""
    plugin = distributed.get_worker().plugins[PLUGIN_NAME]
    network, cache, lock = plugin.open(config, cache_root, use_cache)
    with lock:
        return list(iter_features(items, config, network=network, cache=cache,
                                  spectrogram_dir=spectrogram_dir))


def _has_plugin(dask_scheduler):
    return PLUGIN_NAME in dask_scheduler.worker_plugins


def _ensure_plugin(client):
    """Register NetworkPlugin once per scheduler (registering it again would close and
    reopen every worker's networks); workers that join later get it from the scheduler."""
    if not client.run_on_scheduler(_has_plugin):
        client.register_plugin(NetworkPlugin(), name=PLUGIN_NAME)


def _chunk_size(files, workers):
    """About four chunks per worker (so a slow chunk does not leave the others idle at
    the end), at most MAX_CHUNK files each."""
    return max(1, min(MAX_CHUNK, math.ceil(files / (4 * max(1, workers)))))


def iter_features_dask(items, config, client, *, cache=True, cache_root=None,
                       spectrogram_dir=None, chunk=None, ahead=None, progress=False):
    """Yield one FileResult per item (paths, AudioInputs or Signals), in order, computed
    on the workers of `client` (a dask.distributed Client) in chunks of `chunk` files
    (default: about four chunks per worker, at most MAX_CHUNK). At most `ahead` chunks
    are out at once (default: two per worker, at least four), which bounds the memory
    the waiting results take. cache / cache_root: the per-file cache, as iter_features;
    a cache folder the workers cannot reach is simply not shared."""
    items = list(items)
    if cache is not True and cache is not False:
        raise UsageError("with dask, cache is True or False (each worker opens the cache "
                         "under cache_root itself)")
    workers = len(client.scheduler_info().get("workers", {}))
    chunk = int(chunk or _chunk_size(len(items), workers))
    if chunk < 1:
        raise UsageError(f"chunk must be at least 1 file, not {chunk}")
    ahead = max(1, int(ahead or max(4, 2 * workers)))
    _ensure_plugin(client)
    chunks = deque(items[i:i + chunk] for i in range(0, len(items), chunk))
    root = None if cache_root is None else os.fspath(cache_root)
    out_dir = None if spectrogram_dir is None else os.fspath(spectrogram_dir)
    bar = tqdm(total=len(items), unit="file", disable=not progress, file=sys.stderr)
    running = deque()

    def submit():
        part = chunks.popleft()
        running.append(client.submit(_extract_chunk, part, config, root, bool(cache), out_dir,
                                     pure=False))

    try:
        while chunks and len(running) < ahead:
            submit()
        while running:
            results = running.popleft().result()
            if chunks:
                submit()
            for result in results:
                bar.update(1)
                yield result
    finally:
        for future in running:
            future.cancel()
        bar.close()
