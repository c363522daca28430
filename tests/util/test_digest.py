"""refimpl._util.digest against hashlib and the published test vectors (FIPS 180-2:
SHA-256 and SHA-1 of "abc" and of the empty string)."""
import hashlib
import os

import numpy as np
import pytest

from refimpl._util.digest import (array_digest, arrays_digest, content_digest, file_digest,
                                  text_digest)

# FIPS 180-2 / NIST's example values
SHA256_ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
SHA256_EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
SHA1_ABC = "a9993e364706816aba3e25717850c26c9cd0d89d"


@pytest.mark.parametrize("data, algorithm, expected", [
    (b"abc", "sha256", SHA256_ABC), (b"", "sha256", SHA256_EMPTY), (b"abc", "sha1", SHA1_ABC)])
def test_file_digest_gives_the_published_values(tmp_path, data, algorithm, expected):
    path = tmp_path / "f"
    path.write_bytes(data)
    assert file_digest(path, algorithm) == expected


@pytest.mark.parametrize("size", [0, 1, 6, 7, 64, 1000])
@pytest.mark.parametrize("algorithm", ["sha256", "sha1"])
def test_file_digest_equals_hashlib_across_chunk_boundaries(tmp_path, size, algorithm):
    """Read in chunks of 7 bytes: files shorter, equal to and many times the chunk."""
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    path = tmp_path / "f"
    path.write_bytes(data)
    assert file_digest(path, algorithm, chunk=7) == hashlib.new(algorithm, data).hexdigest()


def test_file_digest_refuses_what_is_not_a_regular_file(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)        # would block (or, as /dev/zero, never end) if read
    with pytest.raises(OSError, match="fifo"):
        file_digest(fifo)
    with pytest.raises(OSError):
        file_digest(tmp_path / "absent")


def test_content_digest_follows_the_content_not_the_name(tmp_path):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    a.write_bytes(b"abc")
    b.write_bytes(b"abc")
    assert content_digest(a) == content_digest(b) == SHA256_ABC
    a.write_bytes(b"abcd")        # rewritten: another size, so not the memoised value
    assert content_digest(a) == hashlib.sha256(b"abcd").hexdigest()


def test_text_digest_is_a_prefix_of_sha256():
    assert text_digest("abc") == SHA256_ABC[:16]
    assert text_digest("abc", 64) == SHA256_ABC


def test_array_digest_covers_values_dtype_and_shape():
    a = np.arange(6, dtype=np.int16).reshape(2, 3)
    expected = hashlib.sha256(b"<i2(2, 3)" + a.tobytes()).hexdigest()
    assert array_digest(a) == expected
    assert array_digest(np.asfortranarray(a)) == expected        # C order, whatever the layout
    assert array_digest(a.reshape(3, 2)) != expected
    assert array_digest(a.astype(np.int32)) != expected
    assert arrays_digest([a]) == hashlib.sha256(b"(2, 3)" + a.tobytes()).hexdigest()
