"""The data layer: EmoDB from its files, FAU-AIBO from a fixture in its layout, manifests."""
import csv
import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from refimpl import cli
from refimpl import corpus as C
from refimpl.corpus import emodb as E
from refimpl._util.locations import package_data


# ---------------------------------------------------------------------------------- EmoDB

@pytest.fixture(scope="module")
def emodb(shared_data):
    return C.load_corpus("emodb", root=shared_data / "emodb")


def test_emodb_labels_agree_with_the_corpus_label_table(emodb, shared_data):
    # Oracle: the corpus's own label table (labels.csv beside the audio), not our parsing.
    table = {r["file"]: r for r in csv.DictReader(open(shared_data / "emodb" / "labels.csv"))}
    assert sorted(emodb.files()) == sorted(table)
    for r in emodb.rows:
        assert r["speaker"] == table[r["file"]]["speaker"]
        assert r["emotion7"] == table[r["file"]]["emotion"]
        assert r["gender"] == table[r["file"]]["gender"]
    negative = {"anger", "disgust", "fear", "sadness"}
    for name, emo in zip(emodb.label_names("idl_neg"), emodb.label_names("emotion7")):
        assert name == ("NEG" if emo in negative else "IDL")


def test_emodb_partition_is_speaker_independent_and_gender_mixed(emodb):
    train, test = set(emodb.speakers("train")), set(emodb.speakers("test"))
    assert len(train) == len(test) == 5 and not train & test
    gender = {r["speaker"]: r["gender"] for r in emodb.rows}
    for group in (train, test):
        assert {gender[s] for s in group} == {"m", "f"}
    folds = emodb.folds("train")
    spk = emodb.speakers("train")
    assert set(folds) == {1, 2}
    assert not set(spk[folds == 1]) & set(spk[folds == 2])
    for f in (1, 2):
        assert {gender[s] for s in spk[folds == f]} == {"m", "f"}
    assert set(emodb.folds("test")) == {0}


def test_emodb_check_command_prints_counts(shared_data, capsys):
    rc = cli.main(["corpus", "check", "emodb", "--root", str(shared_data / "emodb")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "train    243 utterances" in out and "test     292 utterances" in out
    assert "counts agree with EmoDB documentation" in out
    # per-class counts add up to the documented corpus totals (W 127 ... E 46)
    assert " 60 " in out and " 67 " in out   # anger in train / test


def test_emodb_arrays_line_up(emodb):
    y = emodb.labels("emotion7")
    assert y.dtype == np.int64 and y.min() == 0 and y.max() == 6
    names = np.array(emodb.tasks["emotion7"])[y]
    assert (names == emodb.label_names("emotion7")).all()
    assert len(emodb.audio_paths("clean")) == 535
    assert all(p.is_file() for p in emodb.audio_paths("clean", "test"))


def test_missing_condition_says_how_to_make_it(emodb, tmp_path, monkeypatch):
    monkeypatch.setenv("REFIMPL_CACHE", str(tmp_path))
    corpus = C.load_corpus("emodb", root=Path(emodb.rows[0]["path_clean"]).parent.parent,
                           seed=123)
    with pytest.raises(C.CorpusError, match="refimpl corpus conditions emodb"):
        corpus.audio_paths("noisy")


# ------------------------------------------------------------------------------- manifests

def _write_wav(path, seconds=0.05, sr=16000, value=0.1):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.full(int(seconds * sr), value), sr, subtype="PCM_16")


def _manifest(tmp_path, rows, header=None):
    header = header or ["file", "speaker", "partition", "fold", "label:task=a|b", "path_clean"]
    path = tmp_path / "m.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_manifest_round_trip(tmp_path):
    for n in "wxyz":
        _write_wav(tmp_path / "audio" / f"{n}.wav")
    path = _manifest(tmp_path, [
        ["w.wav", "s1", "train", "1", "a", "audio/w.wav"],
        ["x.wav", "s2", "train", "2", "b", "audio/x.wav"],
        ["y.wav", "s3", "test", "", "b", "audio/y.wav"],
        ["z.wav", "s3", "test", "", "a", "audio/z.wav"],
    ])
    corpus = C.load_corpus(path)
    assert corpus.tasks == {"task": ["a", "b"]}
    assert list(corpus.labels("task")) == [0, 1, 1, 0]
    assert list(corpus.folds()) == [1, 2, 0, 0]
    assert corpus.counts("task") == {"train": {"a": 1, "b": 1}, "test": {"a": 1, "b": 1}}
    out = tmp_path / "again.csv"
    corpus.to_manifest(out)
    again = C.load_corpus(out)
    assert again.tasks == corpus.tasks and again.rows == corpus.rows


def test_bad_manifest_lists_every_offending_row(tmp_path):
    _write_wav(tmp_path / "audio" / "ok.wav")
    path = _manifest(tmp_path, [
        ["ok.wav", "s1", "train", "1", "a", "audio/ok.wav"],          # row 2: fine itself
        ["gone.wav", "s2", "train", "1", "a", "audio/gone.wav"],      # row 3: missing file
        ["odd.wav", "s3", "test", "", "c", "audio/ok.wav"],           # row 4: unknown label
        ["both.wav", "s1", "test", "", "b", "audio/ok.wav"],          # row 5: s1 in both
        ["nofold.wav", "s4", "train", "", "b", "audio/ok.wav"],       # row 6: train w/o fold
        ["ok.wav", "s5", "test", "", "a", "audio/ok.wav"],            # row 7: duplicate
    ])
    with pytest.raises(C.CorpusError) as e:
        C.load_corpus(path)
    msg = str(e.value)
    assert msg.startswith(str(path))
    assert "row 3 (gone.wav): missing clean audio file" in msg
    assert "row 4 (odd.wav): unknown label 'c'" in msg
    assert "row 2 (ok.wav): speaker s1 is in both partitions" in msg
    assert "row 5 (both.wav): speaker s1 is in both partitions" in msg
    assert "row 6 (nofold.wav): training row needs fold 1 or 2" in msg
    assert "row 7 (ok.wav): duplicate file" in msg
    # through the command line: exit 2 with the list on stderr
    assert cli.main(["corpus", "check", str(path)]) == 2


def test_manifest_missing_columns(tmp_path):
    path = _manifest(tmp_path, [["a.wav", "s", "train"]], header=["file", "speaker", "partition"])
    with pytest.raises(C.CorpusError, match="missing column.*fold.*path_clean.*label"):
        C.load_corpus(path)


def test_speaker_in_both_folds_is_an_error(tmp_path):
    _write_wav(tmp_path / "audio" / "a.wav")
    path = _manifest(tmp_path, [
        ["a.wav", "s1", "train", "1", "a", "audio/a.wav"],
        ["b.wav", "s1", "train", "2", "a", "audio/a.wav"],
    ])
    with pytest.raises(C.CorpusError, match="row 3 .*both inner folds"):
        C.load_corpus(path)


# ------------------------------------------------------------------------ FAU-AIBO fixture

# (chunk id, 2-class label, 5-class label); speaker numbers chosen around the fold border
AIBO_CHUNKS = [
    ("Ohm_01_001_00", "IDL", "N"), ("Ohm_01_001_01", "NEG", "A"), ("Ohm_16_002_00", "NEG", "E"),
    ("Ohm_18_003_00", "IDL", "P"), ("Ohm_32_004_00", "NEG", "R"), ("Ohm_32_004_01", "IDL", "N"),
    ("Mont_01_001_00", "NEG", "E"), ("Mont_02_001_00", "IDL", "N"), ("Mont_25_001_00", "IDL", "P"),
]


def make_aibo(root, chunks=AIBO_CHUNKS, room=()):
    labels = root / "labels" / "IS2009EmotionChallenge"
    labels.mkdir(parents=True)
    with open(labels / "chunk_labels_2cl_corpus.txt", "w") as f2, \
            open(labels / "chunk_labels_5cl_corpus.txt", "w") as f5:
        for cid, l2, l5 in chunks:
            f2.write(f"{cid} {l2} 1.0\n")
            f5.write(f"{cid} {l5} 0.8\n")
            _write_wav(root / "wav" / f"{cid}.wav")
    for cid in room:
        _write_wav(root / "room" / f"{cid}.wav", value=0.05)
    return root


def test_aibo_fixture_partitions_folds_labels(tmp_path):
    corpus = C.load_corpus("aibo", root=make_aibo(tmp_path))
    assert corpus.tasks == {"idl_neg": ["IDL", "NEG"], "class5": ["A", "E", "N", "P", "R"]}
    by_file = {r["file"]: r for r in corpus.rows}
    assert by_file["Ohm_01_001_00.wav"]["partition"] == "train"
    assert by_file["Mont_25_001_00.wav"]["partition"] == "test"
    assert by_file["Ohm_16_002_00.wav"]["fold"] == 1
    assert by_file["Ohm_18_003_00.wav"]["fold"] == 2
    assert by_file["Ohm_32_004_01.wav"]["class5"] == "N"
    assert by_file["Mont_01_001_00.wav"]["speaker"] == "Mont_01"
    assert corpus.counts("idl_neg") == {"train": {"IDL": 3, "NEG": 3}, "test": {"IDL": 2, "NEG": 1}}


def test_aibo_matched_utterances_only(tmp_path):
    room = [c[0] for c in AIBO_CHUNKS if not c[0].endswith("_01")]
    root = make_aibo(tmp_path, room=room)
    corpus = C.load_corpus("aibo", root=root, noisy_dir=root / "room")
    assert len(corpus) == len(room) == 7
    assert all(p.is_file() for p in corpus.audio_paths("noisy"))
    assert "2 chunk(s) dropped" in corpus.notes[0]


def test_aibo_check_command_compares_with_published_counts(tmp_path, capsys):
    # close talk only: the challenge's counts
    root = make_aibo(tmp_path / "close")
    assert cli.main(["corpus", "check", "aibo", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "train: 6 utterances, expected 9959" in out
    assert "train class5 N: 2, expected 5590" in out
    # with the room microphone (given, or ROOT/room found): the paper's matched counts
    root = make_aibo(tmp_path / "both", room=[c[0] for c in AIBO_CHUNKS])
    for extra in (["--noisy-dir", str(root / "room")], []):
        assert cli.main(["corpus", "check", "aibo", "--root", str(root), *extra]) == 1
        assert "train: 6 utterances, expected 9190" in capsys.readouterr().out


def test_aibo_counts_equal_table_pass(tmp_path):
    # compare_counts itself: equal counts give no mismatch (so the real corpus can pass)
    corpus = C.load_corpus("aibo", root=make_aibo(tmp_path))
    expected = {"train": {"total": 6, "idl_neg": {"IDL": 3, "NEG": 3}},
                "test": {"total": 3, "class5": {"A": 0, "E": 1, "N": 1, "P": 1, "R": 0}}}
    assert C.compare_counts(corpus, expected) == []
    expected["test"]["class5"]["A"] = 1
    assert C.compare_counts(corpus, expected) == ["test class5 A: 0, expected 1"]


def test_aibo_bad_speaker_number_and_disagreeing_label_files(tmp_path):
    root = make_aibo(tmp_path / "a", chunks=AIBO_CHUNKS + [("Ohm_17_001_00", "IDL", "N")])
    with pytest.raises(C.CorpusError, match=r"Ohm_17_001_00.wav\): training row needs fold.*"
                                            r"speaker number 17"):
        C.load_corpus("aibo", root=root)
    root = make_aibo(tmp_path / "b")
    with open(root / "labels/IS2009EmotionChallenge/chunk_labels_5cl_corpus.txt", "a") as f:
        f.write("Mont_03_001_00 N 1.0\n")
    with pytest.raises(C.CorpusError, match="Mont_03_001_00: listed for task class5 only"):
        C.load_corpus("aibo", root=root)


# ------------------------------------------------------------------------ EmoDB download

def _emodb_zip(path, wavs, tamper=None):
    with zipfile.ZipFile(path, "w") as z:
        for w in wavs:
            data = w.read_bytes()
            if w.name == tamper:
                data = data[:-2] + bytes([data[-2] ^ 1, data[-1]])
            z.writestr(f"wav/{w.name}", data)
        z.writestr("erklaerung.txt", "readme")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_checksum_and_unpack(http_server, shared_data, tmp_path):
    served, url = http_server
    wavs = sorted((shared_data / "emodb" / "wav").glob("*.wav"))[:3]
    reference = {r["file"]: r["sha256"]
                 for r in csv.DictReader(open(package_data("emodb_audio_sha256.csv")))}
    reference = {w.name: reference[w.name] for w in wavs}
    sha = _emodb_zip(served / "download.zip", wavs)

    # wrong archive checksum: refused, nothing left behind
    dest = tmp_path / "bad"
    with pytest.raises(C.CorpusError, match="SHA-256 .* differs"):
        C.download_emodb(dest, url=url + "/download.zip", sha256="0" * 64, progress=False,
                         reference=reference)
    assert list(dest.iterdir()) == []

    dest = tmp_path / "good"
    C.download_emodb(dest, url=url + "/download.zip", sha256=sha, progress=False,
                     reference=reference)
    assert sorted(p.name for p in (dest / "wav").iterdir()) == [w.name for w in wavs]
    assert (dest / "wav" / wavs[0].name).read_bytes() == wavs[0].read_bytes()
    assert [p.name for p in dest.iterdir() if p.name.startswith(".")] == []


def test_unpack_rejects_changed_audio(shared_data, tmp_path):
    wavs = sorted((shared_data / "emodb" / "wav").glob("*.wav"))[:2]
    reference = {w.name: E.audio_sha256(w) for w in wavs}
    _emodb_zip(tmp_path / "a.zip", wavs, tamper=wavs[1].name)
    (tmp_path / "dest").mkdir()
    with pytest.raises(C.CorpusError, match=f"{wavs[1].name}: audio differs"):
        E.unpack_emodb(tmp_path / "a.zip", tmp_path / "dest", reference=reference)
    assert not (tmp_path / "dest" / "wav").exists()
