/* Hot loops of csrc/_boaw.pyx, compiled once per instruction set (GCC target_clones picks
 * the AVX2 or the baseline SSE2 version at load time).  A header of static functions that
 * _boaw.pyx includes (cdef extern from), compiled with it.  Vectorisation runs across words
 * (or frames); each individual sum still adds its features in order, and the module is
 * built with -ffp-contract=off, so every result is the same float as openXBOW's. */
#include <stddef.h>

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define BOAW_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define BOAW_CLONES
#endif

/* dist[j] = sum_f (x[f] - cbT[f][j])^2 in float32, f = 0..m-1 in order.  Words go in
 * blocks of 64 whose partial sums stay in registers over all features (one load per
 * subtraction instead of a load and a store of dist[] as well); the words past the last
 * full block take the plain loop.  Both add the same floats in the same order. */
#define BOAW_WORD_BLOCK 64
BOAW_CLONES
static void boaw_sqdist_f32(const float *x, const float *cbT, ptrdiff_t m, ptrdiff_t K,
                            float *dist)
{
    ptrdiff_t j0 = 0;
    for (; j0 + BOAW_WORD_BLOCK <= K; j0 += BOAW_WORD_BLOCK) {
        float acc[BOAW_WORD_BLOCK];
        for (int j = 0; j < BOAW_WORD_BLOCK; j++)
            acc[j] = 0.0f;
        for (ptrdiff_t f = 0; f < m; f++) {
            const float xf = x[f];
            const float *row = cbT + f * K + j0;
            for (int j = 0; j < BOAW_WORD_BLOCK; j++) {
                const float d = xf - row[j];
                acc[j] = acc[j] + d * d;
            }
        }
        for (int j = 0; j < BOAW_WORD_BLOCK; j++)
            dist[j0 + j] = acc[j];
    }
    for (ptrdiff_t j = j0; j < K; j++)
        dist[j] = 0.0f;
    for (ptrdiff_t f = 0; f < m && j0 < K; f++) {
        const float xf = x[f];
        const float *row = cbT + f * K;
        for (ptrdiff_t j = j0; j < K; j++) {
            const float d = xf - row[j];
            dist[j] = dist[j] + d * d;
        }
    }
}

/* tmp[c] = sum_f (double)(word[f] - XT[f][c0 + c])^2, f in order, c = 0..len-1. */
BOAW_CLONES
static void boaw_sqdist_f64(const float *word, const float *XT, ptrdiff_t m, ptrdiff_t n,
                            ptrdiff_t c0, ptrdiff_t len, double *tmp)
{
    for (ptrdiff_t c = 0; c < len; c++)
        tmp[c] = 0.0;
    for (ptrdiff_t f = 0; f < m; f++) {
        const float w = word[f];
        const float *row = XT + f * n + c0;
        for (ptrdiff_t c = 0; c < len; c++) {
            const double d = (double)(w - row[c]);
            tmp[c] = tmp[c] + d * d;
        }
    }
}
