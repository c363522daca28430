"""A property of `refimpl extract` over its option space (issue 21): whatever values the
options take and whatever kind of file the input and the output are, the command ends
(no hang), with status 0, 1 or 2 and no traceback; every line it prints is a `refimpl:`
line, status 2 coming with exactly one error line; nothing it reads is changed (an input's
bytes, a FIFO stays a FIFO); and an output that was written is a whole feature file.

Hypothesis draws the argument values (numbers and text, in and out of range) and the
kinds of file (a good WAV, a FIFO, a symlink to /dev/zero, a folder, a missing path,
an empty or text file; an output that is new, an input, a folder, a FIFO, a symlink, a
path inside a file). Bounded to MAX_EXAMPLES runs, most of them cache hits or refused at
the edge: well under a minute. What it found is a named test in test_user_faults.py.
"""
import csv
import os
import signal
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import bad_input_gallery as gallery

MAX_EXAMPLES = int(os.environ.get("REFIMPL_CLI_EXAMPLES", 30))   # more: a longer search
RUN_LIMIT_S = 120           # one run that takes longer than this is taken for a hang

NUMBERS = st.one_of(
    st.sampled_from(["0", "-1", "nan", "inf", "-inf", "1e309", "", " ", "abc", "0x10",
                     "1_000", "½", "1e-320"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**6, 10**6).map(str))
INPUT_KINDS = ["wav", "wav", "fifo", "dev_zero", "folder", "missing", "empty", "text"]
LABELS = "name,label\ngood.wav,a\n"
OUTPUT_KINDS = ["new", "new", "input", "folder", "fifo", "link_to_new", "link_to_fifo",
                "inside_a_file", "labels"]


@pytest.fixture(scope="module", autouse=True)
def _back_home():
    """The tests chdir into their world; the suite goes on where it was."""
    home = os.getcwd()
    yield
    os.chdir(home)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Files of every kind, made once; a cache shared by the runs (hits after the first)."""
    root = tmp_path_factory.mktemp("cli_space")
    files = {"wav": gallery._wav(root / "in" / "good.wav", gallery.speech_like(7, 0.5)),
             "fifo": gallery._fifo(root / "in" / "pipe.wav"),
             "dev_zero": gallery._link_to_device(root / "in" / "zero.wav"),
             "folder": root / "in",
             "missing": root / "in" / "absent.wav",
             "empty": root / "in" / "empty.wav",
             "text": root / "in" / "text.wav"}
    files["empty"].write_bytes(b"")
    files["text"].write_text("not audio\n")
    labels = root / "labels.csv"
    labels.write_text(LABELS)
    from refimpl.network.weights import synthetic_weights_path
    return root, files, labels, synthetic_weights_path(0)


def _snapshot(files, labels):
    """What must not change: each input's kind and bytes (regular files only)."""
    out = {}
    for p in list(files.values()) + ([labels] if labels else []):
        try:
            st_ = os.lstat(p)
        except FileNotFoundError:
            out[p] = None
            continue
        kind = stat.S_IFMT(st_.st_mode)
        out[p] = (kind, Path(p).read_bytes() if stat.S_ISREG(kind) else None)
    return out


def _output(root, kind, files, labels, n):
    folder = root / f"out{n}"
    folder.mkdir()
    target = folder / "x.csv"
    if kind == "input":
        return files["wav"]
    if kind == "labels":
        return labels
    if kind == "folder":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "link_to_new":
        (folder / "link.csv").symlink_to(target)
        return folder / "link.csv"
    elif kind == "link_to_fifo":
        os.mkfifo(target)
        (folder / "link.csv").symlink_to(target)
        return folder / "link.csv"
    elif kind == "inside_a_file":
        (folder / "file").write_text("x")
        return folder / "file" / "x.csv"
    return target


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


_counter = iter(range(10**9))


def _run(argv):
    """gallery.run_cli(argv), failing the test when it does not end within RUN_LIMIT_S."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(RUN_LIMIT_S)
    try:
        return gallery.run_cli(argv)
    except _Hang:
        pytest.fail(f"no end within {RUN_LIMIT_S} s: {argv}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(inputs=st.lists(st.sampled_from(INPUT_KINDS), min_size=1, max_size=3),
       output=st.sampled_from(OUTPUT_KINDS),
       options=st.dictionaries(
           st.sampled_from(["--fmax", "--nfft", "--cmap", "--window", "--hop", "--start",
                            "--end", "--jobs", "--format", "--layer", "--reduced", "--shard"]),
           st.one_of(NUMBERS, st.sampled_from(["viridis", "magma", "no_such_map", "csv",
                                               "arff", "npz", "fc7", "pool5", "x.csv", "0/2",
                                               "1/2", "2/2", "0/0", "-1/2"]))),
       use_labels=st.booleans())
@example(inputs=["wav"], output="input", options={"--format": "csv"}, use_labels=False)
@example(inputs=["fifo", "wav"], output="new", options={}, use_labels=False)
@example(inputs=["wav"], output="new", options={"--fmax": "nan"}, use_labels=False)
def test_extract_over_its_option_space(world, inputs, output, options, use_labels):
    root, files, labels, weights = world
    os.chdir(root)                # a relative path drawn for --reduced lands here
    labels.write_text(LABELS)     # an output allowed over it (no --labels) changed it
    out = _output(root, output, files, labels, next(_counter))
    argv = ["extract", *[files[k] for k in inputs], "-o", out, "--backend", "c",
            "--weights", weights, "--no-progress", "--cache-dir", root / "cache"]
    for option, value in options.items():
        argv += [f"{option}={value}"]
    if use_labels:
        argv += ["--labels", labels]
    before = _snapshot(files, labels if use_labels else None)
    run = _run(argv)
    argv_text = " ".join(map(str, argv))
    assert run.status in (0, 1, 2), (argv_text, run.status, run.stderr)
    assert "Traceback" not in run.stderr, (argv_text, run.stderr)
    assert all(ln.startswith("refimpl:") for ln in run.lines), (argv_text, run.stderr)
    if run.status == 2:      # warnings may come first; the error is one line
        assert sum(ln.startswith("refimpl: error:") for ln in run.lines) == 1, \
            (argv_text, run.stderr)
    assert _snapshot(files, labels if use_labels else None) == before, argv_text
    if run.status in (0, 1) and any("wrote" in ln for ln in run.lines) and \
            out.suffix == ".csv" and options.get("--format", "csv") == "csv":
        with open(out, newline="") as f:
            rows = list(csv.reader(f))
        assert rows and rows[0][0] == "name" and len({len(r) for r in rows}) == 1, argv_text


@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(source=st.sampled_from(INPUT_KINDS), output=st.sampled_from(OUTPUT_KINDS),
       options=st.dictionaries(st.sampled_from(["--fmax", "--nfft", "--cmap", "--start",
                                                "--end", "--renderer"]),
                               st.one_of(NUMBERS, st.sampled_from(["fast", "gray", "x"]))))
@example(source="wav", output="input", options={})
def test_image_over_its_option_space(world, source, output, options):
    """The same property for `refimpl image` (one file, one PNG)."""
    root, files, labels, _ = world
    os.chdir(root)
    out = _output(root, output, files, labels, next(_counter))
    argv = ["image", files[source], "-o", out] + [f"{k}={v}" for k, v in options.items()]
    before = _snapshot(files, None)
    run = _run(argv)
    argv_text = " ".join(map(str, argv))
    assert run.status in (0, 2) and "Traceback" not in run.stderr, (argv_text, run.stderr)
    assert all(ln.startswith("refimpl:") for ln in run.lines), (argv_text, run.stderr)
    assert _snapshot(files, None) == before, argv_text
    if run.status == 0:
        assert Path(os.path.realpath(out)).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
