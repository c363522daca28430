"""EmoDB, the Berlin Database of Emotional Speech: its official layout read as a Corpus,
and the official archive downloaded and checked file by file.

    corpus = emodb()                       # ../shared/data/emodb, or root=, or downloaded
    download_emodb("/data/emodb")          # the official archive, unpacked to /data/emodb/wav

Labels come from the file names (SSTTTEV.wav: speaker, text, emotion letter, version);
partitions and folds from refimpl/data/emodb_speakers.csv. The noisy and denoised
conditions are generated (refimpl.conditions) into the cache; their paths are set here.
"""
import hashlib
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

from refimpl._util import locations
from refimpl._util.digest import file_digest
from refimpl._util.fetch import download
from refimpl._util.locations import package_data
from refimpl.corpus.table import (DEFAULT_SEED, build_corpus, parse_fold, read_csv_rows,
                                  read_json, validate)
from refimpl.errors import ChecksumError, CorpusError

__all__ = ["emodb", "emodb_root", "download_emodb", "unpack_emodb", "audio_sha256"]



def emodb_root(root=None):
    return Path(root).expanduser().resolve() if root else locations.shared_data() / "emodb"


def emodb(root=None, seed=DEFAULT_SEED, check_files=True):
    """EmoDB from its official layout (root/wav/SSTTTEV.wav); labels from the file names."""
    spec = read_json("emodb.json")
    root = emodb_root(root)
    wav_dir = root / spec["audio_dir"]
    if not wav_dir.is_dir():
        raise CorpusError(f"{wav_dir}: EmoDB audio folder not found (give --root, or run "
                        f"`refimpl corpus download emodb --dest DIR`)")
    emotions = {r["code"]: r for r in read_csv_rows(package_data(spec["emotion_table"]))}
    speakers = {r["speaker"]: r for r in read_csv_rows(package_data(spec["speaker_table"]))}
    pattern = re.compile(spec["file_pattern"])
    tasks = {t: d["classes"] for t, d in spec["tasks"].items()}
    cond_dir = locations.conditions_dir("emodb", seed)
    rows, problems = [], []
    for i, wav in enumerate(sorted(wav_dir.glob("*.wav")), start=1):
        m = pattern.match(wav.name)
        if not m:
            problems.append(f"  {wav.name}: not an EmoDB file name (SSTTTEV.wav)")
            continue
        emo = emotions.get(m["code"])
        spk = speakers.get(m["speaker"])
        if emo is None or spk is None:
            problems.append(f"  {wav.name}: unknown "
                            + ("emotion letter " + m["code"] if emo is None
                               else "speaker " + m["speaker"]))
            continue
        row = {"_row": i, "file": wav.name, "speaker": m["speaker"],
               "partition": spk["partition"], "fold": parse_fold(spk["fold"]),
               "gender": spk["gender"], "emotion_code": m["code"]}
        for task, d in spec["tasks"].items():
            row[task] = emo[d["column"]]
        row["path_clean"] = str(wav)
        row["path_noisy"] = str(cond_dir / "noisy" / wav.name)
        row["path_denoised"] = str(cond_dir / "denoised" / wav.name)
        rows.append(row)
    if problems:
        raise CorpusError(f"{wav_dir}: {len(problems)} unexpected file(s):\n" + "\n".join(problems))
    if not rows:
        raise CorpusError(f"{wav_dir}: no .wav files")
    # Generated conditions may not exist yet: only the clean audio is required here.
    corpus = build_corpus("emodb", tasks, rows, str(wav_dir), check_files=False)
    if check_files:
        validate([dict(r, path_noisy="", path_denoised="") for r in corpus.rows], tasks,
                 str(wav_dir))
    return corpus


def audio_sha256(path):
    """SHA-256 of a file's decoded 16-bit samples: independent of the WAV header's layout."""
    samples, _ = sf.read(str(path), dtype="int16", always_2d=True)
    return hashlib.sha256(np.ascontiguousarray(samples).tobytes()).hexdigest()


def download_emodb(dest, url=None, sha256=None, progress=True, reference=None, log=None):
    """Download the official EmoDB archive, check it, unpack it to dest (dest/wav/...).

    The archive's SHA-256 is checked when known (emodb.json, or sha256=); the audio is always
    checked against emodb_audio_sha256.csv. Everything lands atomically: an interrupted
    download leaves nothing behind.
    """
    spec = read_json("emodb.json")
    url = url or spec["archive_url"]
    expected = (sha256 or spec.get("archive_sha256") or "").lower() or None
    dest = Path(dest).expanduser().resolve()
    if (dest / spec["audio_dir"]).is_dir():
        raise CorpusError(f"{dest / spec['audio_dir']}: already exists; remove it or pick --dest")
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / "download.zip"
    try:
        download(url, archive, sha256=expected, progress=progress, desc="EmoDB")
    except ChecksumError as e:
        raise CorpusError(str(e)) from None
    got = file_digest(archive)
    if log:
        log(f"archive SHA-256 {got}" + (" (matches)" if expected else " (not pinned)"))
    unpack_emodb(archive, dest, reference=reference)
    return dest


def unpack_emodb(archive, dest, reference=None):
    """Unzip into a temporary folder beside dest, check the audio, then move wav/ into place.

    reference: {file name: audio_sha256}, by default emodb_audio_sha256.csv (all 535 files).
    """
    spec = read_json("emodb.json")
    dest = Path(dest)
    with tempfile.TemporaryDirectory(prefix=".emodb-unpack-", dir=dest) as tmp:
        try:
            with zipfile.ZipFile(archive) as z:
                for member in z.namelist():
                    target = (Path(tmp) / member).resolve()
                    if not str(target).startswith(str(Path(tmp).resolve())):
                        raise CorpusError(f"{archive}: unsafe path in archive: {member}")
                z.extractall(tmp)
        except zipfile.BadZipFile as e:
            raise CorpusError(f"{archive}: not a zip archive ({e})") from None
        wavs = sorted(Path(tmp).rglob("*.wav"))
        if not wavs:
            raise CorpusError(f"{archive}: no .wav files inside")
        if reference is None:
            reference = {r["file"]: r["sha256"]
                         for r in read_csv_rows(package_data("emodb_audio_sha256.csv"))}
        found = {w.name: w for w in wavs}
        bad = [f"  {n}: missing from the archive" for n in sorted(set(reference) - set(found))]
        bad += [f"  {n}: audio differs from the reference copy" for n, w in sorted(found.items())
                if n in reference and audio_sha256(w) != reference[n]]
        bad += [f"  {n}: not an EmoDB file" for n in sorted(set(found) - set(reference))]
        if bad:
            raise CorpusError(f"{archive}: {len(bad)} problem(s):\n" + "\n".join(bad))
        wav_dir = wavs[0].parent
        shutil.move(str(wav_dir), str(dest / spec["audio_dir"]))
    return dest / spec["audio_dir"]

