"""The background noise of the noisy condition: where its recordings are found, how they
split into training and test noise, and how to fetch them from their official home.

    root = noise_dir()                 # --noise-dir, ../shared/data/noise, or the downloaded copy
    pool = noise_pool(root)            # {"train": [paths], "test": [paths]}, pool.root
    download_noise()                   # Speech Commands' background noise, checksummed

The recordings and their split are refimpl/data/noise_split.csv (recording, partition,
the SHA-256 of the file this project uses, and where it comes from). Training and test
utterances draw from disjoint recordings. A folder of one's own noise can bring its own
split as noise_split.csv (columns recording, partition); without one, the recordings of
our split found there are used, or else every .wav in it, sorted by name, alternately for
training and test.
"""
import tarfile
from pathlib import Path

from refimpl._util import locations
from refimpl._util.atomic import atomic_path
from refimpl._util.digest import file_digest
from refimpl._util.fetch import download
from refimpl._util.locations import package_data
from refimpl.corpus.table import PARTITIONS, read_csv_rows, read_json
from refimpl.errors import ChecksumError, CorpusError, DownloadError

__all__ = ["NoisePool", "noise_dir", "noise_pool", "split_table", "download_noise",
           "ARCHIVES", "SPLIT_FILE"]

SPLIT_FILE = "noise_split.csv"

# The official homes of the recordings that have one. Speech Commands v0.02 (Warden 2018,
# CC BY 4.0): the archive's size and SHA-256 as TensorFlow Datasets and torchaudio list
# them; its _background_noise_/ folder holds six of our recordings.
ARCHIVES = {
    "speech_commands_v0.02": {
        "url": "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
        "sha256": "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58",
        "bytes": 2428923189,
    },
}


class NoisePool(dict):
    """{partition: [recording paths]}; `root` is the folder they were found in (the noisy
    manifest records each recording relative to it)."""

    def __init__(self, root, train, test):
        super().__init__(train=list(train), test=list(test))
        self.root = Path(root)


def split_table():
    """The rows of refimpl/data/noise_split.csv."""
    spec = read_json("noisy_condition.json")
    return read_csv_rows(package_data(spec["noise_split"]))


def _has_wavs(folder):
    return folder.is_dir() and any(folder.rglob("*.wav"))


def noise_dir(explicit=None, download_missing=False, log=print):
    """The folder of noise recordings: `explicit` (--noise-dir), else ../shared/data/noise,
    else the copy `download_noise` put into the cache; with `download_missing`, that copy
    is downloaded when there is none."""
    if explicit is not None:
        folder = Path(explicit).expanduser()
        if not _has_wavs(folder):
            raise CorpusError(f"{folder}: no .wav noise recordings in this folder (--noise-dir)")
        return folder
    downloaded = locations.cache_dir() / "noise"
    for folder in (locations.shared_data() / "noise", downloaded):
        if _has_wavs(folder):
            return folder
    if download_missing:
        return download_noise(downloaded, log=log)
    raise CorpusError("no background-noise recordings found (looked in "
                      f"{locations.shared_data() / 'noise'} and {downloaded}): give "
                      "--noise-dir DIR, or --download-noise to fetch Speech Commands' "
                      "background noise from its official home")


def noise_pool(noise_root=None, log=None):
    """The recordings for training and for test utterances (see the module docstring)."""
    root = noise_dir(noise_root)
    own = root / SPLIT_FILE
    if own.is_file():
        rows, origin = read_csv_rows(own), str(own)
    else:
        ours = split_table()
        rows = [r for r in ours if (root / r["recording"]).is_file()]
        origin = f"refimpl/data/{SPLIT_FILE}"
        if rows and len(rows) < len(ours) and log:
            absent = sorted(r["recording"] for r in ours if r not in rows)
            log(f"noise: {len(rows)} of the {len(ours)} recordings of {origin} are in "
                f"{root} (absent: {', '.join(absent)}); the noisy audio differs from the "
                "reference run's")
        if not rows:
            wavs = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.wav"))
            rows = [{"recording": w, "partition": PARTITIONS[i % 2]} for i, w in enumerate(wavs)]
            origin = f"every .wav in {root}, alternately train / test"
    pool = {p: [] for p in PARTITIONS}
    missing = []
    for r in rows:
        path = root / r["recording"]
        if r.get("partition") not in pool:
            raise CorpusError(f"{origin}: recording {r.get('recording')}: partition "
                              f"{r.get('partition')!r} is neither train nor test")
        if not path.is_file():
            missing.append(str(path))
        pool[r["partition"]].append(path)
    if missing:
        raise CorpusError(f"{root}: {len(missing)} noise recording(s) missing: "
                          f"{', '.join(missing)}")
    empty = [p for p in PARTITIONS if not pool[p]]
    if empty:
        raise CorpusError(f"{root}: no noise recording for the {' and '.join(empty)} "
                          f"utterances ({origin}); training and test need one each at least")
    return NoisePool(root, pool["train"], pool["test"])


def download_noise(dest=None, archives=None, log=print, progress=True):
    """Fetch the recordings of noise_split.csv that have an official home into `dest`
    (default: the cache's noise/ folder), each checked against its SHA-256; returns dest.

    Each archive is downloaded once (its own checksum checked by refimpl._util.fetch),
    the members we use are extracted atomically, and the archive is then deleted.
    Recordings without a public home (the household set) are not fetched; the split then
    uses the recordings present (noise_pool says which are absent).
    """
    dest = Path(dest) if dest is not None else locations.cache_dir() / "noise"
    archives = ARCHIVES if archives is None else archives
    wanted = {}
    for r in split_table():
        if r["archive"]:
            wanted.setdefault(r["archive"], {})[r["member"]] = r
    for name, members in wanted.items():
        todo = {m: r for m, r in members.items()
                if not ((dest / r["recording"]).is_file()
                        and file_digest(dest / r["recording"]) == r["sha256"])}
        if not todo:
            continue
        info = archives[name]
        archive = dest / ".download" / (name + ".tar.gz")
        log(f"noise: downloading {info['url']} ({info.get('bytes', 0) / 1e9:.1f} GB) for "
            f"{len(todo)} recording(s)")
        download(info["url"], archive, sha256=info.get("sha256"), progress=progress,
                 desc=name)
        try:
            _extract(archive, todo, dest)
        finally:
            archive.unlink(missing_ok=True)
    return dest


def _extract(archive, todo, dest):
    """Members of a tar archive to dest/<recording>, each checked against its SHA-256."""
    found = set()
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = member.name
                while name.startswith("./"):
                    name = name[2:]
                if name not in todo or not member.isfile():
                    continue
                row = todo[name]
                with atomic_path(dest / row["recording"]) as tmp:
                    with tar.extractfile(member) as src, open(tmp, "wb") as out:
                        while block := src.read(1 << 20):
                            out.write(block)
                    got = file_digest(tmp)
                    if got != row["sha256"]:
                        raise ChecksumError(f"{archive.name}:{name}: SHA-256 {got} differs "
                                            f"from the expected {row['sha256']} (not kept)")
                found.add(name)
    except (tarfile.TarError, EOFError) as e:
        raise DownloadError(f"{archive}: not a readable tar archive ({e})") from None
    absent = sorted(set(todo) - found)
    if absent:
        raise DownloadError(f"{archive.name}: member(s) {', '.join(absent)} not in the archive")
