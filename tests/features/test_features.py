"""Extraction plumbing and output formats (network numbers are tested elsewhere against
Caffe; here a transparent stand-in network makes every cell predictable)."""
import csv

import numpy as np
import pytest
import soundfile

from refimpl import features
from refimpl.golden import signals
from refimpl.errors import RefimplError as UserError


class PixelSumNetwork:
    """feature i = sum of the image's pixels scaled by i: rows are traceable to their image."""
    def features(self, images):
        s = images.reshape(len(images), -1).sum(axis=1, dtype=np.float64)
        return (s[:, None] * np.arange(4096)[None, :] / 1e9).astype(np.float32)

    def close(self):
        pass


@pytest.fixture
def corpus(tmp_path):
    for name in ("tone_440hz_16k", "chirp_100_7000_16k", "speechlike_male_16k"):
        samples, rate = signals.make_case(name)
        soundfile.write(tmp_path / f"{name}.wav", samples, rate, subtype="PCM_16")
    soundfile.write(tmp_path / "silent.wav", np.zeros(4000, np.int16), 16000, subtype="PCM_16")
    (tmp_path / "broken.wav").write_bytes(b"not a wav file")
    (tmp_path / "labels.csv").write_text(
        "name,label\ntone_440hz_16k.wav,tone\nchirp_100_7000_16k,chirp\n"
        "speechlike_male_16k.wav,speech\nsilent.wav,none\nbroken.wav,none\n")
    return tmp_path


def test_bad_files_are_named_and_the_rest_still_come_out(corpus):
    files = features.find_audio([corpus])
    assert len(files) == 5
    labels = features.read_labels(corpus / "labels.csv")
    result = features.extract(files, PixelSumNetwork(), labels=labels, batch=2, progress=False)
    assert result.names == ["chirp_100_7000_16k.wav", "speechlike_male_16k.wav", "tone_440hz_16k.wav"]
    assert result.labels == ["chirp", "speech", "tone"]
    failed = dict(result.failed)
    assert "digital silence" in failed[str(corpus / "silent.wav")]
    assert "broken.wav" in failed[str(corpus / "broken.wav")]
    # batching does not change rows
    one = features.extract(files, PixelSumNetwork(), labels=labels, batch=1, progress=False)
    np.testing.assert_array_equal(one.matrix, result.matrix)


def test_csv_layout_is_the_toolkits(corpus, tmp_path):
    files = sorted(corpus.glob("*_16k.wav"))
    result = features.extract(files, PixelSumNetwork(), progress=False)
    out = tmp_path / "out" / "f.csv"
    features.write_features(result, out)
    rows = list(csv.reader(out.open()))
    assert rows[0][:3] == ["name", "neuron_0", "neuron_1"] and rows[0][-2:] == ["neuron_4095", "class"]
    assert len(rows[0]) == 4098 and len(rows) == 1 + len(files)
    back = np.array([[float(v) for v in r[1:-1]] for r in rows[1:]], dtype=np.float32)
    np.testing.assert_array_equal(back, result.matrix)  # float32 round-trips exactly
    assert {r[-1] for r in rows[1:]} == {"?"}


def test_windowed_rows_carry_time_stamps_and_arff_declares_classes(corpus, tmp_path):
    files = [corpus / "speechlike_male_16k.wav"]  # 2.5 s
    labels = features.read_labels(corpus / "labels.csv")
    result = features.extract(files, PixelSumNetwork(), labels=labels, window=1.0, hop=0.5,
                              progress=False)
    assert result.timestamps == [0.0, 0.5, 1.0, 1.5]
    out = tmp_path / "w.arff"
    features.write_features(result, out, windowed=True)
    text = out.read_text().splitlines()
    assert text[0] == "@relation 'Deep Spectrum Features'"
    assert "@attribute timeStamp numeric" in text
    assert "@attribute class {'speech'}" in text
    data = text[text.index("@data") + 1:]
    assert len(data) == 4 and data[1].startswith("'speechlike_male_16k.wav',0.5,")
    assert len(data[0].split(",")) == 4096 + 3


def test_cli_errors_are_one_line_and_name_the_problem(tmp_path, capsys):
    from refimpl.cli import main
    assert main(["extract", str(tmp_path / "nope"), "-o", str(tmp_path / "x.csv")]) == 2
    assert "nope: no such file or folder" in capsys.readouterr().err
    with pytest.raises(UserError, match="no label"):
        features.label_for({"a.wav": "x"}, tmp_path / "b.wav")
    with pytest.raises(UserError, match="must end in .csv or .arff"):
        features.write_features(features.Extraction(), tmp_path / "x.txt")


def test_failures_outside_bad_input_stop_the_run_and_leave_no_thread(corpus, monkeypatch):
    import threading
    files = features.find_audio([corpus])
    before = threading.active_count()

    class Broken(PixelSumNetwork):
        def features(self, images):
            raise RuntimeError("caffe worker died")
    with pytest.raises(RuntimeError, match="worker died"):
        features.extract(files, Broken(), batch=1, prefetch=1, progress=False)

    def explode(*a, **k):
        raise MemoryError("out of memory while drawing")
    monkeypatch.setattr(features, "file_images", explode)
    with pytest.raises(MemoryError):
        features.extract(files, PixelSumNetwork(), progress=False)
    assert threading.active_count() == before


@pytest.mark.caffe
def test_cli_extract_on_emodb_files_caffe_and_numpy_agree(shared_data, tmp_path, caffe_installed):
    """End to end on real speech: the CLI with real Caffe and with the NumPy reference."""
    from refimpl.cli import main
    wavs = sorted((shared_data / "emodb" / "wav").glob("*.wav"))[:4]
    outs = {}
    for backend in ("caffe", "numpy"):
        out = tmp_path / f"{backend}.csv"
        assert main(["extract", *map(str, wavs), "-o", str(out), "--backend", backend,
                     "--weights", "synthetic:0", "--no-progress", "--batch", "3"]) == 0
        rows = list(csv.reader(out.open()))
        assert [r[0] for r in rows[1:]] == [w.name for w in wavs]
        outs[backend] = np.array([[float(v) for v in r[1:-1]] for r in rows[1:]], np.float32)
    a, b = outs["caffe"], outs["numpy"]
    # the CSV holds each float32 exactly (9 digits), so the bound is the network's own: two
    # float32 evaluations, rounding carried through the layers (tests/tolerances.py)
    import tolerances as tol
    from refimpl import caffemodel, weights
    from refimpl.audio import read_audio
    from refimpl.network.blob import image_to_blob
    from refimpl.image.fast import render_image
    blob = np.concatenate([image_to_blob(render_image(au.signal, au.rate))
                           for au in map(read_audio, wavs)])
    params = caffemodel.load_alexnet_params(weights.synthetic_weights_path(0))
    tol.assert_within(b, a, tol.alexnet_bound(params, blob, ["fc7"])["fc7"][1], "CLI fc7")


def test_efficientnet_rows_are_its_pooled_features(corpus, tmp_path, efficientnet_weights):
    """--net efficientnet-lite0 gives 1280-d rows equal to running the network on the
    images directly (the network itself is checked against PyTorch elsewhere)."""
    from refimpl.network import efficientnet
    from refimpl.cli import main
    from refimpl.image import spectrogram_image
    wav = corpus / "speechlike_male_16k.wav"
    out = tmp_path / "e.csv"
    assert main(["extract", str(wav), "-o", str(out), "--net", "efficientnet-lite0",
                 "--no-progress"]) == 0
    rows = list(csv.reader(out.open()))
    assert rows[0][-2:] == ["neuron_1279", "class"] and len(rows) == 2
    got = np.array([float(v) for v in rows[1][1:-1]], np.float32)
    x = soundfile.read(wav)[0]
    want = efficientnet.efficientnet_features(spectrogram_image(x, 16000)[None])[0]
    np.testing.assert_array_equal(got, want)
