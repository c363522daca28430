"""The noisy and denoised conditions of a whole corpus, at any sample rate, into the cache.

    generate_noisy(corpus, seed)        # noisy/*.wav + noisy.csv (every drawn parameter)
    generate_denoised(corpus, seed)     # denoised/*.wav + denoised.csv (SI-SDR, segSNR)
    generate_conditions(corpus, seed)   # both, for the files that lack them, then
                                        # <corpus>.csv: the manifest of all three

The room is simulated at each clean file's own rate (refimpl.conditions.room_simulation); the
enhancer works at 16 kHz, so a file at another rate is resampled to 16 kHz, enhanced and
resampled back (refimpl.conditions.resample): its denoised version has nothing above
8 kHz, and the measures in denoised.csv are taken at 16 kHz, where the enhancer worked.

A file is made once: one already in the output folder, listed in its manifest with the
same seed and made from the same input (SHA-256), is kept. Files are spread over worker
processes (refimpl._util.parallel.map_files) and come out bit-identical to one process;
every file is written atomically.
"""
import csv
import json
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from refimpl._util import locations
from refimpl._util.atomic import atomic_open, atomic_path
from refimpl._util.digest import content_digest, text_digest
from refimpl._util.parallel import map_files
from refimpl.conditions.denoise import (FS, apply_mel_mask, enhance, ideal_ratio_mask,
                                        load_model, segmental_snr, si_sdr, stft)
from refimpl.conditions.noise_recordings import noise_dir, noise_pool
from refimpl.conditions.room_simulation import PARAM_COLUMNS, SPEC_FILE, noisy_file
from refimpl.conditions.resample import resample
from refimpl.corpus.table import DEFAULT_SEED, read_csv_rows, read_json
from refimpl.errors import CorpusError

__all__ = ["generate_noisy", "generate_denoised", "generate_conditions", "conditions_home",
           "lacking", "write_rows", "summarise", "summary_lines"]

MEASURES = ("si_sdr_noisy_db", "si_sdr_denoised_db", "si_sdr_ideal_mask_db",
            "segsnr_noisy_db", "segsnr_denoised_db", "segsnr_ideal_mask_db")
BUILT_IN = ("emodb", "aibo")


def conditions_home(corpus, seed=DEFAULT_SEED):
    """Where a corpus's generated conditions live: <cache>/conditions/<name>/seed<N> for
    the built-in corpora; a manifest's name is followed by a digest of the manifest's
    path, so two manifests that share a file name do not share their conditions."""
    name = corpus.name
    if name not in BUILT_IN:
        name += "-" + text_digest(str(Path(corpus.source or name).resolve()), 8)
    return locations.conditions_dir(name, seed)


def lacking(corpus, condition, out_dir=None):
    """The rows of `corpus` whose `condition` must be made: those without a file for it (an
    empty or missing path) and, with `out_dir` (where the conditions are generated), those
    whose file is one this module writes there (out_dir/<condition>/<file>) but has no row
    in its manifest (<condition>.csv): a file that a killed run's pool workers finished
    after the run itself was gone, its parameters never recorded."""
    column = "path_" + condition
    folder = Path(out_dir) / condition if out_dir else None
    recorded = _previous(Path(out_dir) / f"{condition}.csv") if out_dir else {}
    return [r for r in corpus.rows if not (r.get(column) and Path(r[column]).is_file())
            or (folder is not None and Path(r[column]) == folder / r["file"]
                and r["file"] not in recorded)]


def _previous(path):
    """{file: row} of a condition manifest written before, or {}."""
    return {r["file"]: r for r in read_csv_rows(path)} if Path(path).is_file() else {}


def _merged(previous, made):
    """The rows of a manifest after this run: earlier rows (replaced where remade), then the
    files new to it."""
    merged = dict(previous)
    merged.update((r["file"], r) for r in made)
    return list(merged.values())


_NOISE_CACHE = {}    # per process: noise recordings read once per rate


def _noisy_item(item):
    clean_path, out, name, partition, seed, pool, spec = item
    return noisy_file(clean_path, out, name, partition, seed, pool, spec, _NOISE_CACHE)


def generate_noisy(corpus, seed=DEFAULT_SEED, out_dir=None, noise_root=None, limit=None,
                   progress=True, jobs=None, log=print):
    """Write the noisy condition of a corpus and its manifest (noisy.csv); returns its path.
    `jobs` worker processes (default: every core); the files do not depend on it."""
    spec = read_json(SPEC_FILE)
    out_dir = Path(out_dir) if out_dir else conditions_home(corpus, seed)
    rows = corpus.rows[:limit] if limit else corpus.rows
    previous = _previous(out_dir / "noisy.csv")

    def kept(r):
        old = previous.get(r["file"])
        return (old is not None and old.get("seed") == str(int(seed))
                and (out_dir / "noisy" / r["file"]).is_file()
                and old.get("clean_sha256") == content_digest(r["path_clean"]))

    todo = [r for r in rows if not kept(r)]
    made = []
    if todo:
        pool = noise_pool(noise_root, log=log)
        items = [(r["path_clean"], out_dir / "noisy" / r["file"], r["file"], r["partition"],
                  seed, pool, spec) for r in todo]
        made = map_files(_noisy_item, items, jobs, f"noisy {corpus.name} seed {seed}", progress)
        for row, r in zip(made, todo):
            row["speaker"] = r["speaker"]
    path = out_dir / "noisy.csv"
    write_rows(path, _merged(previous, made), PARAM_COLUMNS)
    return path


def write_rows(path, rows, columns):
    with atomic_open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({k: (repr(float(v)) if isinstance(v, (float, np.floating)) else v)
                        for k, v in row.items()})


def generate_denoised(corpus, seed=DEFAULT_SEED, out_dir=None, limit=None, progress=True,
                      model=None, jobs=None, noisy_paths=None, log=None):
    """Denoise every noisy file; writes denoised/<file> and denoised.csv (with measures).
    The input is `noisy_paths` (one per row), by default out_dir/noisy/<file>. `jobs`
    worker processes (default: every core); the files do not depend on it. `log` (e.g.
    print) is given the summary of the enhancement's measures."""
    out_dir = Path(out_dir) if out_dir else conditions_home(corpus, seed)
    rows = corpus.rows[:limit] if limit else corpus.rows
    if noisy_paths is None:
        noisy_paths = [out_dir / "noisy" / r["file"] for r in rows]
    inputs = dict(zip((r["file"] for r in rows), map(Path, noisy_paths)))
    for r in rows:
        if not inputs[r["file"]].is_file():
            raise CorpusError(f"{inputs[r['file']]}: no noisy audio for {r['file']}; "
                              "generate the noisy condition first")
    previous = _previous(out_dir / "denoised.csv")

    def kept(r):
        old = previous.get(r["file"])
        return (old is not None and (out_dir / "denoised" / r["file"]).is_file()
                and old.get("noisy_sha256") == content_digest(inputs[r["file"]]))

    todo = [r for r in rows if not kept(r)]
    made = []
    if todo:
        model = load_model() if model is None else model
        items = [(inputs[r["file"]], r["path_clean"], out_dir / "denoised" / r["file"])
                 for r in todo]
        measured = map_files(_denoise_item, items, jobs, f"denoised {corpus.name} seed {seed}",
                             progress, initializer=_set_model, initargs=(model,))
        made = [{"file": r["file"], "speaker": r["speaker"], "partition": r["partition"], **m}
                for r, m in zip(todo, measured)]
    manifest = _merged(previous, made)
    for r in manifest:
        r.update({k: float(r[k]) for k in MEASURES})
    manifest_path = out_dir / "denoised.csv"
    write_rows(manifest_path, manifest, ["file", "speaker", "partition", *MEASURES,
                                         "sample_rate_hz", "noisy_sha256", "path_denoised"])
    summary = summarise(manifest)
    with atomic_open(out_dir / "enhancement.json", "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    for line in summary_lines(summary) if log else ():
        log(line)
    return manifest_path


_MODEL = {}   # per process: the enhancer's weights, set once by _set_model


def _set_model(model):
    _MODEL["model"] = model


def _denoise_item(item):
    """Denoise one file (at 16 kHz, resampled from and back to its own rate) and measure
    it at 16 kHz; returns its manifest columns."""
    noisy_path, clean_path, path = item
    noisy, fs = sf.read(str(noisy_path), dtype="float64")
    clean, clean_fs = sf.read(str(clean_path), dtype="float64")
    noisy16 = resample(noisy, fs, FS)
    out = resample(enhance(noisy16, _MODEL["model"]), FS, fs, length=len(noisy))
    peak = np.max(np.abs(out))
    if peak > 0.99:
        out = out * (0.99 / peak)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), out, fs, subtype="PCM_16", format="WAV")
    written, _ = sf.read(str(path), dtype="float64")
    clean16, written16 = resample(clean, clean_fs, FS), resample(written, fs, FS)
    # Context for the figures: the same resynthesis with the ideal Mel mask (computed
    # from the clean signal), the ceiling of any enhancer of this form.
    noisy_spec = stft(noisy16)
    ideal = apply_mel_mask(noisy_spec, ideal_ratio_mask(stft(clean16), noisy_spec),
                           len(noisy16))
    return {"si_sdr_noisy_db": si_sdr(clean16, noisy16),
            "si_sdr_denoised_db": si_sdr(clean16, written16),
            "si_sdr_ideal_mask_db": si_sdr(clean16, ideal),
            "segsnr_noisy_db": segmental_snr(clean16, noisy16),
            "segsnr_denoised_db": segmental_snr(clean16, written16),
            "segsnr_ideal_mask_db": segmental_snr(clean16, ideal),
            "sample_rate_hz": fs, "noisy_sha256": content_digest(noisy_path),
            "path_denoised": str(path)}


def summarise(rows):
    out = {}
    for part in ("train", "test"):
        sub = [r for r in rows if r["partition"] == part]
        if sub:
            out[part] = {"files": len(sub)}
            for k in MEASURES:
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
                        log=print, out_dir=None, download_noise=False, jobs=None):
    """The noisy condition, then the denoised one (`only` one of them), for every file of
    the corpus that lacks it, into `out_dir` (default conditions_home); the corpus's rows
    then point at them. Unless `limit` cut the corpus short, <corpus>.csv is written beside
    them: the corpus manifest with the paths of all three conditions, which load_corpus
    reads back. Returns that manifest's path (None with `limit`).

    A noisy file the corpus brings (FAU-AIBO's room microphone) is denoised as it is; the
    noise comes from `noise_root` (--noise-dir), the shared data, or the copy downloaded
    on request (`download_noise`; refimpl.conditions.noise_recordings).
    """
    out_dir = Path(out_dir) if out_dir else conditions_home(corpus, seed)
    rows = corpus.rows[:limit] if limit else corpus.rows
    view = type(corpus)(corpus.name, corpus.tasks, rows, corpus.source)
    if only in (None, "noisy"):
        todo = lacking(view, "noisy", out_dir)
        if todo:
            t = time.perf_counter()
            root = noise_dir(noise_root, download_missing=download_noise, log=log)
            path = generate_noisy(type(corpus)(corpus.name, corpus.tasks, todo, corpus.source),
                                  seed, out_dir, root, progress=True, jobs=jobs, log=log)
            for r in todo:
                r["path_noisy"] = str(out_dir / "noisy" / r["file"])
            log(f"noisy condition of {len(todo)} file(s): {path} "
                f"({time.perf_counter() - t:.1f} s)")
    if only in (None, "denoised"):
        todo = lacking(view, "denoised", out_dir)
        if todo:
            t = time.perf_counter()
            path = generate_denoised(type(corpus)(corpus.name, corpus.tasks, todo,
                                                  corpus.source),
                                     seed, out_dir, jobs=jobs,
                                     noisy_paths=[r["path_noisy"] for r in todo], log=log)
            for r in todo:
                r["path_denoised"] = str(out_dir / "denoised" / r["file"])
            log(f"denoised condition of {len(todo)} file(s): {path} "
                f"({time.perf_counter() - t:.1f} s)")
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
