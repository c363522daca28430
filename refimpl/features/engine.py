"""The extraction engine: audio files (or signals) in, one feature row per chunk out, one
file at a time, in order, as they are made.

    config = ExtractorConfig(backend="c", weights="synthetic:0", window=1, hop=0.5)
    for r in iter_features(paths, config, jobs=4):     # a generator: memory stays flat
        r.name, r.features, r.times(config), r.error, r.cached

Per file: read (mono as the toolkit mixed it), cut to --start/--end, cut into the
toolkit's chunks, draw each chunk's spectrogram, run the chunks through the network.
A producer thread reads the files and draws their chunks, FORWARD_PIECE at a time, itself
(jobs=1) or in `jobs` worker processes; the network runs in this process while the next
pieces are drawn, and at most `prefetch` pieces wait, so memory stays flat however many
files there are and however long they are. The C core's result for an image does not
depend on the batch it is in (its `batch_invariant`), so it takes FORWARD_PIECE images at
a time from however many files; the other backends' BLAS products round by the batch,
so there a file's chunks go through the network on their own, never with another
file's. Either way a file's features depend only on the file and the configuration —
not on its neighbours, on `jobs`, or on which files were cached — and an interrupted run
that is resumed from the cache writes the very same bytes.

Results are cached per file (refimpl._util.cache.FeatureCache, keyed by the file's
content and ExtractorConfig.config_id(), which names everything that changes the
features). A file that cannot be used (unreadable, not audio, too short, silent, nothing
left after --start) comes out as a FileResult with `error` set, naming the file; the
others still come out.
"""
import os
import queue
import sys
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path, PurePath

import numpy as np

from refimpl._util.cache import FeatureCache
from refimpl._util.digest import content_digest
from refimpl._util.parallel import worker_pool
from refimpl.audio import (Audio, as_seconds, chunk_bounds, chunk_stamps, cut, read_audio,
                           to_mono)
from refimpl.errors import AudioError, ImageError, UsageError
from refimpl.features.inputs import AudioInput
from refimpl.image import (PIXEL_RULES, PIXELS_2017, RENDERERS, SpectrogramOptions,
                           render_image, save_png)
from refimpl.network import BACKENDS, NETWORKS, feature_dim, feature_layer, open_network

__all__ = ["ExtractorConfig", "Signal", "FileResult", "iter_features", "load_chunks",
           "draw_piece", "png_names", "check_image_options", "FORWARD_PIECE", "CACHE_NAME"]

FORWARD_PIECE = 32          # a file's chunks per forward pass (bounds memory on long files)
CACHE_NAME = "deepspectrum"
_ENGINE_VERSION = "3"       # bump when the cached value's layout or meaning changes
                            # (3: entries hold their key, see FeatureCache(keyed=True))


@dataclass(frozen=True)
class ExtractorConfig:
    """Everything that changes deep spectrum features (its config_id is the cache key).

    net, layer     "alexnet" (blob `layer`: fc7 by default, or pool5, conv5, fc6, ...) or
                   "efficientnet-lite0"
    backend        "c", "numpy", "caffe", "torch" or "openvino" (AlexNet); device for torch
    weights        a caffemodel path, "synthetic:SEED", or None for the BVLC weights
    nfft, cmap, fmax, renderer, pixels   the spectrogram picture (refimpl.image)
    window, hop    seconds (hop defaults to the window); None: one row per file
    whole_windows  keep only full windows (default: the toolkit's chunks, short tails kept)
    start, end     seconds of each file to use (the toolkit's -start/-end)
    trim_zeros     drop exact-zero samples at both ends first
    subtract_mean  subtract the ImageNet mean (NOT what the paper did)
    Times are kept as the decimals they were written as (see refimpl.audio).
    """
    net: str = "alexnet"
    layer: str | None = None
    backend: str = "c"
    weights: str | None = None
    nfft: int = 256
    cmap: str = "viridis"
    fmax: float | None = None
    window: Decimal | None = None
    hop: Decimal | None = None
    whole_windows: bool = False
    start: Decimal | None = None
    end: Decimal | None = None
    trim_zeros: bool = False
    renderer: str = "auto"
    pixels: str = PIXELS_2017
    subtract_mean: bool = False
    device: str | None = None

    def __post_init__(self):
        for name in ("window", "hop", "start", "end"):
            object.__setattr__(self, name, as_seconds(getattr(self, name), name))
        if self.window is not None and self.hop is None:
            object.__setattr__(self, "hop", self.window)   # the hop defaults to the window
        if self.net not in NETWORKS:
            raise UsageError(f"unknown network {self.net!r}; choose from {', '.join(NETWORKS)}")
        object.__setattr__(self, "weights", None if self.weights is None else str(self.weights))
        feature_layer(self.net, self.layer)
        if self.backend not in BACKENDS:
            raise UsageError(f"unknown backend {self.backend!r}; choose from "
                             f"{', '.join(sorted(BACKENDS))}")
        if self.renderer not in RENDERERS:
            raise UsageError(f"unknown renderer {self.renderer!r}; choose from "
                             f"{', '.join(RENDERERS)}")
        if self.pixels not in PIXEL_RULES:
            raise UsageError(f"unknown pixel rule {self.pixels!r}; choose from "
                             f"{', '.join(PIXEL_RULES)}")
        if self.hop is not None and self.window is None:
            raise UsageError("a hop needs a window")
        if self.window == 0 or self.hop == 0:
            raise UsageError("window and hop must be longer than 0 s")
        if self.start is not None and self.end and self.end <= self.start:
            raise UsageError(f"end ({self.end} s) must come after start ({self.start} s)")
        check_image_options(self.nfft, self.cmap, self.fmax)

    @classmethod
    def fields(cls):
        return [f.name for f in fields(cls)]

    @property
    def feature_layer(self):
        return feature_layer(self.net, self.layer)

    @property
    def dim(self):
        return feature_dim(self.net, self.layer)

    @property
    def windowed(self):
        return self.window is not None

    @property
    def image_options(self):
        return SpectrogramOptions(nfft=int(self.nfft), cmap=self.cmap,
                                  fmax=None if self.fmax is None else float(self.fmax),
                                  pixels=self.pixels)

    def weights_path(self):
        """The weights file (AlexNet: resolved like --weights; EfficientNet: fetched)."""
        if self.net == "efficientnet-lite0":
            from refimpl.network import efficientnet
            return efficientnet.fetch_weights()
        from refimpl.network.weights import resolve_weights
        return resolve_weights(self.weights)

    def open_network(self):
        weights = self.weights_path() if self.net == "alexnet" else None
        return open_network(self.backend, weights, self.net, self.subtract_mean, self.device,
                            self.layer)

    def config_id(self):
        """One line naming every setting that changes the features, with the weights'
        SHA-256 and the backend's algorithm where it moves the last bits (the C core's
        Winograd convolutions, torch's version and device)."""
        import matplotlib
        backend = self.backend
        if self.net == "efficientnet-lite0":
            backend = "numpy"   # its own NumPy forward pass; backend and device do not apply
        elif backend == "c":
            # each output one FMA chain (not OpenBLAS's sums, whose bits followed the
            # batch and the thread count)
            from refimpl.network import cforward
            backend += " " + cforward.arithmetic_id()
        elif backend == "torch":
            from refimpl.network import torch_backend
            backend += f" torch={torch_backend._torch().__version__} device={self.device or 'cpu'}"
        elif backend == "openvino":
            from refimpl.network import openvino_backend
            backend += " " + openvino_backend.arithmetic_id()
        image = self.image_options
        invariant = self.net == "alexnet" and getattr(BACKENDS[self.backend],
                                                      "batch_invariant", False)
        if self.net == "alexnet" and not invariant:
            # numpy's, Caffe's and torch's BLAS split sums by thread: the count moves bits
            backend += f" threads={blas_threads()}"
        return (f"deepspectrum engine={_ENGINE_VERSION} net={self.net} layer={self.feature_layer} "
                f"weights-sha256={content_digest(self.weights_path())} backend={backend} "
                f"subtract_mean={self.subtract_mean} nfft={image.nfft} cmap={image.cmap} "
                f"fmax={image.fmax} pixels={image.pixels} renderer={self.renderer} "
                f"matplotlib={matplotlib.__version__} "
                f"mix=sum/2 trim_zeros={self.trim_zeros} start={_key(self.start)} "
                f"end={_key(self.end)} window={_key(self.window)} hop={_key(self.hop)} "
                f"whole_windows={self.whole_windows} "
                f"forward={'any-batch' if invariant else f'per-file/{FORWARD_PIECE}'}")


def blas_threads():
    """The thread count OpenBLAS (numpy's, and the Caffe worker's, which inherits this
    environment) and torch start with: the usual variables, else every core."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return os.cpu_count() or 1


def check_image_options(nfft, cmap, fmax, rate=None, name=None):
    """Refuse (UsageError, one line) picture options no spectrogram can have: nfft < 2, a
    colour map matplotlib does not know, fmax not a number in (0, Fs/2]. With `rate` (a
    file's; `name` names it) the top is checked against that file's Fs/2 as well."""
    try:
        whole = not isinstance(nfft, bool) and float(nfft).is_integer() and nfft >= 2
    except (TypeError, ValueError):
        whole = False
    if not whole:
        raise UsageError(f"nfft must be a whole number of at least 2, not {nfft!r}")
    if not isinstance(cmap, str) or not _known_cmap(cmap):
        raise UsageError(f"--cmap {cmap!r}: not a matplotlib colour map (e.g. viridis, "
                         f"magma, gray)")
    if fmax is None:
        return
    try:
        top = float(fmax)
    except (TypeError, ValueError):
        raise UsageError(f"--fmax {fmax!r}: not a number of Hz") from None
    if not (np.isfinite(top) and top > 0):
        raise UsageError(f"--fmax {fmax!r}: must be a frequency above 0 Hz (and at most "
                         f"half the sampling rate)")
    if rate is not None and top > rate / 2:
        raise ImageError(f"{name or '<signal>'}: --fmax {top:g} Hz is above half its "
                         f"sampling rate ({rate} Hz / 2)")


def _known_cmap(name):
    import matplotlib
    return name in matplotlib.colormaps


def _key(seconds):
    """A time in the cache key: the same number always the same text (1, 1.0 and 1.00)."""
    return None if seconds is None else format(seconds.normalize(), "f")


@dataclass(frozen=True)
class Signal:
    """A signal to extract from instead of a file: samples (frames,) or (frames,
    channels), float, and its rate; `name` is its row name."""
    samples: np.ndarray
    rate: int
    name: str = "signal"


@dataclass
class FileResult:
    """One input's features: (chunks, dim) float32 rows with the sample range [a, b) of
    each chunk in the cut signal, the rate and the cut signal's length; or `error`."""
    name: str
    path: str | None = None
    features: np.ndarray | None = None
    bounds: np.ndarray | None = None
    rate: int | None = None
    length: int | None = None
    error: str | None = None
    cached: bool = False

    @property
    def ok(self):
        return self.error is None

    def times(self, config):
        """(stamps, starts, ends) in seconds, one per row, as decimals. stamps: the
        toolkit's timeStamp (start + n * hop), None without windowing. starts: the stamp,
        or the --start (0) of a whole-file row; ends: start + window, but never past the
        end of the cut signal (the trailing short chunks; a whole-file row ends there)."""
        offset = config.start or Decimal(0)
        signal_end = offset + Decimal(int(self.length)) / Decimal(int(self.rate))
        if not config.windowed:
            return None, [offset], [signal_end]
        stamps = chunk_stamps(len(self.features), config.hop or config.window, config.start)
        return stamps, stamps, [min(s + config.window, signal_end) for s in stamps]


@dataclass
class _Piece:
    """Up to FORWARD_PIECE chunks of one file to draw: the samples they span, their
    ranges within those samples, and where their PNG copies go (or None)."""
    samples: np.ndarray
    rate: int
    bounds: list
    label: str
    pngs: list | None = None


@dataclass
class _Item:
    name: str
    path: Path | None = None
    signal: Signal | None = None


def _as_item(x):
    if isinstance(x, AudioInput):
        return _Item(x.name, Path(x.path))
    if isinstance(x, Signal):
        return _Item(x.name, signal=x)
    if isinstance(x, (str, Path)):
        return _Item(Path(x).name, Path(x))
    raise TypeError(f"expected a path, an AudioInput or a Signal, got {type(x).__name__}")


def _signal_audio(sig):
    samples = np.asarray(sig.samples)
    if samples.ndim not in (1, 2) or samples.size == 0 or samples.dtype.kind not in "fiu":
        raise AudioError(f"{sig.name}: a signal must be a non-empty numeric array of shape "
                         f"(frames,) or (frames, channels), not {samples.dtype} {samples.shape}")
    if not float(sig.rate) > 0:
        raise AudioError(f"{sig.name}: the sampling rate must be positive, not {sig.rate}")
    return Audio(to_mono(samples), int(sig.rate), sig.name)


def png_names(name, count, windowed):
    """The toolkit's PNG names for a file's chunks: NAME-minus-suffix.png, or _N.png per
    chunk with windowing, in the file's folder (relative to the input folder). A row name
    that is a path as given (see find_audio) stays inside the folder: its root and any
    '..' are dropped."""
    stem = PurePath(name).with_suffix("")
    stem = PurePath(*[p for p in stem.parts if p not in (stem.anchor, "..", ".")]).as_posix()
    return [f"{stem}_{n}.png" for n in range(count)] if windowed else [f"{stem}.png"]


def load_chunks(item, config):
    """One input -> (its signal, read, mixed and cut, as Audio; its chunks' sample
    ranges). AudioError naming it if it cannot be used."""
    if item.signal is not None:
        audio = _signal_audio(item.signal)
    else:
        audio = read_audio(item.path, trim_zeros=config.trim_zeros)
    check_image_options(config.nfft, config.cmap, config.fmax, audio.rate, audio.name)
    audio = cut(audio, config.start, config.end)
    return audio, chunk_bounds(len(audio.signal), audio.rate, config.window, config.hop,
                               config.whole_windows)


def pieces(item, audio, bounds, config, spectrogram_dir=None):
    """A file's chunks as _Pieces of at most FORWARD_PIECE, in order: what a worker draws
    and the network takes at once (so a long file never holds all its images)."""
    label = item.name if item.path is None else str(item.path)
    pngs = (None if spectrogram_dir is None else
            [Path(spectrogram_dir) / p for p in png_names(item.name, len(bounds), config.windowed)])
    for i in range(0, len(bounds), FORWARD_PIECE):
        part = bounds[i:i + FORWARD_PIECE]
        first, last = part[0][0], max(b for _, b in part)
        yield _Piece(audio.signal[first:last], audio.rate, [(a - first, b - first) for a, b in part],
                     label if len(bounds) == 1 else f"{label} (chunks from sample {first})",
                     None if pngs is None else pngs[i:i + FORWARD_PIECE])


def draw_piece(piece, config):
    """A _Piece -> its chunks' spectrogram images, (n, 227, 227, 3) uint8, written as PNG
    too where asked; ImageError naming the file for a chunk without a picture."""
    images = np.stack([render_image(piece.samples[a:b], piece.rate, config.image_options,
                                    name=piece.label, renderer=config.renderer)
                       for a, b in piece.bounds])
    for image, png in zip(images, piece.pngs or ()):
        save_png(image, png)
    return images


def _cache_check(dim):
    def check(value):
        f, b = value.get("features"), value.get("bounds")
        if f is None or b is None or "rate" not in value or "length" not in value:
            return "missing arrays"
        if f.dtype != np.float32 or f.ndim != 2 or f.shape[1] != dim or b.shape != (len(f), 2):
            return f"features {f.dtype} {f.shape}, bounds {b.shape}; expected (n, {dim}) float32"
        if len(f) == 0 or not np.isfinite(f).all():
            return "features empty or not all finite"
        if not (int(value["rate"]) > 0 and 0 <= b.min() and b.max() <= int(value["length"])):
            return "chunk bounds outside the signal"
        return None
    return check


def _from_cache(item, value):
    return FileResult(item.name, str(item.path), value["features"], value["bounds"],
                      int(value["rate"]), int(value["length"]), cached=True)


def _unreadable(item, e):
    reason = "no such file" if isinstance(e, FileNotFoundError) else \
        f"cannot read the file ({e.strerror or e})"
    return FileResult(item.name, str(item.path), error=f"{item.path}: {reason}")


def _forward(network, images, dim):
    rows = [np.asarray(network.features(images[i:i + FORWARD_PIECE]), np.float32)
            for i in range(0, len(images), FORWARD_PIECE)]
    return np.ascontiguousarray(np.concatenate(rows).reshape(len(images), dim))


def _produce(items, q, stop, lookup, config, spectrogram_dir, pool):
    """Producer thread, per item in order: ("result", FileResult) when nothing is left to
    draw (served from the cache, or unusable), else one ("draw", item, cached result or
    None, Future of the images, piece number, pieces, (rate, length, bounds)) per piece;
    then None. The images are drawn in a worker process (pool) or here."""
    try:
        for item in items:
            if stop.is_set():
                return
            hit = lookup(item)
            if hit is not None and (not hit.ok or spectrogram_dir is None):
                q.put(("result", hit))
                continue
            try:
                audio, bounds = load_chunks(item, config)
            except (AudioError, ImageError) as e:
                q.put(("result", _failed_result(item, e)))
                continue
            shape = (audio.rate, len(audio.signal), np.asarray(bounds, np.int64).reshape(-1, 2))
            parts = list(pieces(item, audio, bounds, config, spectrogram_dir))
            for k, piece in enumerate(parts):
                if stop.is_set():
                    return
                if pool is not None:
                    future = pool.submit(draw_piece, piece, config)
                else:
                    future = Future()
                    try:
                        future.set_result(draw_piece(piece, config))
                    except (AudioError, ImageError) as e:
                        future.set_exception(e)
                q.put(("draw", item, hit, future, k, len(parts), shape))
    except BaseException as e:  # an unexpected failure: hand it to the consumer
        q.put(("raise", e))
        return
    q.put(None)


@dataclass
class _Pending:
    """A file on its way out of iter_features: its result (cache hit, unusable), or its
    pieces so far and their rows (`missing` of them not yet computed)."""
    result: FileResult | None = None
    item: _Item | None = None
    hit: FileResult | None = None
    shape: tuple | None = None
    error: Exception | None = None
    rows: list = field(default_factory=list)
    missing: int = 0
    complete: bool = False

    @property
    def ready(self):
        return self.result is not None or (self.complete and self.missing == 0)


def _failed_result(item, error):
    return FileResult(item.name, None if item.path is None else str(item.path),
                      error=str(error))


def iter_features(items, config, *, network=None, cache=True, cache_root=None, jobs=1,
                  spectrogram_dir=None, prefetch=None, progress=False):
    """Yield one FileResult per item (a path, an AudioInput or a Signal; any iterable,
    consumed as the work goes), in order, as the features are made.

    network: an open feature network (default: config.open_network(), closed at the end).
    cache: True (the per-file cache under cache_root, default the package's cache
    folder), False, or a FeatureCache. Signals are never cached. jobs: processes that draw
    the spectrograms (1: a thread of this process). spectrogram_dir: write each chunk's
    image there as PNG (files served from the cache are drawn again for it). prefetch:
    pieces (up to FORWARD_PIECE chunks) drawn ahead of the network (default 2 * jobs + 2),
    which bounds the memory."""
    if jobs is None:
        jobs = 1
    if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or jobs < 1:
        raise UsageError(f"jobs (num_workers) must be a whole number of at least 1, "
                         f"not {jobs!r}")
    total = len(items) if hasattr(items, "__len__") else None
    items = (_as_item(x) for x in items)     # lazily: an input stream may be long
    if not isinstance(cache, FeatureCache):
        cache = FeatureCache(CACHE_NAME, config.config_id() if cache else "", cache_root,
                             enabled=bool(cache), keyed=True)
    own_network = network is None
    if own_network:
        network = config.open_network()
    dim = int(network.dim)
    check = _cache_check(dim)

    def lookup(item):
        if item.path is None or not cache.enabled:
            return None
        try:
            value = cache.get(item.path, check=check)
        except OSError as e:   # a missing or unreadable file: its content has no digest
            return _unreadable(item, e)
        return None if value is None else _from_cache(item, value)

    pool = worker_pool(jobs) if jobs > 1 and (total is None or total > 1) else None
    q = queue.Queue(maxsize=max(1, prefetch or 2 * jobs + 2))
    stop = threading.Event()
    producer = threading.Thread(target=_produce, daemon=True,
                                args=(items, q, stop, lookup, config, spectrogram_dir, pool))
    from tqdm import tqdm
    bar = tqdm(total=total, unit="file", disable=not progress, file=sys.stderr)
    producer.start()
    # Batch-invariant networks (the C core) take the images of several files at once,
    # FORWARD_PIECE at a time (a piece may be cut between two batches); the others one
    # piece (one file's chunks) at a time.
    across = bool(getattr(network, "batch_invariant", False))
    waiting = deque()    # files not yet yielded, in order
    todo = deque()       # (file, slot, images, first): images[first:] not yet computed
    todo_count = 0

    def run_batch(n):
        """The first n images of `todo` through the network, their rows into their files."""
        nonlocal todo_count
        parts, targets = [], []
        while n > 0:
            file, slot, images, first = todo.popleft()
            take = min(n, len(images) - first)
            if first + take < len(images):
                todo.appendleft((file, slot, images, first + take))
            parts.append(images[first:first + take])
            targets.append((file, slot, first, take))
            n -= take
            todo_count -= take
        rows = _forward(network, np.concatenate(parts), dim)
        at = 0
        for file, slot, first, take in targets:
            file.rows[slot][first:first + take] = rows[at:at + take]
            file.missing -= take
            at += take

    def finish(file):
        bar.update(1)
        if file.result is not None:
            return file.result
        item, (rate, length, bounds) = file.item, file.shape
        if file.error is not None:
            return _failed_result(item, file.error)
        if file.hit is not None:      # drawn only for the PNGs
            return file.hit
        features = np.concatenate(file.rows)
        if item.path is not None:
            cache.put(item.path, {"features": features, "bounds": bounds,
                                  "rate": np.int64(rate), "length": np.int64(length)})
        return FileResult(item.name, None if item.path is None else str(item.path), features,
                          bounds, rate, length)

    try:
        while (entry := q.get()) is not None:
            if entry[0] == "raise":
                raise entry[1]
            if entry[0] == "result":
                waiting.append(_Pending(result=entry[1]))
            else:
                _, item, hit, future, k, count, shape = entry
                if k == 0:
                    waiting.append(_Pending(item=item, hit=hit, shape=shape))
                file = waiting[-1]
                try:
                    images = future.result()
                except (AudioError, ImageError) as e:
                    file.error = file.error or e
                else:
                    if hit is None and file.error is None:
                        file.rows.append(np.empty((len(images), dim), np.float32))
                        file.missing += len(images)
                        todo.append((file, len(file.rows) - 1, images, 0))
                        todo_count += len(images)
                file.complete = k == count - 1
            while todo_count >= FORWARD_PIECE or (todo_count and not across):
                run_batch(min(todo_count, FORWARD_PIECE))
            while waiting and waiting[0].ready:
                yield finish(waiting.popleft())
        if todo_count:
            run_batch(todo_count)
        while waiting:
            yield finish(waiting.popleft())
    finally:
        stop.set()
        while producer.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                producer.join(0.05)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
        if own_network:
            network.close()
