"""The seeds of the binary readers (wav, caffemodel), made here rather than committed: the
project keeps no audio and no caffemodel in git. Each is small and fixed (seeded), so the
default suite runs the same seeds every time; the text readers' seeds are files in
corpus/.

    write_seeds("wav", folder)   -> the folder, filled
"""
import io
import struct

import numpy as np
import soundfile as sf

from refimpl.network import caffemodel as cm

# The fuzzer's first finding (caffemodel codec): a blob whose dims multiply past int64,
# which wrapped around to the number of values stored (0) and made numpy raise a bare
# ValueError; tests/network/test_caffemodel.py names it. Its bytes as libFuzzer wrote them.
FOUND_SHAPE_PRODUCT_WRAPS = bytes.fromhex(
    "12292205636f6e76312804320e08011001180120012a0400000000320e0801100118ffdf8e8e8e8e"
    "8e907171012a04000000001200ffff00000012292205636f6e76342804320e080110011801046f6e"
    "76342804320e08011001180100000000")

# The second (caffemodel codec): a blob ending in a group left the field iterator empty and
# next() raised a bare StopIteration (test_caffemodel.py names it).
FOUND_GROUP_AT_END = bytes.fromhex(
    "12292205636f6e76312804320e535354545353535454535453545453540801101d1d1d1d1d1d1d1d"
    "1d5353535353535353535353535353535351535353535353b3535353535353535353535353535353"
    "0d1d1d1d1d1d1d1d1d000012292205766f636e382804320e0801c7c7c7c7100a1801046f6e763134"
    "280432000000")


def _wav(samples, rate, subtype):
    buf = io.BytesIO()
    sf.write(buf, samples, rate, subtype=subtype, format="WAV")
    return buf.getvalue()


def wav_seeds():
    rng = np.random.default_rng(21)
    mono = (0.3 * rng.standard_normal(300)).clip(-1, 1)
    stereo = (0.3 * rng.standard_normal((150, 2))).clip(-1, 1)
    pcm16 = _wav(mono, 16000, "PCM_16")
    seeds = {
        "pcm16.wav": pcm16,
        "pcm24.wav": _wav(mono, 22050, "PCM_24"),
        "float.wav": _wav(stereo, 8000, "FLOAT"),
        "ulaw.wav": _wav(mono[:200], 8000, "ULAW"),
        # a truncated stereo file: the data chunk claims more than is there
        "stereo_truncated.wav": _wav(stereo, 16000, "PCM_16")[:-37],
        # a streamed file: the sizes left at 0xFFFFFFFF by a writer that could not seek
        "streamed.wav": pcm16[:4] + b"\xff\xff\xff\xff" + pcm16[8:40] + b"\xff\xff\xff\xff"
        + pcm16[44:],
    }
    # an odd-sized chunk before the data (RIFF pads it to an even size)
    odd = b"LIST" + struct.pack("<I", 5) + b"INFO!" + b"\x00"
    body = pcm16[12:36] + odd + pcm16[36:]
    seeds["odd_chunk.wav"] = b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body
    return seeds


def caffemodel_seeds():
    rng = np.random.default_rng(22)
    params = {"conv1": [rng.standard_normal((2, 3, 2, 2)).astype(np.float32),
                        rng.standard_normal(2).astype(np.float32)],
              "fc8": [rng.standard_normal((3, 4)).astype(np.float32)]}
    seeds = {"found_shape_product_wraps.caffemodel": FOUND_SHAPE_PRODUCT_WRAPS,
             "found_group_at_end.caffemodel": FOUND_GROUP_AT_END}
    for v1 in (True, False):
        seeds[f"tiny_v{1 if v1 else 2}.caffemodel"] = _caffemodel_bytes(params, v1)
    return seeds


def _caffemodel_bytes(params, v1):
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tiny.caffemodel"
        cm.write_caffemodel(path, params, v1=v1)
        return path.read_bytes()


SEEDS = {"wav": wav_seeds, "caffemodel": caffemodel_seeds}


def write_seeds(target, folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in SEEDS[target]().items():
        (folder / name).write_bytes(data)
    return folder
