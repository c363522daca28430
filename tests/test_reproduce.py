"""The orchestrator end to end, with simple stand-in extractors on synthetic audio and EmoDB.

The stand-ins (log-spectrum statistics, log-band frames with a random-codebook BoAW) stand
for the real eGeMAPS/ComParE/BoAW/deep spectrum extractors that arrive from other branches;
what is tested here is the grid: caching, resuming, failures, determinism, outputs.
"""
import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from refimpl import classifier, reproduce
from refimpl.paths import REPO_ROOT

SR = 16000
SMALL = dict(alphas=(1e-3, 1e-1, 10.0), sizes=(10, 20), assignments=(1, 5))


def _log_spectrogram(path, bands):
    audio, sr = sf.read(path, dtype="float64", always_2d=False)
    if audio.ndim != 1 or len(audio) < 512:
        raise ValueError(f"{path}: expected mono audio of at least 512 samples")
    frames = np.lib.stride_tricks.sliding_window_view(audio, 512)[::256] * np.hanning(512)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    edges = np.linspace(0, power.shape[1], bands + 1).astype(int)
    return np.log(np.stack([power[:, a:b].sum(1) for a, b in zip(edges[:-1], edges[1:])], 1)
                  + 1e-10)


class LogSpecStats:
    """Stand-in 'functionals': mean and std of 24 log band energies per file."""
    kind = "functionals"
    batch_size = 4

    def __init__(self, name="logspec", control=None):
        self.name, self.control = name, control
        self.config_id = f"logspec-stats bands=24 n_fft=512 hop=256 ({name})"
        self.calls = 0

    def extract(self, paths):
        self.calls += len(paths)
        out = []
        for p in paths:
            s = _log_spectrogram(p, 24)
            out.append(np.concatenate([s.mean(0), s.std(0)]))
        return out


class LogBandFrames:
    """Stand-in LLDs: 8 log band energies per frame."""
    kind = "llds"
    control = None
    batch_size = 8
    name = "logbands"
    config_id = "log-bands bands=8 n_fft=512 hop=256"

    def extract(self, paths):
        return [_log_spectrogram(p, 8) for p in paths]


def random_codebook_boaw(train_llds, test_llds, size, assignments, seed):
    """Stand-in for openXBOW: codebook = random training frames; Na nearest words per frame."""
    rng = np.random.default_rng(seed)
    frames = np.concatenate(train_llds)
    book = frames[rng.choice(len(frames), size=size, replace=len(frames) < size)]

    def bags(files):
        out = np.zeros((len(files), size))
        for i, f in enumerate(files):
            d = ((f[:, None, :] - book[None]) ** 2).sum(-1)
            np.add.at(out[i], np.argsort(d, axis=1, kind="stable")[:, :assignments].ravel(), 1)
        return out

    return bags(train_llds), bags(test_llds)


def feature_sets(control="random-weight AlexNet (test stand-in)"):
    return [reproduce.FeatureSet("egemaps", LogSpecStats("standin-a")),
            reproduce.FeatureSet("boaw", LogBandFrames(), random_codebook_boaw),
            reproduce.FeatureSet("deepspectrum", LogSpecStats("standin-ds", control))]


def synthetic_corpus(folder, n_speakers=6, per_speaker=9):
    """Tones whose pitch is the class, three conditions; speakers 0-3 train, 4-5 test."""
    rng = np.random.default_rng(0)
    files, speakers, labels3, audio = [], [], [], {c: [] for c in reproduce.CONDITIONS}
    t = np.arange(int(0.25 * SR)) / SR
    for s in range(n_speakers):
        for i in range(per_speaker):
            label = i % 3
            f0 = (300, 700, 1500)[label] * (1 + 0.05 * s)
            clean = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.01 * rng.normal(size=t.size)
            noisy = clean + 0.1 * rng.normal(size=t.size)
            denoised = np.convolve(noisy, np.ones(3) / 3, mode="same")
            name = f"s{s}_{i:02d}.wav"
            for cond, x in zip(reproduce.CONDITIONS, (clean, noisy, denoised)):
                path = folder / cond / name
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, x.astype(np.float32), SR)
                audio[cond].append(str(path))
            files.append(name)
            speakers.append(f"spk{s}")
            labels3.append("abc"[label])
    speakers = np.array(speakers)
    partition = np.where(np.isin(speakers, ["spk4", "spk5"]), "test", "train")
    fold = np.where(partition == "test", 0, np.where(np.isin(speakers, ["spk0", "spk1"]), 1, 2))
    labels3 = np.array(labels3)
    return reproduce.CorpusView(
        "synthetic", files, speakers, partition, fold,
        {"2class": np.where(labels3 == "a", "low", "high"), "3class": labels3}, audio,
        {"2class": "2-class", "3class": "3-class"})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return synthetic_corpus(tmp_path_factory.mktemp("audio"))


def _run(view, tmp_path, sets=None, **kw):
    return reproduce.run_grid(view, sets or feature_sets(), out_dir=tmp_path / "results",
                              cache_root=tmp_path / "cache", show_progress=False, **{**SMALL, **kw})


def test_grid_outputs_and_warm_rerun(corpus, tmp_path, monkeypatch):
    rows, failures = _run(corpus, tmp_path)
    assert failures == []
    assert len(rows) == 3 * 2 * 2 * 3 * 3        # sets x tasks x Un/Ov x train x test
    assert {r.feature_set for r in rows} == {"egemaps", "boaw", "deepspectrum"}
    # The stand-in features separate tones well in matched clean conditions.
    clean = [r for r in rows if r.train == r.test == "clean" and r.feature_set == "egemaps"
             and r.task == "3class"]
    assert min(r.uar for r in clean) > 0.8
    for r in rows:
        assert r.alpha in SMALL["alphas"]
        assert np.sum(r.confusion) == r.n_test == 18
        assert (r.cs is not None) == (r.feature_set == "boaw")
        if r.cs is not None:
            assert (r.cs, r.na) in {(10, 1), (10, 5), (20, 1), (20, 5)}
    out = tmp_path / "results"
    for name in ["table5", "table6", "table7", "table8", "table9"]:
        assert (out / f"{name}.md").exists() and (out / f"{name}.csv").exists()
    with open(out / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    assert "not the paper's network" in (out / "report.md").read_text()

    # Warm: no feature is extracted and no model trained again; same rows.
    sets = feature_sets()
    monkeypatch.setattr(classifier, "train_model", lambda *a, **k: pytest.fail("retrained"))
    monkeypatch.setattr(classifier, "select_boaw", lambda *a, **k: pytest.fail("retrained"))
    again, _ = _run(corpus, tmp_path, sets)
    assert sets[0].extractor.calls == 0 and sets[2].extractor.calls == 0
    assert [r.__dict__ for r in again] == [r.__dict__ for r in rows]


def test_deterministic_for_a_seed_and_across_jobs(corpus, tmp_path):
    a, _ = _run(corpus, tmp_path / "a", seed=7, write=False)
    b, _ = _run(corpus, tmp_path / "b", seed=7, write=False, jobs=2)
    assert [r.__dict__ for r in a] == [r.__dict__ for r in b]


class Interrupting(LogSpecStats):
    """Dies like a Ctrl-C after `after` files."""
    batch_size = 1

    def __init__(self, after):
        super().__init__("standin-a")
        self.after = after

    def extract(self, paths):
        if self.calls >= self.after:
            raise KeyboardInterrupt
        return super().extract(paths)


def test_interrupted_run_resumes_with_only_the_rest(corpus, tmp_path):
    n = len(corpus.files) * 3
    with pytest.raises(KeyboardInterrupt):
        _run(corpus, tmp_path, [reproduce.FeatureSet("egemaps", Interrupting(after=70))])
    cache = tmp_path / "cache" / "features"
    assert len(list(cache.rglob("*.npy"))) == 70
    assert not list(cache.rglob("*.part"))
    resumed = LogSpecStats("standin-a")
    rows, failures = _run(corpus, tmp_path, [reproduce.FeatureSet("egemaps", resumed)])
    assert resumed.calls == n - 70
    assert failures == [] and len(rows) == 2 * 2 * 3 * 3


def test_changed_audio_is_extracted_again(corpus, tmp_path):
    import os
    view = corpus.subset(np.ones(len(corpus.files), bool))
    first = LogSpecStats("standin-a")
    _run(view, tmp_path, [reproduce.FeatureSet("egemaps", first)], write=False)
    changed = tmp_path / "changed.wav"
    x, sr = sf.read(view.audio["noisy"][0])
    sf.write(changed, 0.5 * x, sr)
    view.audio["noisy"] = view.audio["noisy"].copy()
    view.audio["noisy"][0] = str(changed)          # e.g. the noisy condition regenerated
    again = LogSpecStats("standin-a")
    _run(view, tmp_path, [reproduce.FeatureSet("egemaps", again)], write=False)
    assert again.calls == 1
    os.utime(changed, ns=(1, 1))                   # touched: extracted once more
    third = LogSpecStats("standin-a")
    _run(view, tmp_path, [reproduce.FeatureSet("egemaps", third)], write=False)
    assert third.calls == 1


def test_a_bad_file_is_named_skipped_and_listed(corpus, tmp_path):
    bad = corpus.subset(np.ones(len(corpus.files), bool))
    victim = int(np.flatnonzero(bad.partition == "test")[0])
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really a wav")
    bad.audio["noisy"] = bad.audio["noisy"].copy()
    bad.audio["noisy"][victim] = str(broken)
    rows, failures = _run(bad, tmp_path, feature_sets()[:1])
    assert [f.file for f in failures] == [bad.files[victim]]
    assert failures[0].condition == "noisy" and "broken.wav" in failures[0].error
    assert all(r.n_test == 17 for r in rows)     # left out of every condition
    text = (tmp_path / "results" / "report.md").read_text()
    assert bad.files[victim] in text.split("### Files left out")[1]


def test_manifest_corpus_and_cli_errors(corpus, tmp_path):
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "speaker", "partition", "fold", "label:2class=low|high",
                    "label:3class", *["path_" + c for c in reproduce.CONDITIONS]])
        for i in range(len(corpus.files)):
            w.writerow([corpus.files[i], corpus.speakers[i], corpus.partition[i],
                        "" if corpus.partition[i] == "train" else 0,
                        corpus.labels["2class"][i], corpus.labels["3class"][i],
                        *[corpus.audio[c][i] for c in reproduce.CONDITIONS]])
    view = reproduce.CorpusView.from_manifest(manifest)
    np.testing.assert_array_equal(view.files, corpus.files)
    assert view.classes == {"2class": ["low", "high"], "3class": ["a", "b", "c"]}
    assert view.tasks == {"2class": "2-class", "3class": "3-class"}
    np.testing.assert_array_equal(view.audio["noisy"], corpus.audio["noisy"])
    train = view.partition == "train"
    classifier.check_speaker_independent(view.fold[train], view.speakers[train])
    assert set(view.fold[train].tolist()) == {1, 2}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "refimpl", "reproduce", *args],
                              cwd=REPO_ROOT, capture_output=True, text=True)
    r = cli("--corpus", str(tmp_path / "nope.csv"))
    assert r.returncode == 2 and "nope.csv" in r.stderr and "Traceback" not in r.stderr
    # training rows without an inner fold: the corpus layer names the file and every row
    r = cli("--corpus", str(manifest), "--features", "egemaps")
    assert r.returncode == 2 and "manifest.csv" in r.stderr and "Traceback" not in r.stderr
    assert "training row needs fold 1 or 2" in r.stderr
    r = cli("--corpus", str(manifest), "--features", "mfcc")
    assert r.returncode == 2 and "mfcc" in r.stderr


def test_corpus_view_rejects_speaker_leaks(corpus):
    leak = corpus.partition.copy()
    leak[0] = "test"        # one file of a training speaker moved into the test partition
    with pytest.raises(ValueError, match="both train and test"):
        reproduce.CorpusView("x", corpus.files, corpus.speakers, leak,
                             np.where(leak == "test", 0, corpus.fold), corpus.labels, corpus.audio)


def test_emodb_subset_end_to_end(shared_data, tmp_path):
    """Real EmoDB recordings (6 speakers, 8 files each); noisy = clean + white noise."""
    view = _emodb_view(shared_data, tmp_path, per_speaker=8)
    rows, failures = _run(view, tmp_path, feature_sets()[:1])
    assert failures == [] and len(rows) == 36
    assert all(r.n_test == 16 for r in rows)
    table9 = (tmp_path / "results" / "table9.csv").read_text()
    assert table9.count("\n") == 1    # header only: no deep spectrum rows in this run


def _emodb_view(shared_data, tmp_path, per_speaker):
    emodb = shared_data / "emodb"
    with open(emodb / "labels.csv") as f:
        table = list(csv.DictReader(f))
    by_speaker = {}
    for r in table:
        if r["speaker"] in {"03", "08", "09", "10", "11", "12"}:
            by_speaker.setdefault(r["speaker"], []).append(r)
    chosen = [r for spk in sorted(by_speaker) for r in by_speaker[spk][:per_speaker]]
    rng = np.random.default_rng(1)
    audio = {c: [] for c in reproduce.CONDITIONS}
    for r in chosen:
        clean = emodb / "wav" / r["file"]
        x, sr = sf.read(clean)
        noisy = tmp_path / "noisy" / r["file"]
        noisy.parent.mkdir(exist_ok=True)
        sf.write(noisy, x + 0.02 * rng.normal(size=x.size), sr)
        audio["clean"].append(str(clean))
        audio["noisy"].append(str(noisy))
        audio["denoised"].append(str(noisy))
    speakers = np.array([r["speaker"] for r in chosen])
    partition = np.where(np.isin(speakers, ["11", "12"]), "test", "train")
    fold = np.where(partition == "test", 0, np.where(np.isin(speakers, ["03", "08"]), 1, 2))
    emotion = np.array([r["emotion"] for r in chosen])
    arousal = np.where(np.isin(emotion, ["anger", "happiness", "fear"]), "high", "low")
    return reproduce.CorpusView("emodb", [r["file"] for r in chosen], speakers, partition,
                                fold, {"2class": arousal, "7class": emotion}, audio,
                                {"2class": "2-class", "7class": "7-class"})


@pytest.mark.slow
@pytest.mark.caffe
def test_real_deep_spectrum_without_bvlc_weights_is_a_labelled_control(shared_data, tmp_path,
                                                                         monkeypatch,
                                                                         caffe_installed):
    """The real extractor (Caffe) with the BVLC weights absent: control rows, run completes."""
    from refimpl import weights
    monkeypatch.setattr(weights, "alexnet_weights_path", lambda: tmp_path / "absent.caffemodel")
    view = _emodb_view(shared_data, tmp_path, per_speaker=4)
    fs = reproduce.DeepSpectrumExtractor(seed=0)
    assert fs.control and "random-weight" in fs.control
    rows, failures = _run(view, tmp_path, [reproduce.FeatureSet("deepspectrum", fs)])
    assert failures == [] and len(rows) == 36
    assert all(r.control == fs.control for r in rows)
    table9 = (tmp_path / "results" / "table9.md").read_text()
    assert table9.count("not the paper's network") >= 6


class FakeCorpus:
    """The part of refimpl.corpus.Corpus that corpus_view_from_layer uses."""

    def __init__(self, view, drop_condition=None):
        self.view, self.drop = view, drop_condition
        self.name, self.source = "aibo", "fake"
        self.tasks = {"3class": ["c", "b", "a"], "2class": ["low", "high"]}

    def files(self):
        return list(self.view.files)

    def speakers(self):
        return self.view.speakers

    def partitions(self):
        return self.view.partition

    def folds(self):
        return self.view.fold

    def label_names(self, task):
        return self.view.labels[task]

    def audio_paths(self, condition, check=True):
        if condition == self.drop:
            return [None] * len(self.view.files)
        return [__import__("pathlib").Path(p) for p in self.view.audio[condition]]


def test_adapter_from_the_corpus_layer(corpus):
    from refimpl.cli import UserError

    class Layer:
        def __init__(self, c):
            self.c = c

        def load_corpus(self, spec, root=None, seed=0):
            assert (spec, root, seed) == ("aibo", "/data/aibo", 3)
            return self.c

    view = reproduce.corpus_view_from_layer(Layer(FakeCorpus(corpus)), "aibo", "/data/aibo", 3)
    assert list(view.tasks.items()) == [("2class", "2-class"), ("3class", "3-class")]
    assert view.classes["3class"] == ["c", "b", "a"]
    np.testing.assert_array_equal(view.audio["denoised"], corpus.audio["denoised"])
    with pytest.raises(UserError, match="no noisy audio"):
        reproduce.corpus_view_from_layer(Layer(FakeCorpus(corpus, "noisy")), "aibo",
                                         "/data/aibo", 3)
