"""The noisy and denoised conditions of a whole corpus, generated into the cache.

    generate_noisy(corpus, seed)        # noisy/*.wav + noisy.csv (every drawn parameter)
    generate_denoised(corpus, seed)     # denoised/*.wav + denoised.csv (SI-SDR, segSNR)
    generate_conditions(corpus, seed)   # both, then <corpus>.csv: the manifest of all three

Files are spread over worker processes (refimpl._util.parallel.map_files) and come out
bit-identical to one process; every file is written atomically.
"""
import csv
import json
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from refimpl._util import locations
from refimpl._util.atomic import atomic_open, atomic_path
from refimpl._util.parallel import map_files
from refimpl.conditions.denoise import (apply_mel_mask, enhance, ideal_ratio_mask, load_model,
                                        segmental_snr, si_sdr, stft)
from refimpl.conditions.noisy import PARAM_COLUMNS, SPEC_FILE, noise_pool, noisy_file
from refimpl.corpus.table import DEFAULT_SEED, read_json
from refimpl.errors import CorpusError

__all__ = ["generate_noisy", "generate_denoised", "generate_conditions", "write_rows",
           "summarise", "summary_lines"]


_NOISE_CACHE = {}    # per process: noise recordings read once


def _noisy_item(item):
    clean_path, out, name, partition, seed, pool, spec = item
    return noisy_file(clean_path, out, name, partition, seed, pool, spec, _NOISE_CACHE)


def generate_noisy(corpus, seed=DEFAULT_SEED, out_dir=None, noise_root=None, limit=None,
                   progress=True, jobs=None):
    """Write the noisy condition of a corpus and its manifest (noisy.csv); returns its path.
    `jobs` worker processes (default: every core); the files do not depend on it."""
    spec = read_json(SPEC_FILE)
    out_dir = Path(out_dir) if out_dir else locations.conditions_dir(corpus.name, seed)
    pool = noise_pool(noise_root)
    rows = corpus.rows[:limit] if limit else corpus.rows
    items = [(r["path_clean"], out_dir / "noisy" / r["file"], r["file"], r["partition"], seed,
              pool, spec) for r in rows]
    manifest = map_files(_noisy_item, items, jobs, f"noisy {corpus.name} seed {seed}", progress)
    for row, r in zip(manifest, rows):
        row["speaker"] = r["speaker"]
    path = out_dir / "noisy.csv"
    write_rows(path, manifest, PARAM_COLUMNS)
    return path


def write_rows(path, rows, columns):
    with atomic_open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({k: (repr(float(v)) if isinstance(v, (float, np.floating)) else v)
                        for k, v in row.items()})


def generate_denoised(corpus, seed=DEFAULT_SEED, out_dir=None, limit=None, progress=True,
                      model=None, jobs=None, noisy_paths=None):
    """Denoise every noisy file; writes denoised/<file> and denoised.csv (with measures).
    The input is `noisy_paths` (one per row), by default out_dir/noisy/<file>. `jobs`
    worker processes (default: every core); the files do not depend on it."""
    model = load_model() if model is None else model
    out_dir = Path(out_dir) if out_dir else locations.conditions_dir(corpus.name, seed)
    rows = corpus.rows[:limit] if limit else corpus.rows
    if noisy_paths is None:
        noisy_paths = [out_dir / "noisy" / r["file"] for r in rows]
    noisy_paths = [Path(p) for p in noisy_paths][:len(rows)]
    for noisy_path in noisy_paths:
        if not noisy_path.is_file():
            raise CorpusError(f"{noisy_path}: no noisy audio; generate the noisy condition "
                              "first")
    items = [(noisy_path, r["path_clean"], out_dir / "denoised" / r["file"])
             for noisy_path, r in zip(noisy_paths, rows)]
    measured = map_files(_denoise_item, items, jobs, f"denoised {corpus.name} seed {seed}",
                         progress, initializer=_set_model, initargs=(model,))
    manifest = [{"file": r["file"], "speaker": r["speaker"], "partition": r["partition"], **m}
                for r, m in zip(rows, measured)]
    manifest_path = out_dir / "denoised.csv"
    write_rows(manifest_path, manifest, list(manifest[0]) if manifest else ["file"])
    summary = summarise(manifest)
    with atomic_open(out_dir / "enhancement.json", "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    for line in summary_lines(summary):
        print(line)
    return manifest_path


_MODEL = {}   # per process: the enhancer's weights, set once by _set_model


def _set_model(model):
    _MODEL["model"] = model


def _denoise_item(item):
    """Denoise one file and measure it; returns its manifest columns."""
    noisy_path, clean_path, path = item
    noisy, fs = sf.read(str(noisy_path), dtype="float64")
    clean, _ = sf.read(str(clean_path), dtype="float64")
    out = enhance(noisy, _MODEL["model"])
    peak = np.max(np.abs(out))
    if peak > 0.99:
        out = out * (0.99 / peak)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), out, fs, subtype="PCM_16", format="WAV")
    written, _ = sf.read(str(path), dtype="float64")
    # Context for the figures: the same resynthesis with the ideal Mel mask (computed
    # from the clean signal), the ceiling of any enhancer of this form.
    noisy_spec = stft(noisy)
    ideal = apply_mel_mask(noisy_spec, ideal_ratio_mask(stft(clean), noisy_spec), len(noisy))
    return {"si_sdr_noisy_db": si_sdr(clean, noisy),
            "si_sdr_denoised_db": si_sdr(clean, written),
            "si_sdr_ideal_mask_db": si_sdr(clean, ideal),
            "segsnr_noisy_db": segmental_snr(clean, noisy),
            "segsnr_denoised_db": segmental_snr(clean, written),
            "segsnr_ideal_mask_db": segmental_snr(clean, ideal),
            "path_denoised": str(path)}


def summarise(rows):
    out = {}
    for part in ("train", "test"):
        sub = [r for r in rows if r["partition"] == part]
        if sub:
            out[part] = {"files": len(sub)}
            for k in ("si_sdr_noisy_db", "si_sdr_denoised_db", "si_sdr_ideal_mask_db",
                      "segsnr_noisy_db", "segsnr_denoised_db", "segsnr_ideal_mask_db"):
                out[part][k] = float(np.mean([r[k] for r in sub]))
    return out


def summary_lines(summary):
    lines = []
    for part, s in summary.items():
        lines.append(f"{part} ({s['files']} files): SI-SDR {s['si_sdr_noisy_db']:.2f} -> "
                     f"{s['si_sdr_denoised_db']:.2f} dB, segSNR {s['segsnr_noisy_db']:.2f} -> "
                     f"{s['segsnr_denoised_db']:.2f} dB (noisy -> denoised; ideal Mel mask: "
                     f"{s['si_sdr_ideal_mask_db']:.2f} / {s['segsnr_ideal_mask_db']:.2f} dB)")
    return lines




def generate_conditions(corpus, seed=DEFAULT_SEED, only=None, noise_root=None, limit=None,
                        log=print):
    """The noisy condition, then the denoised one (`only` one of them), then, unless
    `limit` cut the corpus short, <corpus>.csv beside them: the corpus manifest with the
    paths of all three conditions. Returns that manifest's path (None with `limit`)."""
    out_dir = locations.conditions_dir(corpus.name, seed)
    if only in (None, "noisy"):
        t = time.perf_counter()
        path = generate_noisy(corpus, seed, out_dir, noise_root, limit)
        log(f"noisy condition: {path} ({time.perf_counter() - t:.1f} s)")
    if only in (None, "denoised"):
        t = time.perf_counter()
        path = generate_denoised(corpus, seed, out_dir, limit=limit)
        log(f"denoised condition: {path} ({time.perf_counter() - t:.1f} s)")
    if limit:
        return None
    # Conditions not generated (yet) are left empty so that the manifest loads.
    for r in corpus.rows:
        for cond in ("noisy", "denoised"):
            if r["path_" + cond] and not Path(r["path_" + cond]).is_file():
                r["path_" + cond] = ""
    manifest = out_dir / f"{corpus.name}.csv"     # load_corpus(path) names it after the file
    corpus.to_manifest(manifest)
    log(f"corpus manifest with all conditions: {manifest}")
    return manifest
