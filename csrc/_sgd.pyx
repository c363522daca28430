"""Compiled core of refimpl.protocol.sgd: scikit-learn's SGDClassifier (hinge, L2, "optimal"
learning rate) for one binary problem and many alphas at once, the same bits (see
_sgd_kernels.h).

- hinge_l2(X, y, alphas, epochs, seed): (coef (n_alphas, d), intercept (n_alphas,)).

refimpl.protocol.sgd derives the per-class shuffle seeds as scikit-learn does and builds the
one-vs-all models; tests/protocol/test_sgd.py compares the models with SGDClassifier's.
"""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport uint32_t
from libc.stdlib cimport malloc, free

cnp.import_array()

cdef extern from "_sgd_kernels.h" nogil:
    int SGD_LANES
    int sgd_hinge_l2_lanes(const double *X, const double *y, int n, int d,
                           const double *alpha, int epochs, uint32_t seed, double *W,
                           double *intercept, int *index, int *bad_lane)


def hinge_l2(const double[:, ::1] X, const double[::1] y, alphas, int epochs, uint32_t seed):
    """X: (n, d) float64, C order; y: +1 / -1 per row (float64); alphas: the regularisation
    strengths; seed: the shuffle seed scikit-learn passes to _plain_sgd. Returns
    (coef (n_alphas, d) float64, intercept (n_alphas,) float64). Raises ValueError as
    scikit-learn does when a weight becomes non-finite."""
    cdef int n = X.shape[0], d = X.shape[1]
    if y.shape[0] != n:
        raise ValueError(f"X has {n} rows but y has {y.shape[0]} labels")
    if n == 0 or d == 0:
        raise ValueError("empty training data")
    if epochs < 1:
        raise ValueError("epochs must be >= 1")
    alpha_list = [float(value) for value in alphas]
    if not alpha_list or any(not value > 0 for value in alpha_list):
        raise ValueError("alphas must be positive")
    cdef int n_alphas = len(alpha_list)
    coef = np.empty((n_alphas, d), dtype=np.float64)
    intercept = np.empty(n_alphas, dtype=np.float64)
    cdef double[:, ::1] coef_v = coef
    cdef double[::1] intercept_v = intercept
    cdef cnp.ndarray[cnp.float64_t, ndim=2] W = np.empty((d, SGD_LANES), dtype=np.float64)
    cdef double[:, ::1] W_v = W
    cdef double lane_alpha[64]
    cdef double lane_intercept[64]
    cdef int *index = <int *> malloc(n * sizeof(int))
    if index == NULL:
        raise MemoryError()
    cdef int start, a, j, status = 0, bad = -1, width
    try:
        for start in range(0, n_alphas, SGD_LANES):
            width = min(SGD_LANES, n_alphas - start)
            for a in range(SGD_LANES):
                # lanes past the last alpha repeat it; their results are dropped
                lane_alpha[a] = alpha_list[start + min(a, width - 1)]
            W[:] = 0.0
            with nogil:
                status = sgd_hinge_l2_lanes(&X[0, 0], &y[0], n, d, lane_alpha, epochs, seed,
                                            &W_v[0, 0], lane_intercept, index, &bad)
            if status != 0:
                raise ValueError(
                    f"Floating-point under-/overflow occurred at epoch #{status} (alpha "
                    f"{alpha_list[start + min(bad, width - 1)]}). Scaling input data with "
                    "StandardScaler or MinMaxScaler might help.")
            for a in range(width):
                intercept_v[start + a] = lane_intercept[a]
                for j in range(d):
                    coef_v[start + a, j] = W_v[j, a]
    finally:
        free(index)
    return coef, intercept
