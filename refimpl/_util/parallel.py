"""A map over files in worker processes whose results equal those of one process, bit
for bit."""
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

from threadpoolctl import threadpool_limits
from tqdm import tqdm

__all__ = ["map_files", "worker_pool"]


def map_files(fn, items, jobs=None, desc="", progress=True, initializer=None, initargs=()):
    """[fn(item) for item in items], with a progress bar; jobs > 1 (default: every core)
    spreads the items over worker processes. Each item is computed as it would be alone:
    with one BLAS thread (OpenBLAS splits some sums differently with more, which moves
    the last bits), every random draw seeded per item by the caller; so the outputs are the
    same bit for bit whatever `jobs` is. Results come back in order."""
    items = list(items)
    jobs = min(int(jobs or os.cpu_count() or 1), len(items))
    bar = tqdm(total=len(items), desc=desc, unit="file", disable=not progress)
    try:
        if jobs <= 1:
            with threadpool_limits(1):
                if initializer:
                    initializer(*initargs)
                out = []
                for item in items:
                    out.append(fn(item))
                    bar.update(1)
            return out
        with worker_pool(jobs, initializer, initargs) as pool:
            out = []
            for result in pool.map(fn, items, chunksize=4):
                out.append(result)
                bar.update(1)
            return out
    finally:
        bar.close()


def worker_pool(jobs, initializer=None, initargs=()):
    """A ProcessPoolExecutor of `jobs` fresh (spawned) processes, each with one BLAS
    thread: what map_files uses, for callers that submit work as it comes (a stream)."""
    return ProcessPoolExecutor(int(jobs), mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_init, initargs=(initializer, initargs))


def _worker_init(initializer, initargs):
    threadpool_limits(1)
    if initializer:
        initializer(*initargs)
