"""The extraction engine: audio files (or signals) in, one feature row per chunk out, one
file at a time, in order, as they are made.

    config = ExtractorConfig(backend="c", weights="synthetic:0", window=1, hop=0.5)
    for r in iter_features(paths, config, jobs=4):     # a generator: memory stays flat
        r.name, r.features, r.times(config), r.error, r.cached

Per file: read (mono as the toolkit mixed it), cut to --start/--end, cut into the
toolkit's chunks, draw each chunk's spectrogram, run the chunks through the network.
A producer thread reads the files and draws their chunks, FORWARD_PIECE at a time, itself
(jobs=1) or in `jobs` worker processes; the network runs in this process while the next
pieces are drawn, and at most `prefetch` pieces wait (by default, for the C core, more
pieces but no more images than that many full pieces), so memory stays flat however many
files there are and however long they are. The C core's result for an image does not
depend on the batch it is in (its `batch_invariant`), so it takes FORWARD_PIECE images at
a time from however many files; the other backends' BLAS products round by the batch,
so there a file's chunks go through the network on their own, never with another
file's. Either way a file's features depend only on the file and the configuration —
not on its neighbours, on `jobs`, or on which files were cached — and an interrupted run
that is resumed from the cache writes the very same bytes.

Results are cached per file (refimpl._util.cache.FeatureCache, keyed by the file's
content and ExtractorConfig.config_id() (refimpl.features.config), which names
everything that changes the features). A file that cannot be used (unreadable, not audio,
too short, silent, nothing left after --start) comes out as a FileResult with `error`
set, naming the file; the others still come out.
"""
import queue
import sys
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Iterable, Iterator
from decimal import Decimal
from pathlib import Path, PurePath

import numpy as np
from tqdm import tqdm

from refimpl._util.cache import FeatureCache
from refimpl._util.parallel import worker_pool
from refimpl.audio import Audio, chunk_bounds, chunk_stamps, cut, read_audio, to_mono
from refimpl.errors import AudioError, ImageError, UsageError
from refimpl.features.config import (CACHE_NAME, FORWARD_PIECE, ExtractorConfig,
                                     check_image_options)
from refimpl.features.inputs import AudioInput
from refimpl.image import render_image, save_png

__all__ = ["ExtractorConfig", "Signal", "FileResult", "iter_features", "load_chunks",
           "draw_piece", "png_names", "check_image_options", "FORWARD_PIECE", "CACHE_NAME"]


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


class _ImageBudget:
    """At most `cap` images drawn and not yet through the network (a piece alone may
    exceed it): the producer takes a piece's chunks before drawing them, the consumer
    gives them back once they are through (or dropped). cap None: no limit."""

    def __init__(self, cap):
        self.cap, self.used = cap, 0
        self._cv = threading.Condition()

    def take(self, n, stop):
        with self._cv:
            while (self.cap is not None and self.used and self.used + n > self.cap
                   and not stop.is_set()):
                self._cv.wait(0.1)
            self.used += n

    def give(self, n):
        with self._cv:
            self.used -= n
            self._cv.notify_all()


def _produce(items, q, stop, lookup, config, spectrogram_dir, pool, budget):
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
                budget.take(len(piece.bounds), stop)
                if pool is not None:
                    future = pool.submit(draw_piece, piece, config)
                else:
                    future = Future()
                    try:
                        future.set_result(draw_piece(piece, config))
                    except (AudioError, ImageError) as e:
                        future.set_exception(e)
                q.put(("draw", item, hit, future, k, len(parts), shape, len(piece.bounds)))
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


def iter_features(items: Iterable[str | Path | AudioInput | Signal], config: ExtractorConfig,
                  *, network=None, cache: bool | FeatureCache = True,
                  cache_root: str | Path | None = None, jobs: int = 1,
                  spectrogram_dir: str | Path | None = None, prefetch: int | None = None,
                  progress: bool = False) -> Iterator[FileResult]:
    """Yield one FileResult per item, in order, as the features are made.

    Parameters
    ----------
    items : iterable of paths, AudioInputs or Signals
        Any iterable, consumed as the work goes.
    config : ExtractorConfig
        Everything that changes the features.
    network : optional
        An open feature network (default: config.open_network(), closed at the end).
    cache : bool or FeatureCache
        True (the per-file cache under cache_root, default the package's cache folder),
        False, or a FeatureCache. Signals are never cached.
    cache_root : str or path, optional
        Where the cache lives.
    jobs : int
        Processes that draw the spectrograms (1: a thread of this process).
    spectrogram_dir : str or path, optional
        Write each chunk's image there as PNG (files served from the cache are drawn
        again for it).
    prefetch : int, optional
        Pieces (up to FORWARD_PIECE chunks) drawn ahead of the network, which bounds the
        memory. Default 2 * jobs + 2; for a batch-invariant network (the C core) up to
        FORWARD_PIECE more pieces, as long as they hold no more images than the default
        number of full pieces would.
    progress : bool
        A progress bar on stderr.

    Yields
    ------
    FileResult
        name, features ((rows, dim) float32), times(config), and `error` (a line naming
        the file) for an input that gave no rows; `cached` when it came from the cache.
    """
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
    # Batch-invariant networks (the C core) take the images of several files at once,
    # FORWARD_PIECE at a time (a piece may be cut between two batches); the others one
    # piece (one file's chunks) at a time.
    across = bool(getattr(network, "batch_invariant", False))
    pieces_ahead = max(1, prefetch or 2 * jobs + 2)
    budget = _ImageBudget(None)
    if across and prefetch is None:
        # A batch takes FORWARD_PIECE images, from as many files: with a few pieces
        # ahead, a corpus of short files had the network wait for most of each next
        # batch to be drawn (1.1 s of 5.3 s on EmoDB). So up to a batch and more of
        # pieces wait, but no more images than the default few pieces could hold.
        budget = _ImageBudget(pieces_ahead * FORWARD_PIECE)
        pieces_ahead += FORWARD_PIECE
    q = queue.Queue(maxsize=pieces_ahead)
    stop = threading.Event()
    producer = threading.Thread(target=_produce, daemon=True,
                                args=(items, q, stop, lookup, config, spectrogram_dir, pool,
                                      budget))
    bar = tqdm(total=total, unit="file", disable=not progress, file=sys.stderr)
    producer.start()
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
        budget.give(sum(take for *_, take in targets))
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
                _, item, hit, future, k, count, shape, drawn = entry
                if k == 0:
                    waiting.append(_Pending(item=item, hit=hit, shape=shape))
                file = waiting[-1]
                try:
                    images = future.result()
                except (AudioError, ImageError) as e:
                    file.error = file.error or e
                    budget.give(drawn)
                else:
                    if hit is None and file.error is None:
                        file.rows.append(np.empty((len(images), dim), np.float32))
                        file.missing += len(images)
                        todo.append((file, len(file.rows) - 1, images, 0))
                        todo_count += len(images)
                    else:                 # not for the network: drawn for the PNGs only
                        budget.give(drawn)
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
