import os

import pytest

from refimpl._util.atomic import atomic_open


def test_atomic_open_leaves_nothing_on_failure_and_a_normal_file_on_success(tmp_path):
    target = tmp_path / "sub" / "out.csv"
    with pytest.raises(RuntimeError):
        with atomic_open(target) as f:
            f.write("half")
            raise RuntimeError("interrupted")
    assert not target.exists() and os.listdir(target.parent) == []
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(target) as f:
            f.write("new")
            raise KeyboardInterrupt
    assert target.read_text() == "old"  # what was there before is not lost
    with atomic_open(target) as f:
        f.write("new")
    assert target.read_text() == "new"
    umask = os.umask(0)
    os.umask(umask)
    assert (target.stat().st_mode & 0o777) == (0o666 & ~umask)
