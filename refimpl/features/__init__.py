"""Stage 5 — features: speech files in, deep spectrum vectors out.

audio -> chunks -> images -> blob -> network (fc7 after ReLU, or any AlexNet blob) -> one
row per file, or per chunk with windowing, as the DeepSpectrum toolkit (Aug. 2017) made
them.

    inputs      find_audio (files and their row names), read_labels / folder_labels
    config      ExtractorConfig (everything that changes the features: the cache key)
    engine      iter_features (a generator of per-file results: streaming, cached, drawing
                in worker processes), load_chunks / draw_piece (one file's steps)
    formats     CSV / ARFF as the toolkit wrote them, Parquet, .npz, written row by row
                and atomically (open_writer)
    extraction  extract_to_file (a whole run, with the reduced copy); extract /
                write_features for small runs in memory
    shards      shard_of / merge_shards (array jobs)
    distributed iter_features_dask: the same on dask.distributed workers (an optional
                extra, imported only where used)
    api         DeepSpectrum: pandas DataFrames like opensmile-python, and a scikit-learn
                transformer (imported on first use: scikit-learn takes seconds to import)
"""
from refimpl._util.lazy import lazy_attributes
from refimpl.features.config import CACHE_NAME, FORWARD_PIECE, ExtractorConfig
from refimpl.features.engine import FileResult, Signal, draw_piece, iter_features, load_chunks
from refimpl.features.extraction import (Extraction, ExtractionSummary, extract,
                                         extract_to_file, reduced_path, write_features)
from refimpl.features.formats import (ARFF_RELATION, FORMATS, FeatureWriter, open_writer,
                                      output_format)
from refimpl.features.inputs import (AUDIO_SUFFIXES, AudioInput, LabelColumn, Labels,
                                     find_audio, folder_labels, read_labels)
from refimpl.features.shards import (find_shards, merge_shards, shard_of, shard_path,
                                     shard_record_path, write_shard_record)

__all__ = ["ExtractorConfig", "FileResult", "Signal", "iter_features", "load_chunks", "draw_piece",
           "FORWARD_PIECE", "CACHE_NAME", "AUDIO_SUFFIXES", "AudioInput", "LabelColumn",
           "Labels", "find_audio", "folder_labels", "read_labels", "ARFF_RELATION", "FORMATS",
           "Extraction", "ExtractionSummary", "FeatureWriter", "extract", "extract_to_file",
           "open_writer", "output_format", "reduced_path", "write_features", "shard_path",
           "shard_of", "find_shards", "merge_shards", "write_shard_record", "shard_record_path",
           "DeepSpectrum"]

__getattr__, __dir__ = lazy_attributes(__name__, {"DeepSpectrum": "refimpl.features.api"})
