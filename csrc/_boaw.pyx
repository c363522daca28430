# distutils: language = c++
"""Compiled core of the bag-of-audio-words (BoAW) stage, bit-identical to openXBOW 1.3.1.

openXBOW is Java: every number it prints is the result of a fixed sequence of IEEE float32
or float64 operations (Java never fuses a multiply-add and never reorders a sum).  Each
kernel below performs the same operations in the same order, so the results are the same
bits.  The module is built with -ffp-contract=off (setup.py) so that the C compiler does not
fuse them either.  Where a kernel is faster than openXBOW it is because the *work* is
organised differently (codebook stored feature-major so that the per-word sums vectorise,
partial selection instead of Na passes of argmin), never because the arithmetic differs.

Contents
- JavaRandom: java.util.Random (48-bit LCG) bit for bit.
- fit_standardize / apply_standardize: openXBOW's input z-scoring (float32 running sums).
- codebook_random / codebook_random_pp / codebook_kmeans: its codebook generators.
- assign_bags: the Na-nearest-word assignment with optional Gaussian weighting.
- term_weighting / normalize_bags / fit_output_standardize / apply_output_standardize.
- parse_float32: Java's Float.parseFloat for decimal strings (correctly rounded, via strtof).
- java_float_str / java_float_strs: Java 17's Float.toString, digit for digit.
"""
import numpy as np
cimport numpy as cnp
cimport cython
from libc.math cimport log10, sqrt, exp, isnan
from libc.stdint cimport int32_t, uint32_t, int64_t, uint64_t
from libc.stdlib cimport strtof, malloc, free
from libc.string cimport memcpy, memset
from libc.float cimport FLT_MAX, FLT_MIN
from libcpp.vector cimport vector
from libcpp.algorithm cimport nth_element
from cython.parallel cimport prange, parallel
cimport openmp

cnp.import_array()

cdef extern from "_boaw_kernels.h" nogil:
    void boaw_sqdist_f32(const float* x, const float* cbT, Py_ssize_t m, Py_ssize_t K, float* dist)
    void boaw_sqdist_f64(const float* word, const float* XT, Py_ssize_t m, Py_ssize_t n,
                         Py_ssize_t c0, Py_ssize_t length, double* tmp)

# --------------------------------------------------------------------------------------
# java.util.Random
# --------------------------------------------------------------------------------------
cdef uint64_t _MULT = 0x5DEECE66D
cdef uint64_t _MASK = (1ULL << 48) - 1

cdef struct jrand:
    uint64_t seed

cdef inline void jr_seed(jrand* r, int64_t seed) noexcept nogil:
    r.seed = ((<uint64_t>seed) ^ _MULT) & _MASK

cdef inline int32_t jr_next(jrand* r, int bits) nogil:
    r.seed = (r.seed * _MULT + 0xB) & _MASK
    # Java: (int)(seed >>> (48 - bits)), i.e. keep the low 32 bits, two's complement.
    return <int32_t>(<uint32_t>(r.seed >> (48 - bits)))

cdef inline int32_t jr_next_int(jrand* r, int32_t bound) nogil:
    cdef int32_t rr = jr_next(r, 31)
    cdef int32_t m = bound - 1
    cdef int32_t u
    if (bound & m) == 0:
        return <int32_t>((<int64_t>bound * <int64_t>rr) >> 31)
    u = rr
    while True:
        rr = u % bound
        # Java int arithmetic wraps: u - r + m < 0 detects overflow of the last interval.
        if <int32_t>(<uint32_t>u - <uint32_t>rr + <uint32_t>m) >= 0:
            return rr
        u = jr_next(r, 31)

cdef inline double jr_next_double(jrand* r) nogil:
    cdef int64_t hi = jr_next(r, 26)
    cdef int64_t lo = jr_next(r, 27)
    return <double>((hi << 27) + lo) * (1.0 / 9007199254740992.0)


cdef class JavaRandom:
    """java.util.Random(seed): same seed scrambling, same LCG, same derived values."""
    cdef jrand r
    cdef double next_next_gaussian
    cdef bint have_next_next_gaussian

    def __init__(self, long long seed):
        jr_seed(&self.r, seed)
        self.have_next_next_gaussian = False

    def next_bits(self, int bits):
        return jr_next(&self.r, bits)

    def next_int(self, bound=None):
        if bound is None:
            return jr_next(&self.r, 32)
        if bound <= 0:
            raise ValueError("bound must be positive")
        return jr_next_int(&self.r, bound)

    def next_double(self):
        return jr_next_double(&self.r)

    def next_gaussian(self):
        """Polar method as in java.util.Random (uses StrictMath.log/sqrt there; libm here)."""
        cdef double v1, v2, s, multiplier
        if self.have_next_next_gaussian:
            self.have_next_next_gaussian = False
            return self.next_next_gaussian
        while True:
            v1 = 2 * jr_next_double(&self.r) - 1
            v2 = 2 * jr_next_double(&self.r) - 1
            s = v1 * v1 + v2 * v2
            if s < 1 and s != 0:
                break
        from math import log
        multiplier = sqrt(-2 * log(s) / s)
        self.next_next_gaussian = v2 * multiplier
        self.have_next_next_gaussian = True
        return v1 * multiplier


# --------------------------------------------------------------------------------------
# Input standardisation (openXBOW Preprocessor)
# --------------------------------------------------------------------------------------
@cython.boundscheck(False)
@cython.wraparound(False)
def fit_standardize(const float[:, ::1] X):
    """Means and n-1 standard deviations as openXBOW computes them (float32 running sums
    over frames in input order; std below FLT_MIN becomes 1).  Returns (mean, std)."""
    cdef Py_ssize_t n = X.shape[0], m = X.shape[1], i, f
    mean_a = np.zeros(m, np.float32)
    std_a = np.zeros(m, np.float32)
    cdef float[::1] mean = mean_a
    cdef float[::1] std = std_a
    cdef float cnt = <float>n          # Java: float / int promotes the int to float
    cdef float cnt1 = <float>(n - 1)
    cdef float diff
    with nogil:
        for i in range(n):
            for f in range(m):
                mean[f] = mean[f] + X[i, f]
        for f in range(m):
            mean[f] = mean[f] / cnt
        for i in range(n):
            for f in range(m):
                diff = X[i, f] - mean[f]
                std[f] = std[f] + diff * diff
        for f in range(m):
            std[f] = std[f] / cnt1
            std[f] = <float>sqrt(<double>std[f])
            if std[f] < FLT_MIN:
                std[f] = 1.0
    return mean_a, std_a


@cython.boundscheck(False)
@cython.wraparound(False)
def apply_standardize(const float[:, ::1] X, const float[::1] mean, const float[::1] std):
    cdef Py_ssize_t n = X.shape[0], m = X.shape[1], i, f
    out_a = np.empty((n, m), np.float32)
    cdef float[:, ::1] out = out_a
    with nogil:
        for i in range(n):
            for f in range(m):
                out[i, f] = (X[i, f] - mean[f]) / std[f]
    return out_a


# --------------------------------------------------------------------------------------
# Codebooks (openXBOW CodebookNumeric)
# --------------------------------------------------------------------------------------
cdef inline bint _are_equal(double a, double b) nogil:
    return a + 1e-4 > b and a - 1e-4 < b


@cython.boundscheck(False)
@cython.wraparound(False)
def codebook_random(const float[:, ::1] X, int size, long long seed):
    """Random sampling without repetition, skipping rows equal (within 1e-4) to a word
    already chosen.  Returns (codebook, n_filled): openXBOW stops with a message when the
    data run out and leaves the remaining words at zero; n_filled tells the caller."""
    cdef Py_ssize_t n = X.shape[0], m = X.shape[1]
    cb_a = np.zeros((size, m), np.float32)
    cdef float[:, ::1] cb = cb_a
    perm_a = np.arange(n, dtype=np.intp)
    cdef Py_ssize_t[::1] perm = perm_a
    cdef jrand r
    cdef int k = 0, counter = 0, k2
    cdef Py_ssize_t index, row, f, tmp, last
    cdef bint new_word, different
    jr_seed(&r, seed)
    with nogil:
        while True:
            index = jr_next_int(&r, <int32_t>(n - counter))
            counter += 1
            row = perm[index]
            new_word = True
            for k2 in range(k):
                different = False
                for f in range(m):
                    if not _are_equal(X[row, f], cb[k2, f]):
                        different = True
                        break
                if not different:
                    new_word = False
                    break
            if new_word:
                for f in range(m):
                    cb[k, f] = X[row, f]
                k += 1
            # openXBOW moves the drawn row to position size-k-1 (k = words accepted so far).
            last = n - k - 1
            tmp = perm[index]
            perm[index] = perm[last]
            perm[last] = tmp
            if n == counter:
                break
            if k >= size:
                break
    return cb_a, k


@cython.boundscheck(False)
@cython.wraparound(False)
cdef double _update_block(const float[:, ::1] XT, const float* word, Py_ssize_t c0, Py_ssize_t c1,
                          const double* old, double* new, double* tmp, double total) noexcept nogil:
    """new[c] = min-update of old[c] with the squared distance to `word` (features summed
    in order, in float64 of float32 differences), for c in [c0, c1); old NULL: new = d.
    Returns `total` plus the new distances added in frame order: called block after block,
    this is openXBOW's sequential sum of all distances for the next draw."""
    cdef Py_ssize_t m = XT.shape[0], c
    boaw_sqdist_f64(word, &XT[0, 0], m, XT.shape[1], c0, c1 - c0, tmp)
    for c in range(c0, c1):
        if old == NULL or (old[c] > 0 and tmp[c - c0] < old[c]):
            new[c] = tmp[c - c0]
        else:
            new[c] = old[c]
        total = total + new[c]
    return total


DEF _BLOCK = 4096


@cython.boundscheck(False)
@cython.wraparound(False)
def codebook_random_pp(const float[:, ::1] X, int size, long long seed):
    """kmeans++ seeding as openXBOW does it: squared distances in float64 of float32
    differences, probabilities d/sum, cumulative sum with the last entry forced to 1,
    first index whose cumulative probability exceeds nextDouble().

    Same arithmetic, less work: the probabilities are only formed up to the chosen index,
    the distance update runs block-wise over frames (vectorised; each frame's sum is still
    sequential), and when the sum is not positive (all frames already chosen, or NaN) openXBOW keeps its
    previous probabilities, which the double-buffered distances preserve here."""
    cdef Py_ssize_t n = X.shape[0], m = X.shape[1], c, f, x, blk
    cb_a = np.zeros((size, m), np.float32)
    cdef float[:, ::1] cb = cb_a
    XT_a = np.ascontiguousarray(np.asarray(X).T)
    cdef const float[:, ::1] XT = XT_a
    bufs_a = np.zeros((2, n), np.float64)
    cdef double[:, ::1] bufs = bufs_a
    cdef double* cur = &bufs[0, 0]
    cdef double* nxt = &bufs[1, 0]
    cdef double* swap
    cdef double* frozen = NULL          # distances behind the probabilities kept by openXBOW
    cdef double frozen_total = 0
    zeros_a = np.zeros(n, np.float64)
    cdef double[::1] zeros = zeros_a
    cdef jrand r
    cdef int k
    cdef Py_ssize_t nblocks = (n + _BLOCK - 1) // _BLOCK
    cdef double total, cum, rv
    tmp_a = np.zeros(_BLOCK, np.float64)
    cdef double[::1] tmp_v = tmp_a
    cdef double* tmp = &tmp_v[0]
    jr_seed(&r, seed)
    with nogil:
        x = jr_next_int(&r, <int32_t>n)
        for f in range(m):
            cb[0, f] = X[x, f]
        total = 0
        for blk in range(nblocks):
            total = _update_block(XT, &cb[0, 0], blk * _BLOCK, min(n, (blk + 1) * _BLOCK), NULL,
                                  cur, tmp, total)
        for k in range(1, size):
            if frozen == NULL:
                if not (total > 0):
                    # openXBOW keeps the probabilities of the last iteration with a positive
                    # sum (all zero if there was none); distances can no longer change them.
                    frozen = nxt if k > 1 else &zeros[0]
                    frozen_total = 1.0
                    if k > 1:
                        frozen_total = 0
                        for c in range(n):
                            frozen_total = frozen_total + frozen[c]
            rv = jr_next_double(&r)
            cum = 0
            x = n - 1              # cumulatedProbs[n-1] is forced to 1.0 > rv
            if frozen == NULL:
                for c in range(n - 1):
                    cum = cum + cur[c] / total
                    if cum > rv:
                        x = c
                        break
            else:
                for c in range(n - 1):
                    cum = cum + frozen[c] / frozen_total
                    if cum > rv:
                        x = c
                        break
            for f in range(m):
                cb[k, f] = X[x, f]
            if frozen == NULL and k < size - 1:
                total = 0
                for blk in range(nblocks):
                    total = _update_block(XT, &cb[k, 0], blk * _BLOCK, min(n, (blk + 1) * _BLOCK),
                                          cur, nxt, tmp, total)
                swap = cur
                cur = nxt
                nxt = swap
    return cb_a


@cython.boundscheck(False)
@cython.wraparound(False)
def codebook_kmeans(const float[:, ::1] X, const float[:, ::1] init, int max_iter=500):
    """Lloyd iterations exactly as openXBOW runs them from the initial words `init`:
    float32 distances, strict '<' (ties to the lowest index), a frame keeps its previous
    cluster when no distance is below FLT_MAX, stop when no assignment changed (the
    'previous' assignment starts as all zeros), centroid = float32 sum / float32 count."""
    cdef Py_ssize_t n = X.shape[0], m = X.shape[1], K = init.shape[0], i, j, f
    cb_a = np.array(init, dtype=np.float32, copy=True)
    cdef float[:, ::1] cb = cb_a
    cur_a = np.zeros(n, np.intc)
    last_a = np.zeros(n, np.intc)
    cdef int[::1] cur = cur_a
    cdef int[::1] last = last_a
    sums_a = np.zeros((K, m), np.float32)
    nums_a = np.zeros(K, np.float32)
    cdef float[:, ::1] sums = sums_a
    cdef float[::1] nums = nums_a
    cdef float d, mind, diff
    cdef int it = 0
    cdef bint changed = True
    with nogil:
        while changed and it < max_iter:
            it += 1
            for i in range(n):
                mind = FLT_MAX
                for j in range(K):
                    d = 0
                    for f in range(m):
                        diff = X[i, f] - cb[j, f]
                        d = d + diff * diff
                    if d < mind:
                        mind = d
                        cur[i] = j
            changed = False
            for i in range(n):
                if cur[i] != last[i]:
                    changed = True
                last[i] = cur[i]
            if changed:
                for j in range(K):
                    nums[j] = 0
                    for f in range(m):
                        sums[j, f] = 0
                for i in range(n):
                    j = cur[i]
                    nums[j] = nums[j] + 1
                    for f in range(m):
                        sums[j, f] = sums[j, f] + X[i, f]
                for j in range(K):
                    if nums[j] > 0:
                        for f in range(m):
                            cb[j, f] = sums[j, f] / nums[j]
    return cb_a, it


# --------------------------------------------------------------------------------------
# Assignment (openXBOW Bag.generateBoF)
# --------------------------------------------------------------------------------------
cdef inline uint32_t _fbits(float v) nogil:
    cdef uint32_t u
    memcpy(&u, &v, 4)
    return u


DEF _NBINS = 2048        # histogram over the top 11 bits of a non-negative float (exponent + 3)


@cython.boundscheck(False)
@cython.wraparound(False)
cdef int _select_nearest(const float* dist, Py_ssize_t K, int na, uint64_t* keys,
                         uint32_t* hist) noexcept nogil:
    """The `na` words openXBOW assigns: repeated "strict minimum, then set it to FLT_MAX"
    picks words in order of (distance, index) among distances below FLT_MAX.  Distances are
    sums of squares (never negative), so their bit patterns sort like their values and
    (bits << 32 | index) is one sortable key.  A histogram over the high bits finds the
    bucket holding the na-th key; only that bucket needs a partial sort.  Writes the chosen
    keys (unordered) to keys[0:n] and returns n = min(na, eligible words)."""
    cdef uint32_t maxbits = _fbits(FLT_MAX)
    cdef uint32_t b, h, boundary
    cdef Py_ssize_t j
    cdef int n_all = 0, below = 0, inside, need, lo
    memset(hist, 0, _NBINS * sizeof(uint32_t))
    for j in range(K):
        b = _fbits(dist[j])
        if b < maxbits:
            hist[b >> 20] += 1
            n_all += 1
    if n_all <= na:
        lo = 0
        for j in range(K):
            b = _fbits(dist[j])
            if b < maxbits:
                keys[lo] = ((<uint64_t>b) << 32) | <uint64_t>j
                lo += 1
        return n_all
    boundary = 0
    while below + <int>hist[boundary] < na:
        below += hist[boundary]
        boundary += 1
    inside = below
    lo = 0
    for j in range(K):
        b = _fbits(dist[j])
        if b < maxbits:
            h = b >> 20
            if h < boundary:
                keys[lo] = ((<uint64_t>b) << 32) | <uint64_t>j
                lo += 1
            elif h == boundary:
                keys[inside] = ((<uint64_t>b) << 32) | <uint64_t>j
                inside += 1
    need = na - below
    if need < inside - below:
        nth_element(keys + below, keys + below + need, keys + inside)
    return na


@cython.boundscheck(False)
@cython.wraparound(False)
cdef void _assign_frames(const float[:, ::1] X, const float[:, ::1] cbT, const Py_ssize_t[::1] frames,
                         Py_ssize_t start, Py_ssize_t stop, int bag, const int* nas, int n_nas,
                         float gaussian, float off, float** bofs, float* dist, uint64_t* keys,
                         uint32_t* hist) noexcept nogil:
    """Frames frames[start:stop] (in input order) all belong to `bag`. For each q < n_nas the
    nas[q] nearest words go into bofs[q] (an (n_bags, K) array): the distances of a frame
    are computed once and serve every Na, and each Na's selection and additions are those
    of a call with that Na alone."""
    cdef Py_ssize_t K = cbT.shape[1], m = cbT.shape[0], t, i, j, f
    cdef int a, q, na, n_elig, minj
    cdef float x, diff, mind, inc, frac
    cdef float* row
    cdef bint use_gauss = gaussian > 1.401298464324817e-45
    cdef bint use_off = off > 1.401298464324817e-45
    cdef float two = 2
    cdef float twosig2 = two * gaussian * gaussian
    cdef uint32_t maxbits = _fbits(FLT_MAX)
    cdef uint32_t b
    for t in range(start, stop):
        i = frames[t]
        boaw_sqdist_f32(&X[i, 0], &cbT[0, 0], m, K, dist)
        for q in range(n_nas):
            na = nas[q]
            row = bofs[q] + <Py_ssize_t>bag * K
            if na == 1:
                mind = FLT_MAX
                minj = 0
                for j in range(K):
                    if dist[j] < mind:
                        mind = dist[j]
                        minj = j
                n_elig = 1 if mind < FLT_MAX else 0
                if n_elig:
                    keys[0] = ((<uint64_t>_fbits(mind)) << 32) | <uint64_t>minj
            else:
                n_elig = _select_nearest(dist, K, na, keys, hist)
            for a in range(na):
                if a < n_elig:
                    minj = <int>(<uint32_t>keys[a])
                    mind = dist[minj]
                else:
                    # No word left below FLT_MAX: openXBOW's argmin stays at index 0.
                    minj = 0
                    mind = FLT_MAX
                inc = 1
                if use_gauss:
                    frac = mind / twosig2
                    inc = <float>exp(-<double>frac)
                if (not use_off) or sqrt(<double>mind) <= <double>off:
                    row[minj] = row[minj] + inc


@cython.boundscheck(False)
@cython.wraparound(False)
def assign_bags(const float[:, ::1] X, const float[:, ::1] codebook, const int[::1] frame_bag,
                int n_bags, int na, float gaussian=0.0, float off=0.0, int threads=0):
    """Term frequencies: for every frame the `na` nearest words (squared Euclidean distance
    summed in float32 feature by feature, ties to the lowest index) each get +1, or
    +exp(-d/(2 sigma^2)) with Gaussian weighting.  frame_bag[i] is the bag of frame i
    (-1: the frame is in no bag).  Bags are filled in parallel (OpenMP, `threads`, 0 = all
    cores), each bag by one thread from its frames in input order, so the float32 sums are
    the same as openXBOW's sequential ones."""
    return assign_bags_many(X, codebook, frame_bag, n_bags, [na], gaussian, off, threads)[0]


@cython.boundscheck(False)
@cython.wraparound(False)
def assign_bags_many(const float[:, ::1] X, const float[:, ::1] codebook,
                     const int[::1] frame_bag, int n_bags, nas, float gaussian=0.0,
                     float off=0.0, int threads=0):
    """[assign_bags(..., na) for na in nas], bit for bit, with each frame's distances to the
    words computed once for all of them (the distances are most of the cost, and the Na
    search asks for up to nine Na of one codebook)."""
    cdef Py_ssize_t n = X.shape[0], K = codebook.shape[0]
    if codebook.shape[1] != X.shape[1]:
        raise ValueError(f"codebook has {codebook.shape[1]} features, input has {X.shape[1]}")
    if frame_bag.shape[0] != n:
        raise ValueError("frame_bag must have one entry per frame")
    na_list = [int(v) for v in nas]
    if not na_list or min(na_list) < 1:
        raise ValueError("need one or more positive numbers of assignments")
    cdef int n_nas = len(na_list), q
    cbT_a = np.ascontiguousarray(np.asarray(codebook).T)
    cdef const float[:, ::1] cbT = cbT_a
    outs = [np.zeros((n_bags, K), np.float32) for _ in na_list]
    cdef float[:, ::1] view
    cdef int* nas_c = <int*>malloc(n_nas * sizeof(int))
    cdef float** bofs = <float**>malloc(n_nas * sizeof(float*))
    if nas_c == NULL or bofs == NULL:
        free(nas_c)
        free(bofs)
        raise MemoryError()
    for q in range(n_nas):
        nas_c[q] = na_list[q]
        view = outs[q]
        bofs[q] = &view[0, 0] if n_bags > 0 and K > 0 else NULL
    fb = np.asarray(frame_bag)
    order_a = np.argsort(fb, kind="stable").astype(np.intp)      # frames grouped by bag, in order
    counts = np.bincount(fb[fb >= 0], minlength=n_bags) if n else np.zeros(n_bags, np.intp)
    starts_a = np.zeros(n_bags + 1, np.intp)
    starts_a[1:] = np.cumsum(counts)
    starts_a += int(np.sum(fb < 0))                               # skip the frames in no bag
    cdef const Py_ssize_t[::1] order = order_a
    cdef const Py_ssize_t[::1] starts = starts_a
    cdef Py_ssize_t g
    cdef float* dist
    cdef uint64_t* keys
    cdef uint32_t* hist
    failed_a = np.zeros(1, np.intc)
    cdef int[::1] failed = failed_a
    cdef int nthreads = threads if threads > 0 else openmp.omp_get_max_threads()
    try:
        with nogil, parallel(num_threads=nthreads):
            dist = <float*>malloc(K * sizeof(float))
            keys = <uint64_t*>malloc(K * sizeof(uint64_t))
            hist = <uint32_t*>malloc(_NBINS * sizeof(uint32_t))
            if dist != NULL and keys != NULL and hist != NULL:
                for g in prange(n_bags, schedule="dynamic"):
                    _assign_frames(X, cbT, order, starts[g], starts[g + 1], <int>g, nas_c,
                                   n_nas, gaussian, off, bofs, dist, keys, hist)
            else:
                failed[0] = 1
            free(dist)
            free(keys)
            free(hist)
    finally:
        free(nas_c)
        free(bofs)
    if failed_a[0]:
        raise MemoryError()
    return outs


@cython.boundscheck(False)
@cython.wraparound(False)
def accumulate_assignments(const int[:, :] words, const float[:, :] dists, const int[::1] frame_bag,
                           int n_bags, int K, float gaussian=0.0, float off=0.0, int na=-1,
                           out=None):
    """Bags from precomputed per-frame word lists (the fast mode's BLAS path): same
    increments and accumulation order as assign_bags.

    `na` >= 0 uses only the first `na` columns of `words` / `dists` (a ranking nearest
    first serves every smaller number of assignments). `out`, an (n_bags, K) float32
    array, is added to in place and returned: frames fed in order over several calls
    give the very sums of one call over all of them."""
    cdef Py_ssize_t n = words.shape[0], i, a
    cdef Py_ssize_t cols = words.shape[1] if na < 0 else na
    if cols > words.shape[1] or dists.shape[0] != n or dists.shape[1] < cols:
        raise ValueError(f"na={na} exceeds the {words.shape[1]} ranked words per frame")
    if frame_bag.shape[0] != n:
        raise ValueError("frame_bag must have one entry per frame")
    if out is None:
        bof_a = np.zeros((n_bags, K), np.float32)
    else:
        bof_a = out
        if bof_a.dtype != np.float32 or bof_a.shape != (n_bags, K):
            raise ValueError(f"out must be float32 of shape ({n_bags}, {K})")
    cdef float[:, ::1] bof = bof_a
    cdef bint use_gauss = gaussian > 1.401298464324817e-45
    cdef bint use_off = off > 1.401298464324817e-45
    cdef float twosig2 = 2 * gaussian * gaussian
    cdef float mind, inc
    cdef int j, bag
    with nogil:
        for i in range(n):
            bag = frame_bag[i]
            if bag < 0:
                continue
            for a in range(cols):
                j = words[i, a]
                mind = dists[i, a]
                inc = 1.0
                if use_gauss:
                    inc = <float>exp(-<double>(mind / twosig2))
                if (not use_off) or sqrt(<double>mind) <= <double>off:
                    bof[bag, j] = bof[bag, j] + inc
    return bof_a


# --------------------------------------------------------------------------------------
# Post-processing (openXBOW HyperBag / Postprocessor)
# --------------------------------------------------------------------------------------
@cython.boundscheck(False)
@cython.wraparound(False)
def document_frequency_factors(const float[:, ::1] bof):
    """IDF factors log10(N / n_w) in openXBOW's precision (1 where a word never occurs)."""
    cdef Py_ssize_t N = bof.shape[0], K = bof.shape[1], i, w
    dff_a = np.empty(K, np.float32)
    cdef float[::1] dff = dff_a
    cdef float appear
    with nogil:
        for w in range(K):
            appear = 0
            for i in range(N):
                if bof[i, w] > FLT_MIN:
                    appear = appear + 1
            if appear > 0:
                dff[w] = <float>log10(<double>(<float>N / appear))
            else:
                dff[w] = 1
    return dff_a


@cython.boundscheck(False)
@cython.wraparound(False)
def term_weighting(float[:, ::1] bof, bint log, const float[::1] dff):
    """In place: log10(TF+1), TF*IDF, or log10(TF+1)*IDF (dff=None: no IDF)."""
    cdef Py_ssize_t N = bof.shape[0], K = bof.shape[1], i, w
    cdef bint idf = dff is not None
    # A typed 1: Cython writes a bare literal as the double 1.0, which would make TF+1 a
    # float64 sum; Java adds in float32.
    cdef float one = 1
    with nogil:
        for i in range(N):
            for w in range(K):
                if log and idf:
                    bof[i, w] = (<float>log10(<double>(bof[i, w] + one))) * dff[w]
                elif log:
                    bof[i, w] = <float>log10(<double>(bof[i, w] + one))
                elif idf:
                    bof[i, w] = bof[i, w] * dff[w]


@cython.boundscheck(False)
@cython.wraparound(False)
def normalize_bags(float[:, ::1] bof, int mode, const int[::1] n_frames):
    """In place, openXBOW's -norm: TF * K / factor, factor = frames in the bag (1), sum of
    TF (2, float32 sum) or Euclidean length (3, squares added in float64 then rounded to
    float32 at each step, as Java's `float += Math.pow(x, 2)` does)."""
    cdef Py_ssize_t N = bof.shape[0], K = bof.shape[1], i, w
    cdef float s, factor
    cdef int Ki = <int>K
    if mode < 1 or mode > 3:
        raise ValueError("norm must be 1, 2 or 3")
    with nogil:
        for i in range(N):
            s = 0
            if mode == 1:
                factor = <float>n_frames[i]
            else:
                for w in range(K):
                    if mode == 2:
                        s = s + bof[i, w]
                    else:
                        s = <float>(<double>s + <double>bof[i, w] * <double>bof[i, w])
                if mode == 3:
                    s = <float>sqrt(<double>s)
                factor = s
            for w in range(K):
                if factor > 1.401298464324817e-45:
                    bof[i, w] = bof[i, w] * <float>Ki / factor
                else:
                    bof[i, w] = 0


@cython.boundscheck(False)
@cython.wraparound(False)
def fit_output_standardize(const float[:, ::1] bof):
    """Per-word mean and n-1 std over bags: openXBOW computes them exactly as it does the
    input statistics (float32 running sums, std < FLT_MIN -> 1), so the same kernel."""
    return fit_standardize(bof)


@cython.boundscheck(False)
@cython.wraparound(False)
def apply_output_standardize(float[:, ::1] bof, const float[::1] mean, const float[::1] std):
    cdef Py_ssize_t N = bof.shape[0], K = bof.shape[1], i, w
    with nogil:
        for i in range(N):
            for w in range(K):
                if std[w] > 1.401298464324817e-45:
                    bof[i, w] = (bof[i, w] - mean[w]) / std[w]


# --------------------------------------------------------------------------------------
# Number text: Java's Float.parseFloat and Float.toString (JDK 17)
# --------------------------------------------------------------------------------------
@cython.wraparound(True)
def parse_float32(list tokens):
    """Decimal strings -> float32, correctly rounded in one step like Float.parseFloat
    (Python's float() then float32 would round twice).  Raises ValueError on a bad token."""
    cdef Py_ssize_t n = len(tokens), i
    out_a = np.empty(n, np.float32)
    cdef float[::1] out = out_a
    cdef bytes b
    cdef const char* s
    cdef char* end
    for i in range(n):
        t = tokens[i]
        b = t.strip().encode("ascii") if isinstance(t, str) else bytes(t).strip()
        s = b
        if len(b) and (b[-1:] in (b"f", b"F", b"d", b"D")):
            b = b[:-1]
            s = b
        out[i] = strtof(s, &end)
        if end == s or end[0] != 0 or len(b) == 0:
            raise ValueError(f"not a number: {t!r}")
    return out_a


cdef int[27] _N5BITS = [0, 3, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28, 31, 33, 35, 38, 40,
                        42, 45, 47, 49, 52, 54, 56, 59, 61]
cdef int[64] _INSIG = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6,
                       6, 7, 7, 7, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 11, 11, 11, 12, 12, 12,
                       12, 13, 13, 13, 14, 14, 14, 15, 15, 15, 15, 16, 16, 16, 17, 17, 17,
                       18, 18, 18, 19]


cdef inline int _n5bits(int i) nogil:
    return _N5BITS[i] if i < 27 else i * 3


cdef inline uint64_t _pow5(int i) nogil:
    cdef uint64_t p = 1
    cdef int k
    for k in range(i):
        p *= 5
    return p


cdef int _estimate_dec_exp(uint64_t fract_bits, int bin_exp) nogil:
    # log10 estimate from the mantissa (scaled to [1,2)) and binary exponent, then floor.
    cdef uint64_t bits = (<uint64_t>1023 << 52) | (fract_bits & ((1ULL << 52) - 1))
    cdef double d2
    memcpy(&d2, &bits, 8)
    cdef double d = (d2 - 1.5) * 0.289529654 + 0.176091259 + <double>bin_exp * 0.301029995663981
    cdef int64_t r = <int64_t>d          # truncation toward zero
    if d < 0 and <double>r != d:
        r -= 1                           # floor for negative non-integers
    return <int>r


cdef class _Digits:
    cdef public list digits
    cdef public int dec_exp


cdef _long_digits(int dec_exponent, uint64_t lvalue, int insignificant):
    """All digits of an integer value (trailing zeros go into the exponent), after rounding
    away `insignificant` low-order decimal digits half-up."""
    cdef uint64_t pow10, residue
    cdef list out = []
    cdef int c
    if insignificant != 0:
        pow10 = _pow5(insignificant) << insignificant
        residue = lvalue % pow10
        lvalue //= pow10
        dec_exponent += insignificant
        if residue >= (pow10 >> 1):
            lvalue += 1
    c = <int>(lvalue % 10)
    lvalue //= 10
    while c == 0:
        dec_exponent += 1
        c = <int>(lvalue % 10)
        lvalue //= 10
    while lvalue != 0:
        out.append(c)
        dec_exponent += 1
        c = <int>(lvalue % 10)
        lvalue //= 10
    out.append(c)
    out.reverse()
    return out, dec_exponent + 1


cdef inline int32_t _w32(int64_t v) nogil:
    return <int32_t>(<uint32_t>(<uint64_t>v))


@cython.wraparound(True)
cdef _float_digits(float value):
    """Decimal digits and exponent chosen by JDK 17's FloatingDecimal for a finite nonzero
    float (value = 0.d1d2... * 10^exp).  Includes its quirks: integers that fit in a long
    print all their significant digits, and the stopping test is symmetric."""
    cdef uint32_t fbits = _fbits(value)
    cdef int32_t fract = fbits & 0x7FFFFF
    cdef int bin_exp = (fbits >> 23) & 0xFF
    cdef int nsig, lz, shift
    if bin_exp == 0:
        lz = 0
        while not (fract & (1 << (31 - lz))):
            lz += 1
        shift = lz - (31 - 23)
        fract <<= shift
        bin_exp = 1 - shift
        nsig = 32 - lz
    else:
        fract |= 1 << 23
        nsig = 24
    bin_exp -= 127
    cdef uint64_t fract_bits = (<uint64_t>fract) << (52 - 23)
    cdef int tail = 0
    while not ((fract_bits >> tail) & 1):
        tail += 1
    cdef int nfract = 52 + 1 - tail
    cdef int ntiny = max(0, nfract - bin_exp - 1)
    cdef int insig, p2, i
    cdef object S, B, M, tenS, d2, five
    if -21 <= bin_exp <= 62:
        if ntiny < 27 and nfract + _N5BITS[ntiny] < 64:
            if ntiny == 0:
                insig = 0
                if bin_exp > nsig:
                    p2 = bin_exp - nsig - 1
                    insig = _INSIG[p2] if 1 < p2 < 64 else 0
                if bin_exp >= 52:
                    fract_bits <<= (bin_exp - 52)
                else:
                    fract_bits >>= (52 - bin_exp)
                return _long_digits(0, fract_bits, insig)
    cdef int dec_exp = _estimate_dec_exp(fract_bits, bin_exp)
    cdef int B5 = max(0, -dec_exp)
    cdef int B2 = B5 + ntiny + bin_exp
    cdef int S5 = max(0, dec_exp)
    cdef int S2 = S5 + ntiny
    cdef int M5 = B5
    cdef int M2 = B2 - nsig
    fract_bits >>= tail
    B2 -= nfract - 1
    cdef int common = min(B2, S2)
    B2 -= common
    S2 -= common
    M2 -= common
    if nfract == 1:
        M2 -= 1
    if M2 < 0:
        B2 -= M2
        S2 -= M2
        M2 = 0
    cdef int bbits = nfract + B2 + _n5bits(B5)
    cdef int tensbits = S2 + 1 + _n5bits(S5 + 1)
    cdef list digits = []
    cdef bint low, high, e_form
    cdef int q
    cdef int32_t b32, s32, m32, t32
    cdef int64_t b64, s64, m64, t64, ldd = 0
    e_form = False
    if bbits < 64 and tensbits < 64:
        if bbits < 32 and tensbits < 32:
            b32 = _w32(<int64_t>_w32(<int64_t>fract_bits * <int64_t>_pow5(B5)) << B2)
            s32 = _w32(<int64_t>_pow5(S5) << S2)
            m32 = _w32(<int64_t>_pow5(M5) << M2)
            t32 = _w32(<int64_t>s32 * 10)
            q = b32 // s32
            b32 = _w32(10 * <int64_t>(b32 % s32))
            m32 = _w32(<int64_t>m32 * 10)
            low = b32 < m32
            high = _w32(<int64_t>b32 + m32) > t32
            if q == 0 and not high:
                dec_exp -= 1
            else:
                digits.append(q)
            if dec_exp < -3 or dec_exp >= 8:
                high = low = False
            while not low and not high:
                q = b32 // s32
                b32 = _w32(10 * <int64_t>(b32 % s32))
                m32 = _w32(<int64_t>m32 * 10)
                if m32 > 0:
                    low = b32 < m32
                    high = _w32(<int64_t>b32 + m32) > t32
                else:
                    low = high = True
                digits.append(q)
            ldd = _w32((<int64_t>b32 << 1) - t32)
        else:
            b64 = <int64_t>((fract_bits * _pow5(B5)) << B2)
            s64 = <int64_t>(_pow5(S5) << S2)
            m64 = <int64_t>(_pow5(M5) << M2)
            t64 = <int64_t>(<uint64_t>s64 * 10)
            q = <int>(b64 // s64)
            b64 = <int64_t>(10 * <uint64_t>(b64 % s64))
            m64 = <int64_t>(<uint64_t>m64 * 10)
            low = b64 < m64
            high = <int64_t>(<uint64_t>b64 + <uint64_t>m64) > t64
            if q == 0 and not high:
                dec_exp -= 1
            else:
                digits.append(q)
            if dec_exp < -3 or dec_exp >= 8:
                high = low = False
            while not low and not high:
                q = <int>(b64 // s64)
                b64 = <int64_t>(10 * <uint64_t>(b64 % s64))
                m64 = <int64_t>(<uint64_t>m64 * 10)
                if m64 > 0:
                    low = b64 < m64
                    high = <int64_t>(<uint64_t>b64 + <uint64_t>m64) > t64
                else:
                    low = high = True
                digits.append(q)
            ldd = <int64_t>((<uint64_t>b64 << 1) - <uint64_t>t64)
    else:
        # Arbitrary precision (Python ints); here the 'high' test is B + M >= 10 S.
        five = 5
        S = (five ** S5) << S2
        B = (int(fract_bits) * five ** B5) << B2
        M = ((five ** (M5 + 1)) << (M2 + 1))
        tenS = S * 10
        q = B // S
        B = (B % S) * 10
        low = B < M
        high = B + M >= tenS
        if q == 0 and not high:
            dec_exp -= 1
        else:
            digits.append(q)
        if dec_exp < -3 or dec_exp >= 8:
            high = low = False
        while not low and not high:
            q = B // S
            B = (B % S) * 10
            M = M * 10
            low = B < M
            high = B + M >= tenS
            digits.append(q)
        if high and low:
            d2 = (B << 1) - tenS
            ldd = 1 if d2 > 0 else (-1 if d2 < 0 else 0)
        else:
            ldd = 0
    cdef int dec_exponent = dec_exp + 1
    if high:
        if (not low) or ldd > 0 or (ldd == 0 and (digits[-1] & 1)):
            # round the last digit up, carrying
            i = len(digits) - 1
            while i > 0 and digits[i] == 9:
                digits[i] = 0
                i -= 1
            if digits[i] == 9:
                dec_exponent += 1
                digits[0] = 1
            else:
                digits[i] += 1
    return digits, dec_exponent


def java_float_str(value):
    """String.valueOf(float) as Java 17 writes it (e.g. 1.0, 0.001, 1.0E-4, 2.08520576E16)."""
    cdef float v = value
    if isnan(v):
        return "NaN"
    if v == float("inf"):
        return "Infinity"
    if v == float("-inf"):
        return "-Infinity"
    cdef uint32_t bits = _fbits(v)
    cdef str sign = "-" if bits >> 31 else ""
    if v == 0:
        return sign + "0.0"
    cdef int e, nd, exp
    cdef str ds
    digits, e = _float_digits(v)
    ds = "".join([chr(48 + d) for d in digits])
    nd = len(ds)
    if 0 < e < 8:
        if nd <= e:
            return sign + ds + "0" * (e - nd) + ".0"
        return sign + ds[:e] + "." + ds[e:]
    if -3 < e <= 0:
        return sign + "0." + "0" * (-e) + ds
    exp = e - 1
    return sign + ds[0] + "." + (ds[1:] if nd > 1 else "0") + "E" + str(exp)


def java_float_strs(const float[::1] values):
    """java_float_str over an array, formatting each distinct bit pattern once."""
    arr = np.asarray(values)
    if arr.size == 0:
        return []
    bits = arr.view(np.uint32)
    uniq, inverse = np.unique(bits, return_inverse=True)
    texts = [java_float_str(u) for u in uniq.view(np.float32).tolist()]
    return [texts[i] for i in inverse.tolist()]
