"""A generated stand-in for FAU-AIBO in its distribution layout, at the paper's scale.

FAU-AIBO is licensed, so nothing here has seen the corpus the paper ran: 17 076 chunks,
9 190 from school Ohm (train) and 7 886 from school Mont (test), with close-talk and
room-microphone recordings. This module writes a corpus with the same layout, chunk ids,
speakers, folds and per-class counts (the paper's Tables 3 and 4), so that the AIBO code
path (refimpl.corpus.aibo and everything after it) and the cost of the paper's scale can be
exercised:

    refimpl corpus standin aibo -o DIR [--scale 1.0] [--seed 0] [--jobs N] [--no-noisy]
    refimpl corpus check aibo --root DIR --noisy-dir DIR/room

It is for cost, scale and the code path, never for UARs: the audio is EmoDB speech cut into
chunks, and which EmoDB file a chunk comes from does not depend on its label, so a classifier
trained on it should score chance (about 0.5 UAR for 2 classes, 0.2 for 5); anything clearly
above that points at label leakage somewhere in the pipeline.

What is written (DIR):
    labels/IS2009EmotionChallenge/chunk_labels_2cl_corpus.txt   '<chunk_id> <IDL|NEG> <conf>'
    labels/IS2009EmotionChallenge/chunk_labels_5cl_corpus.txt   '<chunk_id> <A|E|N|P|R> <conf>'
    wav/<chunk_id>.wav     close talk: a 1-3 s segment of an EmoDB file at a drawn level
    room/<chunk_id>.wav    room microphone: refimpl.conditions' simulated room (unless --no-noisy)
    chunks.csv             every drawn value per chunk (source segment, level, room, SNR)
    STANDIN.md, STANDIN.json   what this is; the settings (a resumed run must match them)

Layout and labels depend on the scale only (a fixed plan seed); `--seed` varies the audio,
which is drawn per chunk from (seed, chunk id), as refimpl.conditions draws its rooms: each
chunk is reproducible bit for bit on its own, in any order and with any --jobs. Every file is
written atomically, so an interrupted run is resumed by running the same command again:
chunks already present and complete are not made again.
"""
import csv
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from refimpl import paths
from refimpl.cli import UserError
from refimpl.fileio import atomic_open, atomic_path, file_digest

SAMPLE_RATE = 16000
PARTITIONS = ("train", "test")
SCHOOL = {"train": "Ohm", "test": "Mont"}
ROOM_DIR = "room"
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
# pyroomacoustics' rir_builder splits the image sources over `num_threads` threads and adds
# the per-thread float32 partial sums: the last bits of the response depend on the thread
# count, whose default is os.cpu_count(). One thread per chunk (parallelism comes from
# --jobs processes) makes the room files the same on every machine.
RIR_THREADS = 1
SETTINGS_VERSION = 1


# ----------------------------------------------------------------------------------------
# Counts: the paper's tables, scaled


def paper_counts():
    """{partition: {"idl_neg": {IDL, NEG}, "class5": {A, E, N, P, R}}} of the paper's Tables
    3 and 4 (matched close-talk / room-microphone chunks), as recorded in data/aibo.json."""
    from refimpl.corpus import read_json
    matched = read_json("aibo.json")["expected_counts"]["matched"]
    out = {}
    for part in PARTITIONS:
        table = matched[part]
        if not table.get("idl_neg") or not table.get("class5"):
            raise UserError("data/aibo.json: the matched per-class counts are not filled in")
        out[part] = {"idl_neg": dict(table["idl_neg"]), "class5": dict(table["class5"])}
        for task in ("idl_neg", "class5"):
            if sum(out[part][task].values()) != table["total"]:
                raise UserError(f"data/aibo.json: {part} {task} counts do not add up to "
                                f"{table['total']}")
    return out


def _as_fraction(scale):
    value = Fraction(str(scale))   # exact decimal: 0.01 * 839 is 8.39, not 8.3899999
    if not 0 < value <= 1:
        raise UserError(f"--scale {scale}: must be in (0, 1] (1 = the paper's 17 076 chunks)")
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
        raise UserError(f"--scale {scale}: {seats} chunk(s) for the {len(counts)} classes "
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
            raise UserError("data/aibo.json: matched counts need classes IDL/NEG and A/E/N/P/R")
        c2, c5 = largest_remainder(t2, scale), largest_remainder(t5, scale)
        rest_neg = c2["NEG"] - c5["A"] - c5["E"]
        if not 0 <= rest_neg <= c5["R"] or sum(c2.values()) != sum(c5.values()):
            raise UserError(f"--scale {scale}: the scaled 2-class ({c2}) and 5-class ({c5}) "
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
            raise UserError(f"{school}_{number:02d}: {n} chunks need more than 1000 turns")
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
    import soundfile as sf
    folder = Path(source) if source else paths.shared_data() / "emodb" / "wav"
    files = sorted(folder.glob("*.wav")) if folder.is_dir() else []
    if not files:
        raise UserError(f"{folder}: no .wav files to cut chunks from (give --source)")
    lengths = []
    for f in files:
        try:
            info = sf.info(str(f))
        except (RuntimeError, sf.LibsndfileError) as e:
            raise UserError(f"{f}: cannot read audio ({e})") from None
        if info.samplerate != SAMPLE_RATE or info.channels != 1:
            raise UserError(f"{f}: {info.samplerate} Hz, {info.channels} channel(s); the "
                            f"stand-in needs {SAMPLE_RATE} Hz mono sources")
        if info.frames < SAMPLE_RATE * CHUNK_SECONDS[0] / 2:
            raise UserError(f"{f}: only {info.frames} samples; too short to cut a chunk from")
        lengths.append(info.frames)
    return files, lengths


def draw_chunk(seed, chunk_id, lengths):
    """The drawn values of one close-talk chunk: which source, where, how long, how loud."""
    from refimpl.conditions import file_seed
    # "clean:" keeps this stream apart from the room's, which is seeded by (seed, file name)
    # exactly as refimpl.conditions seeds the noisy condition of any corpus.
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
    from refimpl.signals import to_pcm16
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
# Room microphone: refimpl.conditions' simulation, with the image sources made faster


def _lattice(order):
    """Reflection indices (3 x n) of the image sources: the points of the L1 ball of radius
    `order`, z outermost and x innermost, the order in which libroom walks them."""
    k = np.arange(-order, order + 1)
    z = np.repeat(k, 2 * (order - np.abs(k)) + 1)
    y = np.concatenate([np.arange(-(order - abs(i)), order - abs(i) + 1) for i in k])
    x_max = order - np.abs(y) - np.abs(z)
    run = 2 * x_max + 1
    x = np.arange(run.sum()) - np.repeat(np.cumsum(run) - run, run) - np.repeat(x_max, run)
    return np.stack([x, np.repeat(y, run), np.repeat(z, run)]).astype(np.int32)


def _axis_tables(dims, source, order, absorption):
    """Per axis and reflection index k in -order..order: the image's coordinate and its two
    wall factors, float32 with libroom's arithmetic (Room::image_source_shoebox): coordinate
    k * size + (size - source if k is odd else source); factors sqrt(1 - absorption) to the
    number of reflections off the axis's lower ('west') and upper ('east') wall, as repeated
    products like libroom's, not pow()."""
    size = np.asarray(dims, dtype=np.float32)
    src = np.asarray(source, dtype=np.float32)
    k = np.arange(-order, order + 1)
    a = np.abs(k)
    coord = [(k.astype(np.float32) * size[d]
              + np.where(a % 2 == 1, size[d] - src[d], src[d]).astype(np.float32))
             for d in range(3)]
    power = np.ones(order + 1, dtype=np.float32)
    if order > 0:
        power[1] = np.sqrt(np.float32(1.0) - np.float32(absorption))
    for i in range(2, order + 1):
        power[i] = power[i - 1] * power[1]
    west = power[np.where(k > 0, a // 2, (a + 1) // 2)]
    east = power[np.where(k > 0, (a + 1) // 2, a // 2)]
    return coord, west, east


def _attenuation(index, west, east, order):
    # libroom multiplies an image's attenuation (1 at first) by west then east factor,
    # axis by axis: the same float32 products in the same order.
    att = np.ones(index.shape[1], dtype=np.float32)
    for d in range(3):
        att *= west[index[d] + order]
        att *= east[index[d] + order]
    return att


def shoebox_images(dims, source, max_order, absorption):
    """Image sources (3 x n, float32) and attenuations (n, float32) of a shoebox room, equal
    to libroom's own: an image's coordinate and wall factors along one axis depend on that
    axis's reflection index only, so they are tabulated per index and gathered instead of
    built image by image (libroom allocates per image; that step is most of the time of
    pyroomacoustics' compute_rir in our rooms)."""
    order = int(max_order)
    index = _lattice(order)
    coord, west, east = _axis_tables(dims, source, order, absorption)
    images = np.stack([coord[d][index[d] + order] for d in range(3)])
    return images, _attenuation(index, west, east, order)


_KERNEL = []      # per process: the compiled core (refimpl._standin_rir) if built and agreeing


def _kernel():
    """The compiled core, once it has shown on this machine that it gives libroom's and
    numpy's bits (a few milliseconds, once per process); None if not built or if not."""
    if not _KERNEL:
        try:
            from refimpl import _standin_rir as kernel
        except ImportError:
            kernel = None
        if kernel is not None and not _kernel_agrees(kernel):
            import warnings
            warnings.warn("refimpl._standin_rir differs from pyroomacoustics on this machine; "
                          "the stand-in uses the slower exact path")
            kernel = None
        _KERNEL.append(kernel)
    return _KERNEL[0]


def _kernel_agrees(kernel):
    from pyroomacoustics import libroom
    rng = np.random.default_rng(12345)
    times = rng.uniform(0.003, 0.5, 3000).astype(np.float32)
    alphas = rng.standard_normal(3000).astype(np.float32)
    ours, theirs = np.zeros(8200, np.float32), np.zeros(8200, np.float32)
    kernel.rir_builder(ours, times, alphas, 16000, 81, 20)
    libroom.rir_builder(theirs, times, alphas, 16000, 81, 20, 1)
    params = {"room_length_m": 3.1, "room_width_m": 2.9, "room_height_m": 2.7,
              "rt60_s": 0.15, "source_x_m": 1.2, "source_y_m": 1.7, "source_z_m": 1.1,
              "mic_x_m": 2.3, "mic_y_m": 0.8, "mic_z_m": 1.6}
    return (np.array_equal(ours, theirs)
            and all(np.array_equal(x, y) for x, y in zip(_image_arrivals(params, 16000, kernel),
                                                         _image_arrivals(params, 16000, None))))


def _image_arrivals(params, fs, kernel):
    """(arrival times float32, amplitudes float32, largest float64 time) of every image
    source, as pyroomacoustics' compute_ism_rir hands them to its rir_builder."""
    import pyroomacoustics as pra
    dims = [params["room_length_m"], params["room_width_m"], params["room_height_m"]]
    absorption, max_order = pra.inverse_sabine(params["rt60_s"], dims)
    order = int(max_order)
    source = [params["source_x_m"], params["source_y_m"], params["source_z_m"]]
    mic = np.array([params["mic_x_m"], params["mic_y_m"], params["mic_z_m"]], dtype=np.float64)
    coord, west, east = _axis_tables(dims, source, order, absorption)
    # Distances in float64, summed over the axes in axis order as numpy's sum(axis=0) in
    # pyroomacoustics does; each axis's squared offset is tabulated per reflection index.
    square = [(coord[d].astype(np.float64) - mic[d]) ** 2 for d in range(3)]
    c = pra.constants.get("c")
    delay = (pra.constants.get("frac_delay_length") // 2) / fs
    if kernel is not None:
        return kernel.images(order, square, (west,) * 3, (east,) * 3, c, delay)
    index = _lattice(order)
    dist = square[0][index[0] + order]
    dist += square[1][index[1] + order]
    dist += square[2][index[2] + order]
    dist = np.sqrt(dist)
    arrival = dist / c
    arrival += delay
    amplitude = _attenuation(index, west, east, order) / dist
    return arrival.astype(np.float32), amplitude.astype(np.float32), float(arrival.max())


def shoebox_rir(params, fs, num_threads=RIR_THREADS, compiled=True):
    """The room impulse response of refimpl.conditions.room_impulse_response, bit for bit
    (tests/test_aibo_standin.py compares it with pyroomacoustics' compute_rir): what
    pyroomacoustics does for one omnidirectional source and microphone, flat absorption and
    no air absorption (Room.compute_rir, simulation/ism.compute_ism_rir, libroom's image
    sources and rir_builder, its high-pass filter), organised to be faster: see
    shoebox_images and csrc/_standin_rir_kernel.h. With compiled=False, or where the
    compiled core is not built, numpy and libroom.rir_builder do the same arithmetic.
    Returns (rir, wall absorption, image-source order)."""
    import pyroomacoustics as pra
    from pyroomacoustics import libroom
    from pyroomacoustics.utilities import design_highpass_filter_sos
    from scipy.signal import sosfiltfilt
    dims = [params["room_length_m"], params["room_width_m"], params["room_height_m"]]
    absorption, max_order = pra.inverse_sabine(params["rt60_s"], dims)
    kernel = _kernel() if compiled else None
    times, alphas, t_max = _image_arrivals(params, fs, kernel)
    fdl = pra.constants.get("frac_delay_length")
    lut_gran = pra.constants.get("sinc_lut_granularity")
    length = int(math.ceil(t_max * fs + fdl // 2 + 1)) + 1
    built = np.zeros(length, dtype=np.float32)
    if kernel is not None and int(num_threads) == 1:
        kernel.rir_builder(built, times, alphas, fs, fdl, lut_gran)
    else:
        libroom.rir_builder(built, times, alphas, fs, fdl, lut_gran, int(num_threads))
    rir = np.zeros(length, dtype=np.float32)
    rir += built
    if pra.constants.get("rir_hpf_enable"):
        sos = design_highpass_filter_sos(fs, pra.constants.get("rir_hpf_fc"),
                                         **pra.constants.get("rir_hpf_kwargs"))
        rir = np.ascontiguousarray(sosfiltfilt(sos, rir))
    return np.asarray(rir, dtype=np.float64), float(absorption), int(max_order)


def room_microphone(clean, fs, params, noise, timings=None):
    """refimpl.conditions.simulate with shoebox_rir in place of pyroomacoustics' compute_rir:
    the same steps on the same values (the test compares whole files with
    conditions.noisy_file), without the measured-RT60 check value, which only goes into
    the noisy condition's manifest. `timings` (a dict) gets the seconds of each step."""
    from scipy.signal import fftconvolve
    from refimpl.conditions import direct_path_delay
    t0 = time.perf_counter()
    rir, _, _ = shoebox_rir(params, fs)
    t1 = time.perf_counter()
    delay = direct_path_delay(params, fs)
    reverberant = fftconvolve(clean, rir)[delay:delay + len(clean)]
    offset = int(params["noise_unit"] * len(noise))
    segment = np.take(noise, np.arange(offset, offset + len(clean)), mode="wrap")
    p_speech = np.mean(reverberant ** 2)
    p_noise = np.mean(segment ** 2)
    scale = np.sqrt(p_speech / (p_noise * 10 ** (params["snr_db"] / 10))) if p_noise > 0 else 0.0
    mixture = reverberant + scale * segment
    gain = np.sqrt(np.mean(clean ** 2) / max(np.mean(mixture ** 2), 1e-20))
    peak = np.max(np.abs(mixture)) * gain
    if peak > 0.99:
        gain *= 0.99 / peak
    if timings is not None:
        timings["rir"] = t1 - t0
        timings["convolve"] = time.perf_counter() - t1
    return mixture * gain


# ----------------------------------------------------------------------------------------
# Writing the corpus


def _write_wav(path, samples):
    import soundfile as sf
    with atomic_path(path) as tmp:
        sf.write(str(tmp), samples, SAMPLE_RATE, subtype="PCM_16", format="WAV")


def _complete(path, frames):
    """A file left by an earlier run: every file is renamed into place only once written,
    so one that is there with the header of the chunk's drawn length is the chunk."""
    import soundfile as sf
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
    import soundfile as sf
    from refimpl import conditions
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
    pcm = None
    if not _complete(clean_path, draw["samples"]):
        t0 = time.perf_counter()
        signal, _ = sf.read(str(source), dtype="float64")
        pcm, gain = cut_chunk(signal, draw)
        t1 = time.perf_counter()
        _write_wav(clean_path, pcm)
        timings.update(clean_cut=t1 - t0, clean_write=time.perf_counter() - t1)
    if w["noisy"]:
        name = f"{chunk_id}.wav"
        # The room of this chunk: drawn exactly as conditions.noisy_file draws it.
        rng = np.random.default_rng(conditions.file_seed(seed, name))
        params = conditions.draw_parameters(rng, w["spec"], partition, w["pool"])
        noise_root = Path(params["noise_file"]).parent.parent
        row.update({k: v for k, v in params.items() if k not in ("noise_file", "noise_unit")},
                   noise_file=str(Path(params["noise_file"]).relative_to(noise_root)))
        room_path = out / ROOM_DIR / name
        if not _complete(room_path, draw["samples"]):
            if pcm is None:
                pcm, _ = sf.read(str(clean_path), dtype="int16")
            from refimpl.signals import pcm16_to_float
            clean = pcm16_to_float(pcm)      # what conditions.read_mono reads from the file
            nf = params["noise_file"]
            if nf not in w["noise_cache"]:
                w["noise_cache"][nf] = conditions.read_mono(nf, SAMPLE_RATE)[0]
            noisy = room_microphone(clean, SAMPLE_RATE, params, w["noise_cache"][nf], timings)
            t0 = time.perf_counter()
            _write_wav(room_path, noisy)
            timings["room_write"] = time.perf_counter() - t0
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
    path = out / "STANDIN.json"
    if path.is_file():
        with open(path, encoding="utf-8") as f:
            old = json.load(f)
        keys = ("corpus", "version", "scale", "seed", "source_sha256")
        if any(old.get(k) != record[k] for k in keys):
            was = ", ".join(f"{k} {old.get(k)}" for k in ("scale", "seed", "source"))
            raise UserError(f"{path}: this folder holds a stand-in made with {was}; resume "
                            f"with those settings or choose another folder")
    elif (out / "wav").exists() or (out / "labels").exists():
        raise UserError(f"{out}: has wav/ or labels/ but no STANDIN.json; not a stand-in "
                        f"folder, choose another")
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2)
        f.write("\n")


NOTE = """# A generated stand-in for FAU-AIBO: not FAU-AIBO

Written by `refimpl corpus standin aibo` (refimpl/aibo_standin.py): {total} chunks in the
layout of the FAU Aibo Emotion Corpus as distributed for the Interspeech 2009 Emotion
Challenge, with the paper's speaker and per-class counts (Cummins et al. 2017, Tables 3 and
4; scale {scale}), chunk ids `Ohm_NN_TTT_CC` (train, inner folds by speaker number 1-16 /
18-32) and `Mont_NN_TTT_CC` (test).

It is for cost, scale and the AIBO code path only, never for UARs. The close-talk audio
(wav/) is EmoDB speech (adult actors, German sentences), cut into 1-3 s chunks at drawn
levels; the room microphone (room/) is refimpl.conditions' simulated room. The label of a
chunk has nothing to do with its audio, so classifiers should score chance on it (UAR about
0.5 for 2 classes, 0.2 for 5): markedly more points at label leakage in the pipeline.

Settings: STANDIN.json. Every drawn value per chunk: chunks.csv. Check it with
    refimpl corpus check aibo --root {root} --noisy-dir {root}/{room}
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
    from refimpl import conditions
    from refimpl.corpus import read_json
    out = Path(out).expanduser().resolve()
    chunks = plan(scale)
    sources, lengths = source_files(source)
    source_dir = sources[0].parent
    out.mkdir(parents=True, exist_ok=True)
    _claim(out, _settings_record(scale, seed, sources, source_dir))
    with atomic_open(out / "STANDIN.md", "w", encoding="utf-8") as f:
        f.write(NOTE.format(total=len(chunks), scale=scale, root=out, room=ROOM_DIR))
    write_labels(out, chunks)
    selected = chunks
    if limit:
        selected = sorted((c for part in PARTITIONS
                           for c in [c for c in chunks if c.partition == part][:int(limit)]),
                          key=lambda c: c.id)
    settings = {"out": str(out), "seed": int(seed), "sources": [str(s) for s in sources],
                "lengths": lengths, "noisy": bool(noisy)}
    if noisy:
        settings.update(pool=conditions.noise_pool(noise_root),
                        spec=read_json(conditions.SPEC_FILE))
    t0 = time.perf_counter()
    results = conditions.map_files(_make_chunk, [(c.id, c.partition) for c in selected], jobs,
                                   f"stand-in aibo scale {scale} seed {seed}", progress,
                                   initializer=_init_worker, initargs=(settings,))
    wall = time.perf_counter() - t0
    rows = []
    for c, (row, _) in zip(selected, results):
        rows.append(dict(row, speaker=c.speaker, partition=c.partition,
                         fold=c.fold if c.partition == "train" else "", class5=c.class5,
                         idl_neg=c.idl_neg))
    conditions.write_rows(out / "chunks.csv", rows, CHUNK_COLUMNS)
    timings = [t for _, t in results]
    return {"out": out, "chunks": chunks, "audio": len(selected),
            "made_clean": sum("clean_cut" in t for t in timings),
            "made_room": sum("rir" in t for t in timings),
            "timings": timings, "wall_s": wall,
            "jobs": min(int(jobs or os.cpu_count() or 1), max(len(selected), 1))}


def timing_lines(summary):
    """Mean seconds per chunk made, per step, and the wall time of the run."""
    lines = []
    steps = (("clean", ("clean_cut", "clean_write")),
             ("room", ("rir", "convolve", "room_write")))
    for what, keys in steps:
        made = [t for t in summary["timings"] if keys[0] in t]
        if not made:
            continue
        means = {k: sum(t[k] for t in made) / len(made) for k in keys}
        lines.append(f"  {what}: {len(made)} chunk(s) made, per chunk "
                     + ", ".join(f"{k} {1000 * v:.1f} ms" for k, v in means.items())
                     + f" (total {1000 * sum(means.values()):.1f} ms)")
    lines.append(f"  wall time {summary['wall_s']:.1f} s with {summary['jobs']} process(es)")
    return lines


# ----------------------------------------------------------------------------------------
# Command line (registered by refimpl.corpus as `refimpl corpus standin`)


def _cmd_standin(args):
    summary = generate(args.out, scale=args.scale, seed=args.seed, source=args.source,
                       noisy=not args.no_noisy, noise_root=args.noise_root, jobs=args.jobs,
                       limit=args.limit)
    chunks = summary["chunks"]
    print(f"stand-in FAU-AIBO in {summary['out']}: {len(chunks)} chunks at scale "
          f"{args.scale} (train {sum(c.partition == 'train' for c in chunks)}, "
          f"test {sum(c.partition == 'test' for c in chunks)})")
    for line in count_lines(chunks):
        print(line)
    skipped = summary["audio"] - summary["made_clean"]
    print(f"  audio for {summary['audio']} chunk(s): {summary['made_clean']} close-talk file(s) "
          f"made, {skipped} already there"
          + ("" if args.no_noisy else f"; {summary['made_room']} room-microphone file(s) made"))
    for line in timing_lines(summary):
        print(line)
    noisy = "" if args.no_noisy else f" --noisy-dir {summary['out'] / ROOM_DIR}"
    print(f"check it: refimpl corpus check aibo --root {summary['out']}{noisy}")
    return 0


def add_arguments(p):
    p.add_argument("corpus", choices=["aibo"], help="the corpus to stand in for")
    p.add_argument("-o", "--out", required=True, help="folder to write (resumed if there)")
    p.add_argument("--scale", type=float, default=1.0,
                   help="fraction of the paper's counts, in (0, 1] (default 1: 17 076 chunks)")
    p.add_argument("--seed", type=int, default=0, help="seed of the audio (default 0)")
    p.add_argument("--jobs", type=int, help="worker processes (default: every core)")
    p.add_argument("--source", help="16 kHz mono .wav files to cut chunks from "
                                    "(default ../shared/data/emodb/wav)")
    p.add_argument("--noise-root", help="background-noise folder (default ../shared/data/noise)")
    p.add_argument("--no-noisy", action="store_true",
                   help="close talk only: no room-microphone files")
    p.add_argument("--limit", type=int, help="audio for the first N chunks of each partition "
                                             "only (a quick look)")
    p.set_defaults(func=_cmd_standin)
