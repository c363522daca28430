"""The orchestrator end to end, with simple stand-in extractors on synthetic audio and EmoDB.

The stand-ins (log-spectrum statistics, log-band frames with a random-codebook BoAW) stand
for the real eGeMAPS/ComParE/BoAW/deep spectrum extractors that arrive from other branches;
what is tested here is the grid: caching, resuming, failures, determinism, outputs.
"""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from refimpl import protocol
from refimpl.corpus import CONDITIONS, Corpus, load_corpus
from refimpl.corpus.table import validate
from refimpl.errors import CorpusError, UsageError
from refimpl.experiments import adapters, grid
from refimpl.experiments.adapters import FeatureSet

REPO_ROOT = Path(__file__).resolve().parents[2]

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
    return [FeatureSet("egemaps", LogSpecStats("standin-a")),
            FeatureSet("boaw", LogBandFrames(), random_codebook_boaw),
            FeatureSet("deepspectrum", LogSpecStats("standin-ds", control))]


def synthetic_corpus(folder, n_speakers=6, per_speaker=9):
    """Tones whose pitch is the class, three conditions; speakers 0-3 train, 4-5 test."""
    rng = np.random.default_rng(0)
    rows = []
    t = np.arange(int(0.25 * SR)) / SR
    for s in range(n_speakers):
        for i in range(per_speaker):
            label = i % 3
            f0 = (300, 700, 1500)[label] * (1 + 0.05 * s)
            clean = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.01 * rng.normal(size=t.size)
            noisy = clean + 0.1 * rng.normal(size=t.size)
            denoised = np.convolve(noisy, np.ones(3) / 3, mode="same")
            name = f"s{s}_{i:02d}.wav"
            row = {"file": name, "speaker": f"spk{s}",
                   "partition": "test" if s >= 4 else "train",
                   "fold": 0 if s >= 4 else (1 if s < 2 else 2),
                   "2class": "low" if label == 0 else "high", "3class": "abc"[label]}
            for cond, x in zip(CONDITIONS, (clean, noisy, denoised)):
                path = folder / cond / name
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, x.astype(np.float32), SR)
                row["path_" + cond] = str(path)
            rows.append(row)
    tasks = {"3class": ["a", "b", "c"], "2class": ["low", "high"]}
    validate(rows, tasks, "synthetic")
    return Corpus("synthetic", tasks, rows, "synthetic")


def replaced(corpus, index, **columns):
    """A copy of the corpus with row `index` changed."""
    rows = [dict(r) for r in corpus.rows]
    rows[index].update(columns)
    return Corpus(corpus.name, corpus.tasks, rows, corpus.source)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return synthetic_corpus(tmp_path_factory.mktemp("audio"))


def _run(corpus, tmp_path, sets=None, **kw):
    return grid.run_grid(corpus, sets or feature_sets(), out_dir=tmp_path / "results",
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
    monkeypatch.setattr(protocol, "train_model", lambda *a, **k: pytest.fail("retrained"))
    monkeypatch.setattr(protocol, "select_boaw_multi", lambda *a, **k: pytest.fail("retrained"))
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
    n = len(corpus) * 3
    with pytest.raises(KeyboardInterrupt):
        _run(corpus, tmp_path, [FeatureSet("egemaps", Interrupting(after=70))])
    cache = tmp_path / "cache" / "features"
    assert len(list(cache.rglob("*.npy"))) == 70
    assert not list(cache.rglob("*.part"))
    resumed = LogSpecStats("standin-a")
    rows, failures = _run(corpus, tmp_path, [FeatureSet("egemaps", resumed)])
    assert resumed.calls == n - 70
    assert failures == [] and len(rows) == 2 * 2 * 3 * 3


def test_the_cache_follows_the_audio_content(corpus, tmp_path):
    """Changed audio is extracted again; the same content under another name or with a new
    modification time is not (the cache is keyed by content, refimpl._util.cache)."""
    first = LogSpecStats("standin-a")
    _run(corpus, tmp_path, [FeatureSet("egemaps", first)], write=False)
    assert first.calls == len(corpus) * 3
    changed = tmp_path / "changed.wav"
    x, sr = sf.read(corpus.rows[0]["path_noisy"])
    sf.write(changed, 0.5 * x, sr)
    view = replaced(corpus, 0, path_noisy=str(changed))   # e.g. the noisy condition regenerated
    again = LogSpecStats("standin-a")
    _run(view, tmp_path, [FeatureSet("egemaps", again)], write=False)
    assert again.calls == 1
    os.utime(changed, ns=(1, 1))                          # touched, same bytes: not again
    copy = tmp_path / "copy.wav"
    copy.write_bytes(Path(corpus.rows[1]["path_noisy"]).read_bytes())
    view = replaced(view, 1, path_noisy=str(copy))        # moved, same bytes: not again
    third = LogSpecStats("standin-a")
    _run(view, tmp_path, [FeatureSet("egemaps", third)], write=False)
    assert third.calls == 0


def test_a_damaged_cache_entry_is_recomputed(corpus, tmp_path):
    _run(corpus, tmp_path, [FeatureSet("egemaps", LogSpecStats("standin-a"))], write=False)
    entry = sorted((tmp_path / "cache" / "features").rglob("*.npy"))[0]
    entry.write_bytes(entry.read_bytes()[:40])            # truncated, as by a crash
    again = LogSpecStats("standin-a")
    with pytest.warns(UserWarning, match="damaged cache entry"):
        _run(corpus, tmp_path, [FeatureSet("egemaps", again)], write=False)
    assert again.calls == 1


def test_a_bad_file_is_named_skipped_and_listed(corpus, tmp_path):
    victim = [i for i, r in enumerate(corpus.rows) if r["partition"] == "test"][0]
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really a wav")
    bad = replaced(corpus, victim, path_noisy=str(broken))
    rows, failures = _run(bad, tmp_path, feature_sets()[:1])
    assert [f.file for f in failures] == [bad.rows[victim]["file"]]
    assert failures[0].condition == "noisy" and "broken.wav" in failures[0].error
    assert all(r.n_test == 17 for r in rows)     # left out of every condition
    text = (tmp_path / "results" / "report.md").read_text()
    assert bad.rows[victim]["file"] in text.split("### Files left out")[1]


def test_manifest_corpus_and_cli_errors(corpus, tmp_path):
    manifest = tmp_path / "manifest.csv"
    corpus.to_manifest(manifest)
    loaded = load_corpus(str(manifest))
    assert loaded.files() == corpus.files() and loaded.tasks == corpus.tasks
    assert loaded.task_order() == {"2class": "2-class", "3class": "3-class"}
    assert [str(p) for p in loaded.audio_paths("noisy")] == \
        [r["path_noisy"] for r in corpus.rows]
    a, _ = _run(corpus, tmp_path / "a", feature_sets()[:1], write=False)
    b, _ = _run(loaded, tmp_path / "b", feature_sets()[:1], write=False)
    assert [r.__dict__ for r in a] == [r.__dict__ for r in b]

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "refimpl", "reproduce", *args],
                              cwd=REPO_ROOT, capture_output=True, text=True)
    r = cli("--corpus", str(tmp_path / "nope.csv"))
    assert r.returncode == 2 and "nope.csv" in r.stderr and "Traceback" not in r.stderr
    # training rows without an inner fold: the corpus layer names the file and every row
    no_folds = tmp_path / "no_folds.csv"
    lines = manifest.read_text().splitlines()
    header = lines[0].split(",")
    fold = header.index("fold")
    with open(no_folds, "w") as f:
        f.write(lines[0] + "\n")
        for line in lines[1:]:
            cells = line.split(",")
            cells[fold] = ""
            f.write(",".join(cells) + "\n")
    r = cli("--corpus", str(no_folds), "--features", "egemaps")
    assert r.returncode == 2 and "no_folds.csv" in r.stderr and "Traceback" not in r.stderr
    assert "training row needs fold 1 or 2" in r.stderr
    r = cli("--corpus", str(manifest), "--features", "mfcc")
    assert r.returncode == 2 and "mfcc" in r.stderr


def test_the_grid_refuses_a_corpus_it_cannot_score(corpus):
    rows = [dict(r, path_noisy="") for r in corpus.rows]
    with pytest.raises(CorpusError, match="no noisy audio at all"):
        grid.check_corpus(Corpus(corpus.name, corpus.tasks, rows))
    one_fold = [dict(r, fold=1) if r["partition"] == "train" else r for r in corpus.rows]
    with pytest.raises(CorpusError, match="both inner folds"):
        grid.check_corpus(Corpus(corpus.name, corpus.tasks, one_fold))
    leak = [dict(r) for r in corpus.rows]
    leak[0]["partition"], leak[0]["fold"] = "test", 0   # a training speaker's file in test
    with pytest.raises(CorpusError, match="both partitions"):
        validate(leak, corpus.tasks, "leak")


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
    rows = []
    for r in chosen:
        clean = emodb / "wav" / r["file"]
        x, sr = sf.read(clean)
        noisy = tmp_path / "noisy" / r["file"]
        noisy.parent.mkdir(exist_ok=True)
        sf.write(noisy, x + 0.02 * rng.normal(size=x.size), sr)
        test = r["speaker"] in ("11", "12")
        arousal = "high" if r["emotion"] in ("anger", "happiness", "fear") else "low"
        rows.append({"file": r["file"], "speaker": r["speaker"],
                     "partition": "test" if test else "train",
                     "fold": 0 if test else (1 if r["speaker"] in ("03", "08") else 2),
                     "2class": arousal, "7class": r["emotion"], "path_clean": str(clean),
                     "path_noisy": str(noisy), "path_denoised": str(noisy)})
    tasks = {"2class": ["high", "low"], "7class": sorted({r["7class"] for r in rows})}
    validate(rows, tasks, "emodb subset")
    return Corpus("emodb", tasks, rows, "emodb subset")


@pytest.mark.slow
@pytest.mark.caffe
def test_real_deep_spectrum_without_bvlc_weights_is_a_labelled_control(shared_data, tmp_path,
                                                                         monkeypatch,
                                                                         caffe_installed):
    """The real extractor (Caffe) with the BVLC weights absent: control rows, run completes."""
    from refimpl.network import weights
    monkeypatch.setattr(weights, "alexnet_weights_path", lambda: tmp_path / "absent.caffemodel")
    view = _emodb_view(shared_data, tmp_path, per_speaker=4)
    fs = adapters.DeepSpectrumExtractor(seed=0)
    assert fs.control and "random-weight" in fs.control
    rows, failures = _run(view, tmp_path, [FeatureSet("deepspectrum", fs)])
    assert failures == [] and len(rows) == 36
    assert all(r.control == fs.control for r in rows)
    table9 = (tmp_path / "results" / "table9.md").read_text()
    assert table9.count("not the paper's network") >= 6


# ------------------------------------------------------------------ seeds, BoAW options

def test_seeds_rerun_the_models_only_and_keep_the_reference_run(corpus, tmp_path, monkeypatch):
    single, _ = _run(corpus, tmp_path / "single", write=False)
    sets = feature_sets()
    rows, _ = _run(corpus, tmp_path / "seeds", sets, seeds=[0, 1, 2])
    assert sets[0].extractor.calls == len(corpus) * 3          # once per file and condition
    assert [r.seed for r in rows] == [0] * 108 + [1] * 108 + [2] * 108
    assert [r.__dict__ for r in rows[:108]] == [r.__dict__ for r in single]
    by_seed = {s: {r.key(): r.uar for r in rows if r.seed == s} for s in (0, 1, 2)}
    assert by_seed[0] != by_seed[1] != by_seed[2]           # the seed moves some cells
    out = tmp_path / "seeds" / "results"
    with open(out / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == 108         # the reference seed
    with open(out / "results_seeds.csv") as f:
        per_seed = list(csv.DictReader(f))
    assert len(per_seed) == 324 and {r["seed"] for r in per_seed} == {"0", "1", "2"}
    trust_rows = list(csv.DictReader(open(out / "trust.csv")))
    cell = next(t for t in trust_rows if (t["Bal."], t["Train"], t["Test"]) ==
                ("Ov.", "noisy", "clean") and t["Task"] == "3-class"
                and t["Feature set"] == "eGeMAPS")
    values = [r.uar for r in rows if r.key() == ("egemaps", "3class", "Ov.", "noisy", "clean")]
    assert float(cell["SD"]) == pytest.approx(100 * np.std(values, ddof=1), abs=0.05)
    assert cell["Seeds"] == "3"
    assert "mean ± sd over 3 seeds" in (out / "table5.md").read_text()
    assert "Seeds in which it holds" in (out / "paper_comparison.md").read_text()
    # warm: nothing is trained again for any seed
    monkeypatch.setattr(protocol, "train_model", lambda *a, **k: pytest.fail("retrained"))
    monkeypatch.setattr(protocol, "select_boaw_multi", lambda *a, **k: pytest.fail("retrained"))
    again, _ = _run(corpus, tmp_path / "seeds", feature_sets(), seeds=[0, 1, 2], write=False)
    assert [r.__dict__ for r in again] == [r.__dict__ for r in rows]


def test_boaw_chosen_per_test_condition_is_never_below_the_honest_choice(corpus, tmp_path):
    """The honest (Cs, Na) is one of the candidates the per-test mode scores, with the same
    alpha, codebook and seed: so per cell the per-test UAR is at least the honest one."""
    sets = [FeatureSet("boaw", LogBandFrames(), random_codebook_boaw)]
    honest, _ = _run(corpus, tmp_path / "cv", sets, write=False)
    chosen, _ = _run(corpus, tmp_path / "pt", sets, write=False, boaw_select="per-test")
    assert [r.key() for r in honest] == [r.key() for r in chosen]
    for h, c in zip(honest, chosen):
        assert c.uar >= h.uar - 1e-12, (h.key(), h.uar, c.uar)
        assert (c.cs, c.na) in {(10, 1), (10, 5), (20, 1), (20, 5)}
    assert any(c.uar > h.uar for h, c in zip(honest, chosen))
    with pytest.raises(UsageError, match="boaw_select"):
        _run(corpus, tmp_path / "x", sets, write=False, boaw_select="test")


def test_na_grid_and_seed_options():
    from refimpl.experiments.reproduce import NA_GRIDS, parse_seeds
    assert NA_GRIDS["stated"] == (10, 20, 50, 100, 200, 500)
    assert set(NA_GRIDS["stated"]) < set(NA_GRIDS["union"])
    assert {1, 2, 5} <= set(NA_GRIDS["union"])              # Table 8 prints Na 1, 2, 5
    assert parse_seeds("0-3,7,2") == [0, 1, 2, 3, 7]
    with pytest.raises(UsageError, match="seeds"):
        parse_seeds("a-b")


def test_the_stated_na_grid_is_searched(corpus, tmp_path):
    from refimpl.experiments.reproduce import NA_GRIDS
    sets = [FeatureSet("boaw", LogBandFrames(), random_codebook_boaw)]
    rows, _ = _run(corpus, tmp_path, sets, write=False, sizes=(20, 50),
                   assignments=NA_GRIDS["stated"])
    assert {r.na for r in rows} <= {10, 20, 50}
