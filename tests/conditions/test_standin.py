"""The generated FAU-AIBO stand-in (refimpl.conditions.standin): the paper's counts, the
loader's layout, EmoDB audio, the noisy condition's room, reproducibility and resuming.

Oracles: the paper's tables as shared CSV (not our aibo.json), the largest-remainder rule
worked by hand and by its definition, soundfile reading the EmoDB sources, and the room
simulation run with pyroomacoustics' own compute_rir (the fast response is checked against
it in test_rir.py).
"""
import csv
import math
import re
import shlex
import shutil
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings, strategies as st

from refimpl import cli
from refimpl._util import locations as paths
from refimpl._util.digest import file_digest
from refimpl.conditions import room_simulation as N
from refimpl.conditions import rir as R
from refimpl.conditions import standin as S
from refimpl import corpus as C
from refimpl.corpus.table import read_json
from refimpl.errors import AudioError, CorpusError, UsageError

pra = pytest.importorskip("pyroomacoustics")

LETTER = {"Angry": "A", "Emphatic": "E", "Neutral": "N", "Positive": "P", "Rest": "R"}
CHUNK_ID = re.compile(r"^(Ohm|Mont)_(\d\d)_(\d\d\d)_(\d\d)$")


@pytest.fixture(scope="module")
def paper():
    """{partition: {task: {class: n}, "total": n}} from the shared copy of Tables 3 and 4."""
    path = paths.shared_data().parent / "paper" / "aibo_counts.csv"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    out = {"train": {"idl_neg": {}, "class5": {}}, "test": {"idl_neg": {}, "class5": {}}}
    for row in csv.DictReader(open(path, newline="")):
        task = {"2class": "idl_neg", "5class": "class5"}[row["task"]]
        assert row["table"] == {"idl_neg": "3", "class5": "4"}[task]
        for part in ("train", "test"):
            if row["class"] == "total":
                out[part].setdefault("total", {})[task] = int(row[part])
            else:
                name = LETTER.get(row["class"], row["class"])
                out[part][task][name] = int(row[part])
    return out


@pytest.fixture(scope="module")
def emodb_wav(shared_data):
    return shared_data / "emodb" / "wav"


def counts_of(chunks, part, task):
    return dict(Counter(getattr(c, task) for c in chunks if c.partition == part))


# ------------------------------------------------------------------------------- counts

def test_aibo_json_matched_counts_are_the_papers(paper):
    matched = read_json("aibo.json")["expected_counts"]["matched"]
    assert "Table 3" in matched["source"] and "Table 4" in matched["source"]
    for part in ("train", "test"):
        assert matched[part]["total"] == paper[part]["total"]["idl_neg"] \
            == paper[part]["total"]["class5"]
        for task in ("idl_neg", "class5"):
            assert matched[part][task] == paper[part][task], (part, task)


def test_full_scale_plan_meets_both_tables_and_the_loader_agrees(paper, tmp_path):
    chunks = S.plan(1.0)
    assert len(chunks) == 17076 and len({c.id for c in chunks}) == 17076
    for part in ("train", "test"):
        for task in ("idl_neg", "class5"):
            assert counts_of(chunks, part, task) == paper[part][task], (part, task)
    # one chunk's two labels agree with how the corpus groups the word labels
    joint = Counter((c.class5, c.idl_neg) for c in chunks)
    assert not joint[("A", "IDL")] and not joint[("E", "IDL")]
    assert not joint[("N", "NEG")] and not joint[("P", "NEG")]
    # the label files as the loader reads them: equal to the published table, no mismatch
    S.write_labels(tmp_path, chunks)
    corpus = C.aibo.aibo(tmp_path, check_files=False)
    expected = read_json("aibo.json")["expected_counts"]["matched"]
    assert C.compare_counts(corpus, expected) == []
    assert len(corpus) == 17076


def test_full_scale_speakers_and_ids(paper):
    chunks = S.plan(1.0)
    per_speaker = Counter(c.speaker for c in chunks)
    ohm = {s for s in per_speaker if s.startswith("Ohm_")}
    mont = {s for s in per_speaker if s.startswith("Mont_")}
    assert len(ohm) == 26 and len(mont) == 25          # the real corpus's children
    for c in chunks:
        m = CHUNK_ID.match(c.id)
        assert m, c.id
        school, number = m.group(1), int(m.group(2))
        assert c.speaker == f"{school}_{m.group(2)}"
        assert c.partition == {"Ohm": "train", "Mont": "test"}[school]
        if school == "Ohm":
            assert c.fold == (1 if 1 <= number <= 16 else 2 if 18 <= number <= 32 else None)
        else:
            assert c.fold == 0
    folds = Counter(c.fold for c in chunks if c.partition == "train")
    assert set(folds) == {1, 2} and min(folds.values()) > 0.3 * sum(folds.values())
    # hundreds of chunks per child on average, none without any
    assert 50 <= min(per_speaker.values()) and max(per_speaker.values()) < 1500


def test_scale_one_percent_worked_by_hand(paper):
    # Largest remainder by hand from the CSV at scale 0.01 (quota = count / 100):
    # train 2-class 59.66 / 32.24, 92 seats: floors 91, the one left to IDL (.66 > .24);
    # 5-class 8.39 20.13 50.26 6.33 6.79: floors 90, two left to R (.79) and A (.39);
    # test 2-class 54.68 / 24.18, 79 seats: IDL gets the one left;
    # 5-class 6.00 14.81 50.82 2.06 5.17: floors 77, two left to N (.82) and E (.81).
    chunks = S.plan(0.01)
    assert counts_of(chunks, "train", "idl_neg") == {"IDL": 60, "NEG": 32}
    assert counts_of(chunks, "train", "class5") == {"A": 9, "E": 20, "N": 50, "P": 6, "R": 7}
    assert counts_of(chunks, "test", "idl_neg") == {"IDL": 55, "NEG": 24}
    assert counts_of(chunks, "test", "class5") == {"A": 6, "E": 15, "N": 51, "P": 2, "R": 5}


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=6, max_value=10000))
def test_scaled_counts_are_largest_remainder(paper, tenths_of_permille):
    # The definition of the method, checked on every class of both tables: the total is
    # round(scale * total); each count is its quota rounded down or up; whoever was rounded
    # up had a fractional part at least as large as anyone rounded down. Below a quota of
    # one, a class still gets one chunk.
    scale = tenths_of_permille / 10000
    joint = S.scaled_counts(scale)
    for part in ("train", "test"):
        c2, c5 = S.marginals(joint[part])
        assert c2["NEG"] == c5["A"] + c5["E"] + joint[part][("R", "NEG")]
        for got, table in ((c2, paper[part]["idl_neg"]), (c5, paper[part]["class5"])):
            q = {k: Fraction(tenths_of_permille, 10000) * n for k, n in table.items()}
            assert sum(got.values()) == math.floor(sum(q.values()) + Fraction(1, 2))
            assert min(got.values()) >= 1
            if min(q.values()) < 1:
                continue
            up = [k for k in q if got[k] == math.floor(q[k]) + 1]
            down = [k for k in q if got[k] == math.floor(q[k])]
            assert len(up) + len(down) == len(q), (got, q)
            frac = {k: q[k] - math.floor(q[k]) for k in q}
            assert all(frac[u] >= frac[d] for u in up for d in down), (got, q)


def test_tiny_and_bad_scales():
    chunks = S.plan(0.0007)      # 6 + 6 chunks: one per class, both folds
    for part in ("train", "test"):
        assert set(counts_of(chunks, part, "class5")) == set("AENPR")
        assert set(counts_of(chunks, part, "idl_neg")) == {"IDL", "NEG"}
    assert {c.fold for c in chunks if c.partition == "train"} == {1, 2}
    with pytest.raises(UsageError, match="--scale 0.0005: 4 chunk"):
        S.plan(0.0005)
    with pytest.raises(UsageError, match=r"must be in \(0, 1\]"):
        S.plan(1.5)


# --------------------------------------------------------------------- generated corpus

@pytest.fixture(scope="module")
def small(tmp_path_factory, emodb_wav):
    out = tmp_path_factory.mktemp("standin") / "aibo"
    summary = S.generate(out, scale=0.01, seed=0, noisy=False, jobs=1, progress=False)
    return out, summary


def test_small_corpus_loads_with_the_scaled_counts_and_folds(small):
    out, summary = small
    assert summary["made_clean"] == len(summary["chunks"]) == 171
    corpus = C.load_corpus("aibo", root=out)
    assert corpus.counts("idl_neg") == {"train": {"IDL": 60, "NEG": 32},
                                        "test": {"IDL": 55, "NEG": 24}}
    assert corpus.counts("class5") == {"train": {"A": 9, "E": 20, "N": 50, "P": 6, "R": 7},
                                       "test": {"A": 6, "E": 15, "N": 51, "P": 2, "R": 5}}
    spk, folds = corpus.speakers("train"), corpus.folds("train")
    for s, f in zip(spk, folds):
        number = int(s.split("_")[1])
        assert f == (1 if number <= 16 else 2) and number != 17 and 1 <= number <= 32
    assert set(folds) == {1, 2} and not set(spk[folds == 1]) & set(spk[folds == 2])
    assert all(s.startswith("Mont_") for s in corpus.speakers("test"))
    assert len(set(spk)) == 26 and len(set(corpus.speakers("test"))) == 25
    assert "not FAU-AIBO" in (out / "STANDIN.md").read_text()
    # the grid's report shows a corpus's notes: this one says what the stand-in is not
    assert corpus.notes == [C.aibo.STANDIN_NOTE]
    assert "code path only; its UARs mean nothing" in corpus.notes[0]


def test_small_corpus_audio_is_cut_from_emodb(small, emodb_wav):
    out, _ = small
    rows = list(csv.DictReader(open(out / "chunks.csv", newline="")))
    assert len(rows) == 171
    fade = int(S.FADE_SECONDS * S.SAMPLE_RATE)
    levels = []
    for row in rows:
        path = out / "wav" / f"{row['chunk_id']}.wav"
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        chunk, _ = sf.read(str(path), dtype="int16")
        source, _ = sf.read(str(emodb_wav / row["source_file"]), dtype="float64")
        n, start = int(row["samples"]), int(row["source_start"])
        assert len(chunk) == n and (16000 <= n <= 48000 or n == len(source))
        assert np.max(np.abs(chunk)) <= round(0.99 * 32768)
        # Away from the fades the chunk is the source segment times one gain G (in steps of
        # 2^-15), rounded: |mid - G seg| <= 1/2. The least-squares gain is off by at most
        # |<seg, e>| / <seg, seg> <= (1/2) sum|seg| / sum seg^2 (|e| <= 1/2), which adds
        # that times |seg| to each residual; 1e-9 covers float64 rounding of the products.
        seg = source[start:start + n][fade:n - fade]
        mid = chunk[fade:n - fade].astype(np.float64)
        gain = float(seg @ mid / (seg @ seg))
        fit = 0.5 * np.sum(np.abs(seg)) / (seg @ seg)
        assert np.max(np.abs(mid - gain * seg)) <= 0.5 + fit * np.max(np.abs(seg)) + 1e-9
        # The drawn level is the source file's RMS after the gain (lower where the peak
        # limit cut the gain); the fit's relative error bounds the level's error in dB.
        level = 20 * np.log10(gain / 32768 * np.sqrt(np.mean(source ** 2)))
        tol = 20 * np.log10(1 + fit / (gain - fit)) + 1e-9
        limited = np.max(np.abs(chunk)) == round(S.PEAK_LIMIT * 32768)
        if limited:
            assert level < float(row["level_dbfs"]) + tol
        else:
            assert abs(level - float(row["level_dbfs"])) <= tol
        levels.append(level)
    assert np.ptp(levels) > 10          # varied gain, over the drawn range
    assert len({r["source_file"] for r in rows}) > 100


def _digests(out):
    return {str(p.relative_to(out)): file_digest(p) for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != "STANDIN.md"}


def test_reproducible_whatever_the_jobs_and_seed_moves_audio_only(tmp_path, emodb_wav):
    one = S.generate(tmp_path / "a", scale=0.002, seed=3, noisy=False, jobs=1, progress=False)
    S.generate(tmp_path / "b", scale=0.002, seed=3, noisy=False, jobs=2, progress=False)
    S.generate(tmp_path / "c", scale=0.002, seed=4, noisy=False, jobs=1, progress=False)
    a, b, c = (_digests(tmp_path / x) for x in "abc")
    assert one["made_clean"] == len(one["chunks"]) and len(a) == len(one["chunks"]) + 4
    assert a == b
    labels = [k for k in a if k.startswith("labels/")]
    assert len(labels) == 2 and all(a[k] == c[k] for k in labels)
    wavs = [k for k in a if k.startswith("wav/")]
    assert all(a[k] != c[k] for k in wavs)


def test_resume_makes_only_what_is_missing(tmp_path, emodb_wav):
    out = tmp_path / "aibo"
    S.generate(out, scale=0.002, seed=0, noisy=False, jobs=1, progress=False)
    wavs = sorted((out / "wav").glob("*.wav"))
    before = {p.name: p.read_bytes() for p in wavs}
    stat = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in wavs}
    wavs[0].unlink()
    wavs[1].unlink()
    sf.write(str(wavs[2]), np.zeros(100), 16000, subtype="PCM_16")   # a wrong, short file
    again = S.generate(out, scale=0.002, seed=0, noisy=False, jobs=1, progress=False)
    assert again["made_clean"] == 3
    for p in sorted((out / "wav").glob("*.wav")):
        assert p.read_bytes() == before[p.name]
        if p not in wavs[:3]:
            assert (p.stat().st_ino, p.stat().st_mtime_ns) == stat[p.name]
    with pytest.raises(UsageError, match=r"STANDIN.json: .*made with scale 0.002, seed 0"):
        S.generate(out, scale=0.002, seed=1, noisy=False, jobs=1, progress=False)
    foreign = tmp_path / "real"
    (foreign / "wav").mkdir(parents=True)
    with pytest.raises(UsageError, match="not a stand-in folder"):
        S.generate(foreign, scale=0.002, noisy=False, jobs=1, progress=False)


def test_bad_source_folder_is_named(tmp_path):
    with pytest.raises(CorpusError, match="no .wav files"):
        S.source_files(tmp_path)
    sf.write(str(tmp_path / "x.wav"), np.zeros(16000), 8000, subtype="PCM_16")
    with pytest.raises(AudioError, match=r"x.wav: 8000 Hz, 1 channel\(s\)"):
        S.source_files(tmp_path)


def test_command_prints_the_counts(tmp_path, emodb_wav, capsys):
    rc = cli.main(["corpus", "standin", "aibo", "-o", str(tmp_path / "s"), "--scale",
                   "0.0007", "--no-noisy", "--jobs", "1"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "12 chunks at scale 0.0007 (train 6, test 6)" in out
    assert re.search(r"train\s+1\s+1\s+2\s+1\s+1\s+6", out)      # one per 5-class class
    # the check the command suggests passes on what it wrote (the stand-in's scaled
    # counts, not the paper's full ones, which no scale below 1 can meet)
    suggested = next(line for line in out.splitlines() if line.startswith("check it: "))
    args = shlex.split(suggested.removeprefix("check it: "))
    assert args[:4] == ["refimpl", "corpus", "check", "aibo"]
    rc = cli.main(args[1:])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "counts agree with the stand-in's own counts" in out and "MISMATCH" not in out


def test_the_check_named_in_standin_md_passes_and_can_fail(small, tmp_path, capsys):
    """STANDIN.md's check compares the stand-in with the paper's counts scaled as it was
    made (scale 0.01 here); a chunk missing from the label files is then a mismatch."""
    out, _ = small
    line = next(l for l in (out / "STANDIN.md").read_text().splitlines()
                if "refimpl corpus check aibo" in l)
    args = shlex.split(line)[1:]
    assert cli.main(args) == 0
    said = capsys.readouterr().out
    assert "counts agree with the stand-in's own counts (the paper's matched counts at " \
           "scale 0.01" in said
    damaged = tmp_path / "damaged"
    shutil.copytree(out, damaged)
    labels = damaged / "labels" / "IS2009EmotionChallenge"
    for name in S.TASK_FILES.values():      # the last chunk (by id: an Ohm one) dropped
        lines = (labels / name).read_text().splitlines(keepends=True)
        assert lines[-1].startswith("Ohm_")
        (labels / name).write_text("".join(lines[:-1]))
    assert cli.main(["corpus", "check", "aibo", "--root", str(damaged)]) == 1
    said = capsys.readouterr().out
    assert "MISMATCH with the stand-in's own counts" in said
    assert "train: 91 utterances, expected 92" in said
    # a folder that is not a stand-in is still checked against the paper's counts
    (damaged / S.STANDIN_MARK).unlink()
    assert S.counts_to_check(damaged) is None


# -------------------------------------------------------------------- room microphone

def test_room_microphone_is_the_simulated_room_of_the_close_talk_chunk(tmp_path, emodb_wav):
    # Oracle: the noisy condition's steps on the written close-talk chunk with
    # pyroomacoustics' own compute_rir (one thread), written as 16-bit PCM the same way.
    out = tmp_path / "aibo"
    summary = S.generate(out, scale=0.002, seed=0, noisy=True, jobs=1, limit=1,
                         progress=False)
    assert summary["made_room"] == 2
    corpus = C.load_corpus("aibo", root=out, noisy_dir=out / "room")
    assert len(corpus) == 2 and set(corpus.partitions()) == {"train", "test"}
    assert corpus.notes[0].startswith("NOT FAU-AIBO") and "dropped" in corpus.notes[1]
    spec, pool = read_json(N.SPEC_FILE), N.noise_pool()
    for r, noisy in zip(corpus.rows, corpus.audio_paths("noisy")):
        clean, fs = N.read_mono(r["path_clean"], 16000)
        params = N.draw_parameters(np.random.default_rng(N.file_seed(0, r["file"])), spec,
                                   r["partition"], pool)
        expected, _ = N.simulate(clean, fs, params, N.read_mono(params["noise_file"], fs)[0],
                                 impulse_response=lambda p, f: R.pyroomacoustics_rir(p, f, 1))
        ref = tmp_path / "ref" / r["file"]
        ref.parent.mkdir(exist_ok=True)
        sf.write(str(ref), expected, fs, subtype="PCM_16", format="WAV")
        assert noisy.read_bytes() == ref.read_bytes(), r["file"]
    again = S.generate(out, scale=0.002, seed=0, noisy=True, jobs=1, limit=1, progress=False)
    assert again["made_room"] == again["made_clean"] == 0


def test_reproduce_finds_the_room_microphone_and_denoises_it(tmp_path, emodb_wav, monkeypatch):
    from refimpl.experiments.reproduce import prepare_corpus
    monkeypatch.setenv("REFIMPL_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "aibo"
    S.generate(out, scale=0.002, seed=0, noisy=True, jobs=1, limit=1, progress=False)
    corpus = prepare_corpus("aibo", out, seed=0)          # no --noisy-dir: ROOT/room
    assert [p.parent for p in corpus.audio_paths("noisy")] == [out / "room"] * 2
    denoised = corpus.audio_paths("denoised")             # raises if any is missing
    assert all(p.parent == tmp_path / "cache/conditions/aibo/seed0/denoised" for p in denoised)
    for noisy, made in zip(corpus.audio_paths("noisy"), denoised):
        assert sf.info(str(made)).frames == sf.info(str(noisy)).frames
