"""The fast mode of refimpl.baselines.boaw: each frame's nearest codebook words from BLAS
distances (float64) instead of openXBOW's float32 running sums, and the exact (openXBOW)
assignment in NumPy, to count where the two differ (near ties only).
"""
import numpy as np

__all__ = ["nearest_word_sets", "fast_assignments", "pad_assignments", "exact_assignments",
           "assignment_differences"]


def nearest_word_sets(X, words, assignments, chunk=1024):
    """For several Na at once, the Na nearest words of every frame, from BLAS distances
    |x|^2 - 2 x.c + |c|^2 (float64), in chunks of frames: yields (start, words (rows,
    depth) intc, distances (rows, depth) float32), depth = min(max Na, codebook size).

    For every na in `assignments`, the first na columns hold the na nearest words (in no
    particular order inside): one partial sort with a cut after each na serves all of them.
    Ties go to the lower word index, openXBOW's rule. Equal to openXBOW's choice except
    where two distances are equal in float64 but not in openXBOW's float32 running sums,
    or the other way round."""
    X = np.asarray(X, np.float64)
    C = np.asarray(words, np.float64)
    K = C.shape[0]
    cuts = sorted({min(int(a), K) for a in assignments})
    depth = cuts[-1]
    inner = [c for c in cuts if c < K]          # a cut at K takes every word: nothing to do
    kth = sorted({k for c in inner for k in (c - 1, c)})
    c2 = np.einsum("ij,ij->i", C, C)
    CT2 = np.ascontiguousarray(-2.0 * C.T)      # exact: a power of two
    for s in range(0, X.shape[0], chunk):
        x = X[s:s + chunk]
        # in place, in the order of |x|^2 - 2 x.c + |c|^2 (no chunk-sized temporaries)
        D = x @ CT2
        D += np.einsum("ij,ij->i", x, x)[:, None]
        D += c2[None, :]
        np.maximum(D, 0.0, out=D)
        if kth:
            idx = np.argpartition(D, kth, axis=1)
            # Positions c-1 and c hold the c-th and (c+1)-th smallest distances; where they
            # are equal, the partition may have kept a higher word index than an equally
            # near one it left out. Those rare rows are ordered in full, by (distance, index).
            at = np.take_along_axis(D, idx[:, kth], axis=1)
            lo = [kth.index(c - 1) for c in inner]
            hi = [kth.index(c) for c in inner]
            tied = np.flatnonzero((at[:, lo] == at[:, hi]).any(axis=1))
            for r in tied:
                idx[r] = np.argsort(D[r], kind="stable")
            idx = idx[:, :depth]
        else:
            idx = np.broadcast_to(np.arange(K), (x.shape[0], K))
        yield (s, np.ascontiguousarray(idx, np.intc),
               np.take_along_axis(D, idx, axis=1).astype(np.float32))


def fast_assignments(X, words, na, chunk=1024):
    """Na nearest words per frame (in no particular order) and their distances (the float64
    values rounded to float32), from nearest_word_sets. Na larger than the codebook:
    openXBOW's argmin falls back to word 0 once every word is used, at the largest float
    distance."""
    out_w = np.empty((X.shape[0], na), np.intc)
    out_d = np.empty((X.shape[0], na), np.float32)
    for s, w, d in nearest_word_sets(X, words, [na], chunk):
        out_w[s:s + len(w)], out_d[s:s + len(w)] = pad_assignments(w, d, na)
    return out_w, out_d


def pad_assignments(w, d, na):
    if na <= w.shape[1]:
        return w, d
    extra = na - w.shape[1]
    return (np.concatenate([w, np.zeros((len(w), extra), np.intc)], axis=1),
            np.concatenate([d, np.full((len(d), extra), np.finfo(np.float32).max,
                                       np.float32)], axis=1))


def exact_assignments(X, words, na):
    """Per-frame sets of assigned words, the exact (openXBOW) way; for comparisons."""
    X = np.ascontiguousarray(X, np.float32)
    out = np.empty((X.shape[0], na), np.intc)
    cbT = np.ascontiguousarray(np.asarray(words, np.float32).T)
    # Same float32 running sum as the kernel, vectorised over words.
    for s in range(0, X.shape[0], 2048):
        x = X[s:s + 2048]
        D = np.zeros((x.shape[0], cbT.shape[1]), np.float32)
        for f in range(x.shape[1]):
            diff = x[:, f:f + 1] - cbT[f][None, :]
            D += diff * diff
        order = np.lexsort((np.broadcast_to(np.arange(D.shape[1]), D.shape), D), axis=1)
        out[s:s + 2048] = order[:, :na]
    return out


def assignment_differences(X, words, na):
    """How many (frame, word) assignments the fast mode makes differently from the exact one."""
    fw, _ = fast_assignments(X, words, na)
    ew = exact_assignments(X, words, na)
    diff = 0
    for a, b in zip(np.sort(fw, axis=1), np.sort(ew, axis=1)):
        diff += na - len(np.intersect1d(a, b))
    return diff, X.shape[0] * na
