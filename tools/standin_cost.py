"""Where the time of the FAU-AIBO stand-in goes, per chunk, and what the paper's scale costs.

    python tools/standin_cost.py [--chunks 50] [--cores 2] [--seed 0]

Runs the first chunks of the full-scale plan (half Ohm, half Mont) one after the other in
this process, one thread, timing each step: cutting the close-talk chunk and writing it;
the room impulse response the reference way (pyroomacoustics' compute_rir, as
refimpl.conditions does) and the stand-in's two ways (aibo_standin.shoebox_rir with numpy
only and with its compiled core; all three are checked equal on every chunk), the convolution and mix, writing the room file. Prints the
mean per chunk of each step and the extrapolation to all 17 076 chunks on --cores cores
(the work is independent per chunk, so it divides by the core count). Nothing is kept.
Times taken on a loaded machine are noisy; the ratios within one run are what to compare.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from refimpl import aibo_standin as S, conditions as N  # noqa: E402
from refimpl.corpus import read_json  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=50)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import pyroomacoustics as pra
    import soundfile as sf
    from threadpoolctl import threadpool_limits
    pra.constants.set("num_threads", S.RIR_THREADS)
    chunks = S.plan(1.0)
    half = args.chunks // 2
    picked = ([c for c in chunks if c.partition == "train"][:args.chunks - half]
              + [c for c in chunks if c.partition == "test"][:half])
    sources, lengths = S.source_files()
    spec, pool = read_json(N.SPEC_FILE), N.noise_pool()
    noise = {}
    steps = ("clean_cut", "clean_write", "rir_reference", "rir_numpy", "rir", "convolve",
             "room_write")
    took = {k: [] for k in steps}
    orders = []
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(1):
        for c in picked:
            t0 = time.perf_counter()
            draw = S.draw_chunk(args.seed, c.id, lengths)
            signal, _ = sf.read(str(sources[draw["source_index"]]), dtype="float64")
            pcm, _ = S.cut_chunk(signal, draw)
            t1 = time.perf_counter()
            S._write_wav(Path(tmp) / "wav" / f"{c.id}.wav", pcm)
            t2 = time.perf_counter()
            name = f"{c.id}.wav"
            params = N.draw_parameters(np.random.default_rng(N.file_seed(args.seed, name)),
                                       spec, c.partition, pool)
            if params["noise_file"] not in noise:
                noise[params["noise_file"]] = N.read_mono(params["noise_file"], 16000)[0]
            t3 = time.perf_counter()
            reference, _, order = N.room_impulse_response(params, 16000)
            t4 = time.perf_counter()
            timings = {}
            clean = pcm.astype(np.float64) / 32768.0
            noisy = S.room_microphone(clean, 16000, params, noise[params["noise_file"]],
                                      timings)
            t5 = time.perf_counter()
            S._write_wav(Path(tmp) / "room" / name, noisy)
            t6 = time.perf_counter()
            t7 = time.perf_counter()
            exact_numpy, _, _ = S.shoebox_rir(params, 16000, compiled=False)
            t8 = time.perf_counter()
            fast, _, _ = S.shoebox_rir(params, 16000)
            if not (np.array_equal(fast, reference) and np.array_equal(exact_numpy, reference)):
                raise SystemExit(f"{c.id}: the stand-in's RIR differs from pyroomacoustics'")
            took["rir_numpy"].append(t8 - t7)
            for k, v in (("clean_cut", t1 - t0), ("clean_write", t2 - t1),
                         ("rir_reference", t4 - t3), ("rir", timings["rir"]),
                         ("convolve", timings["convolve"]), ("room_write", t6 - t5)):
                took[k].append(v)
            orders.append(order)
    mean = {k: float(np.mean(v)) for k, v in took.items()}
    n = len(picked)
    print(f"{n} chunks of the full-scale plan, one thread; image-source orders "
          f"{min(orders)}-{max(orders)} (mean {np.mean(orders):.0f})")
    for k in steps:
        print(f"  {k:14s} {1000 * mean[k]:8.1f} ms per chunk")
    clean = mean["clean_cut"] + mean["clean_write"]
    room_fast = mean["rir"] + mean["convolve"] + mean["room_write"]
    room_ref = mean["rir_reference"] + mean["convolve"] + mean["room_write"]
    total = len(chunks)
    hours = lambda s: s * total / args.cores / 3600
    print(f"  RIR: reference / stand-in = {mean['rir_reference'] / mean['rir']:.2f} "
          f"(stand-in without its compiled core: {mean['rir_reference'] / mean['rir_numpy']:.2f})"
          + ("" if S._kernel() else "  [compiled core not built: rir = rir_numpy]"))
    print(f"extrapolated to {total} chunks on {args.cores} cores:")
    print(f"  close talk                       {60 * hours(clean):7.1f} min")
    print(f"  room microphone, stand-in's RIR  {60 * hours(room_fast):7.1f} min")
    print(f"  room microphone, reference RIR   {60 * hours(room_ref):7.1f} min")
    print(f"  whole stand-in (close talk + room, stand-in's RIR) "
          f"{60 * hours(clean + room_fast):.1f} min")


if __name__ == "__main__":
    main()
