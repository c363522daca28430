"""The noisy and denoised conditions of any corpus: a manifest with clean audio only, at
any sample rate; one's own noise folder; the noise downloaded from its official home.

Oracles: pyroomacoustics' own simulation at the corpus's rate; the spectrum of the
written files (numpy's FFT); the recordings' published checksums."""
import csv
import hashlib
import io
import tarfile

import numpy as np
import pytest
import soundfile as sf

from oracles import import_or_unavailable
from refimpl import cli
from refimpl.conditions import generate, noise_recordings
from refimpl.conditions import room_simulation as N
from refimpl.corpus import load_corpus
from refimpl.corpus.table import read_json
from refimpl.errors import ChecksumError, CorpusError

import_or_unavailable("pyroomacoustics", "pyroomacoustics")
from room_oracle import simulated_microphone  # noqa: E402  (needs pyroomacoustics)


def band_power(x, rate, lo, hi):
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / rate)
    return spectrum[(f >= lo) & (f < hi)].sum()


@pytest.fixture(scope="module")
def made_44k(make_clean_corpus, noise_folder, tmp_path_factory):
    """`refimpl corpus conditions` on the 44.1 kHz clean-only manifest."""
    manifest = make_clean_corpus(44100)
    out = tmp_path_factory.mktemp("conditions44k")
    assert cli.main(["corpus", "conditions", str(manifest), "--noise-dir", str(noise_folder),
                     "--out", str(out), "--jobs", "1"]) == 0
    return manifest, out


def test_a_clean_only_manifest_gets_both_conditions_at_its_rate(made_44k):
    manifest, out = made_44k
    completed = load_corpus(out / "corpus.csv")
    original = load_corpus(manifest)
    assert completed.files() == original.files() and completed.tasks == original.tasks
    for r in completed.rows:
        clean, rate = sf.read(r["path_clean"])
        assert rate == 44100
        for cond in ("noisy", "denoised"):
            x, got = sf.read(r["path_" + cond])
            assert got == 44100 and len(x) == len(clean), (cond, r["file"])
    rows = list(csv.DictReader(open(out / "noisy.csv")))
    assert {r["sample_rate_hz"] for r in rows} == {"44100"}
    assert {r["noise_file"] for r in rows if r["partition"] == "train"} == {"tone.wav"}
    assert {r["noise_file"] for r in rows if r["partition"] == "test"} == {"hum.wav"}
    measures = list(csv.DictReader(open(out / "denoised.csv")))
    assert len(measures) == len(rows) and all(float(m["si_sdr_noisy_db"]) < 60 for m in measures)


def test_the_enhancer_runs_at_16k_so_the_denoised_band_ends_at_8k(made_44k):
    _, out = made_44k
    for r in load_corpus(out / "corpus.csv").rows:
        clean, rate = sf.read(r["path_clean"])
        noisy, _ = sf.read(r["path_noisy"])
        denoised, _ = sf.read(r["path_denoised"])
        high = band_power(clean, rate, 9000, rate / 2)
        assert high > 1e-3 * band_power(clean, rate, 0, rate / 2)    # the clean has a top band
        assert band_power(noisy, rate, 9000, rate / 2) > 0.05 * high  # the room keeps it
        # resample_poly's Kaiser (beta 5) anti-aliasing filter attenuates its stop band by
        # more than 40 dB; above 9 kHz (1 kHz past the 16 kHz Nyquist) less than 1e-3 of
        # the clean band's power can come back from the 16 kHz enhancer
        assert band_power(denoised, rate, 9000, rate / 2) < 1e-3 * high


def test_the_noise_is_resampled_to_the_corpus_rate(made_44k):
    """Training files carry a 1 kHz tone recorded at 16 kHz: at 44.1 kHz it must still be
    at 1 kHz, not at 44100 / 16000 kHz (what playing its samples at the corpus rate gives)."""
    _, out = made_44k
    rows = [r for r in load_corpus(out / "corpus.csv").rows if r["partition"] == "train"]
    assert rows
    for r in rows:
        x, rate = sf.read(r["path_noisy"])
        at_1k = band_power(x, rate, 990, 1010)
        at_wrong = band_power(x, rate, 2756 - 10, 2756 + 10)
        assert at_1k > 20 * at_wrong, r["file"]


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_the_room_is_simulated_at_the_files_rate(make_clean_corpus, noise_folder, tmp_path,
                                                 rate):
    """Oracle: pyroomacoustics' room.simulate() of the drawn room at the file's rate. With
    an SNR of 300 dB the written file is the reverberant speech, up to the 16-bit PCM
    round trip (libsndfile's float -> int16 -> float moves a sample by less than one
    quantisation step, 2^-15 of full scale). pyroomacoustics on one thread: the noisy
    condition is its response as its builder computes it on one thread
    (refimpl.conditions.rir); on several threads the images are summed in another order."""
    corpus = load_corpus(make_clean_corpus(rate))
    r = corpus.rows[0]
    spec = dict(read_json(N.SPEC_FILE), snr_db=[300.0, 300.0])
    pool = noise_recordings.noise_pool(noise_folder)
    out = tmp_path / "noisy.wav"
    row = N.noisy_file(r["path_clean"], out, r["file"], "train", 4, pool, spec)
    written, got = sf.read(str(out))
    assert got == rate and row["sample_rate_hz"] == rate
    clean, _ = sf.read(r["path_clean"])
    reference = simulated_microphone(row, row["wall_absorption"], row["max_order"], rate,
                                     clean, row["direct_delay_samples"], row["gain"])
    assert np.max(np.abs(written - reference)) <= 2.0 ** -15 + 1e-9


def test_files_that_have_their_conditions_are_not_made_again(make_clean_corpus, noise_folder,
                                                             tmp_path):
    corpus = load_corpus(make_clean_corpus(16000))
    out = tmp_path / "out"
    generate.generate_conditions(corpus, 2, noise_root=noise_folder, out_dir=out, jobs=1,
                                 log=lambda *_: None)
    made = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}
    assert len(made) == 2 * len(corpus)
    victim = out / "denoised" / corpus.rows[1]["file"]
    victim.unlink()
    again = load_corpus(make_clean_corpus(16000))
    generate.generate_conditions(again, 2, noise_root=noise_folder, out_dir=out, jobs=1,
                                 log=lambda *_: None)
    remade = [p for p in out.rglob("*.wav") if made.get(p) != p.stat().st_mtime_ns]
    assert remade == [victim]
    assert len(list(csv.DictReader(open(out / "denoised.csv")))) == len(corpus)
    # a changed clean file is simulated again (its noisy row records the clean's SHA-256)
    rows = {r["file"]: r for r in csv.DictReader(open(out / "noisy.csv"))}
    assert rows[corpus.rows[0]["file"]]["clean_sha256"] == hashlib.sha256(
        open(corpus.rows[0]["path_clean"], "rb").read()).hexdigest()


# ---------------------------------------------------------------------------- noise

def test_noise_pool_from_the_split_from_a_folder_and_partial(shared_data, tmp_path):
    full = noise_recordings.noise_pool(shared_data / "noise")
    assert full.root == shared_data / "noise"
    assert len(full["train"]) + len(full["test"]) == len(noise_recordings.split_table())
    # only the downloadable part (Speech Commands): the split keeps its sides, and says so
    partial = tmp_path / "partial"
    for r in noise_recordings.split_table():
        if r["archive"]:
            (partial / r["recording"]).parent.mkdir(parents=True, exist_ok=True)
            (partial / r["recording"]).write_bytes((shared_data / "noise" /
                                                    r["recording"]).read_bytes())
    said = []
    pool = noise_recordings.noise_pool(partial, log=said.append)
    assert [p.name for p in pool["train"]] == ["doing_the_dishes.wav", "exercise_bike.wav",
                                               "pink_noise.wav"]
    assert len(pool["test"]) == 3 and "6 of the 18" in said[0] and "household" in said[0]
    # a folder of other recordings: alternately train and test, sorted by name
    other = tmp_path / "other"
    other.mkdir()
    for name in ("c.wav", "a.wav", "b.wav"):
        sf.write(str(other / name), np.zeros(160) + 0.1, 16000)
    pool = noise_recordings.noise_pool(other)
    assert [p.name for p in pool["train"]] == ["a.wav", "c.wav"]
    assert [p.name for p in pool["test"]] == ["b.wav"]
    (other / "b.wav").unlink()
    (other / "c.wav").unlink()
    with pytest.raises(CorpusError, match="no noise recording for the test utterances"):
        noise_recordings.noise_pool(other)
    with pytest.raises(CorpusError, match="no .wav noise recordings"):
        noise_recordings.noise_dir(tmp_path / "empty")


def _archive(shared_data, tamper=None):
    """A tar.gz laid out as Speech Commands' (./_background_noise_/...)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for r in noise_recordings.split_table():
            if not r["archive"]:
                continue
            data = (shared_data / "noise" / r["recording"]).read_bytes()
            if r["member"].endswith(tamper or "\0"):
                data = data[:-2] + bytes([data[-2] ^ 1, data[-1]])
            info = tarfile.TarInfo("./" + r["member"])
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_noise_download_checks_every_checksum(http_server, shared_data, tmp_path):
    served, url = http_server
    good = _archive(shared_data)
    (served / "good.tar.gz").write_bytes(good)
    archives = {"speech_commands_v0.02": {"url": url + "/good.tar.gz",
                                          "sha256": hashlib.sha256(good).hexdigest()}}
    dest = noise_recordings.download_noise(tmp_path / "noise", archives, log=lambda *_: None,
                                progress=False)
    got = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.wav"))
    assert got == sorted(r["recording"] for r in noise_recordings.split_table() if r["archive"])
    for name in got:
        assert (dest / name).read_bytes() == (shared_data / "noise" / name).read_bytes()
    assert not (dest / ".download" / "speech_commands_v0.02.tar.gz").exists()

    # the archive's own checksum is wrong: nothing kept
    wrong = {"speech_commands_v0.02": dict(archives["speech_commands_v0.02"], sha256="0" * 64)}
    with pytest.raises(ChecksumError):
        noise_recordings.download_noise(tmp_path / "wrong", wrong,
                                        log=lambda *_: None, progress=False)
    assert not list((tmp_path / "wrong").rglob("*.wav"))
    # one member differs from the recording we use: refused, that file not kept
    bad = _archive(shared_data, tamper="pink_noise.wav")
    (served / "bad.tar.gz").write_bytes(bad)
    tampered = {"speech_commands_v0.02": {"url": url + "/bad.tar.gz",
                                          "sha256": hashlib.sha256(bad).hexdigest()}}
    with pytest.raises(ChecksumError, match="pink_noise.wav"):
        noise_recordings.download_noise(tmp_path / "bad", tampered,
                                        log=lambda *_: None, progress=False)
    assert not (tmp_path / "bad" / "speech_commands" / "pink_noise.wav").exists()
