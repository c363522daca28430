"""Inputs of an extraction: which files, under which row names, with which labels."""
import pytest

from refimpl.errors import LabelError
from refimpl.features import find_audio, folder_labels, read_labels


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_folder_files_are_named_by_their_path_below_the_folder(tmp_path):
    for p in ("corpus/a.wav", "corpus/s1/b.WAV", "corpus/s2/b.wav", "corpus/notes.txt"):
        touch(tmp_path / p)
    found = find_audio([tmp_path / "corpus"])
    assert [a.name for a in found] == ["a.wav", "s1/b.WAV", "s2/b.wav"]
    assert all(a.path.parent.name in ("corpus", "s1", "s2") for a in found)


def test_same_names_from_different_inputs_fall_back_to_the_path_given(tmp_path):
    x, y = touch(tmp_path / "x" / "a.wav"), touch(tmp_path / "y" / "a.wav")
    z = touch(tmp_path / "z.wav")
    names = [a.name for a in find_audio([x, y, z])]
    assert names == [x.as_posix(), y.as_posix(), "z.wav"]
    assert len(set(names)) == 3


def test_a_missing_path_is_kept_as_an_input_that_will_fail(tmp_path):
    """Reading it then fails with a line naming it while the other files still come out."""
    assert [a.name for a in find_audio([tmp_path / "gone.wav"])] == ["gone.wav"]


def test_label_file_with_several_columns_numeric_and_nominal(tmp_path):
    f = tmp_path / "labels.csv"
    f.write_text("file,emotion,arousal,speaker,take\na.wav,angry,0.8,03,1\n"
                 "b.wav, sad ,-0.25,10,two\nc.wav,angry,1e-1,,3\n")
    labels = read_labels(f)
    assert [(c.name, c.numeric) for c in labels.columns] == [
        ("emotion", False), ("arousal", True), ("speaker", True), ("take", False)]
    assert labels.columns[0].values == ("angry", "sad")
    assert labels.columns[3].values == ("1", "3", "two")          # mixed: nominal
    assert labels.values_for("b.wav") == ["sad", "-0.25", "10", "two"]   # stripped, as read
    assert labels.values_for("c.wav")[2] == ""                    # a missing value


def test_label_keys_match_with_or_without_folder_and_suffix(tmp_path):
    f = tmp_path / "labels.tsv"
    f.write_text("name\tclass\nwav/a.wav\tx\nb\ty\nsub/c.wav\tz\n")
    labels = read_labels(f)                 # .tsv: tab-separated
    assert labels.values_for("a.wav") == ["x"]          # key with a folder, unique name
    assert labels.values_for("b.wav") == ["y"]          # key without the suffix
    assert labels.values_for("sub/c.wav") == ["z"]      # the row name itself
    with pytest.raises(LabelError, match="d.wav: no label in .*labels.tsv"):
        labels.values_for("d.wav")
    assert labels.unused(["a.wav", "b.wav"]) == ["sub/c.wav"]


def test_headerless_label_files_are_recognised_by_an_audio_name(tmp_path):
    f = tmp_path / "l.csv"
    f.write_text("a.wav;angry\nb.wav;sad\n")
    labels = read_labels(f)
    assert [c.name for c in labels.columns] == ["class"]
    assert labels.values_for("a.wav") == ["angry"]
    g = tmp_path / "g.csv"
    g.write_text("a,angry\nb,sad\n")       # no header, no suffix: row 1 is the header
    with pytest.raises(LabelError, match="first row was read as the header"):
        read_labels(g).values_for("a.wav")


@pytest.mark.parametrize("text,message", [
    ("", "empty"),
    ("\n\n", "empty"),
    ("file,class\n", "no rows"),
    ("file\na.wav\n", "no label column"),
    ("file,class\na.wav,x,y\n", "line 2 has 3 cells, expected 2"),
    ("file,class\na.wav,x\na.wav,y\n", "a.wav is labelled twice"),
    ("file,x,x\na.wav,1,2\n", "distinct"),
])
def test_bad_label_files_are_one_error_naming_the_file(tmp_path, text, message):
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(LabelError, match=message) as e:
        read_labels(f)
    assert "bad.csv" in str(e.value) and "\n" not in str(e.value)


def test_unreadable_label_file(tmp_path):
    with pytest.raises(LabelError, match="nope.csv: cannot read"):
        read_labels(tmp_path / "nope.csv")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(LabelError, match="bin.csv"):
        read_labels(tmp_path / "bin.csv")


def test_folder_labels_are_the_parent_folders_name_and_nominal(tmp_path):
    for p in ("c/angry/1.wav", "c/angry/2.wav", "c/7/3.wav"):
        touch(tmp_path / p)
    inputs = find_audio([tmp_path / "c"])
    labels = folder_labels(inputs)
    assert [labels.values_for(a.name)[0] for a in inputs] == ["7", "angry", "angry"]
    assert labels.columns[0].name == "class" and not labels.columns[0].numeric
    assert labels.columns[0].values == ("7", "angry")
