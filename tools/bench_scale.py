"""The paper's scale on the FAU-AIBO stand-in: what `make reproduce CORPUS=aibo` costs per
stage, and how each stage grows with the number of files (`make bench-scale`).

    python tools/bench_scale.py [--scales 0.06,0.25] [--work DIR] [--out bench-scale]

For each scale, from nothing (a fresh corpus folder and a fresh cache; downloaded weights
and jars are linked in from the usual cache, they are not a stage's cost), the stages of
`make reproduce CORPUS=aibo AIBO_ROOT=DIR` run one after another, each in its own process:

    conditions: clean + room   refimpl corpus standin aibo -o DIR --scale S
                               (close-talk chunks and the simulated room microphone, the
                               noisy condition)
    conditions: denoised       the enhancer over the room-microphone files
    features: NAME             every file of the three conditions through one feature set
                               of the grid into the per-file cache (grid.extract_condition)
    models + outputs           refimpl reproduce --corpus aibo --root DIR: the grid finds
                               every feature in the cache, trains and scores the models and
                               writes results/

For each stage: wall time, CPU time (user + system of the stage's process and all its
workers) and peak memory (the largest sum of the proportional set sizes of the stage's
process tree, sampled every 0.2 s). Then per stage the growth exponent b of
time = a * files^b, fitted by least squares on log-log over the scales run, and the
prediction for the paper's 17 076 chunks (51 228 files in three conditions). Written to
OUT/scale.md and OUT/scale.json. Timings on a machine shared with other work are noisy;
take the exponents and the prediction as estimates.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FULL_CHUNKS = 17076
LINKED = ("weights", "efficientnet", "openxbow")   # downloads: linked, not re-fetched


def tree_pids(pid):
    """pid and all its descendants (from /proc/<pid>/task/<tid>/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def proportional_kb(pid):
    """PSS of one process in kB (shared pages split between their users), else its RSS."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def measured(cmd, env, log):
    """Run cmd; returns {wall_s, cpu_s, peak_mb}: CPU of the process and of every worker it
    waited for (its rusage from wait4, so stages may run side by side), memory sampled
    over its process tree."""
    t0 = time.perf_counter()
    with open(log, "a") as out:
        out.write(f"\n$ {' '.join(map(str, cmd))}\n")
        out.flush()
        proc = subprocess.Popen([str(c) for c in cmd], env=env, stdout=out,
                                stderr=subprocess.STDOUT, cwd=REPO)
        peak = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, sum(proportional_kb(p) for p in tree_pids(proc.pid)))
            time.sleep(0.2)
    proc.returncode = os.waitstatus_to_exitcode(status)     # reaped here, not by Popen
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))}: exit status {proc.returncode} (see {log})")
    return {"wall_s": round(wall, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "peak_mb": round(peak / 1024)}


# ---------------------------------------------------------------------- stages (in a child)

def stage_denoised(root, seed):
    from refimpl.corpus import load_corpus
    from refimpl.experiments.reproduce import prepare_corpus
    prepare_corpus("aibo", root, seed)           # generates what is missing: the denoised
    corpus = load_corpus("aibo", root=root, seed=seed)
    corpus.audio_paths("denoised")               # every file is there


def stage_features(root, seed, name):
    from refimpl.corpus import load_corpus
    from refimpl.experiments.adapters import FEATURE_FACTORIES
    from refimpl.experiments.grid import CONDITIONS, extract_condition
    corpus = load_corpus("aibo", root=root, seed=seed)
    fs = FEATURE_FACTORIES[name](seed=seed)
    failed = []
    try:
        for condition in CONDITIONS:
            failed += extract_condition(fs.extractor, corpus, condition, show_progress=False)[1]
    finally:
        if hasattr(fs.extractor, "close"):
            fs.extractor.close()
    if failed:
        raise SystemExit(f"{len(failed)} file(s) failed, e.g. {failed[0]}")


# ---------------------------------------------------------------------- the run

def fit(points):
    """Least-squares b, a of log t = log a + b log n over (n, t) points."""
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(max(t, 1e-3)) for _, t in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 1.0
    return b, math.exp(my - b * mx)


def run_scale(scale, args, features, log):
    work = Path(args.work).resolve()
    root, cache = work / f"aibo-{scale}", work / f"cache-{scale}"
    results = work / f"results-{scale}"
    if root.exists() and not args.reuse:
        raise SystemExit(f"{root} exists: remove it (a cold run starts from nothing) or give "
                         f"--reuse")
    cache.mkdir(parents=True, exist_ok=True)
    from refimpl._util import locations
    for name in LINKED:
        source, link = locations.cache_dir() / name, cache / name
        if source.is_dir() and not link.exists():
            link.symlink_to(source)
    env = dict(os.environ, REFIMPL_CACHE=str(cache), PYTHONPATH=str(REPO))
    py, me = sys.executable, Path(__file__).resolve()
    stages = [("conditions: clean + room",
               [py, "-m", "refimpl", "corpus", "standin", "aibo", "-o", root, "--scale",
                str(scale), "--seed", str(args.seed)]),
              ("conditions: denoised", [py, me, "--stage", "denoised", "--root", root])]
    stages += [(f"features: {name}", [py, me, "--stage", "features", "--root", root,
                                      "--features", name]) for name in features]
    stages.append(("models + outputs",
                   [py, "-m", "refimpl", "reproduce", "--corpus", "aibo", "--root", root,
                    "--out", results, "--seed", str(args.seed), "--features",
                    ",".join(features)]))
    def run(stage_cmd):
        stage, cmd = stage_cmd
        m = measured(cmd, env, log)
        print(f"scale {scale}: {stage}: {m['wall_s']} s wall, {m['cpu_s']} s CPU, "
              f"{m['peak_mb']} MB peak", flush=True)
        return dict(stage=stage, **m)

    # conditions first, then the feature sets (`--concurrent` at a time, as the grid runs
    # them side by side), then the models
    rows = [run(stages[0]), run(stages[1])]
    with ThreadPoolExecutor(max(1, args.concurrent)) as pool:
        rows += list(pool.map(run, stages[2:-1]))
    rows.append(run(stages[-1]))
    meta = json.loads((results / "results.json").read_text())["meta"]
    return {"scale": scale, "chunks": int(meta["files used"]), "stages": rows,
            "grid_timings": {k: v for k, v in meta.items() if k.endswith("[s]")}}


def table(runs, cores):
    """Markdown: one row per stage, wall/CPU/peak per scale, the growth exponents of CPU
    time and peak memory, and the full-scale prediction: CPU time, the wall time on
    `cores` cores kept busy (CPU / cores: every stage is parallel, see the notes), memory."""
    runs = sorted(runs, key=lambda r: r["chunks"])
    head = (["stage"] + [f"{r['scale']} ({r['chunks']} chunks): wall / CPU s, peak MB"
                         for r in runs]
            + ["exponent b (CPU, memory)", f"predicted at {FULL_CHUNKS} chunks: CPU, "
                                           f"wall on {cores} cores, peak"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    total = {r["scale"]: [0.0, 0.0] for r in runs}
    cpu_total, peaks, out = 0.0, [], {}
    for i, row in enumerate(runs[0]["stages"]):
        stage = row["stage"]
        cells = []
        for r in runs:
            st = r["stages"][i]
            cells.append(f"{st['wall_s']:.0f} / {st['cpu_s']:.0f}, {st['peak_mb']}")
            total[r["scale"]][0] += st["wall_s"]
            total[r["scale"]][1] += st["cpu_s"]
        if len(runs) > 1:
            b, a = fit([(r["chunks"], r["stages"][i]["cpu_s"]) for r in runs])
            mb, ma = fit([(r["chunks"], r["stages"][i]["peak_mb"]) for r in runs])
        else:       # one scale: proportional growth of time, constant memory
            b, a = 1.0, runs[0]["stages"][i]["cpu_s"] / runs[0]["chunks"]
            mb, ma = 0.0, runs[0]["stages"][i]["peak_mb"]
        cpu, peak = a * FULL_CHUNKS ** b, ma * FULL_CHUNKS ** mb
        cpu_total += cpu
        peaks.append(peak)
        out[stage] = {"cpu_exponent": round(b, 2), "memory_exponent": round(mb, 2),
                      "predicted_cpu_s": round(cpu), "predicted_peak_mb": round(peak)}
        lines.append(f"| {stage} | " + " | ".join(cells) + f" | {b:.2f}, {mb:.2f} | "
                     f"{cpu / 3600:.2f} h, {cpu / cores / 3600:.2f} h, {peak:.0f} MB |")
    lines.append("| **total** | " + " | ".join(f"{w / 60:.0f} / {c / 60:.0f} min"
                                               for w, c in total.values())
                 + f" | | **{cpu_total / 3600:.2f} h, {cpu_total / cores / 3600:.2f} h**, "
                   f"peak {max(peaks):.0f} MB |")
    return "\n".join(lines), {"stages": out, "predicted_cpu_s": round(cpu_total),
                              "predicted_wall_s": round(cpu_total / cores),
                              "predicted_peak_mb": round(max(peaks))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", default="0.06,0.25")
    ap.add_argument("--work", default=str(REPO / ".cache" / "bench-scale"),
                    help="corpora, caches and results of the runs (default .cache/bench-scale)")
    ap.add_argument("--out", default=str(REPO / "bench-scale"),
                    help="where scale.md / scale.json go (default bench-scale/)")
    ap.add_argument("--features", default=None, help="feature sets (default: the grid's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--concurrent", type=int, default=1,
                    help="feature-set stages run side by side (default 1: one at a time)")
    ap.add_argument("--reuse", action="store_true",
                    help="keep a corpus folder that is there (stages then find work done)")
    ap.add_argument("--stage", choices=["denoised", "features"], help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    if args.stage == "denoised":
        return stage_denoised(args.root, args.seed)
    if args.stage == "features":
        return stage_features(args.root, args.seed, args.features)
    from refimpl.experiments.adapters import FEATURE_FACTORIES
    features = args.features.split(",") if args.features else list(FEATURE_FACTORIES)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "scale.log"
    runs = []
    for scale in args.scales.split(","):
        runs.append(run_scale(float(scale), args, features, log))
        md, summary = table(runs, os.cpu_count() or 1)
        (out / "scale.json").write_text(json.dumps({"runs": runs, **summary}, indent=1) + "\n")
        (out / "scale.md").write_text(
            f"# make reproduce CORPUS=aibo on the stand-in, per stage\n\n"
            f"Machine: {os.cpu_count()} cores. Wall and CPU time in seconds (CPU: user + "
            f"system of the stage's processes), peak memory in MB (the largest sum of their "
            f"proportional set sizes). Exponent b of CPU = a * chunks^b and of peak memory, "
            f"fitted on the scales run; the prediction for the paper's {FULL_CHUNKS} "
            f"chunks gives CPU time and CPU / cores, the wall time when every stage keeps "
            f"the cores busy (the conditions and the models run in worker processes or "
            f"threads, the grid extracts two feature sets side by side). Wall times "
            f"measured on a shared machine include waiting for it.\n\n" + md + "\n")
        print(md, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
