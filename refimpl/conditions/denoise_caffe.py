"""The enhancer's network in real Caffe: train it with Caffe's solver, or run its forward pass.

Runs under Caffe's own Python (3.9, numpy 1.19, pycaffe), started by refimpl.conditions.denoise as
    caffe-python denoise_caffe.py train   NET.prototxt SOLVER.prototxt DATA.npz OUT.npz ITERS
    caffe-python denoise_caffe.py forward NET.prototxt WEIGHTS.npz INPUT.npz OUT.npy
Weights travel as .npz files keyed "<layer>/<blob index>" (Caffe's own blob layout), so the
NumPy side needs no protobuf. Kept free of refimpl imports: it runs outside our venv.
"""
import json
import sys
import time

import numpy as np


def _caffe():
    import caffe   # here: only Caffe's own Python has pycaffe; ours may import this file
    caffe.set_mode_cpu()
    return caffe


def save_params(net, path):
    arrays = {}
    for name, blobs in net.params.items():
        for i, blob in enumerate(blobs):
            arrays["%s/%d" % (name, i)] = np.array(blob.data, dtype=np.float32)
    np.savez(path, **arrays)


def load_params(net, path):
    with np.load(path) as z:
        for name, blobs in net.params.items():
            for i, blob in enumerate(blobs):
                key = "%s/%d" % (name, i)
                if z[key].shape != blob.data.shape:
                    raise ValueError("%s: shape %s, net wants %s" % (key, z[key].shape, blob.data.shape))
                blob.data[...] = z[key]


def train(net_file, solver_file, data_file, out_file, iters, init_file=None):
    """Minibatches of fixed-length chunks: data (T,N,D), cont (T,N), target (T,N,D)."""
    caffe = _caffe()
    solver = caffe.get_solver(solver_file)
    net = solver.net
    if init_file:
        load_params(net, init_file)
    else:
        # Forget-gate bias 1 (Caffe's LSTM gate order is i, f, o, g): the usual start that
        # lets gradients flow through time from the first iterations.
        for name in net.params:
            if name.startswith("lstm"):
                b = net.params[name][1].data
                hidden = b.shape[0] // 4
                b[hidden:2 * hidden] = 1.0
    with np.load(data_file) as z:
        x, y = z["x"], z["y"]                 # (chunks, T, D)
        order_seed = int(z["seed"]) if "seed" in z.files else 0
    T, N = net.blobs["data"].data.shape[:2]
    rng = np.random.RandomState(order_seed)
    order = rng.permutation(len(x))
    pos = 0
    cont = np.ones((T, N), dtype=np.float32)
    cont[0] = 0.0                                 # every chunk starts a new sequence
    losses = []
    t0 = time.time()
    for it in range(iters):
        if pos + N > len(order):
            order, pos = rng.permutation(len(x)), 0
        idx = order[pos:pos + N]
        pos += N
        net.blobs["data"].data[...] = x[idx].transpose(1, 0, 2)
        net.blobs["cont"].data[...] = cont
        net.blobs["target"].data[...] = y[idx].transpose(1, 0, 2)
        solver.step(1)
        losses.append(float(net.blobs["loss"].data))
        if (it + 1) % 20 == 0 or it + 1 == iters:
            print(json.dumps({"iter": it + 1, "loss": float(np.mean(losses[-20:])),
                              "seconds": round(time.time() - t0, 1)}), flush=True)
    save_params(net, out_file)


def forward(net_file, weights_file, input_file, out_file):
    caffe = _caffe()
    net = caffe.Net(net_file, caffe.TEST)
    load_params(net, weights_file)
    with np.load(input_file) as z:
        net.blobs["data"].data[...] = z["data"]
        net.blobs["cont"].data[...] = z["cont"]
    net.forward()
    out = {name: np.array(net.blobs[name].data) for name in net.blobs}
    np.savez(out_file, **out)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "train":
        train(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]),
              sys.argv[7] if len(sys.argv) > 7 else None)
    elif cmd == "forward":
        forward(*sys.argv[2:6])
    else:
        raise SystemExit("usage: train|forward ...")
