"""Throughput of AlexNet to fc7: the PyTorch backend on a device (a GPU: cuda) against the
C core on this machine's CPUs, at a few batch sizes, in one run (ratios within it).

    python3 tools/torch_throughput.py --device cuda --batches 1 32 256 --json t.json --md t.md

Rows per batch size, each the median of repeated calls after warm-up:
  c-core        refimpl.network.cforward on the CPU, its default threads (all CPUs of the process)
  torch         refimpl.network.torch_backend fc7(): NumPy blob in, NumPy fc7 out (copies to and
                from the device included: what a feature extractor pays)
  torch-device  forward_tensor() on a blob already on the device, synchronised (the
                device's own speed)
  torch-device-cudnn-benchmark   the same with torch.backends.cudnn.benchmark = True
                (cuDNN times its algorithms and keeps the fastest; cuda only)
Each torch row's fc7 is compared with the C core's (worst |diff| / max per image, against
the project's tolerance: golden.TOLERANCES["fc7_max_error_rel_to_max"], 3e-5 in
golden/manifest.json). Called by tools/gpu_check.sh; runs on CPU too (--device cpu).
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from refimpl.network import cforward as C  # noqa: E402
from refimpl import golden  # noqa: E402
from refimpl.network import weights  # noqa: E402
from refimpl.network.torch_backend import TorchNetwork  # noqa: E402


def images(n):
    return np.random.default_rng(0).integers(0, 256, (n, 3, 227, 227)).astype(np.float32)


def timed(fn, min_seconds, min_reps=3, max_reps=200, warmup=2):
    """Median seconds of fn() over repetitions lasting at least min_seconds in all."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < max_reps and (len(times) < min_reps
                                     or time.perf_counter() - start < min_seconds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), len(times)


def rel_to_max(got, want):
    err = np.abs(got.astype(np.float64) - want).max(axis=1)
    return float((err / np.abs(want).max(axis=1)).max())


def environment(torch, device):
    env = {"python": platform.python_version(), "numpy": np.__version__,
           "torch": torch.__version__, "torch_cuda": torch.version.cuda,
           "cpus": len(os.sched_getaffinity(0)), "torch_cpu_threads": torch.get_num_threads(),
           "device": device, "processor": platform.processor() or platform.machine()}
    if device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
        env["cudnn"] = torch.backends.cudnn.version()
    if C.available():
        env["c_core"] = C.settings()
    return env


def measure(device, batches, min_seconds):
    import torch
    path = weights.synthetic_weights_path(0)
    rows = []
    cnet = C.CNetwork(path) if C.available() else None
    tnet = TorchNetwork(path, device=device)
    cuda = tnet.device.type == "cuda"
    for n in batches:
        blob = images(n)
        want = None
        if cnet is not None:
            want = cnet.fc7(blob)
            sec, reps = timed(lambda: cnet.fc7(blob), min_seconds, warmup=1)
            rows.append(dict(batch=n, runtime="c-core", where="cpu", seconds=sec, reps=reps))

        def check(got):
            return None if want is None else rel_to_max(got, want)

        got = tnet.fc7(blob)
        sec, reps = timed(lambda: tnet.fc7(blob), min_seconds)
        rows.append(dict(batch=n, runtime="torch", where=device, seconds=sec, reps=reps,
                         fc7_error=check(got)))
        x = torch.from_numpy(blob).to(tnet.device)

        def resident():
            out = tnet.forward_tensor(x)
            tnet.synchronize()
            return out

        sec, reps = timed(resident, min_seconds)
        rows.append(dict(batch=n, runtime="torch-device", where=device, seconds=sec,
                         reps=reps, fc7_error=check(resident().cpu().numpy())))
        if cuda:
            old = torch.backends.cudnn.benchmark
            torch.backends.cudnn.benchmark = True
            try:
                sec, reps = timed(resident, min_seconds, warmup=3)
                rows.append(dict(batch=n, runtime="torch-device-cudnn-benchmark", where=device,
                                 seconds=sec, reps=reps,
                                 fc7_error=check(resident().cpu().numpy())))
            finally:
                torch.backends.cudnn.benchmark = old
        del x
    for row in rows:
        row["images_per_s"] = row["batch"] / row["seconds"]
        anchor = next((r for r in rows if r["batch"] == row["batch"] and r["runtime"] == "c-core"),
                      None)
        row["vs_c_core"] = None if anchor is None else anchor["seconds"] / row["seconds"]
    tnet.close()
    return rows


def markdown(env, rows):
    tol = golden.TOLERANCES["fc7_max_error_rel_to_max"]
    lines = ["| batch | runtime | where | images/s | x C core | fc7 error / max | reps |",
             "| ---: | --- | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        err = r.get("fc7_error")
        err_text = "" if err is None else f"{err:.2g}" + ("" if err <= tol else " **FAIL**")
        ratio = "" if r["vs_c_core"] is None else f"{r['vs_c_core']:.2f}"
        lines.append(f"| {r['batch']} | {r['runtime']} | {r['where']} | {r['images_per_s']:.1f} "
                     f"| {ratio} | {err_text} | {r['reps']} |")
    head = ", ".join(f"{k} {v}" for k, v in env.items() if k != "c_core")
    c = env.get("c_core")
    if c:
        head += f"; C core threads {c['threads']}, winograd {c['winograd']}"
    return (f"Environment: {head}\n\nx C core = C core's median time / this row's (above 1: "
            f"faster than the C core on the CPU). fc7 error tolerance {tol:g}.\n\n"
            + "\n".join(lines) + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 32, 256])
    p.add_argument("--min-seconds", type=float, default=2.0,
                   help="time spent repeating each row (at least 3 repetitions)")
    p.add_argument("--json")
    p.add_argument("--md")
    args = p.parse_args(argv)
    import torch
    env = environment(torch, args.device)
    rows = measure(args.device, args.batches, args.min_seconds)
    text = markdown(env, rows)
    print(text)
    from refimpl._util.atomic import atomic_open
    if args.json:
        with atomic_open(args.json) as f:
            json.dump({"environment": env, "rows": rows}, f, indent=2, default=str)
    if args.md:
        with atomic_open(args.md) as f:
            f.write(text)
    tol = golden.TOLERANCES["fc7_max_error_rel_to_max"]
    bad = [r for r in rows if r.get("fc7_error") is not None and r["fc7_error"] > tol]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
