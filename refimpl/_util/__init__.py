"""Plumbing shared by every stage; nothing here knows about audio, images or networks.

    atomic      atomic_path / atomic_open: outputs and caches appear whole or not at all
    digest      THE file digest (and the memoised content digest the caches key on)
    cache       THE per-file, content-keyed feature cache
    fetch       THE downloader: a URL or a member of a PyPI wheel, checksum checked
    locations   where caches, Caffe, shared data and packaged files live
    parallel    map over files in worker processes, bit-identical to one process
    native      importing a compiled kernel (OpenMP's idle threads asleep, a clear error)
    lazy        THE lazy-attribute mechanism (lazy_attributes): names imported on first use
    optional    THE way to a dependency that may be missing (optional_import, missing)
    version     the package's version, from its metadata
"""
