"""refimpl.DeepSpectrum: the pandas face against audformat / audinterface's own index
builders, the scikit-learn face against scikit-learn's own clone, Pipeline and set_output,
and the README's example, run as written."""
import importlib
import inspect
import pickle
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile
from sklearn.base import BaseEstimator, TransformerMixin

import refimpl
from refimpl.errors import FeatureError, UsageError
from refimpl.features.api import FileWarning
from refimpl.golden import signals
from refimpl.network import cforward

pytestmark = pytest.mark.skipif(not cforward.available(), reason="C core not built (make build)")

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REFIMPL_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def wavs(tmp_path):
    folder = tmp_path / "wav"
    (folder / "sub").mkdir(parents=True)
    paths = []
    for name in ("tone_440hz_16k", "chirp_100_7000_16k", "speechlike_male_16k"):
        samples, rate = signals.make_case(name)
        path = folder / ("sub" if name.startswith("chirp") else "") / f"{name}.wav"
        soundfile.write(path, samples, rate, subtype="PCM_16")
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def ds():
    with refimpl.DeepSpectrum(backend="c", weights="synthetic:0") as d:
        yield d


def test_the_frame_is_indexed_like_audformat(ds, wavs):
    import audformat
    frame = ds.process_files(wavs)
    durations = [soundfile.info(p).duration for p in wavs]
    want = audformat.segmented_index([str(p) for p in wavs], [0] * 3, durations)
    pd.testing.assert_index_equal(frame.index, want)
    assert list(frame.columns) == [f"neuron_{i}" for i in range(4096)]
    assert (frame.dtypes == np.float32).all()


def test_windows_and_spans_give_one_row_per_chunk(wavs):
    import audformat
    wav = str(wavs[2])                                               # 2.5 s
    frame = refimpl.DeepSpectrum(weights="synthetic:0", window=1, hop=0.5).process_file(wav)
    want = audformat.segmented_index([wav] * 5, [0, 0.5, 1, 1.5, 2], [1, 1.5, 2, 2.5, 2.5])
    pd.testing.assert_index_equal(frame.index, want)
    part = refimpl.DeepSpectrum(weights="synthetic:0").process_files(
        [wav, wav], starts=[0.5, 1], ends=2)
    pd.testing.assert_index_equal(part.index, audformat.segmented_index(
        [wav, wav], [0.5, 1], [2, 2]))


def test_a_signal_is_indexed_like_audinterface(ds, wavs):
    from audinterface.core.utils import signal_index
    x, rate = soundfile.read(wavs[0])
    frame = ds.process_signal(x, rate)
    pd.testing.assert_index_equal(frame.index, signal_index([0], [len(x) / rate]))
    # the same numbers as the file; (channels, samples) as audinterface takes them
    np.testing.assert_array_equal(frame.to_numpy(), ds.process_file(wavs[0]).to_numpy())
    stereo = ds.process_signal(np.stack([x, x]), rate, file="two.wav")
    assert stereo.index.names == ["file", "start", "end"]
    np.testing.assert_array_equal(stereo.to_numpy(), frame.to_numpy())


def test_process_folder_and_bad_files(ds, wavs, tmp_path):
    folder = tmp_path / "wav"
    (folder / "broken.wav").write_text("no audio here")
    with pytest.warns(FileWarning, match="broken.wav: not audio that libsndfile can read"):
        frame = ds.process_folder(folder, include_root=False)
    assert list(frame.index.get_level_values("file")) == [
        "speechlike_male_16k.wav", "sub/chirp_100_7000_16k.wav", "tone_440hz_16k.wav"]
    with pytest.raises(FeatureError, match=r"1 of 2 items failed: .*broken.wav"):
        ds.transform([wavs[0], folder / "broken.wav"])
    with pytest.raises(UsageError, match="not a folder"):
        ds.process_folder(wavs[0])


def test_it_is_a_scikit_learn_transformer(ds, wavs):
    from sklearn.base import clone
    params = dict(backend="c", weights="synthetic:0", window=None, layer="fc6", nfft=256,
                  num_workers=2)
    est = refimpl.DeepSpectrum(**params)
    copy = clone(est)
    assert copy is not est and copy.get_params() == est.get_params()
    assert all(copy.get_params()[k] == v for k, v in params.items())
    assert est.fit(wavs) is est                                  # a no-op
    X = est.transform([str(p) for p in wavs])
    assert X.shape == (3, 4096) and X.dtype == np.float32
    assert list(est.get_feature_names_out()[:2]) == ["neuron_0", "neuron_1"]
    x, rate = soundfile.read(wavs[0])
    np.testing.assert_array_equal(est.transform([(x, rate)])[0], X[0])
    again = pickle.loads(pickle.dumps(est))                      # the open network stays behind
    np.testing.assert_array_equal(again.transform(wavs[:1]), X[:1])
    est.close()
    with pytest.raises(UsageError, match="one row per item"):
        refimpl.DeepSpectrum(weights="synthetic:0", window=1).transform(wavs[2:])


def test_reduced_learns_its_columns_in_fit(wavs):
    est = refimpl.DeepSpectrum(weights="synthetic:0", reduced=True)
    full = refimpl.DeepSpectrum(weights="synthetic:0").transform(wavs)
    out = est.fit_transform(wavs[:2])
    keep = np.flatnonzero((full[:2] != 0).any(axis=0))
    np.testing.assert_array_equal(est.support_, keep)
    np.testing.assert_array_equal(out, full[:2, keep])
    np.testing.assert_array_equal(est.transform(wavs[2:]), full[2:, keep])
    assert list(est.get_feature_names_out()) == [f"neuron_{i}" for i in keep]


def test_pipeline_with_pandas_output(wavs):
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    model = Pipeline([("ds", refimpl.DeepSpectrum(weights="synthetic:0")),
                      ("scale", StandardScaler()), ("svm", SGDClassifier(random_state=0))])
    y = ["a", "b", "a"]
    assert len(model.fit(wavs, y).predict(wavs)) == 3
    model.set_output(transform="pandas").fit(wavs, y)
    scaled = model[:2].transform(wavs)
    assert isinstance(scaled, pd.DataFrame) and scaled.columns[0] == "neuron_0"
    assert list(model[:2].get_feature_names_out()[:1]) == ["neuron_0"]


def test_to_file_streams_like_the_command_line(ds, wavs, tmp_path):
    summary = ds.to_file(tmp_path / "wav", tmp_path / "f.parquet")
    frame = pd.read_parquet(tmp_path / "f.parquet")
    assert summary.rows == 3 and not summary.failed
    assert list(frame["class"]) == ["wav", "sub", "wav"]          # parent folders
    np.testing.assert_array_equal(frame.filter(like="neuron_").to_numpy(),
                                  ds.transform(sorted(wavs)))


def readme_example():
    text = README.read_text()
    section = text[text.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_runs(shared_data, monkeypatch, capsys):
    """As written, on 2 files per class and partition of EmoDB (the full run is slow)."""
    assert len([line for line in readme_example().splitlines() if line.strip()]) <= 12
    full = refimpl.load_corpus("emodb")
    seen, small = {}, []
    for row in full.rows:
        key = (row["partition"], row["emotion7"])
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 2:
            small.append(row["file"])
    monkeypatch.setattr(refimpl, "load_corpus", lambda name: full.without(small))
    exec(compile(readme_example(), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "neuron_0" in out and re.search(r"UAR 0\.\d+", out)


@pytest.mark.slow
def test_the_readme_example_on_all_emodb(shared_data, capsys):
    """The README's Pipeline on EmoDB's training speakers, scored on its test speakers
    (random-weight AlexNet: a control, not the paper's network)."""
    exec(compile(readme_example(), "README.md", "exec"), {})
    uar = float(re.search(r"UAR (\S+)", capsys.readouterr().out).group(1))
    print(f"EmoDB 7-class UAR, DeepSpectrum(c, synthetic:0) + StandardScaler + SGD: {uar:.4f}")
    assert uar > 1 / 7                      # better than chance


@pytest.mark.parametrize("name, module", [("DeepSpectrum", "refimpl.features.api"),
                                          ("Functionals", "refimpl.baselines.estimators"),
                                          ("BoAWTransformer", "refimpl.baselines.estimators")])
def test_the_estimators_are_ordinary_classes_of_their_modules(name, module):
    """Written as class statements (so editors and type checkers see them), defined when
    their module is imported, and scikit-learn transformers."""
    cls = getattr(refimpl, name)
    assert vars(importlib.import_module(module))[name] is cls
    assert inspect.getsource(cls).startswith(f"class {name}(")
    assert issubclass(cls, TransformerMixin) and issubclass(cls, BaseEstimator)
