"""Real Caffe as an oracle and a backend, through a long-lived worker process.

The Caffe install (`make caffe`, tools/install_caffe.sh) brings its own Python 3.9 and
numpy 1.x; pycaffe cannot be imported into this Python. So refimpl/network/caffe_worker.py runs
under that interpreter and this module talks to it over two private pipes with frames
of a JSON header plus .npy arrays. The same worker runs under a user's own pycaffe, e.g. a
CUDA build (a distribution's caffe-cuda package, or one built from source): set
REFIMPL_CAFFE_PYTHON to the Python that imports it, and mode="gpu", device=N (the caffe
backend's device "gpu:N") calls caffe.set_device(N) and caffe.set_mode_gpu() there. A separate process is also the only way to survive
Caffe's failures: a failed CHECK (wrong weight shape, GPU use in a CPU-only build) aborts
the process. Here such a death is caught and reported with the exit status and the tail
of the worker's log.

    with CaffeNet(prototxt, weights) as net:
        feats = net.extract_fc7(blob)            # (N, 4096) float32
        outs = net.forward(blob, outputs=("pool5", "fc7"))

Lower level: CaffeWorker (ping, load, forward, params, save). The worker half is
refimpl/network/caffe_worker.py.
"""
import fcntl
import io
import json
import os
import signal
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from refimpl._util import locations
from refimpl.errors import CaffeError, CaffeNotInstalled, CaffeWorkerDied, UsageError
from refimpl.network.spec import FEATURE_BLOB, prototxt_path

__all__ = ["CaffeError", "CaffeNotInstalled", "CaffeWorkerDied", "CaffeWorker", "CaffeNet",
           "CaffeNetwork", "caffe_available", "caffe_python", "caffe_env", "parse_device",
           "ALEXNET_PROTOTXT", "CAFFE_PYTHON_ENV", "golden_fc7"]

WORKER_SCRIPT = Path(__file__).resolve().parent / "caffe_worker.py"
ALEXNET_PROTOTXT = prototxt_path()
_PIPE_SIZE = 1 << 20  # 64 KiB default pipes halve the throughput of big batches
_F_SETPIPE_SZ = 1031
# A Python of the user's whose pycaffe the worker should use instead of the install's
CAFFE_PYTHON_ENV = "REFIMPL_CAFFE_PYTHON"


def _own_python():
    """REFIMPL_CAFFE_PYTHON as a path, or None when it is not set."""
    value = os.environ.get(CAFFE_PYTHON_ENV)
    return Path(value).expanduser() if value else None


def caffe_python():
    """The interpreter that runs the worker: REFIMPL_CAFFE_PYTHON if set, else the launcher
    of the Caffe install's Python; raise CaffeNotInstalled when it is not there."""
    own = _own_python()
    if own is not None:
        if not (own.is_file() and os.access(own, os.X_OK)):
            raise CaffeNotInstalled(f"{CAFFE_PYTHON_ENV}={own}: no executable Python there "
                                    f"(it should name the Python that imports your pycaffe)")
        return own
    exe = locations.caffe_prefix() / "caffe-python"
    if not os.access(exe, os.X_OK):
        raise CaffeNotInstalled(
            f"real Caffe is not installed at {locations.caffe_prefix()} (no caffe-python there): "
            "run `make caffe`, or set REFIMPL_CAFFE_PREFIX to an existing install")
    return exe


def caffe_available():
    try:
        caffe_python()
        return True
    except CaffeNotInstalled:
        return False


def _npy_parts(a):
    a = np.ascontiguousarray(a)
    head = _npy_header(a)
    return head, (memoryview(a).cast("B") if a.size else b"")


def _npy_header(a):
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, np.lib.format.header_data_from_array_1_0(a))
    return f.getvalue()


def _npy_parse(buf):
    """One .npy blob -> array viewing `buf` (numpy-2 safe: explicit header readers)."""
    head = io.BytesIO(bytes(memoryview(buf)[:65536]))
    version = np.lib.format.read_magic(head)
    reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
              else np.lib.format.read_array_header_2_0)
    shape, fortran, dtype = reader(head)
    count = int(np.prod(shape, dtype=np.int64))
    a = np.frombuffer(buf, dtype=dtype, count=count, offset=head.tell())
    return a.reshape(shape, order="F" if fortran else "C")


def caffe_env():
    """The worker's environment. For the install's Python 3.9: the caller's minus what
    would break it (PYTHON*, preloads, library paths). For REFIMPL_CAFFE_PYTHON: the
    caller's as it is (a user's pycaffe may need its PYTHONPATH, a CUDA build its
    LD_LIBRARY_PATH) minus PYTHONHOME, which names this Python's own install."""
    if _own_python() is not None:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONHOME"}
    else:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("PYTHON") and k not in ("LD_PRELOAD", "LD_LIBRARY_PATH")}
    env["GLOG_minloglevel"] = "2"
    return env


def parse_device(device):
    """The caffe backend's device -> (mode, GPU id): None or "cpu" -> ("cpu", 0); "gpu" ->
    ("gpu", 0); "gpu:N" -> ("gpu", N)."""
    text = "cpu" if device is None else str(device).strip().lower()
    mode, _, index = text.partition(":")
    if mode == "cpu" and not index:
        return "cpu", 0
    if mode == "gpu" and (not index or index.isdigit()):
        return "gpu", int(index or 0)
    raise UsageError(f"caffe device must be cpu, gpu or gpu:N, got {device!r}")


class CaffeWorker:
    """One pycaffe worker process. Use as a context manager or call close()."""

    def __init__(self, timeout=None):
        exe = caffe_python()
        self._log = tempfile.TemporaryFile(prefix="refimpl-caffe-", suffix=".log")
        req_r, self._req_w = os.pipe()
        self._rep_r, rep_w = os.pipe()
        for fd in (self._req_w, self._rep_r):
            try:
                fcntl.fcntl(fd, _F_SETPIPE_SZ, _PIPE_SIZE)
            except OSError:
                pass
        try:
            self.proc = subprocess.Popen(
                [str(exe), "-u", str(WORKER_SCRIPT), str(req_r), str(rep_w)],
                stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                env=caffe_env(), pass_fds=(req_r, rep_w), close_fds=True)
        finally:
            os.close(req_r)
            os.close(rep_w)
        self._wfile = os.fdopen(self._req_w, "wb", buffering=0)
        self._rfile = os.fdopen(self._rep_r, "rb", buffering=0)
        self._closed = False
        try:
            self.info = self.call({"cmd": "ping"})[0]
        except CaffeWorkerDied:
            if _own_python() is None:
                raise
            last = self.log_tail(1)
            for f in (self._wfile, self._rfile, self._log):
                f.close()
            raise CaffeNotInstalled(f"{CAFFE_PYTHON_ENV}={exe}: the Caffe worker did not "
                                    f"start under it ({last})") from None

    # -- framing
    def _died(self):
        try:
            status = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            status = None
        if status is None:
            what = "stopped answering"
        elif status < 0:
            try:
                what = f"was killed by signal {signal.Signals(-status).name} ({status})"
            except ValueError:
                what = f"was killed by signal {-status}"
        else:
            what = f"exited with status {status}"
        self._closed = True
        raise CaffeWorkerDied(f"the Caffe worker (pid {self.proc.pid}) {what}; "
                              f"last lines of its log:\n{self.log_tail()}")

    def log_tail(self, lines=20):
        """The last lines the worker wrote to stdout/stderr (glog messages, prints)."""
        try:
            self._log.seek(0, os.SEEK_END)
            size = self._log.tell()
            self._log.seek(max(0, size - 8192))
            text = self._log.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return "(log unavailable)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty)"

    def _write_all(self, data):
        view = memoryview(data)
        while len(view):
            view = view[self._wfile.write(view):]

    def _read_exact(self, n):
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self._rfile.readinto(view[got:])
            if not k:
                self._died()
            got += k
        return buf

    def call(self, header, arrays=()):
        """Send one command; return (reply header, reply arrays) or raise CaffeError."""
        if self._closed:
            raise CaffeError("the Caffe worker is closed")
        parts = [_npy_parts(np.asarray(a)) for a in arrays]
        raw = json.dumps(dict(header, arrays=[len(h) + len(d) for h, d in parts])).encode()
        try:
            self._write_all(struct.pack("<I", len(raw)) + raw)
            for h, d in parts:
                self._write_all(h)
                self._write_all(d)
        except (BrokenPipeError, ValueError):
            self._died()
        hlen = struct.unpack("<I", self._read_exact(4))[0]
        reply = json.loads(bytes(self._read_exact(hlen)))
        out = [_npy_parse(self._read_exact(n)) for n in reply.get("arrays", [])]
        if not reply.get("ok"):
            raise CaffeError(f"Caffe: {reply.get('error')}")
        return reply, out

    # -- commands
    @property
    def gpu_support(self):
        return bool(self.info.get("gpu_support"))

    def load(self, prototxt, weights=None, mode="cpu", device=0):
        """Load a net (prototxt path or text) with optional weights; returns load info."""
        self.check_mode(mode)
        h = {"cmd": "load", "mode": mode, "device": int(device)}
        text = str(prototxt)
        if "\n" in text or "{" in text:
            h["prototxt_text"] = text
        else:
            if not Path(text).is_file():
                raise FileNotFoundError(f"{text}: prototxt not found")
            h["prototxt"] = str(Path(text).resolve())
        if weights is not None:
            if not Path(weights).is_file():
                raise FileNotFoundError(f"{weights}: caffemodel not found")
            h["weights"] = str(Path(weights).resolve())
        return self.call(h)[0]

    def check_mode(self, mode):
        if mode not in ("cpu", "gpu"):
            raise ValueError(f"mode must be 'cpu' or 'gpu', got {mode!r}")
        if mode == "gpu" and not self.gpu_support:
            where = (f"the pycaffe of {CAFFE_PYTHON_ENV}={_own_python()}"
                     if _own_python() is not None
                     else f"the Caffe at {locations.caffe_prefix()}")
            raise CaffeError(
                f"mode='gpu' is not possible: {where} is a CPU-only build "
                f"({self.info.get('gpu_detail')}); use mode='cpu', or set "
                f"{CAFFE_PYTHON_ENV} to a Python whose pycaffe is a CUDA build")

    def forward(self, net, inputs, outputs=None, mode="cpu", device=0):
        """inputs: blob name -> array (any batch size; the net is reshaped)."""
        names = list(inputs)
        reply, arrays = self.call({"cmd": "forward", "net": net, "inputs": names,
                                   "outputs": list(outputs) if outputs else None,
                                   "mode": mode, "device": int(device)},
                                  [np.ascontiguousarray(inputs[k], dtype=np.float32)
                                   for k in names])
        return dict(zip(reply["outputs"], arrays))

    def params(self, net, layer):
        return self.call({"cmd": "params", "net": net, "layer": layer})[1]

    def save(self, net, path):
        self.call({"cmd": "save", "net": net, "path": str(Path(path).resolve())})

    def close(self):
        if self._closed:
            return
        self._closed = True
        try:
            try:
                self._write_all(struct.pack("<I", 15) + b'{"cmd": "quit"}')
                hlen = self._rfile.read(4)
                if len(hlen) == 4:
                    self._rfile.read(struct.unpack("<I", hlen)[0])
            except (OSError, ValueError):
                pass
            self._wfile.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        finally:
            self._rfile.close()
            self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class CaffeNet:
    """A Caffe net in its own worker: forward blobs, read back any blob by name.

    prototxt: path or text (default: AlexNet's deploy.prototxt); weights: .caffemodel path
    or None; mode "cpu" or "gpu" (raises CaffeError at once when this Caffe has no GPU
    support), device the GPU id.
    """

    def __init__(self, prototxt=ALEXNET_PROTOTXT, weights=None, mode="cpu", device=0,
                 worker=None):
        self._own_worker = worker is None
        self.worker = worker or CaffeWorker()
        try:
            self.mode, self.device = mode, int(device)
            self.info = self.worker.load(prototxt, weights, mode=mode, device=device)
            self.net_id = self.info["net"]
            self.inputs = self.info["inputs"]
        except BaseException:
            if self._own_worker:
                self.worker.close()
            raise

    def forward(self, blob, outputs=("fc7",), batch_size=None):
        """Run `blob` (N, ...) through the net -> dict blob name -> float32 array (N, ...).

        The input goes to the net's first input blob (pass a dict for several inputs).
        batch_size splits the batch (Caffe's memory grows with it); default all at once.
        """
        inputs = blob if isinstance(blob, dict) else {self.inputs[0]: blob}
        n = len(next(iter(inputs.values())))
        step = batch_size or n
        chunks = []
        for i in range(0, n, step):
            part = {k: np.asarray(v[i:i + step], dtype=np.float32) for k, v in inputs.items()}
            chunks.append(self.worker.forward(self.net_id, part, outputs, self.mode,
                                              self.device))
        if len(chunks) == 1:
            return {k: np.array(v) for k, v in chunks[0].items()}
        return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}

    def extract_fc7(self, blob, batch_size=None):
        """The deep spectrum features: blob fc7 after relu7, (N, 4096) float32."""
        return self.forward(blob, outputs=("fc7",), batch_size=batch_size)["fc7"]

    def params(self, layer):
        return self.worker.params(self.net_id, layer)

    def save(self, path):
        self.worker.save(self.net_id, path)

    def close(self):
        if self._own_worker:
            self.worker.close()
        else:
            try:
                self.worker.call({"cmd": "free", "net": self.net_id})
            except CaffeError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class CaffeNetwork:
    """Real Caffe as a network backend (refimpl.network.open_backend); `device` "cpu"
    (default), "gpu" or "gpu:N" (GPU mode needs a CUDA build: REFIMPL_CAFFE_PYTHON)."""
    name = "caffe"

    def __init__(self, weights, device=None):
        mode, index = parse_device(device)
        self.net = CaffeNet(weights=weights, mode=mode, device=index)

    def forward(self, blob, until=FEATURE_BLOB):
        return self.net.forward(blob, outputs=(until,))[until]

    def fc7(self, blob):
        return self.forward(blob, "fc7")

    def close(self):
        self.net.close()


def golden_fc7(blob, weights):
    """fc7 by real Caffe in `refimpl golden verify --stage fc7`'s signature."""
    with CaffeNet(weights=weights) as net:
        return net.forward(blob, outputs=("fc7",))["fc7"]
