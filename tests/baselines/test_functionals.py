"""eGeMAPS (v01a, 88) and ComParE 2013 (IS13_ComParE, 6373) functionals: what the opensmile
package computes with its own configs, cached."""
import numpy as np
import opensmile
import pytest

from oracles import unavailable
from refimpl import cli
from refimpl.baselines import opensmile as F


@pytest.fixture(scope="module")
def emodb_files(shared_data):
    files = sorted((shared_data / "emodb" / "wav").glob("*.wav"))
    if len(files) < 3:
        unavailable("emodb", "EmoDB not found")
    return files[:3]


@pytest.mark.filterwarnings("ignore:.*deprecated.*:UserWarning")
@pytest.mark.parametrize("name,member,count", [("egemaps", "eGeMAPS", 88),
                                               ("compare2013", "IS13", 6373)])
def test_equal_to_opensmile_feature_set(emodb_files, tmp_path, monkeypatch, name, member, count):
    monkeypatch.setenv("REFIMPL_CACHE", str(tmp_path))
    smile = opensmile.Smile(getattr(opensmile.FeatureSet, member), opensmile.FeatureLevel.Functionals)
    X = F.functionals_matrix(emodb_files, name)
    assert X.shape == (len(emodb_files), count)
    for f, row in zip(emodb_files, X):
        ref = smile.process_file(str(f)).to_numpy(np.float32)[0]
        assert np.array_equal(row, ref)
        assert np.array_equal(F.functionals(f, name), row)            # from the cache
    assert F.functional_names(name) == list(smile.feature_names)


def test_compare2013_is_not_compare2016(emodb_files):
    is13 = F.functionals(emodb_files[0], "compare2013")
    c16 = opensmile.Smile(opensmile.FeatureSet.ComParE_2016).process_file(str(emodb_files[0]))
    differing = int(np.sum(c16.to_numpy(np.float32)[0] != is13))
    print(f"ComParE_2016 differs from IS13_ComParE in {differing} of 6373 values")
    assert differing > 1000
    assert "IS13_ComParE" in str(F.config_path("compare2013"))
    assert "eGeMAPSv01a" in str(F.config_path("egemaps"))


def test_cli_and_errors(emodb_files, tmp_path, capsys):
    out = tmp_path / "eg.csv"
    assert cli.main(["functionals", *map(str, emodb_files), "-o", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 4 and len(lines[0].split(";")) == 89
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    # the bad file is skipped by name (status 1: some failed), the good one comes out
    good = tmp_path / emodb_files[0].name
    good.write_bytes(emodb_files[0].read_bytes())
    assert cli.main(["functionals", str(bad), str(good), "-o", str(out), "--no-cache"]) == 1
    assert "bad.wav" in capsys.readouterr().err
    assert [ln.split(";")[0] for ln in out.read_text().splitlines()[1:]] == [f"'{good.name}'"]


@pytest.mark.filterwarnings("ignore:.*deprecated.*:UserWarning")
def test_the_pandas_and_scikit_learn_faces_equal_opensmile_python(emodb_files, tmp_path,
                                                                  monkeypatch):
    """refimpl.Functionals: opensmile-python's own DataFrames (index, columns, values), for
    whole files, for start/end and for a signal; transform gives the same rows. (The file
    level is audformat's "string" dtype here; opensmile-python's result carries pandas 3's
    default string dtype, which differs only in its missing-value marker, so the index
    dtype is not compared.)"""
    import pandas as pd
    import soundfile
    from sklearn.base import clone
    monkeypatch.setenv("REFIMPL_CACHE", str(tmp_path))
    smile = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv01a, opensmile.FeatureLevel.Functionals)
    ours = F.Functionals("egemaps")
    files = [str(f) for f in emodb_files]
    pd.testing.assert_frame_equal(ours.process_files(files), smile.process_files(files),
                                  check_dtype=False, check_index_type=False)
    pd.testing.assert_frame_equal(ours.process_file(files[0], start=0.25, end=1.0),
                                  smile.process_file(files[0], start=0.25, end=1.0),
                                  check_dtype=False, check_index_type=False)
    x, rate = soundfile.read(files[1], dtype="float32")
    pd.testing.assert_frame_equal(ours.process_signal(x, rate), smile.process_signal(x, rate),
                                  check_dtype=False)
    X = clone(ours).fit(files).transform(files)
    np.testing.assert_array_equal(X, smile.process_files(files).to_numpy(np.float32))
    assert list(ours.get_feature_names_out()) == list(smile.feature_names)
    with pytest.warns(UserWarning, match="nope.wav"):
        assert len(ours.process_files(files[:1] + [str(tmp_path / "nope.wav")])) == 1
