"""A generated stand-in for FAU-AIBO in its distribution layout, at the paper's scale.

Long because: one recipe read top to bottom (scaled counts, plan, audio, writing, the
check), its parts sharing the stand-in's constants.

FAU-AIBO is licensed, so nothing here has seen the corpus the paper ran: 17 076 chunks,
9 190 from school Ohm (train) and 7 886 from school Mont (test), with close-talk and
room-microphone recordings. This module writes a corpus with the same layout, chunk ids,
speakers, folds and per-class counts (the paper's Tables 3 and 4), so that the AIBO code
path (refimpl.corpus.aibo and everything after it) and the cost of the paper's scale can be
exercised:

    refimpl corpus standin aibo -o DIR [--scale 1.0] [--seed 0] [--jobs N] [--no-noisy]
    refimpl corpus check aibo --root DIR --noisy-dir DIR/room   # the stand-in's own counts
    make reproduce CORPUS=aibo AIBO_ROOT=DIR

It is for cost, scale and the code path, never for UARs: the audio is EmoDB speech cut into
chunks, and which EmoDB file a chunk comes from does not depend on its label, so a classifier
trained on it should score chance (about 0.5 UAR for 2 classes, 0.2 for 5); anything clearly
above that points at label leakage somewhere in the pipeline.

What is written (DIR):
    labels/IS2009EmotionChallenge/chunk_labels_2cl_corpus.txt   '<chunk_id> <IDL|NEG> <conf>'
    labels/IS2009EmotionChallenge/chunk_labels_5cl_corpus.txt   '<chunk_id> <A|E|N|P|R> <conf>'
    wav/<chunk_id>.wav     close talk: a 1-3 s segment of an EmoDB file at a drawn level
    room/<chunk_id>.wav    room microphone: the noisy condition's simulated room
                           (room_simulation.py,
                           its RIR by rir.py), unless --no-noisy
    chunks.csv             every drawn value per chunk (source segment, level, room, SNR)
    STANDIN.md, STANDIN.json   what this is; the settings (a resumed run must match them)

Layout and labels depend on the scale only (a fixed plan seed); `--seed` varies the audio,
which is drawn per chunk from (seed, chunk id), as refimpl.conditions draws its rooms: each
chunk is reproducible bit for bit on its own, in any order and with any --jobs. Every file is
written atomically, so an interrupted run is resumed by running the same command again:
chunks already present and complete are not made again.
"""
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf

from refimpl._util import locations
from refimpl._util.atomic import atomic_open, atomic_path
from refimpl._util.digest import file_digest
from refimpl._util.parallel import map_files
from refimpl.audio import to_pcm16
from refimpl.conditions.generate import write_rows
from refimpl.conditions.noise_recordings import noise_pool
from refimpl.conditions.room_simulation import (SPEC_FILE, draw_parameters, file_seed,
                                                noisy_file, read_mono)
from refimpl.corpus.aibo import ROOM_DIR, STANDIN_MARK
from refimpl.corpus.table import read_json
from refimpl.errors import AudioError, CorpusError, UsageError

SAMPLE_RATE = 16000
PARTITIONS = ("train", "test")
SCHOOL = {"train": "Ohm", "test": "Mont"}
# The real corpus has 26 Ohm and 25 Mont children. Ohm's speaker numbers lie in the paper's
# inner folds (1-16 and 18-32; 31 numbers for 26 children), Mont's are numbered on their own.
OHM_FOLD_NUMBERS = {1: range(1, 17), 2: range(18, 33)}
OHM_SPEAKERS_PER_FOLD = 13
MONT_SPEAKERS = 25
# Layout and labels come from this fixed seed (only the scale changes them): --seed is the
# audio's, like the conditions' seed, and must not move chunks between speakers or classes.
PLAN_SEED = 2009
# Short chunks of 1-3 s as in FAU-AIBO; a chunk's RMS level (relative to its EmoDB source
# file's) drawn over a range like different children at different distances from the headset.
CHUNK_SECONDS = (1.0, 3.0)
LEVEL_DBFS = (-32.0, -16.0)
FADE_SECONDS = 0.010          # raised-cosine fade at both cut edges: no clicks from the cut
PEAK_LIMIT = 0.99
TASK_FILES = {"idl_neg": "chunk_labels_2cl_corpus.txt", "class5": "chunk_labels_5cl_corpus.txt"}
# The shared table (aibo_counts.csv) names the five classes; the label files use letters.
CLASS5_LETTERS = {"Angry": "A", "Emphatic": "E", "Neutral": "N", "Positive": "P", "Rest": "R"}
SETTINGS_VERSION = 1


# ----------------------------------------------------------------------------------------
# Counts: the paper's tables, scaled


def paper_counts():
    """{partition: {"idl_neg": {IDL, NEG}, "class5": {A, E, N, P, R}}} of the paper's Tables
    3 and 4 (matched close-talk / room-microphone chunks), as recorded in data/aibo.json."""
    matched = read_json("aibo.json")["expected_counts"]["matched"]
    out = {}
    for part in PARTITIONS:
        table = matched[part]
        if not table.get("idl_neg") or not table.get("class5"):
            raise CorpusError("data/aibo.json: the matched per-class counts are not filled in")
        out[part] = {"idl_neg": dict(table["idl_neg"]), "class5": dict(table["class5"])}
        for task in ("idl_neg", "class5"):
            if sum(out[part][task].values()) != table["total"]:
                raise CorpusError(f"data/aibo.json: {part} {task} counts do not add up to "
                                f"{table['total']}")
    return out


def _as_fraction(scale):
    value = Fraction(str(scale))   # exact decimal: 0.01 * 839 is 8.39, not 8.3899999
    if not 0 < value <= 1:
        raise UsageError(f"--scale {scale}: must be in (0, 1] (1 = the paper's 17 076 chunks)")
    return value


def _hamilton(quota, seats, minimum):
    """{key: exact quota} -> {key: integer}, `seats` in all (the largest-remainder method):
    every key gets the integer part of its quota, the seats left go to the largest fractional
    parts (ties: the key listed first). No key gets fewer than `minimum`; seats lifted that
    way are taken back from the keys above the minimum with the smallest fractional parts."""
    keys = list(quota)
    alloc = {k: max(minimum, math.floor(quota[k])) for k in keys}
    rank = lambda k: (quota[k] - math.floor(quota[k]), -keys.index(k))
    left = seats - sum(alloc.values())
    if left > 0:
        unlifted = [k for k in keys if alloc[k] == math.floor(quota[k])]
        for k in sorted(unlifted, key=rank, reverse=True)[:left]:
            alloc[k] += 1
    while left < 0:
        k = min((k for k in keys if alloc[k] > minimum), key=rank)
        alloc[k] -= 1
        left += 1
    return alloc


def largest_remainder(counts, scale, minimum=1):
    """Scale {class: n} by `scale` to round(scale * total) in all (halves up), by the
    largest-remainder method, at least `minimum` per class."""
    exact = _as_fraction(scale)
    seats = math.floor(exact * sum(counts.values()) + Fraction(1, 2))
    if seats < minimum * len(counts):
        raise UsageError(f"--scale {scale}: {seats} chunk(s) for the {len(counts)} classes "
                        f"{', '.join(counts)}; at least {minimum} each is needed")
    return _hamilton({c: exact * n for c, n in counts.items()}, seats, minimum)


def scaled_counts(scale=1.0):
    """{partition: {(class5 letter, idl_neg label): n}}: the joint counts of the stand-in.

    FAU-AIBO's two label sets group the same word labels two ways: the five classes are
    Angry (angry, touchy, reprimanding), Emphatic, Neutral, Positive (motherese, joyful) and
    Rest (the other states); the two classes put angry, touchy, reprimanding and emphatic
    words in NEG and all others in IDL, and each chunk gets a label by a vote over its words
    in each set. A chunk labelled A or E is thus NEG as well, an N or P chunk IDL, while a
    Rest chunk (other states, or words split without a five-class majority) can go either
    way. The paper's counts bear this out, the Rest chunks taking up the difference:
        train: NEG 3224 = A 839 + E 2013 + 372 of R's 679;  IDL 5966 = N 5026 + P 633 + 307
        test:  NEG 2418 = A 600 + E 1481 + 337 of R's 517;  IDL 5468 = N 5082 + P 206 + 180
    So A, E -> NEG; N, P -> IDL; R/NEG = NEG - A - E, and R/IDL the other Rest chunks: a
    joint table that meets both published ones exactly. (The real corpus may hold a few
    chunks that cross otherwise, e.g. an N chunk whose angry and emphatic words together
    outvote its neutral ones, balanced by as many more R/IDL; marginals cannot show that,
    and this is the assignment with no such crossing.) At other scales each table is scaled
    on its own (largest_remainder, per partition, at least one per class) and the R split
    follows from them the same way.
    """
    table = paper_counts()
    out = {}
    for part in PARTITIONS:
        t2, t5 = table[part]["idl_neg"], table[part]["class5"]
        if set(t5) != set(CLASS5_LETTERS.values()) or set(t2) != {"IDL", "NEG"}:
            raise CorpusError("data/aibo.json: matched counts need classes IDL/NEG and A/E/N/P/R")
        c2, c5 = largest_remainder(t2, scale), largest_remainder(t5, scale)
        rest_neg = c2["NEG"] - c5["A"] - c5["E"]
        if not 0 <= rest_neg <= c5["R"] or sum(c2.values()) != sum(c5.values()):
            raise UsageError(f"--scale {scale}: the scaled 2-class ({c2}) and 5-class ({c5}) "
                            f"counts of {part} cannot be made consistent; pick another scale")
        out[part] = {("A", "NEG"): c5["A"], ("E", "NEG"): c5["E"], ("N", "IDL"): c5["N"],
                     ("P", "IDL"): c5["P"], ("R", "NEG"): rest_neg,
                     ("R", "IDL"): c5["R"] - rest_neg}
    return out


def marginals(joint):
    """{(class5, idl_neg): n} -> ({IDL, NEG}, {A, E, N, P, R}) in class order."""
    c2 = {"IDL": 0, "NEG": 0}
    c5 = {c: 0 for c in "AENPR"}
    for (l5, l2), n in joint.items():
        c2[l2] += n
        c5[l5] += n
    return c2, c5


def expected_counts(scale=1.0):
    """{partition: {"total", "idl_neg", "class5"}}: the class counts of the stand-in at
    `scale`, in the form refimpl.corpus.compare_counts takes."""
    out = {}
    for part, joint in scaled_counts(scale).items():
        c2, c5 = marginals(joint)
        out[part] = {"total": sum(c2.values()), "idl_neg": c2, "class5": c5}
    return out


def counts_to_check(root):
    """(source, expected counts) that `refimpl corpus check aibo` compares the stand-in in
    `root` with, or None where `root` holds no stand-in (no STANDIN.json). A stand-in has
    the paper's counts scaled by its --scale, so below scale 1 the paper's own counts
    cannot match: it is checked against the scaled ones its settings record."""
    path = Path(root).expanduser() / STANDIN_MARK
    if not path.is_file():
        return None
    try:
        with open(path, encoding="utf-8") as f:
            scale = json.load(f)["scale"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CorpusError(f"{path}: not the settings of a stand-in ({type(e).__name__}: {e})") \
            from None
    return (f"the stand-in's own counts (the paper's matched counts at scale {scale}, "
            f"{STANDIN_MARK})", expected_counts(scale))


def check_command(out, noisy=True):
    """The command that checks a stand-in written to `out` (see counts_to_check)."""
    return (f"refimpl corpus check aibo --root {out}"
            + (f" --noisy-dir {Path(out) / ROOM_DIR}" if noisy else ""))


# ----------------------------------------------------------------------------------------
# The plan: chunk ids, speakers, folds, labels (from the scale and PLAN_SEED only)


@dataclass(frozen=True)
class Chunk:
    id: str            # Ohm_NN_TTT_CC / Mont_NN_TTT_CC
    speaker: str       # Ohm_NN
    partition: str
    fold: int          # 1 or 2 in train, 0 in test
    class5: str
    idl_neg: str
    conf5: float
    conf2: float


def _speaker_numbers(rng):
    """{partition: [(number, fold)]}, interleaved by fold so any prefix holds both folds."""
    folds = {f: sorted(rng.choice(list(r), OHM_SPEAKERS_PER_FOLD, replace=False).tolist())
             for f, r in OHM_FOLD_NUMBERS.items()}
    ohm = [(n, f) for pair in zip(folds[1], folds[2]) for n, f in zip(pair, (1, 2))]
    return {"train": ohm, "test": [(n, 0) for n in range(1, MONT_SPEAKERS + 1)]}


def _chunk_ids(rng, school, number, n):
    """n chunk ids of one child: turns of 1-5 chunks (1.7 on average), turn numbers rising
    with a few gaps (turns without a chunk), as in <school>_<child>_<turn>_<chunk>."""
    ids, turn = [], int(rng.integers(0, 3))
    while len(ids) < n:
        if turn > 999:
            raise UsageError(f"{school}_{number:02d}: {n} chunks need more than 1000 turns")
        in_turn = min(int(rng.geometric(0.6)), 5, n - len(ids))
        ids += [f"{school}_{number:02d}_{turn:03d}_{k:02d}" for k in range(in_turn)]
        turn += int(rng.geometric(0.8))
    return ids


def plan(scale=1.0):
    """Every chunk of the stand-in, sorted by id (the order of the label files)."""
    joint = scaled_counts(scale)
    rng = np.random.default_rng(PLAN_SEED)
    speakers = _speaker_numbers(rng)
    # How many chunks each child has: uneven, as children spoke more or less (gamma weights,
    # coefficient of variation 0.5); drawn before anything that depends on the scale.
    weights = {p: rng.gamma(4.0, size=len(speakers[p])) for p in PARTITIONS}
    chunks = []
    for part in PARTITIONS:
        total = sum(joint[part].values())
        spk = speakers[part][:total]   # tiny scales: no child without a chunk
        w = [Fraction(float(x)) for x in weights[part][:len(spk)]]
        per = _hamilton({i: x * total / sum(w) for i, x in enumerate(w)}, total, 1)
        ids = [(cid, f"{SCHOOL[part]}_{number:02d}", fold)
               for i, (number, fold) in enumerate(spk)
               for cid in _chunk_ids(rng, SCHOOL[part], number, per[i])]
        ids.sort()
        labels = [cell for cell, n in joint[part].items() for _ in range(n)]
        order = rng.permutation(len(labels))
        conf = rng.uniform(0.4, 1.0, size=(len(labels), 2)).round(2)
        for (cid, speaker, fold), i, (c5, c2) in zip(ids, order, conf):
            l5, l2 = labels[i]
            chunks.append(Chunk(cid, speaker, part, fold, l5, l2, float(c5), float(c2)))
    return sorted(chunks, key=lambda c: c.id)


# ----------------------------------------------------------------------------------------
# Close talk: a segment of an EmoDB file


def source_files(source=None):
    """The sorted 16 kHz mono .wav files of the source folder (default: EmoDB's wav/) and
    their lengths in samples; a file that does not fit is named."""
    folder = Path(source) if source else locations.shared_data() / "emodb" / "wav"
    files = sorted(folder.glob("*.wav")) if folder.is_dir() else []
    if not files:
        raise CorpusError(f"{folder}: no .wav files to cut chunks from (give --source)")
    lengths = []
    for f in files:
        try:
            info = sf.info(str(f))
        except (RuntimeError, sf.LibsndfileError) as e:
            raise AudioError(f"{f}: cannot read audio ({e})") from None
        if info.samplerate != SAMPLE_RATE or info.channels != 1:
            raise AudioError(f"{f}: {info.samplerate} Hz, {info.channels} channel(s); the "
                            f"stand-in needs {SAMPLE_RATE} Hz mono sources")
        if info.frames < SAMPLE_RATE * CHUNK_SECONDS[0] / 2:
            raise AudioError(f"{f}: only {info.frames} samples; too short to cut a chunk from")
        lengths.append(info.frames)
    return files, lengths


def draw_chunk(seed, chunk_id, lengths):
    """The drawn values of one close-talk chunk: which source, where, how long, how loud."""
    # "clean:" keeps this stream apart from the room's, which is seeded by (seed, file name)
    # exactly as the noisy condition seeds it for any corpus (room_simulation.file_seed).
    rng = np.random.default_rng(file_seed(seed, "clean:" + chunk_id))
    index = int(rng.integers(len(lengths)))
    wanted = int(round(rng.uniform(*CHUNK_SECONDS) * SAMPLE_RATE))
    samples = min(wanted, lengths[index])
    start = int(rng.integers(0, lengths[index] - samples + 1))
    level_dbfs = float(rng.uniform(*LEVEL_DBFS))
    return {"source_index": index, "source_start": start, "samples": samples,
            "level_dbfs": level_dbfs}


def cut_chunk(source_signal, draw):
    """int16 samples of the chunk, and the gain applied: the segment scaled so that its
    source file's RMS would sit at the drawn level, faded at both edges, never above
    PEAK_LIMIT, rounded to 16-bit PCM."""
    rms = np.sqrt(np.mean(source_signal ** 2))
    gain = 10 ** (draw["level_dbfs"] / 20) / max(rms, 1e-9)
    start = draw["source_start"]
    x = source_signal[start:start + draw["samples"]] * gain
    fade = min(int(FADE_SECONDS * SAMPLE_RATE), len(x) // 2)
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(fade) + 0.5) / fade)
    x[:fade] *= ramp
    x[len(x) - fade:] *= ramp[::-1]
    peak = np.max(np.abs(x))
    if peak > PEAK_LIMIT:
        x *= PEAK_LIMIT / peak
        gain *= PEAK_LIMIT / peak
    return to_pcm16(x), float(gain)


# ----------------------------------------------------------------------------------------
# Writing the corpus


def _write_wav(path, samples):
    with atomic_path(path) as tmp:
        sf.write(str(tmp), samples, SAMPLE_RATE, subtype="PCM_16", format="WAV")


def _complete(path, frames):
    """A file left by an earlier run: every file is renamed into place only once written,
    so one that is there with the header of the chunk's drawn length is the chunk."""
    if not path.is_file():
        return False
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError):
        return False
    return (info.samplerate == SAMPLE_RATE and info.channels == 1 and info.frames == frames
            and info.subtype == "PCM_16" and info.format == "WAV")


_WORKER = {}     # per process: the sources, the noise pool and recordings, the settings


def _init_worker(settings):
    _WORKER.clear()
    _WORKER.update(settings, noise_cache={})


def _make_chunk(item):
    """Draw one chunk, write what is missing; returns (chunks.csv row, timings)."""
    chunk_id, partition = item
    w = _WORKER
    out, seed = Path(w["out"]), w["seed"]
    draw = draw_chunk(seed, chunk_id, w["lengths"])
    source = Path(w["sources"][draw["source_index"]])
    row = {"chunk_id": chunk_id, "source_file": source.name,
           "source_start": draw["source_start"], "samples": draw["samples"],
           "level_dbfs": draw["level_dbfs"]}
    timings = {}
    clean_path = out / "wav" / f"{chunk_id}.wav"
    if not _complete(clean_path, draw["samples"]):
        t0 = time.perf_counter()
        signal, _ = read_mono(source)
        pcm, _ = cut_chunk(signal, draw)
        _write_wav(clean_path, pcm)
        timings["clean"] = time.perf_counter() - t0
    if w["noisy"]:
        name = f"{chunk_id}.wav"
        # The room of this chunk, drawn as noisy_file draws it, for chunks.csv.
        params = draw_parameters(np.random.default_rng(file_seed(seed, name)), w["spec"],
                                 partition, w["pool"])
        noise_root = Path(params["noise_file"]).parent.parent
        row.update({k: v for k, v in params.items() if k not in ("noise_file", "noise_unit")},
                   noise_file=str(Path(params["noise_file"]).relative_to(noise_root)))
        room_path = out / ROOM_DIR / name
        if not _complete(room_path, draw["samples"]):
            # the room microphone is the noisy condition of the close-talk chunk, file for
            # file what `refimpl corpus conditions` would make of it
            t0 = time.perf_counter()
            noisy_file(clean_path, room_path, name, partition, seed, w["pool"], w["spec"],
                       w["noise_cache"])
            timings["room"] = time.perf_counter() - t0
    return row, timings


CHUNK_COLUMNS = [
    "chunk_id", "speaker", "partition", "fold", "class5", "idl_neg", "source_file",
    "source_start", "samples", "level_dbfs", "room_length_m", "room_width_m",
    "room_height_m", "rt60_s", "source_x_m", "source_y_m", "source_z_m", "mic_x_m",
    "mic_y_m", "mic_z_m", "distance_m", "noise_file", "snr_db",
]


def _settings_record(scale, seed, sources, source_dir):
    digest = hashlib.sha256()
    for f in sources:
        digest.update(f"{f.name} {file_digest(f)}\n".encode("utf-8"))
    return {"corpus": "aibo-standin", "version": SETTINGS_VERSION, "scale": str(scale),
            "seed": int(seed), "source": str(source_dir), "source_files": len(sources),
            "source_sha256": digest.hexdigest()}


def _claim(out, record):
    """Write STANDIN.json, or check that the one there is ours: resuming with other
    settings would mix two corpora in one folder."""
    path = out / STANDIN_MARK
    if path.is_file():
        with open(path, encoding="utf-8") as f:
            old = json.load(f)
        keys = ("corpus", "version", "scale", "seed", "source_sha256")
        if any(old.get(k) != record[k] for k in keys):
            was = ", ".join(f"{k} {old.get(k)}" for k in ("scale", "seed", "source"))
            raise UsageError(f"{path}: this folder holds a stand-in made with {was}; resume "
                            f"with those settings or choose another folder")
    elif (out / "wav").exists() or (out / "labels").exists():
        raise UsageError(f"{out}: has wav/ or labels/ but no {STANDIN_MARK}; not a stand-in "
                        f"folder, choose another")
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2)
        f.write("\n")


NOTE = """# A generated stand-in for FAU-AIBO: not FAU-AIBO

Written by `refimpl corpus standin aibo` (refimpl/conditions/standin.py): {total} chunks in the
layout of the FAU Aibo Emotion Corpus as distributed for the Interspeech 2009 Emotion
Challenge, with the paper's speaker and per-class counts (Cummins et al. 2017, Tables 3 and
4; scale {scale}), chunk ids `Ohm_NN_TTT_CC` (train, inner folds by speaker number 1-16 /
18-32) and `Mont_NN_TTT_CC` (test).

It is for cost, scale and the AIBO code path only, never for UARs. The close-talk audio
(wav/) is EmoDB speech (adult actors, German sentences), cut into 1-3 s chunks at drawn
levels; the room microphone (room/) is the noisy condition's simulated room
(refimpl/conditions/room_simulation.py). The label of a
chunk has nothing to do with its audio, so classifiers should score chance on it (UAR about
0.5 for 2 classes, 0.2 for 5): markedly more points at label leakage in the pipeline.

Settings: STANDIN.json. Every drawn value per chunk: chunks.csv. Check its counts (the
paper's, scaled) with
    {check}
"""


def write_labels(out, chunks):
    """The two label files of the challenge layout, '<chunk_id> <label> <confidence>'."""
    folder = out / "labels" / "IS2009EmotionChallenge"
    for task, name in TASK_FILES.items():
        with atomic_open(folder / name, "w", encoding="utf-8", newline="\n") as f:
            for c in chunks:
                label, conf = (c.idl_neg, c.conf2) if task == "idl_neg" else (c.class5, c.conf5)
                f.write(f"{c.id} {label} {conf:.2f}\n")


def count_lines(chunks):
    """The per-partition class counts of a plan, as printed by the command."""
    lines = []
    for task, classes in (("idl_neg", ["IDL", "NEG"]), ("class5", list("AENPR"))):
        lines.append(f"  {task}: " + " ".join(f"{c:>6s}" for c in classes) + "   total")
        for part in PARTITIONS:
            labels = [getattr(c, task) for c in chunks if c.partition == part]
            lines.append(f"    {part:5s} " + " ".join(f"{labels.count(c):6d}" for c in classes)
                         + f" {len(labels):7d}")
    return lines


def generate(out, scale=1.0, seed=0, source=None, noisy=True, noise_root=None, jobs=None,
             limit=None, progress=True):
    """Write (or complete) the stand-in in `out`; returns a summary dict (chunks, made,
    skipped, timings). `limit`: only the first N chunks of each partition get audio (a
    quick look; the label files always list every chunk)."""
    out = Path(out).expanduser().resolve()
    chunks = plan(scale)
    sources, lengths = source_files(source)
    source_dir = sources[0].parent
    out.mkdir(parents=True, exist_ok=True)
    _claim(out, _settings_record(scale, seed, sources, source_dir))
    with atomic_open(out / "STANDIN.md", "w", encoding="utf-8") as f:
        f.write(NOTE.format(total=len(chunks), scale=scale, check=check_command(out, noisy)))
    write_labels(out, chunks)
    selected = chunks
    if limit:
        selected = sorted((c for part in PARTITIONS
                           for c in [c for c in chunks if c.partition == part][:int(limit)]),
                          key=lambda c: c.id)
    settings = {"out": str(out), "seed": int(seed), "sources": [str(s) for s in sources],
                "lengths": lengths, "noisy": bool(noisy)}
    if noisy:
        settings.update(pool=noise_pool(noise_root), spec=read_json(SPEC_FILE))
    t0 = time.perf_counter()
    results = map_files(_make_chunk, [(c.id, c.partition) for c in selected], jobs,
                        f"stand-in aibo scale {scale} seed {seed}", progress,
                        initializer=_init_worker, initargs=(settings,))
    wall = time.perf_counter() - t0
    rows = []
    for c, (row, _) in zip(selected, results):
        rows.append(dict(row, speaker=c.speaker, partition=c.partition,
                         fold=c.fold if c.partition == "train" else "", class5=c.class5,
                         idl_neg=c.idl_neg))
    write_rows(out / "chunks.csv", rows, CHUNK_COLUMNS)
    timings = [t for _, t in results]
    return {"out": out, "chunks": chunks, "audio": len(selected),
            "made_clean": sum("clean" in t for t in timings),
            "made_room": sum("room" in t for t in timings),
            "timings": timings, "wall_s": wall,
            "jobs": min(int(jobs or os.cpu_count() or 1), max(len(selected), 1))}


def timing_lines(summary):
    """Mean seconds per chunk made, per step, and the wall time of the run."""
    lines = []
    for step in ("clean", "room"):
        made = [t[step] for t in summary["timings"] if step in t]
        if made:
            lines.append(f"  {step}: {len(made)} file(s) made, "
                         f"{1000 * sum(made) / len(made):.1f} ms per file")
    lines.append(f"  wall time {summary['wall_s']:.1f} s with {summary['jobs']} process(es)")
    return lines
