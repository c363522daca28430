"""Corpora as tables: which file, which speaker, which partition and fold, which labels.

The paper (sections 3.2, 3.3) evaluates every feature set on clean, noisy and denoised
versions of one corpus with speaker-independent partitions. This package is that data layer.

A corpus is one table, a row per utterance:

    file       the utterance's name (unique), e.g. "03a01Fa.wav"
    speaker    who speaks it; a speaker lies in one partition and one fold only
    partition  "train" or "test"
    fold       1 or 2 inside train (speaker-independent 2-fold cross-validation), 0 in test
    <task>     one label column per task, e.g. idl_neg = IDL / NEG
    path_clean, path_noisy, path_denoised
               the audio of each acoustic condition ("" where a condition is absent)

API (what the pipeline calls):

    corpus = load_corpus("emodb")                      # built in, reads ../shared/data/emodb
    corpus = load_corpus("emodb", root="/data/emodb")  # a user's copy (official layout)
    corpus = load_corpus("aibo", root="/data/aibo", noisy_dir="/data/aibo/room")
    corpus = load_corpus("my_corpus.csv")              # any corpus, from a manifest CSV
    corpus.name, corpus.tasks                          # tasks: name -> ordered class list
    corpus.rows                                        # list of dicts, columns as above
    y = corpus.labels("idl_neg")                       # int class indices into tasks[task]
    corpus.label_names("idl_neg"), corpus.speakers(), corpus.partitions(), corpus.folds()
    corpus.files(), corpus.audio_paths("noisy")        # every accessor takes partition=
    corpus.counts("idl_neg")                           # {"train": {"IDL": n, ...}, "test": ...}
    corpus.to_manifest("out.csv")                      # round-trips through load_corpus

    # the generated conditions (refimpl.conditions)
    load_corpus("emodb", seed=0).audio_paths("noisy")  # <cache>/conditions/emodb/seed0/noisy/
    generate_noisy(corpus, seed=0)                     # writes noisy/*.wav + noisy.csv
    generate_denoised(corpus, seed=0)                  # writes denoised/*.wav + denoised.csv
    enhance(signal, load_model())                      # one signal (16 kHz float)

Manifest CSV (a new corpus without code): the columns above; a task column is headed
`label:<task>` and may declare its classes in order, `label:<task>=IDL|NEG` (then any other
value is an error; without a declaration the classes are the sorted labels found). Relative
audio paths are relative to the manifest's folder. Other columns are kept but not used.
Every problem in a manifest is reported at once, one line per offending row.

Commands: `refimpl corpus check emodb|aibo|manifest.csv`, `refimpl corpus download emodb`,
`refimpl corpus conditions emodb --seed N` (refimpl.conditions).

Modules: load (load_corpus), table (Corpus, validation, manifests, counts), emodb, aibo.
"""
from refimpl.corpus.emodb import download_emodb
from refimpl.corpus.load import load_corpus
from refimpl.corpus.table import (CONDITIONS, DEFAULT_SEED, PARTITIONS, Corpus, CorpusError,
                                  check, compare_counts, count_table, from_manifest)

__all__ = ["load_corpus", "Corpus", "CorpusError", "CONDITIONS", "PARTITIONS", "DEFAULT_SEED",
           "from_manifest", "download_emodb", "check", "compare_counts",
           "count_table"]
