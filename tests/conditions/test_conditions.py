"""The simulated room microphone: physics checked against pyroomacoustics, determinism."""
import csv

import numpy as np
import pytest
import soundfile as sf

import tolerances as tol
from oracles import import_or_unavailable
from refimpl.conditions import generate
from refimpl.conditions import room_simulation as N
from refimpl._util.locations import package_data
from refimpl.corpus import Corpus, load_corpus
from refimpl.corpus.table import read_json

pra = import_or_unavailable("pyroomacoustics", "pyroomacoustics")
from room_oracle import simulated_microphone  # noqa: E402  (needs pyroomacoustics)


@pytest.fixture(scope="module")
def emodb(shared_data):
    return load_corpus("emodb", root=shared_data / "emodb")


def small(corpus, n=3):
    """n training and n test files: enough to see both noise pools."""
    rows = corpus.subset("train").rows[:n] + corpus.subset("test").rows[:n]
    return Corpus(corpus.name, corpus.tasks, rows, corpus.source)


def test_reverberation_matches_pyroomacoustics_simulation(emodb):
    # Oracle: pyroomacoustics' own room.simulate() of the same room and signal.
    spec = read_json(N.SPEC_FILE)
    clean, fs = N.read_mono(emodb.rows[0]["path_clean"], 16000)
    rng = np.random.default_rng(N.file_seed(7, emodb.rows[0]["file"]))
    params = N.draw_parameters(rng, spec, "train", N.noise_pool())
    silent = np.zeros(fs)
    noisy, extra = N.simulate(clean, fs, dict(params, snr_db=300.0), silent + 1e-3)
    dims = [params["room_length_m"], params["room_width_m"], params["room_height_m"]]
    absorption, order = pra.inverse_sabine(params["rt60_s"], dims)
    delay = extra["direct_delay_samples"]
    reference = simulated_microphone(params, absorption, order, fs, clean, delay,
                                     extra["gain"])
    err = np.max(np.abs(noisy - reference)) / np.max(np.abs(reference))
    # Both sides convolve the same RIR with the same signal by scipy's fftconvolve; what
    # differs is our noise at 300 dB SNR (1e-15 of the speech's rms, the noise being a
    # constant) and the gain's product and the mixture's sum (float64, 2 roundings each).
    assert err <= 10 ** (-300 / 20) + 4 * tol.U64, err
    # the direct path: distance / speed of sound (rounded to a whole sample), plus pra's
    # fractional-delay filter centre; the same float64 expression on both sides
    expected = params["distance_m"] / pra.constants.get("c") * fs \
        + pra.constants.get("frac_delay_length") // 2
    assert abs(delay - expected) <= 0.5


def test_alignment_on_the_direct_path_in_every_room(emodb):
    # Alignment oracle: the delay that best aligns the reverberant signal with the clean one
    # (cross-correlation peak) is the direct path, whatever the room.
    spec = read_json(N.SPEC_FILE)
    clean, fs = N.read_mono(emodb.rows[2]["path_clean"], 16000)
    for seed in range(6):
        params = N.draw_parameters(np.random.default_rng(seed), spec, "train", N.noise_pool())
        rir, _, _ = N.room_impulse_response(params, fs)
        delay = N.direct_path_delay(params, fs)
        window = rir[delay - 2:delay + 3]
        assert np.argmax(np.abs(window)) == 2          # the direct sound's peak sample
        assert np.abs(rir[delay]) > 0.5 / (4 * np.pi * params["distance_m"])


def test_snr_and_level(emodb):
    spec = read_json(N.SPEC_FILE)
    clean, fs = N.read_mono(emodb.rows[1]["path_clean"], 16000)
    params = N.draw_parameters(np.random.default_rng(3), spec, "test", N.noise_pool())
    noise = N.read_mono(params["noise_file"], fs)[0]
    noisy, extra = N.simulate(clean, fs, params, noise)
    speech_only, _ = N.simulate(clean, fs, dict(params, snr_db=400.0), noise)
    # remove the level normalisation, then measure speech and noise powers separately
    s = speech_only / np.sqrt(np.mean(speech_only ** 2))
    x = noisy / extra["gain"]
    g_speech = np.sqrt(np.mean((speech_only / _["gain"]) ** 2))
    n = x - s * g_speech
    snr = 10 * np.log10(np.mean((s * g_speech) ** 2) / np.mean(n ** 2))
    # float64 rounding: s * g_speech is the speech within d = 2 gamma(N) + 5u (two mean
    # squares, square roots, divisions), so the noise estimate n = x - s g_speech is off
    # by d (+ 3u per sample) of the speech, 10^(SNR/20) times the noise's own amplitude
    big_n = len(clean)
    d = 2 * tol.gamma64(big_n) + 5 * tol.U64
    rel_speech = 2 * d + tol.gamma64(big_n)
    rel_noise = 2 * (d + 3 * tol.U64) * 10 ** (params["snr_db"] / 20) + tol.gamma64(big_n)
    assert abs(snr - params["snr_db"]) <= 10 / np.log(10) * (rel_speech + rel_noise)
    # the peak limit: gain * 0.99 / peak applied to the mixture, a few roundings of 0.99
    assert np.max(np.abs(noisy)) <= 0.99 * (1 + 4 * tol.U64)
    # the level: rms(clean) / rms(mixture) times the mixture: two mean squares over N
    level = np.sqrt(np.mean(noisy ** 2) / np.mean(clean ** 2))
    level_error = 2 * tol.gamma64(big_n) + 6 * tol.U64
    clipped = abs(np.max(np.abs(noisy)) - 0.99) <= 0.99 * 4 * tol.U64
    assert level <= 1 + level_error and (level >= 1 - level_error or clipped)


def test_generated_condition_is_reproducible_and_recorded(emodb, tmp_path):
    corpus = small(emodb)
    a = generate.generate_noisy(corpus, seed=5, out_dir=tmp_path / "a", progress=False)
    # the same files one at a time, in reverse order, elsewhere: identical bytes
    for r in reversed(corpus.rows):
        single = Corpus(corpus.name, corpus.tasks, [r], corpus.source)
        generate.generate_noisy(single, seed=5, out_dir=tmp_path / "b", progress=False)
    for r in corpus.rows:
        assert (tmp_path / "a/noisy" / r["file"]).read_bytes() == \
            (tmp_path / "b/noisy" / r["file"]).read_bytes()
    generate.generate_noisy(corpus, seed=6, out_dir=tmp_path / "c", progress=False)
    f0 = corpus.rows[0]["file"]
    assert (tmp_path / "a/noisy" / f0).read_bytes() != (tmp_path / "c/noisy" / f0).read_bytes()

    rows = list(csv.DictReader(open(a)))
    assert [r["file"] for r in rows] == [r["file"] for r in corpus.rows]
    assert set(rows[0]) == set(N.PARAM_COLUMNS)
    spec = read_json(N.SPEC_FILE)
    for r in rows:
        assert all(r[c] != "" for c in N.PARAM_COLUMNS), r
        for key in ("rt60_s", "snr_db", "room_length_m", "room_width_m", "room_height_m"):
            lo, hi = spec[key]
            assert lo <= float(r[key]) <= hi
        lo, hi = spec["distance_m"]
        assert lo - 1e-9 <= float(r["distance_m"]) <= hi + 1e-9
        audio, fs = sf.read(r["path_noisy"])
        clean, _ = sf.read(next(c["path_clean"] for c in corpus.rows if c["file"] == r["file"]))
        assert fs == 16000 and len(audio) == len(clean)
    split = {row["recording"]: row["partition"]
             for row in csv.DictReader(open(package_data("noise_split.csv")))}
    for r in rows:
        assert split[r["noise_file"]] == r["partition"]


def test_noise_split_is_disjoint_and_complete(shared_data):
    pool = N.noise_pool(shared_data / "noise")
    assert pool["train"] and pool["test"] and not set(pool["train"]) & set(pool["test"])
    on_disk = {p.relative_to(shared_data / "noise") for p in (shared_data / "noise").rglob("*.wav")}
    assert on_disk == {p.relative_to(shared_data / "noise") for p in pool["train"] + pool["test"]}


def test_file_seed_depends_on_seed_and_name():
    assert N.file_seed(0, "a.wav") == N.file_seed(0, "a.wav")
    assert len({N.file_seed(s, f) for s in (0, 1) for f in ("a.wav", "b.wav")}) == 4
    assert 0 <= N.file_seed(2**40, "x") < 2**63


def needs_slow(request):
    # The default run (make test) selects everything; the 4-minute suite runs only with -m slow.
    if "slow" not in (request.config.option.markexpr or ""):
        pytest.skip("long suite: run with -m slow (make test-slow)")


@pytest.mark.slow
def test_whole_emodb_noisy_condition(emodb, tmp_path, request):
    needs_slow(request)
    manifest = generate.generate_noisy(emodb, seed=0, out_dir=tmp_path, progress=False)
    rows = list(csv.DictReader(open(manifest)))
    assert len(rows) == 535
    train = {r["noise_file"] for r in rows if r["partition"] == "train"}
    test = {r["noise_file"] for r in rows if r["partition"] == "test"}
    assert train and test and not train & test


def test_worker_processes_change_nothing(emodb, tmp_path):
    """Noisy and denoised conditions made by 2 worker processes equal those made in this
    process, byte for byte, manifests included (paths aside)."""
    corpus = small(emodb, n=2)
    made = {}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        noisy = generate.generate_noisy(corpus, seed=9, out_dir=out, progress=False, jobs=jobs)
        denoised = generate.generate_denoised(corpus, seed=9, out_dir=out, progress=False, jobs=jobs)
        wavs = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*.wav"))}
        tables = [open(t).read().replace(str(out), "OUT") for t in (noisy, denoised)]
        made[jobs] = (wavs, tables)
    assert len(made[1][0]) == 2 * len(corpus.rows)
    assert made[1] == made[2]
