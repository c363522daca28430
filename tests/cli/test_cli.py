"""`refimpl extract` end to end: the toolkit's options, bad input, the formats, the
cache, worker processes, and a SIGKILL half way through followed by a rerun."""
import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

from refimpl.cli import main
from refimpl.golden import signals
from refimpl.network import cforward

pytestmark = pytest.mark.skipif(not cforward.available(), reason="C core not built (make build)")

REPO = Path(__file__).resolve().parents[2]
BASE = ["--backend", "c", "--weights", "synthetic:0", "--no-progress"]


@pytest.fixture
def corpus(tmp_path):
    """corpus/<class>/<file>.wav: two classes, one 2.5 s file among them."""
    for folder, name in [("tone", "tone_440hz_16k"), ("chirp", "chirp_100_7000_16k"),
                         ("speech", "speechlike_male_16k")]:
        (tmp_path / "corpus" / folder).mkdir(parents=True)
        samples, rate = signals.make_case(name)
        soundfile.write(tmp_path / "corpus" / folder / f"{name}.wav", samples, rate,
                        subtype="PCM_16")
    return tmp_path / "corpus"


def extract(*args, cache=None):
    extra = ["--cache-dir", str(cache)] if cache else ["--no-cache"]
    return main(["extract", *map(str, args), *BASE, *extra])


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_folder_labels_and_names_as_the_toolkit(corpus, tmp_path, capsys):
    out = tmp_path / "f.csv"
    assert extract(corpus, "-o", out) == 0
    rows = read_csv(out)
    assert rows[0][0] == "name" and rows[0][-1] == "class" and len(rows[0]) == 4098
    assert [(r[0], r[-1]) for r in rows[1:]] == [
        ("chirp/chirp_100_7000_16k.wav", "chirp"), ("speech/speechlike_male_16k.wav", "speech"),
        ("tone/tone_440hz_16k.wav", "tone")]
    assert "wrote 3 rows x 4096 features of 3 file(s)" in capsys.readouterr().err


def test_windows_start_end_and_layer(corpus, tmp_path):
    wav = corpus / "speech" / "speechlike_male_16k.wav"
    out = tmp_path / "w.csv"
    assert extract(wav, "-o", out, "--window", "1", "--hop", "0.5") == 0
    rows = read_csv(out)
    assert rows[0][:2] == ["name", "timeStamp"]
    assert [r[1] for r in rows[1:]] == ["0.0", "0.5", "1.0", "1.5", "2.0"]
    assert extract(wav, "-o", out, "--window", "1", "--hop", "0.5", "--whole-windows") == 0
    assert len(read_csv(out)) == 1 + 4
    assert extract(wav, "-o", out, "--start", "0.5", "--end", "2", "--window", "0.5") == 0
    assert [r[1] for r in read_csv(out)[1:]] == ["0.5", "1.0", "1.5"]
    assert extract(wav, "-o", out, "--layer", "pool5") == 0
    rows = read_csv(out)
    assert rows[0][-2] == "neuron_9215" and len(rows[1]) == 1 + 9216 + 1


def test_label_file_with_several_columns_into_arff(corpus, tmp_path):
    import arff   # liac-arff, the toolkit's own ARFF reader (a test requirement)
    labels = tmp_path / "labels.csv"
    labels.write_text("file,kind,valence\ntone_440hz_16k.wav,tone,0.5\n"
                      "chirp_100_7000_16k.wav,sweep,-1\nspeechlike_male_16k.wav,speech like,2\n")
    out = tmp_path / "f.arff"
    assert extract(corpus, "-o", out, "--labels", labels) == 0
    data = arff.loads(out.read_text())
    assert data["relation"] == "Deep Spectrum Features"
    assert data["attributes"][-2:] == [("kind", ["speech like", "sweep", "tone"]),
                                       ("valence", "NUMERIC")]
    assert [(r[0], r[-2], r[-1]) for r in data["data"]] == [
        ("chirp/chirp_100_7000_16k.wav", "sweep", -1.0),
        ("speech/speechlike_male_16k.wav", "speech like", 2.0),
        ("tone/tone_440hz_16k.wav", "tone", 0.5)]


def test_every_format_carries_the_same_numbers(corpus, tmp_path):
    outs = {}
    for fmt in ("csv", "arff", "parquet", "npz"):
        out = tmp_path / f"f.{fmt}"
        assert extract(corpus, "-o", out, "--window", "1") == 0
        outs[fmt] = out
    assert extract(corpus, "-o", tmp_path / "f.data", "--format", "npz", "--window", "1") == 0
    want = pd.read_csv(outs["csv"]).filter(like="neuron_").to_numpy(np.float32)
    with np.load(outs["npz"]) as z, np.load(tmp_path / "f.data") as z2:
        np.testing.assert_array_equal(z["features"], want)
        np.testing.assert_array_equal(z2["features"], want)
    np.testing.assert_array_equal(
        pd.read_parquet(outs["parquet"]).filter(like="neuron_").to_numpy(), want)
    import arff   # liac-arff, the toolkit's own ARFF reader (a test requirement)
    rows = arff.loads(outs["arff"].read_text())["data"]
    np.testing.assert_array_equal(np.array([r[2:-1] for r in rows]).astype(np.float32), want)


def test_reduced_drops_exactly_the_all_zero_neurons(corpus, tmp_path, capsys):
    out = tmp_path / "f.csv"
    assert extract(corpus, "-o", out, "--window", "1", "--reduced") == 0
    full = pd.read_csv(out)
    small = pd.read_csv(tmp_path / "f.reduced.csv")
    neurons = full.filter(like="neuron_")
    kept = neurons.columns[(neurons != 0).any(axis=0)]     # pandas decides which columns
    assert 0 < len(kept) < 4096
    assert list(small.columns) == ["name", "timeStamp"] + list(kept) + ["class"]
    pd.testing.assert_frame_equal(small, full[small.columns])
    assert f"{len(kept)} of 4096 neurons kept" in capsys.readouterr().err
    assert extract(corpus, "-o", out, "--reduced", tmp_path / "r.arff") == 0
    assert (tmp_path / "r.arff").read_text().startswith("@relation 'Reduced Deep Spectrum")


def test_worker_processes_and_the_cache_give_the_same_bytes(corpus, tmp_path, capsys):
    one, two, cached = tmp_path / "1.csv", tmp_path / "2.csv", tmp_path / "3.csv"
    assert extract(corpus, "-o", one, "--window", "0.5") == 0
    assert extract(corpus, "-o", two, "--window", "0.5", "--jobs", "2",
                   cache=tmp_path / "cache") == 0
    assert extract(corpus, "-o", cached, "--window", "0.5", cache=tmp_path / "cache") == 0
    assert one.read_bytes() == two.read_bytes() == cached.read_bytes()
    assert "(3 from the cache)" in capsys.readouterr().err


def test_spectrograms_are_written_beside_the_features(corpus, tmp_path):
    from refimpl.image import decode_png, spectrogram_image
    pngs = tmp_path / "png"
    assert extract(corpus / "tone", "-o", tmp_path / "f.csv", "--output-spectrograms", pngs) == 0
    (png,) = pngs.rglob("*.png")
    assert png.relative_to(pngs).as_posix() == "tone_440hz_16k.png"
    x, rate = soundfile.read(corpus / "tone" / "tone_440hz_16k.wav")
    np.testing.assert_array_equal(decode_png(png.read_bytes()), spectrogram_image(x, rate))


def test_same_named_files_in_different_folders_get_distinct_rows(tmp_path):
    samples, rate = signals.make_case("tone_440hz_16k")
    for d in ("a", "b"):
        (tmp_path / "in" / d).mkdir(parents=True)
        soundfile.write(tmp_path / "in" / d / "x.wav", samples, rate, subtype="PCM_16")
    out = tmp_path / "f.csv"
    assert extract(tmp_path / "in", "-o", out) == 0
    assert [r[0] for r in read_csv(out)[1:]] == ["a/x.wav", "b/x.wav"]
    assert extract(tmp_path / "in" / "a", tmp_path / "in" / "b", "-o", out) == 0
    assert [r[0] for r in read_csv(out)[1:]] == [
        (tmp_path / "in" / "a" / "x.wav").as_posix(), (tmp_path / "in" / "b" / "x.wav").as_posix()]


# ------------------------------------------------------------------------ bad input

def error_lines(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if line]


def test_bad_files_give_one_line_each_and_exit_1(corpus, tmp_path, capsys):
    (corpus / "tone" / "text.wav").write_text("just text\n")
    out = tmp_path / "f.csv"
    status = extract(corpus, tmp_path / "missing.wav", "-o", out)
    lines = error_lines(capsys)
    assert status == 1
    assert any(re.search(r"skipped .*tone/text.wav: not audio that libsndfile can read", x) for x in lines)
    assert any(x.endswith("missing.wav: cannot open (No such file or directory)") for x in lines)
    assert len(read_csv(out)) == 1 + 3                 # the others still come out
    assert "2 of 5 file(s) failed" in lines[-1]


def test_labels_that_match_no_file_and_files_without_labels(corpus, tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("file,class\ntone_440hz_16k.wav,t\nchirp_100_7000_16k.wav,c\n"
                      "gone.wav,g\nalso_gone.wav,g\n")
    out = tmp_path / "f.csv"
    assert extract(corpus, "-o", out, "--labels", labels) == 1
    lines = error_lines(capsys)
    assert any("labels.csv: 2 labelled file(s) are not among the inputs: gone.wav, "
               "also_gone.wav" in x for x in lines)
    assert any("speechlike_male_16k.wav: no label in" in x for x in lines)
    assert [r[-1] for r in read_csv(out)[1:]] == ["c", "t"]


@pytest.mark.parametrize("text,message", [("", "the label file is empty"),
                                          ("file,class\na.wav\n", "line 2 has 1 cells")])
def test_an_unusable_label_file_stops_with_one_line(corpus, tmp_path, capsys, text, message):
    labels = tmp_path / "labels.csv"
    labels.write_text(text)
    assert extract(corpus, "-o", tmp_path / "f.csv", "--labels", labels) == 2
    (line,) = error_lines(capsys)
    assert line.startswith("refimpl: error: ") and "labels.csv" in line and message in line
    assert not (tmp_path / "f.csv").exists()


def test_nothing_usable_writes_nothing(tmp_path, capsys):
    (tmp_path / "a.wav").write_text("text")
    assert extract(tmp_path / "a.wav", "-o", tmp_path / "f.csv") == 1
    assert not (tmp_path / "f.csv").exists()
    assert extract(tmp_path / "empty_dir_is_no_input", "-o", tmp_path / "f.csv") == 1
    (tmp_path / "d").mkdir()
    assert extract(tmp_path / "d", "-o", tmp_path / "f.csv") == 2
    assert "no audio files found" in capsys.readouterr().err
    assert extract(tmp_path / "a.wav", "-o", tmp_path / "f.txt") == 2


# --------------------------------------------------------------- kill and resume

def kill_half_way(cmd, cache, files, env):
    """Start `cmd`, SIGKILL it once its cache holds half the files' entries."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600
    while len(list(cache.rglob("*.npz"))) < files // 2:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    return len(list(cache.rglob("*.npz")))


def resume_run(inputs, tmp_path):
    """An uninterrupted run; a run killed half way, then rerun: (uninterrupted bytes,
    rerun bytes, entries when killed, files the rerun took from the cache)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    base = [sys.executable, "-m", "refimpl", "extract", *map(str, inputs), *BASE]
    whole, resumed, cache = tmp_path / "whole.csv", tmp_path / "resumed.csv", tmp_path / "c"
    subprocess.run(base + ["-o", str(whole), "--no-cache"], env=env, check=True,
                   stderr=subprocess.DEVNULL)
    cmd = base + ["-o", str(resumed), "--cache-dir", str(cache)]
    n = len([p for i in inputs for p in (Path(i).rglob("*.wav") if Path(i).is_dir() else [i])])
    done = kill_half_way(cmd, cache, n, env)
    assert not resumed.exists()                       # atomic: no half-written output
    rerun = subprocess.run(cmd, env=env, check=True, stderr=subprocess.PIPE, text=True)
    served = int(re.search(r"\((\d+) from the cache\)", rerun.stderr).group(1))
    return whole.read_bytes(), resumed.read_bytes(), done, served, n


def test_a_killed_extraction_resumes_to_the_same_bytes(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(12):
        samples, rate = signals.make_case("speechlike_male_16k" if i % 2 else "tone_440hz_16k")
        soundfile.write(folder / f"{i:02d}.wav", np.roll(samples, 97 * i), rate, subtype="PCM_16")
    whole, resumed, done, served, n = resume_run([folder], tmp_path)
    assert whole == resumed
    assert 6 <= done < n and served == done


@pytest.mark.slow
def test_a_killed_extraction_of_all_emodb_resumes_to_the_same_bytes(shared_data, tmp_path):
    folder = shared_data / "emodb" / "wav"
    whole, resumed, done, served, n = resume_run([folder], tmp_path)
    assert n == 535 and whole == resumed and served == done
    print(f"killed with {done} of {n} files cached; the rerun took {served} from the cache "
          f"and computed {n - served}")


@pytest.mark.caffe
def test_caffe_and_the_numpy_reference_agree_through_the_command_line(shared_data, tmp_path,
                                                                      caffe_installed):
    """End to end on real speech: real Caffe (the paper's) and the NumPy reference. The CSV
    holds each float32 exactly (9 digits), so the bound is the network's own: two float32
    evaluations, rounding carried through the layers (tests/support/tolerances.py)."""
    import tolerances as tol
    from refimpl.audio import read_audio
    from refimpl.image import render_image
    from refimpl.network import caffemodel, weights
    from refimpl.network.blob import image_to_blob
    wavs = sorted((shared_data / "emodb" / "wav").glob("*.wav"))[:3]
    outs = {}
    for backend in ("caffe", "numpy"):
        out = tmp_path / f"{backend}.csv"
        assert main(["extract", *map(str, wavs), "-o", str(out), "--backend", backend,
                     "--weights", "synthetic:0", "--no-progress", "--no-cache"]) == 0
        rows = read_csv(out)
        assert [r[0] for r in rows[1:]] == [w.name for w in wavs]
        outs[backend] = np.array([[float(v) for v in r[1:-1]] for r in rows[1:]], np.float32)
    blob = np.concatenate([image_to_blob(render_image(au.signal, au.rate))
                           for au in map(read_audio, wavs)])
    params = caffemodel.load_alexnet_params(weights.synthetic_weights_path(0))
    tol.assert_within(outs["numpy"], outs["caffe"],
                      tol.alexnet_bound(params, blob, ["fc7"])["fc7"][1], "CLI fc7")


def test_efficientnet_rows_are_its_pooled_features(corpus, tmp_path, efficientnet_weights):
    """--net efficientnet-lite0 gives 1280-d rows equal to running the network on the
    images directly (the network itself is checked against PyTorch elsewhere)."""
    from refimpl.image import spectrogram_image
    from refimpl.network import efficientnet
    wav = corpus / "speech" / "speechlike_male_16k.wav"
    out = tmp_path / "e.csv"
    assert main(["extract", str(wav), "-o", str(out), "--net", "efficientnet-lite0",
                 "--no-progress", "--no-cache"]) == 0
    rows = read_csv(out)
    assert rows[0][-2:] == ["neuron_1279", "class"] and len(rows) == 2
    got = np.array([float(v) for v in rows[1][1:-1]], np.float32)
    x = soundfile.read(wav)[0]
    want = efficientnet.efficientnet_features(spectrogram_image(x, 16000)[None])[0]
    np.testing.assert_array_equal(got, want)


def test_image_names_the_bad_file_on_one_line(tmp_path, capsys):
    (tmp_path / "text.wav").write_text("just text")
    for name, problem in [("missing.wav", "cannot open (No such file"),
                          ("text.wav", "not audio that libsndfile can read")]:
        assert main(["image", str(tmp_path / name), "-o", str(tmp_path / "x.png")]) == 2
        (line,) = error_lines(capsys)
        assert line.startswith("refimpl: error: ") and f"{name}: {problem}" in line
    samples, rate = signals.make_case("tone_440hz_16k")
    soundfile.write(tmp_path / "tone.wav", samples, rate, subtype="PCM_16")
    assert main(["image", str(tmp_path / "tone.wav"), "-o", str(tmp_path / "x.png"),
                 "--start", "2"]) == 2
    assert "nothing left" in error_lines(capsys)[0]
    assert not (tmp_path / "x.png").exists()
    assert main(["image", str(tmp_path / "tone.wav"), "-o", str(tmp_path / "x.png"),
                 "--start", "0.25", "--end", "0.75"]) == 0
    from refimpl.image import decode_png, spectrogram_image
    x = soundfile.read(tmp_path / "tone.wav")[0]
    np.testing.assert_array_equal(decode_png((tmp_path / "x.png").read_bytes()),
                                  spectrogram_image(x[4000:12000], rate))


def peak_rss_kb(cmd, env):
    """Peak resident memory of a child process, in KiB (its own rusage, from wait4)."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, cmd
    return usage.ru_maxrss


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_number_of_files(shared_data, tmp_path):
    """100 EmoDB files, then the same 100 ten times over (1000 inputs, through links, the
    repeats served by the per-file cache): the peak RSS stays within 10% (the report of
    issue 14 has 535 against 5000 files without the cache: 573 vs 577 MiB)."""
    wavs = sorted((shared_data / "emodb" / "wav").glob("*.wav"))[:100]
    small, large = tmp_path / "small", tmp_path / "large"
    small.mkdir(), large.mkdir()
    for w in wavs:
        (small / w.name).symlink_to(w)
        for k in range(10):
            (large / f"{k}_{w.name}").symlink_to(w)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    base = [sys.executable, "-m", "refimpl", "extract", *BASE]
    a = peak_rss_kb(base + [str(small), "-o", str(tmp_path / "s.csv"), "--no-cache"], env)
    b = peak_rss_kb(base + [str(large), "-o", str(tmp_path / "l.csv"), "--cache-dir",
                            str(tmp_path / "cache")], env)
    print(f"peak RSS: {a / 1024:.0f} MiB at 100 files, {b / 1024:.0f} MiB at 1000")
    assert b <= 1.1 * a
