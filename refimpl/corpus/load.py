"""load_corpus: a corpus by name (the built-in EmoDB and FAU-AIBO readers) or from a
manifest CSV; the one entry point the pipeline and the public API use."""
from pathlib import Path

from refimpl.corpus import aibo, emodb
from refimpl.corpus.table import DEFAULT_SEED, Corpus, CorpusError, from_manifest

__all__ = ["load_corpus"]


def load_corpus(name_or_manifest: str | Path, root: str | Path | None = None,
                seed: int = DEFAULT_SEED, **kwargs) -> Corpus:
    """A corpus as one table of utterances (refimpl.corpus.table.Corpus).

    Parameters
    ----------
    name_or_manifest : str or pathlib.Path
        ``"emodb"``, ``"aibo"``, or the path of a manifest CSV (any corpus, no code).
    root : str or pathlib.Path, optional
        The corpus's folder: a user's EmoDB copy (default ``../shared/data/emodb``, else
        the downloaded one), or the licensed FAU-AIBO copy (required for ``"aibo"``).
    seed : int
        Seed of the generated noisy and denoised conditions whose paths the rows carry.
    **kwargs
        Passed to the corpus's reader (e.g. ``noisy_dir`` for FAU-AIBO).

    Returns
    -------
    Corpus
        Rows of file, speaker, partition, fold, one label column per task, and the audio
        path of each acoustic condition.

    Raises
    ------
    CorpusError
        A name that is neither built in nor a manifest, a missing root, a bad manifest.
    """
    key = str(name_or_manifest)
    if key == "emodb":
        return emodb.emodb(root, seed=seed, **kwargs)
    if key == "aibo":
        if root is None:
            raise CorpusError("aibo: give the folder of your licensed FAU-AIBO copy (--root)")
        return aibo.aibo(root, seed=seed, **kwargs)
    if key.endswith(".csv") or Path(key).is_file():
        return from_manifest(key, **kwargs)
    raise CorpusError(f"{key}: neither a built-in corpus (emodb, aibo) nor a manifest CSV")
