"""The noisy condition: a simulated room microphone about 3 m from the speaker.

The paper's noisy FAU-AIBO set is the room microphone of the recordings: reverberant, with
background noise. EmoDB has no such microphone, so we simulate one, per utterance:

  1. draw a shoebox room, its reverberation time and the positions of speaker and
     microphone (about 3 m apart) from the ranges in data/noisy_condition.json;
  2. compute the room impulse response with pyroomacoustics' image-source method, the
     wall absorption and reflection order following from the RT60 (Sabine's formula);
     rir.py computes the same bits faster, on one thread whatever the machine;
  3. convolve the clean speech with it, aligned on the direct path so that clean and noisy
     stay sample-aligned (the enhancer's training pairs need that);
  4. add a segment of a real background-noise recording at a drawn SNR; training and test
     utterances use disjoint recordings (refimpl.conditions.noise_recordings);
  5. bring the mixture back to the clean file's RMS level (never clipping) and write it as
     16-bit PCM.

Any sample rate: the room is simulated at the clean file's own rate and the noise
recordings (16 kHz) are resampled to it (refimpl.conditions.resample).

Everything drawn comes from one generator seeded by a stable hash of (seed, file name), so
each file is reproducible bit for bit on its own, in any order, and the parameters are
written to the condition's manifest (noisy.csv), one row per file.
"""
import hashlib
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import fftconvolve

from refimpl._util.atomic import atomic_path
from refimpl._util.digest import content_digest
from refimpl.conditions import rir
from refimpl.conditions.noise_recordings import noise_pool
from refimpl.conditions.resample import resample
from refimpl.corpus.table import read_json
from refimpl.errors import AudioError

__all__ = ["file_seed", "noise_pool", "draw_parameters", "room_impulse_response",
           "direct_path_delay", "measured_rt60", "simulate", "noisy_file", "noise_at",
           "read_mono", "PARAM_COLUMNS", "SPEC_FILE"]

SPEC_FILE = "noisy_condition.json"

# The manifest of the generated condition: one row per file, every drawn value.
PARAM_COLUMNS = [
    "file", "speaker", "partition", "seed", "file_seed",
    "room_length_m", "room_width_m", "room_height_m", "rt60_s", "wall_absorption",
    "max_order", "source_x_m", "source_y_m", "source_z_m", "mic_x_m", "mic_y_m", "mic_z_m",
    "distance_m", "direct_delay_samples", "rt60_measured_s", "noise_file",
    "noise_offset_samples", "snr_db", "gain", "sample_rate_hz", "clean_sha256", "path_noisy",
]


def file_seed(seed, name):
    """A 63-bit seed from (seed, file name), stable across runs and platforms."""
    digest = hashlib.sha256(f"{int(seed)}/{name}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def draw_parameters(rng, spec, partition, pool):
    """Draw a room, positions, noise and SNR; rejection-sample positions inside the room."""
    u = lambda lo_hi: float(rng.uniform(*lo_hi))
    room = [u(spec["room_length_m"]), u(spec["room_width_m"]), u(spec["room_height_m"])]
    rt60 = u(spec["rt60_s"])
    margin = spec["wall_margin_m"]
    for _ in range(1000):
        source = [u([margin, room[0] - margin]), u([margin, room[1] - margin]),
                  u(spec["source_height_m"])]
        distance = u(spec["distance_m"])
        mic_z = u(spec["mic_height_m"])
        horizontal = np.sqrt(max(distance ** 2 - (mic_z - source[2]) ** 2, 0.0))
        azimuth = u([0.0, 2 * np.pi])
        mic = [float(source[0] + horizontal * np.cos(azimuth)),
               float(source[1] + horizontal * np.sin(azimuth)), mic_z]
        if margin <= mic[0] <= room[0] - margin and margin <= mic[1] <= room[1] - margin:
            break
    else:   # cannot happen with the shipped ranges (rooms are wider than 3 m + margins)
        raise RuntimeError("no microphone position found inside the room")
    recordings = pool[partition]
    noise_file = recordings[int(rng.integers(len(recordings)))]
    return {
        "room_length_m": room[0], "room_width_m": room[1], "room_height_m": room[2],
        "rt60_s": rt60,
        "source_x_m": source[0], "source_y_m": source[1], "source_z_m": source[2],
        "mic_x_m": mic[0], "mic_y_m": mic[1], "mic_z_m": mic[2],
        "distance_m": float(np.linalg.norm(np.subtract(mic, source))),
        "noise_file": noise_file,
        "noise_unit": float(rng.uniform()),   # where in the recording the segment starts
        "snr_db": u(spec["snr_db"]),
    }


def room_impulse_response(params, fs):
    """Image-source RIR of the drawn room, absorption and order from the RT60 (Sabine's
    formula): pyroomacoustics' compute_rir with its builder on one thread, bit for bit,
    computed faster by refimpl.conditions.rir.shoebox_rir (by how much:
    tests/benchmarks/test_bench_rir.py). One thread on every machine: pyroomacoustics' own
    default, one per core, moves the last bits with the core count (rir.py says why).
    Returns (rir, absorption, order)."""
    return rir.shoebox_rir(params, fs)


def direct_path_delay(params, fs):
    """Sample index of the direct sound in the RIR: distance / c, plus the centre of
    pyroomacoustics' fractional-delay filter. From the geometry, not the RIR's peak: in
    small rooms several coinciding reflections can outweigh the direct sound."""
    import pyroomacoustics as pra   # here: a heavy import, needed only to simulate a room
    seconds = params["distance_m"] / pra.constants.get("c")
    return int(round(seconds * fs)) + pra.constants.get("frac_delay_length") // 2


def measured_rt60(rir, fs):
    """RT60 of the simulated response (Schroeder decay), as a check on the drawn value."""
    import pyroomacoustics as pra   # here: a heavy import, needed only to simulate a room
    try:
        return float(pra.experimental.measure_rt60(rir, fs=fs, decay_db=30))
    except Exception:   # very short responses: no 30 dB decay to measure
        return float("nan")


def read_mono(path, fs=None):
    audio, sr = sf.read(str(path), dtype="float64", always_2d=True)
    if fs is not None and sr != fs:
        raise AudioError(f"{path}: sample rate {sr} Hz, expected {fs} Hz")
    return audio.mean(axis=1), sr


def simulate(clean, fs, params, noise, impulse_response=room_impulse_response):
    """Reverberant speech at the microphone plus background noise, clean's level, no clipping.

    Returns (noisy, extra parameters). `noise` is the whole noise recording;
    `impulse_response(params, fs)` -> (rir, absorption, order) makes the room's response.
    """
    response, absorption, max_order = impulse_response(params, fs)
    delay = direct_path_delay(params, fs)
    reverberant = fftconvolve(clean, response)[delay:delay + len(clean)]
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
    extra = {"wall_absorption": absorption, "max_order": max_order,
             "direct_delay_samples": delay, "noise_offset_samples": offset,
             "gain": float(gain), "rt60_measured_s": measured_rt60(response, fs)}
    return mixture * gain, extra


def noise_at(path, fs, cache=None):
    """A noise recording as mono float at `fs` (resampled from its own rate), read once
    per (recording, rate) into `cache`."""
    cache = {} if cache is None else cache
    key = (str(path), int(fs))
    if key not in cache:
        noise, rate = read_mono(path)
        cache[key] = resample(noise, rate, fs)
    return cache[key]


def noisy_file(clean_path, out_path, name, partition, seed, pool, spec=None, noise_cache=None):
    """Simulate one file at its own sample rate and write it (atomically); returns its
    manifest row."""
    spec = spec or read_json(SPEC_FILE)
    clean, fs = read_mono(clean_path)
    fseed = file_seed(seed, name)
    rng = np.random.default_rng(fseed)
    params = draw_parameters(rng, spec, partition, pool)
    nf = params["noise_file"]
    noisy, extra = simulate(clean, fs, params, noise_at(nf, fs, noise_cache))
    with atomic_path(out_path) as tmp:
        sf.write(str(tmp), noisy, fs, subtype="PCM_16", format="WAV")
    row = dict(params, **extra)
    row.pop("noise_unit")
    row.update(file=name, partition=partition, seed=int(seed), file_seed=fseed,
               sample_rate_hz=fs, clean_sha256=content_digest(clean_path),
               noise_file=Path(nf).relative_to(pool.root).as_posix(), path_noisy=str(out_path))
    return row
