"""Nothing a user does loses data or gives silently wrong features (issue 21): the faults a
hostile but ordinary user found, each a test. The gallery (bad_input_gallery.py) holds the
one-line messages and the README's rows; here are the consequences: the input that is
still there, the run that does not hang, the shard, cache entry or weights that are not
used, the number refused at the edge.

Runs that could hang on today's code (a FIFO, /dev/zero) go through a real process with a
timeout; the rest through refimpl.cli.main in this process (gallery.run_cli).
"""
import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bad_input_gallery as gallery
from refimpl.errors import CaffeModelError, UsageError

REPO = Path(__file__).resolve().parents[1]
HANG_S = 300           # far beyond what a 2-file run takes; a hang ends here as a failure


@pytest.fixture(scope="module")
def weights():
    from refimpl.network.weights import synthetic_weights_path
    return synthetic_weights_path(0)


@pytest.fixture
def corpus(tmp_path):
    """Two short speech-like files in a folder."""
    d = tmp_path / "d"
    for i in range(2):
        gallery._wav(d / f"f{i}.wav", gallery.speech_like(300 + i, seconds=0.5))
    return d


@pytest.fixture
def cli(tmp_path, weights):
    """run(*argv) -> gallery.Run of `refimpl extract ... --backend c` (or any command with
    extract=False), with a cache of this test's own."""
    cache = tmp_path / "cache"

    def run(*argv, extract=True):
        argv = [str(a) for a in argv]
        if extract:
            argv = ["extract", *argv, "--backend", "c", "--weights", str(weights),
                    "--no-progress"] + ([] if "--cache-dir" in argv or "--no-cache" in argv
                                        else ["--cache-dir", str(cache)])
        return gallery.run_cli(argv)
    return run


def _process(argv, tmp_path, timeout=HANG_S, prelude=""):
    """`python -m refimpl ARGV` in a real process (with `prelude` run first)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "REFIMPL_CACHE": str(tmp_path / "pcache")}
    code = prelude + "import sys\nfrom refimpl.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return subprocess.run([sys.executable, "-c", code, *map(str, argv)], capture_output=True,
                          text=True, env=env, timeout=timeout)


def _one_error(run, *words):
    lines = [ln for ln in run.lines if ln.startswith("refimpl:")]
    assert run.status == 2 and len(lines) == 1, (run.argv, run.stderr)
    assert "Traceback" not in run.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


# ------------------------------------------------------------------------------ outputs

def test_an_output_that_is_an_input_is_refused_and_the_input_kept(cli, corpus):
    wav = corpus / "f0.wav"
    before = wav.read_bytes()
    _one_error(cli(corpus, "-o", wav, "--format", "csv"), str(wav), "same file as an input")
    assert wav.read_bytes() == before


def test_an_output_that_is_the_label_file_is_refused_and_the_labels_kept(cli, corpus, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("name,label\nf0.wav,a\nf1.wav,b\n")
    _one_error(cli(corpus, "-o", labels, "--labels", labels), "same file as the label file")
    assert labels.read_text() == "name,label\nf0.wav,a\nf1.wav,b\n"


def test_the_reduced_copy_and_the_output_must_differ(cli, corpus, tmp_path):
    out = tmp_path / "x.csv"
    _one_error(cli(corpus, "-o", out, "--reduced", out), "name the same file")
    assert not out.exists()


def test_image_onto_its_own_input_is_refused(corpus):
    wav = corpus / "f0.wav"
    before = wav.read_bytes()
    _one_error(gallery.run_cli(["image", wav, "-o", wav]), "same file as the input")
    assert wav.read_bytes() == before


def test_an_output_through_a_symlink_is_written_at_its_target(cli, corpus, tmp_path):
    target, link = tmp_path / "real.csv", tmp_path / "link.csv"
    target.write_text("old\n")
    link.symlink_to(target.name)
    r = cli(corpus, "-o", link)
    assert r.status == 0, r.stderr
    assert link.is_symlink() and os.readlink(link) == target.name
    assert target.read_text().startswith("name,neuron_0,")


def test_an_output_that_is_a_fifo_is_refused_and_stays_a_fifo(corpus, tmp_path, weights):
    fifo = gallery._fifo(tmp_path / "out.csv")
    link = tmp_path / "link.csv"
    link.symlink_to(fifo)
    for out in (fifo, link):
        p = _process(["extract", corpus, "-o", out, "--backend", "c", "--weights", weights,
                      "--no-progress"], tmp_path)
        assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
        assert f"{out}: cannot be written: a FIFO, not a regular file" in p.stderr
        assert fifo.is_fifo()


def test_an_output_that_is_a_folder_is_named_not_its_temporary_file(cli, corpus, tmp_path):
    out = tmp_path / "out.csv"
    out.mkdir()
    line = _one_error(cli(corpus, "-o", out), f"{out}: cannot be written: a folder")
    assert ".part" not in line


def test_the_api_to_file_onto_a_folder_is_an_oserror_naming_it(corpus, tmp_path, weights):
    from refimpl import DeepSpectrum
    out = tmp_path / "out.csv"
    out.mkdir()
    with DeepSpectrum(weights=str(weights), cache=False) as ds:
        with pytest.raises(OSError) as e:
            ds.to_file(corpus, out)
    assert e.value.filename == str(out) and "a folder" in e.value.strerror


def test_a_file_size_limit_names_the_output_not_a_part_file(corpus, tmp_path, weights):
    """RLIMIT_FSIZE stands in for a full disk: write() fails (EFBIG, like ENOSPC)."""
    out = tmp_path / "big.csv"
    prelude = ("import resource, signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
               "resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))\n")
    p = _process(["extract", corpus, "-o", out, "--backend", "c", "--weights", weights,
                  "--no-progress", "--no-cache"], tmp_path, prelude=prelude)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert f"refimpl: error: {out}: cannot be written (File too large)" in p.stderr
    assert ".part" not in p.stderr and not out.exists()
    assert not [f for f in tmp_path.iterdir() if f.name.endswith((".part", ".new"))]


# ------------------------------------------------------------------------------- inputs

@pytest.mark.parametrize("cache", ["cache", "no-cache"])
def test_fifo_and_device_inputs_are_named_and_the_run_goes_on(corpus, tmp_path, weights, cache):
    gallery._fifo(corpus / "pipe.wav")
    gallery._link_to_device(corpus / "zero.wav")
    out = tmp_path / "x.csv"
    p = _process(["extract", corpus, "-o", out, "--backend", "c", "--weights", weights,
                  "--no-progress"] + (["--no-cache"] if cache == "no-cache" else []), tmp_path)
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    assert f"skipped {corpus / 'pipe.wav'}" in p.stderr and "a FIFO" in p.stderr
    assert f"skipped {corpus / 'zero.wav'}" in p.stderr and "a character device" in p.stderr
    assert [r[0] for r in csv.reader(out.open())][1:] == ["f0.wav", "f1.wav"]


@pytest.mark.parametrize("what", ["--labels", "--weights"])
def test_a_fifo_as_labels_or_weights_is_refused_without_hanging(corpus, tmp_path, weights,
                                                                 what):
    fifo = gallery._fifo(tmp_path / "fifo")
    argv = ["extract", corpus, "-o", tmp_path / "x.csv", "--backend", "c", "--no-progress",
            "--weights", fifo if what == "--weights" else weights]
    if what == "--labels":
        argv += ["--labels", fifo]
    p = _process(argv, tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert f"{fifo}: " in p.stderr and "a FIFO, not a regular file" in p.stderr


def test_no_digest_of_what_is_not_a_regular_file():
    from refimpl._util.digest import content_digest, file_digest
    for reader in (file_digest, content_digest):
        with pytest.raises(OSError, match="a character device, not a regular file"):
            reader("/dev/zero")


# ------------------------------------------------------------------------------- shards

@pytest.fixture
def shards(cli, corpus, tmp_path):
    """Three files in two shards of out.csv, and the serial run's bytes."""
    gallery._wav(corpus / "f2.wav", gallery.speech_like(302, seconds=0.5))
    out = tmp_path / "s" / "out.csv"
    for i in range(2):
        assert cli(corpus, "-o", out, "--shard", f"{i}/2").status == 0
    assert cli(corpus, "-o", tmp_path / "serial.csv").status == 0
    return out, [out.with_name(f"out.shard-{i}-of-2.csv") for i in range(2)]


def _merge(out):
    return gallery.run_cli(["extract", "--merge", "-o", out])


def test_merge_of_whole_shards_is_the_serial_run(shards, tmp_path):
    out, _ = shards
    assert _merge(out).status == 0
    assert out.read_bytes() == (tmp_path / "serial.csv").read_bytes()


def test_merge_refuses_a_truncated_shard(shards):
    out, (first, _) = shards
    data = first.read_bytes()
    first.write_bytes(data[:len(data) - 5000])
    _one_error(_merge(out), str(first), "cut short or changed")
    assert not out.exists()


def test_merge_refuses_a_short_row_even_when_the_record_was_rewritten(shards):
    """The row check stands on its own: a shard cut short and its record made to match."""
    from refimpl._util.digest import file_digest
    from refimpl.features import shard_record_path
    out, (first, _) = shards
    data = first.read_bytes()
    first.write_bytes(data[:len(data) - 5000] + b"\r\n")
    record = json.loads(shard_record_path(first).read_text())
    record["sha256"] = file_digest(first)
    shard_record_path(first).write_text(json.dumps(record))
    _one_error(_merge(out), str(first), "row 1 has", "columns, the header 4098")


def test_merge_refuses_a_shard_copied_over_another(shards):
    from refimpl.features import shard_record_path
    out, (first, second) = shards
    shutil.copy(first, second)
    _one_error(_merge(out), str(second), "cut short or changed")
    shutil.copy(shard_record_path(first), shard_record_path(second))
    _one_error(_merge(out), str(second), "holds shard 0 of 2, not 1 of 2")


def test_merge_refuses_a_shard_of_other_weights(shards, cli, corpus):
    from refimpl.network.weights import synthetic_weights_path
    out, (_, second) = shards
    r = gallery.run_cli(["extract", corpus, "-o", out, "--shard", "1/2", "--backend", "c",
                         "--weights", synthetic_weights_path(1), "--no-progress", "--no-cache"])
    assert r.status == 0, r.stderr
    _one_error(_merge(out), str(second), "another configuration", "weights-sha256=")


def test_merge_refuses_a_shard_of_other_inputs(shards, cli, corpus):
    out, (_, second) = shards
    (corpus / "f2.wav").unlink()
    assert cli(corpus, "-o", out, "--shard", "1/2").status == 0
    _one_error(_merge(out), str(second), "cut from other inputs")


def test_merge_refuses_a_shard_without_its_record(shards):
    from refimpl.features import shard_record_path
    out, (first, _) = shards
    shard_record_path(first).unlink()
    _one_error(_merge(out), str(first), "no record of what made it")


# -------------------------------------------------------------------------------- cache

def _entries(cache):
    return sorted((cache / "features" / "deepspectrum").glob("*/*.npz"))


def test_a_cache_entry_of_another_file_is_a_miss_with_a_warning(cli, corpus, tmp_path):
    fresh = cli(corpus, "-o", tmp_path / "fresh.csv")
    assert fresh.status == 0
    from refimpl._util.digest import content_digest
    entries = {e.stem: e for e in _entries(tmp_path / "cache")}
    a, b = (content_digest(corpus / f"f{i}.wav") for i in range(2))
    shutil.copy(entries[b], entries[a])     # f1's features under f0's key
    r = cli(corpus, "-o", tmp_path / "again.csv")
    assert r.status == 0, r.stderr
    assert any("it was made from other audio" in ln and "f0.wav" in ln for ln in r.lines)
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "fresh.csv").read_bytes()


def test_a_cache_entry_holding_nan_is_a_miss_with_a_warning(cli, corpus, tmp_path):
    assert cli(corpus, "-o", tmp_path / "fresh.csv").status == 0
    entry = _entries(tmp_path / "cache")[0]
    with np.load(entry) as z:
        value = {k: z[k] for k in z.files}
    value["features"][0, 3] = np.nan
    with open(entry, "wb") as f:
        np.savez(f, **value)
    r = cli(corpus, "-o", tmp_path / "again.csv")
    assert r.status == 0 and any("not all finite" in ln for ln in r.lines), r.stderr
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "fresh.csv").read_bytes()


def test_a_cache_entry_of_another_configuration_is_a_miss(tmp_path, corpus):
    from refimpl._util.cache import FeatureCache
    from refimpl.errors import CacheWarning
    wav = corpus / "f0.wav"
    FeatureCache("t", "config A", tmp_path, keyed=True).put(wav, {"x": np.arange(3)})
    other = FeatureCache("t", "config B", tmp_path, keyed=True)
    other.folder = FeatureCache("t", "config A", tmp_path).folder   # the same folder
    with pytest.warns(CacheWarning, match="another configuration"):
        assert other.get(wav) is None


def test_an_unwritable_cache_is_warned_about_once_and_the_run_goes_on(cli, corpus, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    r = cli(corpus, "-o", tmp_path / "x.csv", "--cache-dir", blocker)
    assert r.status == 0, r.stderr
    warned = [ln for ln in r.lines if "going on without writing the feature cache" in ln]
    assert len(warned) == 1 and str(blocker) in warned[0], r.stderr
    assert cli(corpus, "-o", tmp_path / "y.csv", "--no-cache").status == 0
    assert (tmp_path / "x.csv").read_bytes() == (tmp_path / "y.csv").read_bytes()


# ------------------------------------------------------------------------------ numbers

@pytest.fixture(scope="module")
def nan_weights(tmp_path_factory, weights):
    """The seed-0 synthetic AlexNet with one NaN in fc7's weights."""
    from refimpl.network import caffemodel
    model = caffemodel.read_caffemodel(weights)
    params = {name: [np.array(b) for b in blobs] for name, blobs in model.params.items()}
    params["fc7"][0].flat[12345] = np.nan
    path = tmp_path_factory.mktemp("nan") / "nan.caffemodel"
    caffemodel.write_caffemodel(path, params, model.types, v1=model.format == "V1",
                                order=model.order)
    return path


def test_nan_weights_fail_verify_and_every_backend_naming_the_layer(nan_weights, corpus,
                                                                    tmp_path):
    from refimpl.network import caffemodel
    with pytest.raises(CaffeModelError, match="layer fc7 weights hold 1 NaN"):
        caffemodel.load_alexnet_params(nan_weights)
    _one_error(gallery.run_cli(["weights", "verify", nan_weights]), str(nan_weights), "fc7")
    for backend in ("c", "numpy"):
        r = gallery.run_cli(["extract", corpus, "-o", tmp_path / "x.csv", "--backend", backend,
                             "--weights", nan_weights, "--no-progress", "--no-cache"])
        _one_error(r, str(nan_weights), "layer fc7 weights hold 1 NaN")
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "-inf"])
def test_fmax_outside_zero_to_nyquist_is_one_line(cli, corpus, tmp_path, value):
    _one_error(cli(corpus, "-o", tmp_path / "x.csv", f"--fmax={value}"), "--fmax")
    _one_error(gallery.run_cli(["image", corpus / "f0.wav", "-o", tmp_path / "x.png",
                                f"--fmax={value}"]), "--fmax")


def test_fmax_above_a_files_nyquist_skips_that_file(cli, corpus, tmp_path):
    gallery._wav(corpus / "low.wav", gallery.speech_like(5, seconds=0.5, rate=8000), rate=8000)
    r = cli(corpus, "-o", tmp_path / "x.csv", "--fmax", "6000")
    assert r.status == 1, r.stderr
    assert any(f"{corpus / 'low.wav'}: --fmax 6000 Hz is above half its sampling rate" in ln
               for ln in r.lines), r.stderr
    assert [row[0] for row in csv.reader((tmp_path / "x.csv").open())][1:] == ["f0.wav",
                                                                             "f1.wav"]


def test_an_unknown_colour_map_is_a_usage_error(cli, corpus, tmp_path):
    from refimpl import DeepSpectrum
    from refimpl.features import ExtractorConfig
    _one_error(cli(corpus, "-o", tmp_path / "x.csv", "--cmap", "nosuch"), "'nosuch'")
    with pytest.raises(UsageError, match="not a matplotlib colour map"):
        ExtractorConfig(cmap="nosuch")
    with pytest.raises(UsageError, match="not a matplotlib colour map"):
        DeepSpectrum(cmap="nosuch", cache=False).process_files([corpus / "f0.wav"])


@pytest.mark.parametrize("argv", [["weights", "synth", "--seed", "-1", "-o", "w.caffemodel"],
                                  ["reproduce", "--seed", "-1", "--out", "results_x"],
                                  ["reproduce", "--jobs", "0", "--out", "results_x"],
                                  ["extract", "a.wav", "-o", "x.csv", "--jobs", "0"]])
def test_seeds_below_zero_and_workers_below_one_are_one_line(argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _one_error(gallery.run_cli(argv), "is below")
    assert list(tmp_path.iterdir()) == []


def test_the_api_refuses_workers_below_one(corpus, weights):
    from refimpl import DeepSpectrum
    for workers in (0, -2, 1.5):
        with DeepSpectrum(weights=str(weights), num_workers=workers, cache=False) as ds:
            with pytest.raises(UsageError, match="at least 1"):
                ds.process_files([corpus / "f0.wav"])


def test_process_files_takes_one_path_as_one_file(corpus, weights):
    from refimpl import DeepSpectrum
    with DeepSpectrum(weights=str(weights), cache=False) as ds:
        for one in (str(corpus / "f0.wav"), corpus / "f0.wav"):
            frame = ds.process_files(one)
            assert list(frame.index.get_level_values("file")) == [str(corpus / "f0.wav")]


def test_a_line_end_in_a_file_name_keeps_one_arff_row_per_line(cli, tmp_path):
    d = tmp_path / "odd"
    names = ["two\nlines.wav", "cr\rhere.wav", "quote's.wav"]
    for i, name in enumerate(names):
        gallery._wav(d / name, gallery.speech_like(400 + i, seconds=0.5))
    out = tmp_path / "x.arff"
    assert cli(d, "-o", out).status == 0
    data = out.read_text().split("@data\n")[1].splitlines()
    assert len(data) == 3
    rows = list(csv.reader(io.StringIO("\n".join(data)), quotechar="'", escapechar="\\",
                           doublequote=False))
    assert all(len(r) == 4097 + 1 for r in rows)
    for name in names:    # quoted, with Weka's escapes for the line ends and the quote
        escaped = (name.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
                   .replace("\r", "\\r"))
        assert sum(ln.startswith(f"'{escaped}',") for ln in data) == 1, (name, escaped)


# ----------------------------------------------------------------- messages, tracebacks

def test_a_stereo_array_laid_out_frames_channels_is_named_as_such(weights):
    from refimpl import DeepSpectrum
    x = np.stack([gallery.speech_like(1), gallery.speech_like(2)], axis=1)    # (16000, 2)
    with DeepSpectrum(weights=str(weights), cache=False) as ds:
        with pytest.raises(UsageError, match=r"2 channel\(s\) of 16000 frames.*signal\.T"):
            ds.process_signal(x, 16000)
        assert len(ds.process_signal(x.T, 16000)) == 1


@pytest.mark.parametrize("stage", ["blob", "image"])
def test_golden_verify_of_a_port_returning_none_fails_its_cases_without_a_traceback(
        stage, tmp_path, monkeypatch):
    (tmp_path / "port.py").write_text("def none(*args):\n    return None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    r = gallery.run_cli(["golden", "verify", "--stage", stage, "--impl", "port:none"])
    assert r.status == 1 and "Traceback" not in r.stderr, r.stderr
    assert "returned NoneType, not an array" in r.stdout
