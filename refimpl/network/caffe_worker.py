"""Real Caffe behind a pipe: the worker half of refimpl.network.caffe_client.

Runs under the Python 3.9 of the Caffe install (`caffe-python -u _caffe_worker.py RFD WFD`),
never under the project's Python, so it imports only the standard library, numpy and
caffe (not refimpl). The client starts it with a clean environment.

Protocol, on two private pipe fds given on the command line (pycaffe and glog may print
to stdout/stderr at any time, so those are only a log): each message is a frame
    4-byte little-endian header length | JSON header | arrays
where header["arrays"] lists the byte length of each following array, each one a
complete .npy file (header + C-order data). Replies carry "ok": true, or "ok": false with
"error" and "trace".

Commands: ping, load, forward, params, save, transform, quit (see handle()).
"""
import io
import json
import os
import struct
import sys
import tempfile
import traceback

os.environ.setdefault("GLOG_minloglevel", "2")  # else every Net() logs its whole definition

import numpy as np  # noqa: E402
import caffe  # noqa: E402

_rfile = _wfile = None
_nets = {}


# ----------------------------------------------------------------------------- frames

def _read_exact(n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = _rfile.readinto(view[got:])
        if not k:
            raise EOFError
        got += k
    return buf


def _write_all(data):
    view = memoryview(data)
    while len(view):
        k = _wfile.write(view)
        view = view[k:]


def _npy_parse(buf):
    """Parse one .npy blob in `buf` without copying its data."""
    head = io.BytesIO(bytes(memoryview(buf)[:65536]))
    version = np.lib.format.read_magic(head)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(head)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(head)
    count = int(np.prod(shape, dtype=np.int64))
    a = np.frombuffer(buf, dtype=dtype, count=count, offset=head.tell())
    return a.reshape(shape, order="F" if fortran else "C")


def _npy_parts(a):
    a = np.ascontiguousarray(a)
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, np.lib.format.header_data_from_array_1_0(a))
    return head.getvalue(), memoryview(a).cast("B") if a.size else b""


def _recv():
    hlen = struct.unpack("<I", _read_exact(4))[0]
    header = json.loads(bytes(_read_exact(hlen)).decode("utf-8"))
    arrays = [_npy_parse(_read_exact(n)) for n in header.get("arrays", [])]
    return header, arrays


def _send(header, arrays=()):
    parts = [_npy_parts(a) for a in arrays]
    header = dict(header, arrays=[len(h) + len(d) for h, d in parts])
    raw = json.dumps(header).encode("utf-8")
    _write_all(struct.pack("<I", len(raw)) + raw)
    for h, d in parts:
        _write_all(h)
        _write_all(d)


# ----------------------------------------------------------------------------- caffe

def gpu_support():
    """Whether this Caffe was built with CUDA: a CUDA build's libcaffe links the CUDA
    runtime, which is then mapped into this process after `import caffe`.

    (A CPU_ONLY build accepts set_mode_gpu() and aborts the whole process on the first
    GPU forward, so this must be known before touching GPU mode.)
    """
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 6:
                    libs.add(os.path.basename(parts[5]))
    except OSError:
        return False, "cannot read /proc/self/maps"
    caffe_libs = sorted(x for x in libs if x.startswith("libcaffe"))
    cuda = sorted(x for x in libs if x.startswith(("libcudart", "libcublas", "libcuda.")))
    return bool(cuda), "libcaffe=%s cuda=%s" % (",".join(caffe_libs) or "?",
                                                ",".join(cuda) or "none")


def blas_core():
    """The kernel family of the OpenBLAS that Caffe runs on (chosen at run time by CPU, or
    forced by OPENBLAS_CORETYPE), e.g. "Haswell", "Prescott"; "?" if not OpenBLAS."""
    import ctypes
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return "?"


def transform_images(paths):
    """The 2017 toolkit's input path through pycaffe: each image read as caffe.io.load_image
    does (skimage's imread, img_as_float, float32, RGBA cut to RGB), then caffe.io.Transformer
    with HWC -> CHW, raw scale 255 and RGB -> BGR. (load_image itself passes as_grey=,
    which this skimage no longer accepts, so its two lines are spelled out here.)"""
    import caffe.io
    import skimage
    import skimage.io
    out = []
    for path in paths:
        img = skimage.img_as_float(skimage.io.imread(path)).astype(np.float32)
        if img.ndim == 2:
            img = np.tile(img[:, :, np.newaxis], (1, 1, 3))
        elif img.shape[2] == 4:
            img = img[:, :, :3]
        t = caffe.io.Transformer({"data": (1, 3) + img.shape[:2]})
        t.set_transpose("data", (2, 0, 1))
        t.set_raw_scale("data", 255)
        t.set_channel_swap("data", (2, 1, 0))
        out.append(t.preprocess("data", img))
    return np.stack(out) if out else np.zeros((0, 3, 0, 0), np.float32)


def _set_mode(mode, device):
    if mode == "cpu":
        caffe.set_mode_cpu()
    elif mode == "gpu":
        ok, why = gpu_support()
        if not ok:
            raise RuntimeError("this Caffe is a CPU-only build (%s): mode='gpu' is not "
                               "possible" % why)
        caffe.set_device(int(device))
        caffe.set_mode_gpu()
    else:
        raise ValueError("mode must be 'cpu' or 'gpu', got %r" % (mode,))


def handle(h, arrays):
    cmd = h.get("cmd")
    if cmd == "ping":
        gpu, why = gpu_support()
        return {"caffe": getattr(caffe, "__version__", "?"), "numpy": np.__version__,
                "python": sys.version.split()[0], "gpu_support": gpu, "gpu_detail": why,
                "blas_core": blas_core(), "pid": os.getpid()}, []
    if cmd == "echo":
        return {}, arrays
    if cmd == "load":
        _set_mode(h.get("mode", "cpu"), h.get("device", 0))
        proto = h.get("prototxt")
        tmp = None
        if proto is None:
            fd, tmp = tempfile.mkstemp(suffix=".prototxt")
            with os.fdopen(fd, "w") as f:
                f.write(h["prototxt_text"])
            proto = tmp
        try:
            if h.get("weights"):
                net = caffe.Net(proto, caffe.TEST, weights=h["weights"])
            else:
                net = caffe.Net(proto, caffe.TEST)
        finally:
            if tmp:
                os.unlink(tmp)
        nid = max(_nets, default=-1) + 1
        _nets[nid] = net
        return {"net": nid, "inputs": list(net.inputs), "outputs": list(net.outputs),
                "blobs": {k: list(v.data.shape) for k, v in net.blobs.items()},
                "params": {k: [list(p.data.shape) for p in v] for k, v in net.params.items()},
                "layers": [[name, layer.type] for name, layer in zip(net._layer_names,
                                                                       net.layers)]}, []
    if cmd == "forward":
        _set_mode(h.get("mode", "cpu"), h.get("device", 0))
        net = _nets[h["net"]]
        names = h["inputs"]
        for name, a in zip(names, arrays):
            if tuple(net.blobs[name].data.shape) != tuple(a.shape):
                net.blobs[name].reshape(*a.shape)
        net.reshape()
        for name, a in zip(names, arrays):
            net.blobs[name].data[...] = a
        net.forward()
        outs = h.get("outputs") or list(net.outputs)
        return {"outputs": outs}, [net.blobs[o].data.copy() for o in outs]
    if cmd == "params":
        net = _nets[h["net"]]
        blobs = net.params[h["layer"]]
        return {"count": len(blobs)}, [b.data.copy() for b in blobs]
    if cmd == "save":
        _nets[h["net"]].save(h["path"])
        return {}, []
    if cmd == "transform":
        return {}, [transform_images(h["paths"])]
    if cmd == "free":
        _nets.pop(h["net"], None)
        return {}, []
    raise ValueError("unknown command %r" % (cmd,))


def main(argv):
    global _rfile, _wfile
    rfd, wfd = int(argv[1]), int(argv[2])
    _rfile = os.fdopen(rfd, "rb", buffering=0)
    _wfile = os.fdopen(wfd, "wb", buffering=0)
    caffe.set_mode_cpu()
    while True:
        try:
            header, arrays = _recv()
        except EOFError:
            return 0
        if header.get("cmd") == "quit":
            _send({"ok": True})
            return 0
        try:
            reply, out = handle(header, arrays)
            reply = dict(reply, ok=True)
        except Exception as e:  # report to the client, keep serving
            reply, out = {"ok": False, "error": "%s: %s" % (type(e).__name__, e),
                          "trace": traceback.format_exc()}, []
        _send(reply, out)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
