"""What each reader must do with any bytes: return, or raise a RefimplError (one line
naming the file). The fuzzing harness (fuzz_readers.py) drives these with atheris; the
default suite (test_fuzz.py) runs every seed of the corpus through them, without it."""
import os
import tempfile
import warnings

from refimpl.audio import _declared_wav_frames, read_audio
from refimpl.corpus.table import from_manifest
from refimpl.errors import RefimplError, RefimplWarning
from refimpl.features.inputs import read_labels
from refimpl.features.shards import _text_header, _text_rows
from refimpl.network.caffemodel import load_alexnet_params, parse_caffemodel_bytes

_TMP = tempfile.mkdtemp(prefix="refimpl-fuzz-")


def _file(data, name):
    path = os.path.join(_TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def wav(data):
    path = _file(data, "x.wav")
    for subtype, channels in (("PCM_16", 1), ("FLOAT", 2), ("PCM_24", 6), ("ULAW", 3)):
        frames = _declared_wav_frames(path, channels, subtype)
        assert isinstance(frames, int) and frames >= 0, frames
    try:
        with warnings.catch_warnings():      # a truncated header is warned about: fine
            warnings.simplefilter("ignore", RefimplWarning)
            read_audio(path)
    except RefimplError:
        pass


def caffemodel(data):
    try:
        model = parse_caffemodel_bytes(memoryview(data), "<fuzz>")
        load_alexnet_params(model)
    except RefimplError:
        pass


def shard(data):
    lines = data.splitlines(keepends=True)
    for fmt in ("csv", "arff"):
        try:
            head = _text_header(fmt, lines, "<fuzz>")
            _text_rows(fmt, head, data[sum(map(len, head)):], "<fuzz>")
        except RefimplError:
            pass


def labels(data):
    for name in ("labels.csv", "labels.tsv"):
        try:
            read_labels(_file(data, name))
        except RefimplError:
            pass


def manifest(data):
    try:
        from_manifest(_file(data, "manifest.csv"), check_files=False)
    except RefimplError:
        pass


TARGETS = {f.__name__: f for f in (wav, caffemodel, shard, labels, manifest)}
