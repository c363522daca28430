/* AlexNet forward-pass kernels with Caffe's layer semantics (refimpl.network._forward).
 *
 * The arithmetic is the NumPy reference's (refimpl/network/reference.py), operation for operation,
 * so that the two agree to rounding: convolution = im2col + one GEMM per group, then
 * "+ bias" and max(., 0) on the product (or, for stride-1 3x3 and 5x5 kernels when the
 * caller passes transformed filters, Winograd's minimal filtering: see fw_conv_wino); LRN squares, scales by alpha/size, sums the
 * window in channel order starting from k, and multiplies x by scale^-beta; max pooling
 * clips each ceil-mode window to the input. Only the order in which the work is done
 * differs: the batch's columns are cut into chunks that fit in cache, and each chunk goes
 * through im2col -> GEMM -> bias/ReLU while its data is still hot.
 *
 * Its own translation unit, linked into refimpl.network._forward beside the C that
 * Cython makes of _forward.pyx (setup.py); _forward_kernels.h declares what it offers.
 */
#include "_forward_kernels.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <immintrin.h>

static inline long fw_min_l(long a, long b) { return a < b ? a : b; }
static inline int fw_min(int a, int b) { return a < b ? a : b; }
static inline int fw_max(int a, int b) { return a > b ? a : b; }

/* ------------------------------------------------------------------------- GEMM */

/* The one matrix product behind every convolution and inner product. It is ours, not
 * BLAS's, because a BLAS sums in an order that depends on the shape of each call (its
 * blocking, its edge kernels, a GEMV for one column, small-matrix paths), and those
 * shapes follow the batch and the thread count: the same image then got other last bits
 * in another batch or with another thread count. Here every element of C is ONE
 * fused-multiply-add chain over k = 0, 1, ..., K-1 starting from +0, whatever the tile,
 * strip, block or thread it falls in: its bits depend on its row of A and its column of
 * B alone. Blocking over k stores the running sum as a float and resumes it (exact), so
 * it changes nothing either. The lanes of a vector are separate elements, never parts of
 * one sum, so wider vectors (AVX-512) would give the same bits; without AVX2 + FMA the
 * scalar path calls fmaf (one rounding, the same result, slower).
 *
 * C (m x n, row-major, ldc) = A (m x k) . B (k x n). A is row-major (panel = 0: element
 * (i, kk) at a[i * lda + kk]) or in panels of GEMM_MR rows (panel = 1: at
 * a[(i / GEMM_MR) * lda + kk * GEMM_MR + i % GEMM_MR], lda = floats from one panel to the
 * next), so that a tile's GEMM_MR values of one k are one 24-byte read rather than six
 * reads from six rows: Winograd's U is kept so (fw_wino_transform_filters; its products
 * ran 1.1x faster at 128 columns, 1.5x at a lone image's 16). B's element
 * (kk, j) is at b[(j / GEMM_NR) * bs + kk * ldb + j % GEMM_NR]: a row-major B is
 * (ldb = its row length, bs = GEMM_NR), a B packed in strips of GEMM_NR columns
 * (fw_pack_rows) is (ldb = GEMM_NR, bs = k * GEMM_NR). Work: strips of GEMM_NR columns;
 * per strip, blocks of GEMM_KC values of k (the strip's block stays in L1) and in each,
 * tiles of up to GEMM_MR rows: 2 * GEMM_MR accumulators of 8 floats. */
#define GEMM_NR 16
#define GEMM_MR FW_PANEL  /* 6 */
#define GEMM_KC 256

/* Where A's element (i, kk) is, in either layout: the one definition every path uses (a
 * tile passes its first row as `a` and its rows as i; `panel` is a compile-time constant
 * in each instantiation, so this folds to a fixed offset plus kk times a fixed step). */
__attribute__((always_inline))
static inline const float *gemm_a(const float *a, ptrdiff_t lda, int panel, int i, int kk)
{
    return panel ? a + (ptrdiff_t)(i / GEMM_MR) * lda + (ptrdiff_t)kk * GEMM_MR + i % GEMM_MR
                 : a + (ptrdiff_t)i * lda + kk;
}

__attribute__((target("avx2,fma"), always_inline))
static inline void gemm_tile_avx2(const int R, const int masked, const int wide,
                                  const int panel, int kc, const float *a, ptrdiff_t lda,
                                  const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc,
                                  int first, int nv)
{
    __m256 c0[GEMM_MR], c1[GEMM_MR];
    __m256i m0 = _mm256_setzero_si256(), m1 = _mm256_setzero_si256();
    int r, kk;
    if (masked) {
        const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nv), idx);
        m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nv - 8), idx);
    }
    for (r = 0; r < R; r++) {
        c1[r] = _mm256_setzero_ps();
        if (first) {
            c0[r] = _mm256_setzero_ps();
        } else if (masked) {
            c0[r] = _mm256_maskload_ps(c + r * ldc, m0);
            if (wide) c1[r] = _mm256_maskload_ps(c + r * ldc + 8, m1);
        } else {
            c0[r] = _mm256_loadu_ps(c + r * ldc);
            c1[r] = _mm256_loadu_ps(c + r * ldc + 8);
        }
    }
    for (kk = 0; kk < kc; kk++) {
        const float *bk = b + kk * ldb;
        const __m256 b0 = masked ? _mm256_maskload_ps(bk, m0) : _mm256_loadu_ps(bk);
        if (wide) {
            const __m256 b1 = masked ? _mm256_maskload_ps(bk + 8, m1) : _mm256_loadu_ps(bk + 8);
            for (r = 0; r < R; r++) {
                const __m256 av = _mm256_broadcast_ss(gemm_a(a, lda, panel, r, kk));
                c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
                c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
            }
        } else {  /* a strip's last <= 8 columns: one vector per row, half the work */
            for (r = 0; r < R; r++)
                c0[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(gemm_a(a, lda, panel, r, kk)), b0, c0[r]);
        }
    }
    for (r = 0; r < R; r++) {
        if (masked) {
            _mm256_maskstore_ps(c + r * ldc, m0, c0[r]);
            if (wide) _mm256_maskstore_ps(c + r * ldc + 8, m1, c1[r]);
        } else {
            _mm256_storeu_ps(c + r * ldc, c0[r]);
            _mm256_storeu_ps(c + r * ldc + 8, c1[r]);
        }
    }
}

/* One k block of one strip: every row tile, the row count a compile-time constant in
 * each call so that the accumulators live in registers. A strip of at most 8 valid
 * columns (the last of a product) takes the one-vector tile: at batch 1, conv3-5's 49
 * Winograd tiles per position are three full strips and one of a single column. */
__attribute__((target("avx2,fma")))
static void gemm_strip_avx2(int m, int kc, const float *a, ptrdiff_t lda, int panel,
                            const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, int first,
                            int nv)
{
    int i;
    for (i = 0; i < m; i += GEMM_MR) {
        const float *ai = gemm_a(a, lda, panel, i, 0);
        float *ci = c + (ptrdiff_t)i * ldc;
#define GEMM_TILE_P(R, P)                                                                   \
        if (nv == GEMM_NR) gemm_tile_avx2(R, 0, 1, P, kc, ai, lda, b, ldb, ci, ldc, first, nv); \
        else if (nv > 8) gemm_tile_avx2(R, 1, 1, P, kc, ai, lda, b, ldb, ci, ldc, first, nv);   \
        else gemm_tile_avx2(R, 1, 0, P, kc, ai, lda, b, ldb, ci, ldc, first, nv);
#define GEMM_TILE(R)                                                                     \
        if (panel) { GEMM_TILE_P(R, 1) } else { GEMM_TILE_P(R, 0) }                     \
        break;
        switch (fw_min(GEMM_MR, m - i)) {
        case 6: GEMM_TILE(6)
        case 5: GEMM_TILE(5)
        case 4: GEMM_TILE(4)
        case 3: GEMM_TILE(3)
        case 2: GEMM_TILE(2)
        default: GEMM_TILE(1)
        }
#undef GEMM_TILE
#undef GEMM_TILE_P
    }
}

/* A lone row of A (one image through an inner product) against two full strips at once:
 * four accumulators instead of two, so that the chains' FMA latency and the two strips'
 * streams from memory overlap (the weights are read once per image there). Each element
 * is still its own chain, as in gemm_tile_avx2. */
__attribute__((target("avx2,fma")))
static void gemm_row_pair_avx2(int kc, const float *a, const float *b, const float *b2,
                               ptrdiff_t ldb, float *c, float *c2, int first)
{
    __m256 x0, x1, y0, y1;
    int kk;
    if (first) {
        x0 = x1 = y0 = y1 = _mm256_setzero_ps();
    } else {
        x0 = _mm256_loadu_ps(c); x1 = _mm256_loadu_ps(c + 8);
        y0 = _mm256_loadu_ps(c2); y1 = _mm256_loadu_ps(c2 + 8);
    }
    for (kk = 0; kk < kc; kk++) {
        const __m256 av = _mm256_broadcast_ss(a + kk);
        x0 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + kk * ldb), x0);
        x1 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + kk * ldb + 8), x1);
        y0 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b2 + kk * ldb), y0);
        y1 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b2 + kk * ldb + 8), y1);
    }
    _mm256_storeu_ps(c, x0); _mm256_storeu_ps(c + 8, x1);
    _mm256_storeu_ps(c2, y0); _mm256_storeu_ps(c2 + 8, y1);
}

/* The AVX-512 twin of gemm_tile_avx2 / gemm_strip_avx2: a strip's 16 columns are one
 * 512-bit register per row, so a tile takes up to GEMM_MR512 rows (12 of the 32
 * registers hold sums). Every lane runs the same fused-multiply-add chain over k as the
 * AVX2 and scalar paths do, so the bits are the same; columns past nv are masked off
 * (their loads do not touch memory, their lanes are never stored). Compiled on every
 * x86-64 build and picked at run time; REFIMPL_CORE_ISA=avx2 (or fw_set_isa) forces the
 * AVX2 path on an AVX-512 machine. */
#define GEMM_MR512 12

__attribute__((target("avx512f"), always_inline))
static inline void gemm_tile_avx512(const int R, const int panel, int kc, const float *a,
                                    ptrdiff_t lda, const float *b, ptrdiff_t ldb, float *c,
                                    ptrdiff_t ldc, int first, __mmask16 mask)
{
    __m512 acc[GEMM_MR512];
    int r, kk;
    for (r = 0; r < R; r++)
        acc[r] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mask, c + r * ldc);
    for (kk = 0; kk < kc; kk++) {
        const __m512 bv = _mm512_maskz_loadu_ps(mask, b + kk * ldb);
        for (r = 0; r < R; r++)
            acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(*gemm_a(a, lda, panel, r, kk)), bv, acc[r]);
    }
    for (r = 0; r < R; r++)
        _mm512_mask_storeu_ps(c + r * ldc, mask, acc[r]);
}

__attribute__((target("avx512f")))
static void gemm_strip_avx512(int m, int kc, const float *a, ptrdiff_t lda, int panel,
                              const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, int first,
                              int nv)
{
    const __mmask16 mask = nv >= GEMM_NR ? (__mmask16)0xFFFF : (__mmask16)((1u << nv) - 1);
    int i;
    for (i = 0; i < m; i += GEMM_MR512) {  /* GEMM_MR512 = 2 GEMM_MR: two whole panels */
        const float *ai = gemm_a(a, lda, panel, i, 0);
        float *ci = c + (ptrdiff_t)i * ldc;
#define GEMM_TILE512(R)                                                                  \
        if (panel) gemm_tile_avx512(R, 1, kc, ai, lda, b, ldb, ci, ldc, first, mask);    \
        else gemm_tile_avx512(R, 0, kc, ai, lda, b, ldb, ci, ldc, first, mask);          \
        break;
        switch (fw_min(GEMM_MR512, m - i)) {
        case 12: GEMM_TILE512(12)
        case 11: GEMM_TILE512(11)
        case 10: GEMM_TILE512(10)
        case 9: GEMM_TILE512(9)
        case 8: GEMM_TILE512(8)
        case 7: GEMM_TILE512(7)
        case 6: GEMM_TILE512(6)
        case 5: GEMM_TILE512(5)
        case 4: GEMM_TILE512(4)
        case 3: GEMM_TILE512(3)
        case 2: GEMM_TILE512(2)
        default: GEMM_TILE512(1)
        }
#undef GEMM_TILE512
    }
}

static void gemm_strip_scalar(int m, int kc, const float *a, ptrdiff_t lda, int panel,
                              const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, int first,
                              int nv)
{
    int i, j, kk;
    for (i = 0; i < m; i++)
        for (j = 0; j < nv; j++) {
            float s = first ? 0.0f : c[(ptrdiff_t)i * ldc + j];
            for (kk = 0; kk < kc; kk++)
                s = fmaf(*gemm_a(a, lda, panel, i, kk), b[(ptrdiff_t)kk * ldb + j], s);
            c[(ptrdiff_t)i * ldc + j] = s;
        }
}

/* The instruction set gemm uses: FW_ISA_AVX512, FW_ISA_AVX2 (with FMA) or
 * FW_ISA_BASELINE (fmaf), the best this CPU has unless fw_set_isa asked for less. */
static int gemm_isa = -1;

static int isa_supported(void)
{
    if (__builtin_cpu_supports("avx512f"))
        return FW_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return FW_ISA_AVX2;
    return FW_ISA_BASELINE;
}

int fw_set_isa(int isa)
{
    const int best = isa_supported();
    gemm_isa = isa < 0 || isa > best ? best : isa;
    return gemm_isa;
}

int fw_isa(void)
{
    if (gemm_isa < 0)
        fw_set_isa(-1);
    return gemm_isa;
}

/* C = A . B as described above, on the calling thread (the callers share out whole
 * products, or blocks of an inner product's outputs, among the threads). */
static void gemm(int m, int n, int k, const float *a, ptrdiff_t lda, int panel,
                 const float *b, ptrdiff_t ldb, ptrdiff_t bs, float *c, ptrdiff_t ldc)
{
    const int nstrips = (n + GEMM_NR - 1) / GEMM_NR;
    int s;
    const int isa = fw_isa();
    if (k == 0) {
        int i;
        for (i = 0; i < m; i++) memset(c + (ptrdiff_t)i * ldc, 0, sizeof(float) * n);
        return;
    }
    /* a lone row: strips in pairs where both are full (gemm_row_pair_avx2) */
    const int pair = m == 1 && !panel && isa >= FW_ISA_AVX2 ? 2 : 1;
    for (s = 0; s < (nstrips + pair - 1) / pair; s++) {
        const int s0 = s * pair, s1 = fw_min(nstrips, s0 + pair);
        const int full = s1 - s0 == 2 && n - s0 * GEMM_NR >= 2 * GEMM_NR;
        int pc, t;
        for (pc = 0; pc < k; pc += GEMM_KC) {
            const int kc = fw_min(GEMM_KC, k - pc);
            const float *bp = b + (ptrdiff_t)s0 * bs + (ptrdiff_t)pc * ldb;
            const float *ap = gemm_a(a, lda, panel, 0, pc);
            float *cp = c + (ptrdiff_t)s0 * GEMM_NR;
            if (full) {
                gemm_row_pair_avx2(kc, ap, bp, bp + bs, ldb, cp, cp + GEMM_NR, pc == 0);
                continue;
            }
            for (t = s0; t < s1; t++, bp += bs, cp += GEMM_NR) {
                const int nv = fw_min(GEMM_NR, n - t * GEMM_NR);
                if (isa == FW_ISA_AVX512)
                    gemm_strip_avx512(m, kc, ap, lda, panel, bp, ldb, cp, ldc, pc == 0, nv);
                else if (isa == FW_ISA_AVX2)
                    gemm_strip_avx2(m, kc, ap, lda, panel, bp, ldb, cp, ldc, pc == 0, nv);
                else
                    gemm_strip_scalar(m, kc, ap, lda, panel, bp, ldb, cp, ldc, pc == 0, nv);
            }
        }
    }
}

/* w (m x k, row-major: Caffe's inner-product weights) -> the strips gemm reads as B =
 * w^T: out[(j / GEMM_NR) * k * GEMM_NR + kk * GEMM_NR + j % GEMM_NR] = w[j, kk], zero
 * for the rows past m in the last strip. out holds fw_packed_size(m, k) floats. */
size_t fw_packed_size(int m, int k)
{
    return (size_t)(m + GEMM_NR - 1) / GEMM_NR * GEMM_NR * (size_t)k;
}

void fw_pack_rows(const float *w, int m, int k, float *out)
{
    const int nstrips = (m + GEMM_NR - 1) / GEMM_NR;
    int s;
    #pragma omp parallel for schedule(static)
    for (s = 0; s < nstrips; s++) {
        float *o = out + (size_t)s * k * GEMM_NR;
        int l, kk;
        for (l = 0; l < GEMM_NR; l++) {
            const int j = s * GEMM_NR + l;
            if (j >= m) {
                for (kk = 0; kk < k; kk++) o[(size_t)kk * GEMM_NR + l] = 0.0f;
                continue;
            }
            for (kk = 0; kk < k; kk++) o[(size_t)kk * GEMM_NR + l] = w[(size_t)j * k + kk];
        }
    }
}

/* ------------------------------------------------------------- scratch buffers */

/* Per-thread buffers kept between calls (Winograd's V and Y, im2col's chunk buffer),
 * 64-byte aligned: a fresh malloc of a few MiB each call went back to the kernel and came
 * back as zeroed pages (~10% of conv2's time in page faults, measured). They sit behind
 * a pthread key, so that a thread's buffers are freed when it ends (OpenMP's workers
 * live on; Python threads that call the forward may not). */
enum { SCRATCH_WINO_V, SCRATCH_WINO_Y, SCRATCH_IM2COL, SCRATCH_SLOTS };
typedef struct { float *ptr[SCRATCH_SLOTS]; size_t cap[SCRATCH_SLOTS]; } scratch_set;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_ok;

static void scratch_free(void *p)
{
    scratch_set *s = p;
    int i;
    for (i = 0; i < SCRATCH_SLOTS; i++)
        free(s->ptr[i]);
    free(s);
}

static void scratch_init(void) { scratch_key_ok = pthread_key_create(&scratch_key, scratch_free) == 0; }

static float *scratch(int slot, size_t bytes)
{
    scratch_set *s;
    pthread_once(&scratch_once, scratch_init);
    if (!scratch_key_ok)
        return NULL;
    s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || pthread_setspecific(scratch_key, s)) {
            free(s);
            return NULL;
        }
    }
    if (s->cap[slot] < bytes) {
        const size_t rounded = (bytes + 63) / 64 * 64;  /* aligned_alloc's rule */
        free(s->ptr[slot]);
        s->ptr[slot] = aligned_alloc(64, rounded);
        s->cap[slot] = s->ptr[slot] ? rounded : 0;
    }
    return s->ptr[slot];
}

/* ------------------------------------------------------------------- convolution */

/* A piece of one output row inside a chunk: image n, output row oy, columns
 * [ox0, ox1), written from column `dst` of the chunk on. */
typedef struct { long n; int oy, ox0, ox1, dst; } im2col_seg;

/* Cut output columns [j0, j1) of the flattened (n, oy, ox) index into row pieces; `segs`
 * has room for (j1 - j0) / ow + 2 of them. Returns their number. */
static int im2col_segments(int ow, int P, long j0, long j1, im2col_seg *segs)
{
    int ns = 0;
    long j = j0;
    while (j < j1) {
        const long nn = j / P;
        const int p = (int)(j - nn * P);
        const int oy = p / ow, ox0 = p - oy * ow;
        const int ox1 = (int)fw_min_l(ow, ox0 + (j1 - j));
        segs[ns].n = nn; segs[ns].oy = oy; segs[ns].ox0 = ox0; segs[ns].ox1 = ox1;
        segs[ns].dst = (int)(j - j0);
        ns++;
        j += ox1 - ox0;
    }
    return ns;
}

/* d_q[i] = src[4 i + q] for q = 0..3, i < n: a row read once for the four kernel taps
 * of a stride-4 convolution that start in one input column's 4 phases (conv1). Eight
 * columns at a time: four loads, then a 4 x 8 transpose in registers. Data movement
 * only: the same floats as the scalar gather, which took most of conv1's im2col. */
__attribute__((target("avx2")))
static void deinterleave4_avx2(const float *src, int n, float *d0, float *d1, float *d2,
                               float *d3)
{
    const __m256i order = _mm256_setr_epi32(0, 4, 2, 6, 1, 5, 3, 7);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const float *s = src + 4 * i;
        /* a = x0 y0 z0 w0 | x1 y1 z1 w1, b = columns 2|3, c = 4|5, d = 6|7 */
        const __m256 a = _mm256_loadu_ps(s), b = _mm256_loadu_ps(s + 8);
        const __m256 c = _mm256_loadu_ps(s + 16), d = _mm256_loadu_ps(s + 24);
        const __m256 xy0 = _mm256_unpacklo_ps(a, b), zw0 = _mm256_unpackhi_ps(a, b);
        const __m256 xy1 = _mm256_unpacklo_ps(c, d), zw1 = _mm256_unpackhi_ps(c, d);
        /* x0 x4 x2 x6 | x1 x5 x3 x7, and so on: `order` puts each back in column order */
        _mm256_storeu_ps(d0 + i, _mm256_permutevar8x32_ps(_mm256_unpacklo_ps(xy0, xy1), order));
        _mm256_storeu_ps(d1 + i, _mm256_permutevar8x32_ps(_mm256_unpackhi_ps(xy0, xy1), order));
        _mm256_storeu_ps(d2 + i, _mm256_permutevar8x32_ps(_mm256_unpacklo_ps(zw0, zw1), order));
        _mm256_storeu_ps(d3 + i, _mm256_permutevar8x32_ps(_mm256_unpackhi_ps(zw0, zw1), order));
    }
    for (; i < n; i++) {
        d0[i] = src[4 * i]; d1[i] = src[4 * i + 1];
        d2[i] = src[4 * i + 2]; d3[i] = src[4 * i + 3];
    }
}

/* im2col for the columns described by `segs` (leading dimension lc), input channels
 * [c0, c1): row (c, ky, kx) of `buf` holds the input value under kernel tap (ky, kx) of
 * channel c for each column, zero where the tap falls in the padding. Rows are numbered
 * from channel 0, so a group's rows are one contiguous block. The loops run channel,
 * kernel row, row piece, kernel column: each input row is read once while it is in
 * cache and copied to the kw rows of the taps that see it. */
static void im2col_chunk(const fw_view *in, const fw_conv_cfg *cfg, int ow,
                         const im2col_seg *segs, int nsegs, long lc, float *buf,
                         int c0, int c1)
{
    const int H = in->h, W = in->w, kh = cfg->kh, kw = cfg->kw, sw = cfg->sw;
    /* stride 4 and at least 4 taps a row: taps 0..3 gathered together (the others are
     * shifted copies of them, below) */
    const int quad = sw == 4 && kw >= 4 && fw_isa() >= FW_ISA_AVX2;
    int lo[64], hi[64];  /* per kernel column: output columns whose tap is inside */
    int qlo = 0, qhi = 0;  /* output columns where all of taps 0..3 are inside */
    int c, ky, kx, s;
    for (kx = 0; kx < kw; kx++) {
        const int off = kx - cfg->pw;  /* input column = ox*sw + off */
        int l = off >= 0 ? 0 : (-off + sw - 1) / sw;
        int h = W - off <= 0 ? 0 : (W - off + sw - 1) / sw;
        if (h > ow) h = ow;
        if (l > h) l = h;
        lo[kx] = l; hi[kx] = h;
    }
    if (quad) {
        qlo = fw_max(fw_max(lo[0], lo[1]), fw_max(lo[2], lo[3]));
        qhi = fw_min(fw_min(hi[0], hi[1]), fw_min(hi[2], hi[3]));
    }
    for (c = c0; c < c1; c++)
        for (ky = 0; ky < kh; ky++) {
            float *rows = buf + (long)(c * kh + ky) * kw * lc;  /* row (c, ky, 0) */
            for (s = 0; s < nsegs; s++) {
                const im2col_seg *sg = &segs[s];
                const int iy = sg->oy * cfg->sh - cfg->ph + ky;
                const int ox0 = sg->ox0, ox1 = sg->ox1;
                if (iy < 0 || iy >= H) {
                    for (kx = 0; kx < kw; kx++)
                        memset(rows + kx * lc + sg->dst, 0, sizeof(float) * (ox1 - ox0));
                    continue;
                }
                {
                    const float *row = in->data + sg->n * in->sn + c * in->sc + (long)iy * W;
                    /* this piece's columns that deinterleave4 fills for taps 0..3 */
                    const int q0 = quad ? fw_max(ox0, qlo) : ox0;
                    const int q1 = quad ? fw_max(fw_min(ox1, qhi), q0) : ox0;
                    if (q1 > q0)
                        deinterleave4_avx2(row + q0 * 4 - cfg->pw, q1 - q0,
                                           rows + sg->dst - ox0 + q0,
                                           rows + lc + sg->dst - ox0 + q0,
                                           rows + 2 * lc + sg->dst - ox0 + q0,
                                           rows + 3 * lc + sg->dst - ox0 + q0);
                    for (kx = 0; kx < kw; kx++) {
                        float *d = rows + kx * lc + sg->dst - ox0;  /* d[ox]: column ox */
                        const int off = kx - cfg->pw;
                        const int a = fw_min(fw_max(ox0, lo[kx]), ox1);
                        const int b = fw_max(fw_min(ox1, hi[kx]), a);
                        int ox;
                        if (sw > 1 && kx >= sw) {
                            /* tap kx at column ox reads the input column that tap
                             * kx - sw reads at column ox + 1 (zero padding included):
                             * copy that row shifted by one instead of gathering again */
                            const float *e = d - sw * lc + 1;
                            if (ox1 - 1 > ox0)  /* another row of buf: no overlap */
                                memcpy(d + ox0, e + ox0, sizeof(float) * (ox1 - 1 - ox0));
                            ox = ox1 - 1;
                            d[ox] = (ox >= lo[kx] && ox < hi[kx]) ? row[ox * sw + off] : 0.0f;
                            continue;
                        }
                        for (ox = ox0; ox < a; ox++) d[ox] = 0.0f;
                        if (sw == 1) {
                            const float *src = row + off;
                            for (ox = a; ox < b; ox++) d[ox] = src[ox];
                        } else if (kx < 4 && q1 > q0) {  /* [q0, q1) is done */
                            for (ox = a; ox < q0; ox++) d[ox] = row[ox * sw + off];
                            for (ox = q1; ox < b; ox++) d[ox] = row[ox * sw + off];
                        } else {
                            for (ox = a; ox < b; ox++) d[ox] = row[ox * sw + off];
                        }
                        for (ox = b; ox < ox1; ox++) d[ox] = 0.0f;
                    }
                }
            }
        }
}

/* out[m, j] = max(out[m, j] + bias[m], 0) (or without the max) for rows [m0, m1). The
 * addition comes after the product, as in Caffe and the reference. */
static void bias_relu_rows(float *o, ptrdiff_t ld, long lc, const float *bias, int relu,
                           int m0, int m1)
{
    int m;
    long j;
    for (m = m0; m < m1; m++) {
        float *r = o + m * ld;
        const float b = bias ? bias[m] : 0.0f;
        if (bias && relu)
            for (j = 0; j < lc; j++) { float v = r[j] + b; r[j] = v < 0.0f ? 0.0f : v; }
        else if (bias)
            for (j = 0; j < lc; j++) r[j] += b;
        else if (relu)
            for (j = 0; j < lc; j++) r[j] = r[j] < 0.0f ? 0.0f : r[j];
    }
}

typedef struct {
    const fw_ctx *ctx;
    const fw_view *in, *out;
    const float *weights, *bias;
    const fw_conv_cfg *cfg;
    int m, oh, ow, P;
} conv_job;

/* Floats from one row of a chunk's im2col buffer to the next: at least `cols`, and an
 * odd multiple of 16 (64 bytes). The product reads a strip of 16 columns down all the
 * rows; with rows a power-of-two multiple of 64 bytes apart (512 columns: 2 KiB) those
 * reads fell into two of L1's 64 sets and the strip never stayed in L1. Padding
 * spreads them over every set, as wino_block does for Winograd's blocks: conv1's
 * products at batch 32 on one thread took 88 ms instead of 117 (the same bits). The
 * buffer is 64-byte aligned, so a strip's row is one cache line. */
static int im2col_ld(int cols)
{
    return (cols + 31) / 32 * 32 + 16;
}

/* One work item: im2col of columns [j0, j1), the group products, bias and ReLU. */
static void conv_chunk(const conv_job *job, long j0, long j1, float *buf,
                       im2col_seg *segs)
{
    int nsegs;
    const fw_conv_cfg *cfg = job->cfg;
    const fw_view *in = job->in, *out = job->out;
    const int g = cfg->group, C = in->c;
    const int mg = job->m / g, kg = (C / g) * cfg->kh * cfg->kw;
    const int lc = (int)(j1 - j0), ld = im2col_ld(lc);
    const ptrdiff_t ldc = out->sc;
    const long n0 = j0 / job->P;
    float *o = out->data + n0 * out->sn + (j0 - n0 * job->P);
    int gi;

    nsegs = im2col_segments(job->ow, job->P, j0, j1, segs);
    im2col_chunk(in, cfg, job->ow, segs, nsegs, ld, buf, 0, C);
    for (gi = 0; gi < g; gi++)  /* out (mg x lc) = W_g (mg x kg) . cols_g (kg x lc) */
        gemm(mg, lc, kg, job->weights + (long)gi * mg * kg, kg, 0,
             buf + (long)gi * kg * ld, ld, GEMM_NR, o + (long)gi * mg * ldc, ldc);
    if (job->bias || cfg->relu)
        bias_relu_rows(o, ldc, lc, job->bias, cfg->relu, 0, job->m);
}

/* Default columns per work item: the im2col block of a chunk (K x cols floats) should
 * stay in the core's L2 while the product reads it, yet a product much narrower than 256
 * columns runs below its best speed; 256..512 columns measured best on AlexNet's layers
 * (flat within noise from 256 to 2048). */
static int auto_chunk(int ktot)
{
    long cols = (long)(1 << 20) / ((long)sizeof(float) * ktot);  /* ~1 MiB of columns */
    if (cols < 256) cols = 256;
    if (cols > 512) cols = 512;
    return (int)cols;
}

int fw_conv(const fw_ctx *ctx, const fw_view *in, const float *weights, const float *bias,
            int m, const fw_conv_cfg *cfg, const fw_view *out)
{
    conv_job job;
    const int N = in->n, P = out->h * out->w;
    const long L = (long)N * P;
    const int ktot = in->c * cfg->kh * cfg->kw;
    const int T = ctx->threads > 0 ? ctx->threads : 1;
    /* Columns of consecutive images are contiguous in the output (CNHW; the row stride
     * then holds the whole batch): chunks may run across images. Otherwise (NCHW) a
     * chunk stays inside one image. */
    const int span = out->sn == P && out->sc >= L;
    int chunk = ctx->chunk_cols > 0 ? ctx->chunk_cols : auto_chunk(ktot);
    long nchunks, per_image = 1, maxcols, i;
    size_t bufsz;
    int failed = 0;

    job.ctx = ctx; job.in = in; job.out = out; job.weights = weights; job.bias = bias;
    job.cfg = cfg; job.m = m; job.oh = out->h; job.ow = out->w; job.P = P;
    if (L == 0)
        return 0;
    if (span) {
        nchunks = (L + chunk - 1) / chunk;
        nchunks = (nchunks + T - 1) / T * T;  /* whole rounds: no core idles at the end */
        if (nchunks > L) nchunks = L;
        maxcols = (L + nchunks - 1) / nchunks;
    } else {
        per_image = (P + chunk - 1) / chunk;
        if (N * per_image < T)
            per_image = (T + N - 1) / N;
        if (per_image > P) per_image = P;
        nchunks = N * per_image;
        maxcols = (P + per_image - 1) / per_image;
    }
    bufsz = sizeof(float) * (size_t)ktot * im2col_ld((int)maxcols);
#define CHUNK_BOUNDS(i, j0, j1)                                                    \
    if (span) { j0 = L * (i) / nchunks; j1 = L * ((i) + 1) / nchunks; }            \
    else { long n_ = (i) / per_image, q_ = (i) % per_image;                        \
           j0 = n_ * P + P * q_ / per_image; j1 = n_ * P + P * (q_ + 1) / per_image; }

    if (T == 1 || nchunks == 1) {
        float *buf = scratch(SCRATCH_IM2COL, bufsz);
        im2col_seg *segs = malloc(sizeof(im2col_seg) * (size_t)(maxcols / out->w + 2));
        if (!buf || !segs) {
            free(segs);
            return -1;
        }
        for (i = 0; i < nchunks; i++) {
            long j0, j1;
            CHUNK_BOUNDS(i, j0, j1);
            conv_chunk(&job, j0, j1, buf, segs);
        }
        free(segs);
        return 0;
    }
    #pragma omp parallel num_threads(T)
    {
        float *buf = scratch(SCRATCH_IM2COL, bufsz);
        im2col_seg *segs = malloc(sizeof(im2col_seg) * (size_t)(maxcols / out->w + 2));
        long ii;
        if (!buf || !segs) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp for schedule(dynamic, 1)
        for (ii = 0; ii < nchunks; ii++) {
            long j0, j1;
            if (!buf || !segs) continue;
            CHUNK_BOUNDS(ii, j0, j1);
            conv_chunk(&job, j0, j1, buf, segs);
        }
        free(segs);
    }
#undef CHUNK_BOUNDS
    return failed ? -1 : 0;
}

/* ---------------------------------------------------------- Winograd convolution */

/* Stride-1 convolutions with r x r kernels (r = 3: conv3-5; r = 5: conv2) by Winograd's
 * minimal filtering F(mxm, rxr) (Lavin & Gray 2016): the output is cut into m x m tiles
 * (m = WINOr_M: 4 for both); each tile needs an n x n input patch d (n = m + r - 1:
 * 6 for r = 3, 8 for r = 5) and is
 *     Y = A^T [ U .* (B^T d B) ] A,     U = G g G^T per (output, input) channel pair,
 * and the sum over input channels of the elementwise products is, for each of the n^2
 * positions, a matrix product (M x C) . (C x tiles). Per tile and channel pair that is
 * n^2 multiplications instead of m^2 r^2: 4x (F(4x4,3x3)) or 6.25x (F(4x4,5x5)) fewer,
 * paid for by the input and output transforms and by rounding: a tile's error scales with
 * its whole input patch (the transforms add and subtract, with weights up to 21 in B^T
 * and 8 in A^T), a few times float32's (the fractions of G are applied in double, once, to the
 * filters). m depends on r alone, so an image's arithmetic does not depend on its batch.
 * conv3-5's 13x13 outputs take 16 tiles of 4x4 (576 products per channel pair) against
 * 49 of 2x2 with F(2x2,3x3) (784); conv2's 27x27, 49 tiles x 64 (3136) against 196 x 36
 * with F(2x2,5x5) (7056). The matrices come from tools/winograd_matrices.py,
 * which checks them against direct correlation in exact arithmetic and writes
 * _forward_winograd.h.
 *
 * Work items are chunks of tiles (running across images, like conv_chunk's columns):
 * per group, the chunk's input patches are transformed into V (n^2, C/g, tiles), the n^2
 * products give Y (n^2, M/g, tiles), and the output transform adds the bias, applies the
 * ReLU and writes the m x m outputs (fewer at the right and bottom edges) into `out`. */

#define WL 8  /* tiles transformed together: one AVX register of floats per value */
#include "_forward_winograd.h"

#define WINO_NMAX (WINO3_N > WINO5_N ? WINO3_N : WINO5_N)

int fw_wino_tile(int r)
{
    return r == 3 ? WINO3_M : r == 5 ? WINO5_M : 0;
}

int fw_wino_panels(int m, int group)
{
    return (m / group + GEMM_MR - 1) / GEMM_MR;
}

size_t fw_wino_filters_size(int r, int m, int cg, int group)
{
    const int n = r == 3 ? WINO3_N : WINO5_N;
    return (size_t)n * n * group * fw_wino_panels(m, group) * GEMM_MR * cg;
}

/* (G g G^T)[i][j] for filter g = weights[o, c], in double, rounded once to float, at
 * u[i n + j][group][panel][c][row] (filter o is row o % mg % GEMM_MR of panel
 * o % mg / GEMM_MR of group o / mg; see the header); n = WINOr_N. */
int fw_wino_transform_filters(const float *weights, int r, int m, int cg, int group, float *u)
{
    const double *G;
    int mg, panels, n, o, c, i, j, k, q;
    if (r == 3) { G = &wino3_g[0][0]; n = WINO3_N; }
    else if (r == 5) { G = &wino5_g[0][0]; n = WINO5_N; }
    else return -1;
    if (group < 1 || m % group)
        return -1;
    mg = m / group;
    panels = fw_wino_panels(m, group);
    /* the rows that pad each group's last panel to GEMM_MR stay zero */
    memset(u, 0, sizeof(float) * fw_wino_filters_size(r, m, cg, group));
    for (o = 0; o < m; o++)
        for (c = 0; c < cg; c++) {
            const float *g = weights + ((long)o * cg + c) * r * r;
            double t[WINO_NMAX][5];  /* G g */
            for (i = 0; i < n; i++)
                for (k = 0; k < r; k++) {
                    double s = 0.0;
                    for (q = 0; q < r; q++) s += G[i * r + q] * (double)g[q * r + k];
                    t[i][k] = s;
                }
            for (i = 0; i < n; i++)
                for (j = 0; j < n; j++) {
                    double s = 0.0;
                    for (k = 0; k < r; k++) s += t[i][k] * G[j * r + k];
                    /* position i n + j, group o / mg, panel, value c, row in panel */
                    u[((((long)(i * n + j) * group + o / mg) * panels + o % mg / GEMM_MR) * cg
                       + c) * GEMM_MR + o % mg % GEMM_MR] = (float)s;
                }
        }
    return 0;
}

typedef struct {
    const fw_ctx *ctx;
    const fw_view *in, *out;
    const float *u, *bias;
    const fw_conv_cfg *cfg;
    int m, r, n, oh, ow, th, tw;
    int mt;           /* outputs per tile side (WINOr_M) */
    long tpi;         /* tiles per image */
    const float *xp;  /* the padded, column-split input (wino_pad) */
    int hp, kw;       /* its rows and columns per phase plane */
} wino_job;

/* Floats from one position's block of V or Y to the next: at least `floats`, and an odd
 * multiple of 16 (64 bytes), so that the n^2 blocks, which the transforms read or write
 * together, start in n^2 different cache sets; a multiple of 4 KiB (cg * ld often is)
 * would put them all in the same set and thrash L1 and L2 (measured: the output
 * transform ran 3x slower). */
static long wino_block(long floats)
{
    return (floats + 31) / 32 * 32 + 16;
}

/* The input, zero-padded and with its columns split into m = job->mt phases (tiles step
 * m columns): for channel c, image i,
 * xp[((c N + i) m + phase) hp kw + y kw + k] = x[c, i, y - ph, m k + phase - pw] (0 in
 * the padding). Tile (ty, tx)'s patch element (u, v) is then at row m ty + u, column
 * tx + v/m of phase plane v % m: consecutive tiles of a row are consecutive floats, so
 * the input transform runs over 8 tiles with plain vector loads, and no tile needs a
 * bounds check. Planes [p0, p1). */
static void wino_pad(const wino_job *job, float *xp, long p0, long p1)
{
    const fw_view *in = job->in;
    const int H = in->h, W = in->w, ph = job->cfg->ph, pw = job->cfg->pw;
    const int hp = job->hp, kw = job->kw, mt = job->mt;
    long pl;
    int y, k, par;
    for (pl = p0; pl < p1; pl++) {
        const long c = pl / in->n, i = pl - c * in->n;
        const float *src = in->data + i * in->sn + c * in->sc;
        for (par = 0; par < mt; par++) {
            float *dst = xp + (pl * mt + par) * (long)hp * kw;
            for (y = 0; y < hp; y++) {
                const int iy = y - ph;
                float *d = dst + (long)y * kw;
                if (iy < 0 || iy >= H) {
                    memset(d, 0, sizeof(float) * kw);
                    continue;
                }
                for (k = 0; k < kw; k++) {
                    const int ix = mt * k + par - pw;
                    d[k] = (ix >= 0 && ix < W) ? src[(long)iy * W + ix] : 0.0f;
                }
            }
        }
    }
}

/* A run of tiles in one tile row: image img, row ty, columns [tx, tx + cnt), which are
 * columns [t, t + cnt) of the chunk's V and Y. */
typedef struct { long img; int ty, tx, cnt, t; } wino_seg;

static int wino_segments(const wino_job *job, long j0, long j1, wino_seg *segs)
{
    int ns = 0;
    long j = j0;
    while (j < j1) {
        const long img = j / job->tpi;
        const int q = (int)(j - img * job->tpi), ty = q / job->tw, tx = q - ty * job->tw;
        const int cnt = (int)fw_min_l(job->tw - tx, j1 - j);
        segs[ns].img = img; segs[ns].ty = ty; segs[ns].tx = tx; segs[ns].cnt = cnt;
        segs[ns].t = (int)(j - j0);
        ns++;
        j += cnt;
    }
    return ns;
}

/* Input transform of channels [c0, c1) (one group) into V[p][c - c0][t] (leading
 * dimension ld), then the output transform of rows [0, mg) of Y[p][m][t] into output
 * channels mo.. with bias and ReLU. Lanes are 8 consecutive tiles of a segment; a
 * segment's last group may run past its end: those lanes compute garbage that the next
 * segment overwrites (V, Y have 8 spare columns) or that is never stored (output). One
 * instance per kernel size, so the transforms unroll with their constant coefficients
 * and tile size, compiled for AVX2 and baseline. */
#define WINO_KERNELS(R)                                                                  \
__attribute__((target_clones("avx2", "default")))                                        \
static void wino##R##_input(const wino_job *job, const wino_seg *segs, int ns, int ld,   \
                            long pb, int c0, int c1, float *V)                          \
{                                                                                        \
    enum { mt = WINO##R##_M, n = WINO##R##_N };                                          \
    const int kw = job->kw;                                                              \
    const long hk = (long)job->hp * kw;                                                  \
    float t[n * n * WL];                                                                 \
    int c, s, x, i, v;                                                                   \
    for (c = c0; c < c1; c++)                                                            \
        for (s = 0; s < ns; s++) {                                                       \
            const wino_seg *sg = &segs[s];                                               \
            const float *ph0 = job->xp + ((long)c * job->in->n + sg->img) * mt * hk      \
                               + (long)(mt * sg->ty) * kw;                               \
            for (x = 0; x < sg->cnt; x += WL) {                                          \
                float *dst = V + (ptrdiff_t)(c - c0) * ld + sg->t + x;                   \
                for (v = 0; v < n; v++)  /* columns: t = B^T d */                        \
                    wino##R##_bt(ph0 + (v % mt) * hk + sg->tx + x + v / mt, kw,          \
                                 t + v * WL, n * WL);                                    \
                for (i = 0; i < n; i++)  /* rows: (B^T d) B, position (i, j) -> V */     \
                    wino##R##_bt(t + i * n * WL, WL, dst + (ptrdiff_t)(i * n) * pb, pb); \
            }                                                                            \
        }                                                                                \
}                                                                                        \
                                                                                         \
__attribute__((target_clones("avx2", "default")))                                        \
static void wino##R##_output(const wino_job *job, const wino_seg *segs, int ns, int ld,  \
                             long pb, int mo, int mg, const float *Y)                    \
{                                                                                        \
    enum { mt = WINO##R##_M, n = WINO##R##_N };                                          \
    const fw_view *out = job->out;                                                       \
    const int relu = job->cfg->relu, ow = out->w, oh = out->h;                           \
    float t[mt * n * WL], o[mt * mt * WL], rb[mt * WL];                                  \
    int ml, s, x, i, k, v, l;                                                            \
    for (ml = 0; ml < mg; ml++) {                                                        \
        const float b = job->bias ? job->bias[mo + ml] : 0.0f;                           \
        for (s = 0; s < ns; s++) {                                                       \
            const wino_seg *sg = &segs[s];                                               \
            float *row = out->data + (ptrdiff_t)(mo + ml) * out->sc + sg->img * out->sn  \
                         + (ptrdiff_t)(mt * sg->ty) * ow;                                \
            const int rows = fw_min(mt, oh - mt * sg->ty);  /* < mt at the bottom */    \
            for (x = 0; x < sg->cnt; x += WL) {                                          \
                const int cnt = fw_min(WL, sg->cnt - x), ox = mt * (sg->tx + x);         \
                const int width = fw_min(mt * cnt, ow - ox);                             \
                for (v = 0; v < n; v++)  /* columns: A^T Y */                            \
                    wino##R##_at(Y + v * pb + (ptrdiff_t)ml * ld + sg->t + x,            \
                                 n * pb, t + v * WL, n * WL);                            \
                for (i = 0; i < mt; i++)  /* rows: (A^T Y) A -> o[i][k][lane] */         \
                    wino##R##_at(t + i * n * WL, WL, o + i * mt * WL, WL);               \
                if (job->bias)                                                           \
                    for (l = 0; l < mt * mt * WL; l++) o[l] = o[l] + b;                  \
                if (relu)                                                                \
                    for (l = 0; l < mt * mt * WL; l++) o[l] = o[l] < 0.0f ? 0.0f : o[l]; \
                for (i = 0; i < rows; i++) {  /* interleave the mt lane groups, copy */  \
                    float *d = row + (ptrdiff_t)i * ow + ox;                             \
                    const float *oi = o + i * mt * WL;                                   \
                    for (l = 0; l < WL; l++)                                             \
                        for (k = 0; k < mt; k++) rb[mt * l + k] = oi[k * WL + l];        \
                    l = 0;  /* whole vectors, then the rest (no call to memcpy) */       \
                    for (; l + WL <= width; l += WL)                                     \
                        *(wino_vec *)(d + l) = *(const wino_vec *)(rb + l);              \
                    for (; l < width; l++) d[l] = rb[l];                                 \
                }                                                                        \
            }                                                                            \
        }                                                                                \
    }                                                                                    \
}

WINO_KERNELS(3)
WINO_KERNELS(5)

/* One work item: tiles [j0, j1). V and Y hold one group at a time. */
static void wino_chunk(const wino_job *job, long j0, long j1, int part, int parts,
                       float *V, float *Y, wino_seg *segs)
{
    const int g = job->cfg->group, C = job->in->c, nn = job->n * job->n;
    const int cg = C / g, mg = job->m / g, panels = fw_wino_panels(job->m, g);
    /* this item's output channels of each group: [m0, m1), whole panels of U */
    const int m0 = panels * part / parts * GEMM_MR;
    const int m1 = fw_min(mg, panels * (part + 1) / parts * GEMM_MR);
    const int T = (int)(j1 - j0), ld = (T + WL - 1) / WL * WL + WL;
    int gi, p;
    const long pv = wino_block((long)cg * ld), py = wino_block((long)(m1 - m0) * ld);
    const int ns = wino_segments(job, j0, j1, segs);
    for (gi = 0; gi < g; gi++) {
        if (job->r == 3) wino3_input(job, segs, ns, ld, pv, gi * cg, (gi + 1) * cg, V);
        else wino5_input(job, segs, ns, ld, pv, gi * cg, (gi + 1) * cg, V);
        for (p = 0; p < nn; p++)  /* Y_p (rows m0..m1 x T) = U_p (those rows x cg) . V_p */
            gemm(m1 - m0, T, cg,
                 job->u + (((ptrdiff_t)p * g + gi) * panels + m0 / GEMM_MR) * GEMM_MR * cg,
                 (ptrdiff_t)GEMM_MR * cg, 1, V + p * pv, ld, GEMM_NR, Y + p * py, ld);
        if (job->r == 3) wino3_output(job, segs, ns, ld, py, gi * mg + m0, m1 - m0, Y);
        else wino5_output(job, segs, ns, ld, py, gi * mg + m0, m1 - m0, Y);
    }
}

int fw_conv_wino(const fw_ctx *ctx, const fw_view *in, const float *u, const float *bias,
                 int m, const fw_conv_cfg *cfg, const fw_view *out)
{
    wino_job job;
    const int T = ctx->threads > 0 ? ctx->threads : 1;
    const int r = cfg->kh, g = cfg->group;
    const int mt = r == 3 ? WINO3_M : WINO5_M, n = r == 3 ? WINO3_N : WINO5_N;
    const long planes = (long)in->c * in->n;
    long L, nchunks, maxt;
    int chunk, parts, failed = 0;
    size_t vsz, ysz, xsz;
    float *xp;
    if (cfg->kw != r || (r != 3 && r != 5) || cfg->sh != 1 || cfg->sw != 1)
        return -2;
    job.ctx = ctx; job.in = in; job.out = out; job.u = u; job.bias = bias; job.cfg = cfg;
    job.m = m; job.r = r; job.n = n; job.mt = mt; job.oh = out->h; job.ow = out->w;
    job.th = (out->h + mt - 1) / mt;
    job.tw = (out->w + mt - 1) / mt;
    job.tpi = (long)job.th * job.tw;
    /* rows: the last tile row's patch ends at mt (th - 1) + n; columns per phase: the
     * last tile's element v = n - 1 is at column tw - 1 + (n - 1) / mt */
    job.hp = mt * (job.th - 1) + n;
    job.kw = job.tw + (n - 1) / mt;
    L = (long)in->n * job.tpi;
    if (L == 0)
        return 0;
    /* Default tiles per work item, measured on AlexNet (2 cores, AVX2), both layers by
     * F(4x4, .): conv3-5 (r = 3, 192..256 input channels per product) at batch 32, 1
     * thread, 141-145 ms at 128 or 256 tiles, 155-185 ms at 64 (each work item reads all
     * of U, 36 positions, 13.5 MiB for conv3); at 2 threads too noisy to tell 64..256
     * apart. conv2 (r = 5, 48 channels per product, 64 positions) at batch 32, 1 thread:
     * 48 ms at 32 tiles, 53-60 ms at 24, 48 or 64; 27-29 ms at 2 threads from 32 to 64;
     * at batch 1 (49 tiles) 1.3-2.1 ms from 24 to 64 tiles, within noise. */
    chunk = ctx->wino_tiles > 0 ? ctx->wino_tiles : r == 5 ? 32 : 128;
    nchunks = (L + chunk - 1) / chunk;
    /* Fewer chunks than threads (a lone image: conv3-5 have 16 tiles): the threads split
     * the output channels instead, each reading its share of U (13.5 MiB for conv3)
     * rather than all of it for half the tiles. Which thread computes an output never
     * changes its sum (gemm), so the bits are the same either way. */
    parts = nchunks < T ? T / nchunks : 1;
    if (parts > fw_wino_panels(m, g)) parts = fw_wino_panels(m, g);
    nchunks = (nchunks * parts + T - 1) / T * T / parts;  /* whole rounds: no core idles */
    if (nchunks < 1) nchunks = 1;
    if (nchunks > L) nchunks = L;
    maxt = (L + nchunks - 1) / nchunks;
    maxt = (maxt + WL - 1) / WL * WL + WL;
    vsz = sizeof(float) * (size_t)n * n * wino_block((long)(in->c / g) * maxt);
    ysz = sizeof(float) * (size_t)n * n * wino_block((long)(m / g) * maxt);
    /* + WL: the last segment's lanes may read up to WL - 1 floats past the last row */
    xsz = sizeof(float) * ((size_t)planes * mt * job.hp * job.kw + WL);
    xp = malloc(xsz);  /* batch-sized: not kept */
    if (!xp)
        return -1;
    memset(xp + (size_t)planes * mt * job.hp * job.kw, 0, sizeof(float) * WL);
    job.xp = xp;

    #pragma omp parallel num_threads(T) if (T > 1)
    {
        float *V = scratch(SCRATCH_WINO_V, vsz), *Y = scratch(SCRATCH_WINO_Y, ysz);
        wino_seg *segs = malloc(sizeof(wino_seg) * (size_t)(maxt / job.tw + 2));
        long ii;
        if (!V || !Y || !segs) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp for schedule(static)
        for (ii = 0; ii < planes; ii++)
            wino_pad(&job, xp, ii, ii + 1);
        /* (the implicit barrier: every chunk may read every plane) */
        #pragma omp for schedule(dynamic, 1)
        for (ii = 0; ii < nchunks * parts; ii++) {
            const long c = ii / parts;
            if (!V || !Y || !segs) continue;
            wino_chunk(&job, L * c / nchunks, L * (c + 1) / nchunks, (int)(ii % parts), parts,
                       V, Y, segs);
        }
        free(segs);
    }
    free(xp);
    return failed ? -1 : 0;
}

/* ----------------------------------------------------------------- inner product */

/* out (n x m) = x (n x k) . w^T + bias, w (m x k) as Caffe stores it, given as
 * fw_pack_rows(w) (`wp`): gemm with A = x and B = w^T, so a lone image reads w once,
 * in order. The threads take blocks of output neurons (whole strips), several per
 * thread, taken as threads come free: on a machine shared with other jobs one thread
 * may lose its core for a while, and a fixed half each would leave the other waiting.
 */
int fw_inner_product(const fw_ctx *ctx, const float *x, int n, int k, const float *wp,
                     const float *bias, int m, int relu, float *out)
{
    const int T = ctx->threads > 0 ? ctx->threads : 1;
    const int nstrips = (m + GEMM_NR - 1) / GEMM_NR;
    const int parts = T > 1 ? fw_max(1, fw_min(4 * T, nstrips / 4)) : 1;
    int pi;
    if (n == 0 || m == 0)
        return 0;
    #pragma omp parallel for num_threads(T) schedule(dynamic, 1) if (parts > 1)
    for (pi = 0; pi < parts; pi++) {
        const int s0 = (int)((long)nstrips * pi / parts);
        const int m0 = s0 * GEMM_NR;
        const int m1 = fw_min(m, (int)((long)nstrips * (pi + 1) / parts) * GEMM_NR);
        int i, j;
        if (m1 <= m0) continue;
        gemm(n, m1 - m0, k, x, k, 0, wp + (size_t)s0 * k * GEMM_NR, GEMM_NR,
             (ptrdiff_t)k * GEMM_NR, out + m0, m);
        for (i = 0; i < n; i++) {
            float *r = out + (long)i * m;
            if (bias && relu)
                for (j = m0; j < m1; j++) { float v = r[j] + bias[j]; r[j] = v < 0.0f ? 0.0f : v; }
            else if (bias)
                for (j = m0; j < m1; j++) r[j] += bias[j];
            else if (relu)
                for (j = m0; j < m1; j++) r[j] = r[j] < 0.0f ? 0.0f : r[j];
        }
    }
    return 0;
}

/* -------------------------------------------------------------------------- ReLU */

void fw_relu(const fw_ctx *ctx, float *x, const float *src, ptrdiff_t count)
{
    const int T = ctx->threads > 0 ? ctx->threads : 1;
    ptrdiff_t i;
    #pragma omp parallel for num_threads(T) schedule(static) if (count > 65536)
    for (i = 0; i < count; i++)
        x[i] = src[i] < 0.0f ? 0.0f : src[i];  /* NaN stays NaN, as std::max in Caffe */
}

/* --------------------------------------------------------------------------- LRN */

/* s <- s^-0.75 for the AlexNet exponent, as 1 / (sqrt(s) * sqrt(sqrt(s))) in double:
 * within a few double ulps of the exact power, so the float result is the correctly
 * rounded s^-0.75 (what an exact powf gives) but several times faster than powf. */
static void pow_m075_scalar(float *s, int n)
{
    int i;
    for (i = 0; i < n; i++) {
        double v = s[i], r = sqrt(v);
        s[i] = (float)(1.0 / (r * sqrt(r)));
    }
}

__attribute__((target("avx2")))
static void pow_m075_avx2(float *s, int n)
{
    int i = 0;
    const __m256d one = _mm256_set1_pd(1.0);
    for (; i + 4 <= n; i += 4) {
        __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(s + i));
        __m256d r = _mm256_sqrt_pd(v);
        __m256d q = _mm256_sqrt_pd(r);
        _mm_storeu_ps(s + i, _mm256_cvtpd_ps(_mm256_div_pd(one, _mm256_mul_pd(r, q))));
    }
    pow_m075_scalar(s + i, n - i);
}

static int have_avx2 = -1;

static void pow_neg(float *s, int n, float beta)
{
    int i;
    if (beta == 0.75f) {
        if (have_avx2 < 0)
            have_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
        if (have_avx2)
            pow_m075_avx2(s, n);
        else
            pow_m075_scalar(s, n);
        return;
    }
    for (i = 0; i < n; i++)
        s[i] = (float)pow((double)s[i], -(double)beta);
}

#define LRN_BLOCK 256

/* Caffe's LRN across channels: y = x * (k + alpha/size * sum_{window} x^2)^-beta, the
 * window being `size` channels centred on c ((size-1)/2 before it), zero beyond the
 * edges. The window sum is computed in Caffe's own order, so that the result is
 * bit-identical to Caffe's and to the NumPy reference: a running sum over channels that
 * starts from k plus the first window and then, channel by channel, adds the entering
 * square and subtracts the leaving one. Each step is Caffe's axpy, which OpenBLAS does
 * with a fused multiply-add; here a*x^2 (a float times a float, exact in double) is added
 * in double and the sum rounded to float, as the reference does. Work items are
 * (image, block of pixels); the squares of a block, all channels, stay in a per-thread
 * buffer. `out` may be `in` (in place). */
/* The start of an LRN work item (image n, pixels [b0, b0 + len)), for both versions
 * below: every channel's squares into sq, and the running sum `run` = k plus the first
 * window, each step rounded to float as Caffe's axpy does. Inlined into each caller, so
 * it is compiled for the caller's instruction set. */
__attribute__((always_inline))
static inline void lrn_start(const fw_view *in, long n, int b0, int len, int size, double a,
                             float k, float *sq, float *run)
{
    const int C = in->c, pre = (size - 1) / 2;
    int c, t;
    for (c = 0; c < C; c++) {
        const float *x = in->data + n * in->sn + c * in->sc + b0;
        float *q = sq + (long)c * LRN_BLOCK;
        for (t = 0; t < len; t++) q[t] = x[t] * x[t];   /* caffe_sqr */
    }
    for (t = 0; t < len; t++) run[t] = k;
    for (c = 0; c < fw_min(size - pre, C); c++) {       /* the first window */
        const float *q = sq + (long)c * LRN_BLOCK;
        for (t = 0; t < len; t++) run[t] = (float)((double)run[t] + a * q[t]);
    }
}

/* One LRN work item: image n, pixels [b0, b0 + len) of every channel. Compiled twice
 * (AVX2 and baseline) and picked at run time: the double-precision steps vectorise
 * four-wide with AVX2. Same operations, same results, either way. */
__attribute__((target_clones("avx2", "default")))
static void lrn_block(const fw_view *in, const fw_view *out, long n, int b0, int len,
                      int size, double a, float beta, float k, float *sq, float *run,
                      float *scale)
{
    const int C = in->c, pre = (size - 1) / 2;
    int c, t;
    lrn_start(in, n, b0, len, size, a, k, sq, run);
    for (c = 0; c < C; c++) {
        const int head = c + size - 1 - pre, tail = c - 1 - pre;
        const float *x = in->data + n * in->sn + c * in->sc + b0;
        float *y = out->data + n * out->sn + c * out->sc + b0;
        if (c > 0 && head < C) {
            const float *q = sq + (long)head * LRN_BLOCK;
            for (t = 0; t < len; t++) run[t] = (float)((double)run[t] + a * q[t]);
        }
        if (c > 0 && tail >= 0) {
            const float *q = sq + (long)tail * LRN_BLOCK;
            for (t = 0; t < len; t++) run[t] = (float)((double)run[t] - a * q[t]);
        }
        memcpy(scale, run, sizeof(float) * len);
        pow_neg(scale, len, beta);
        for (t = 0; t < len; t++) y[t] = scale[t] * x[t];
    }
}

/* The same work item with AVX2 and FMA, for beta = 0.75 (AlexNet's): the same
 * operations, so the same bits, in one pass over each channel's pixels, eight at a
 * time, instead of four passes (head, tail, power, product) through the block's
 * buffers: 17-22 % less time on norm1 and norm2 (batch 32, one thread). Each step of the
 * running sum is still run + a x^2 (or run - a x^2) in double, here one fma (a x^2 is
 * exact in double, so fused and separate round alike), rounded to float before the next.
 *
 * (Tried and dropped: s^-0.75 from a float estimate refined by a Newton step in double,
 * with a check that the result is not near a midpoint between two floats. It was no
 * faster: near s = 1, where LRN's small activations put most lanes, s^-0.75 lies close
 * to midpoints often enough that one vector in ten needed the exact path. Also dropped:
 * rsqrt estimates, a Newton step in float and a third-order step in double, rounding
 * checked 64 double ulps from midpoints; the same float as here on all 2^31 positive
 * floats, no vector of LRN's inputs near a midpoint, 1.4 instead of 1.8 ns per value
 * alone, yet norm1 took 33 ms instead of 28: the running sum's double-precision steps
 * already keep the FMA pipes busy, while the square roots and division here run in the
 * divider beside them.) */
/* s^-0.75 of eight lanes as pow_m075_scalar computes it, four at a time in double */
__attribute__((target("avx2,fma"), always_inline))
static inline __m256 pow_m075_8(__m256 s)
{
    const __m256d one = _mm256_set1_pd(1.0);
    const __m256d d0 = _mm256_cvtps_pd(_mm256_castps256_ps128(s));
    const __m256d d1 = _mm256_cvtps_pd(_mm256_extractf128_ps(s, 1));
    const __m256d r0 = _mm256_sqrt_pd(d0), r1 = _mm256_sqrt_pd(d1);
    const __m128 y0 = _mm256_cvtpd_ps(_mm256_div_pd(one, _mm256_mul_pd(r0, _mm256_sqrt_pd(r0))));
    const __m128 y1 = _mm256_cvtpd_ps(_mm256_div_pd(one, _mm256_mul_pd(r1, _mm256_sqrt_pd(r1))));
    return _mm256_set_m128(y1, y0);
}

/* One running-sum step on eight pixels: run + as q in double (as = a entering, -a
 * leaving: r - a q and r + (-a) q are the same operation), rounded to float. a q is
 * exact in double, so the fused step rounds as Caffe's separate ones do. */
__attribute__((target("avx2,fma"), always_inline))
static inline __m256 lrn_step8(__m256 run, __m256 q, __m256d as)
{
    const __m128 r0 = _mm256_cvtpd_ps(_mm256_fmadd_pd(
        as, _mm256_cvtps_pd(_mm256_castps256_ps128(q)),
        _mm256_cvtps_pd(_mm256_castps256_ps128(run))));
    const __m128 r1 = _mm256_cvtpd_ps(_mm256_fmadd_pd(
        as, _mm256_cvtps_pd(_mm256_extractf128_ps(q, 1)),
        _mm256_cvtps_pd(_mm256_extractf128_ps(run, 1))));
    return _mm256_set_m128(r1, r0);
}

__attribute__((target("avx2,fma")))
static void lrn_block_avx2(const fw_view *in, const fw_view *out, long n, int b0, int len,
                           int size, double a, float k, float *sq, float *run)
{
    const int C = in->c, pre = (size - 1) / 2, len8 = len / 8 * 8;
    const __m256d av = _mm256_set1_pd(a), minus_av = _mm256_set1_pd(-a);
    int c, t;
    lrn_start(in, n, b0, len, size, a, k, sq, run);
    for (c = 0; c < C; c++) {
        const int head = c + size - 1 - pre, tail = c - 1 - pre;
        const float *x = in->data + n * in->sn + c * in->sc + b0;
        float *y = out->data + n * out->sn + c * out->sc + b0;
        const float *qh = c > 0 && head < C ? sq + (long)head * LRN_BLOCK : NULL;
        const float *qt = c > 0 && tail >= 0 ? sq + (long)tail * LRN_BLOCK : NULL;
        for (t = 0; t < len8; t += 8) {
            __m256 rv = _mm256_loadu_ps(run + t);
            if (qh) rv = lrn_step8(rv, _mm256_loadu_ps(qh + t), av);
            if (qt) rv = lrn_step8(rv, _mm256_loadu_ps(qt + t), minus_av);
            _mm256_storeu_ps(run + t, rv);
            _mm256_storeu_ps(y + t, _mm256_mul_ps(pow_m075_8(rv), _mm256_loadu_ps(x + t)));
        }
        for (; t < len; t++) {  /* the block's last few pixels, the same arithmetic */
            float r = run[t];
            if (qh) r = (float)((double)r + a * qh[t]);
            if (qt) r = (float)((double)r - a * qt[t]);
            run[t] = r;
            pow_m075_scalar(&r, 1);
            y[t] = r * x[t];
        }
    }
}

int fw_lrn(const fw_ctx *ctx, const fw_view *in, const fw_view *out, int size, float alpha,
           float beta, float k)
{
    const int T = ctx->threads > 0 ? ctx->threads : 1;
    const int C = in->c, HW = in->h * in->w;
    const long nblocks = (HW + LRN_BLOCK - 1) / LRN_BLOCK, items = (long)in->n * nblocks;
    const double a = (double)(alpha / (float)size);  /* alpha_over_size, rounded to float */
    const int fast = beta == 0.75f && fw_isa() >= FW_ISA_AVX2;
    int failed = 0;
    if (items == 0 || C == 0)
        return 0;
    #pragma omp parallel num_threads(T) if (items > 1)
    {
        float *sq = malloc(sizeof(float) * (size_t)C * LRN_BLOCK);
        float run[LRN_BLOCK], scale[LRN_BLOCK];
        long it;
        if (!sq) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp for schedule(dynamic, 1)  /* see fw_inner_product */
        for (it = 0; it < items; it++) {
            const int b0 = (int)(it % nblocks) * LRN_BLOCK;
            if (!sq) continue;
            if (fast)
                lrn_block_avx2(in, out, it / nblocks, b0, fw_min(LRN_BLOCK, HW - b0), size,
                               a, k, sq, run);
            else
                lrn_block(in, out, it / nblocks, b0, fw_min(LRN_BLOCK, HW - b0), size, a,
                          beta, k, sq, run, scale);
        }
        free(sq);
    }
    return failed ? -1 : 0;
}

/* ----------------------------------------------------------------------- pooling */

/* Caffe's pooled size: ceil((size + 2 pad - kernel) / stride) + 1, minus one if the
 * last window would start in the right padding. */
int fw_pool_output_size(int size, int kernel, int stride, int pad)
{
    int span = size + 2 * pad - kernel;
    int out = (span >= 0 ? (span + stride - 1) / stride : -((-span) / stride)) + 1;
    if (pad && (out - 1) * stride >= size + pad)
        out--;
    return out;
}

/* Caffe's MAX pooling: each window [o*stride - pad, + kernel) clipped to the input; the
 * max starts at -FLT_MAX (an empty window gives -FLT_MAX, as in Caffe). For each output
 * row the rows of its window are first reduced column by column (contiguous, so it
 * vectorises), then each output takes the max of its columns: max is exact, so the
 * order does not change the result. */
/* d[ox] = max over x in {2 ox, 2 ox + 1, 2 ox + 2} of cm[x], for ox in [0, count),
 * count >= 8: AlexNet's 3-wide, stride-2 windows, eight outputs at once.
 * The same comparisons in the same order as fw_max_pool's scalar loop (mx = -FLT_MAX,
 * then mx = cm[x] > mx ? cm[x] : mx for each x, which is what max_ps(cm[x], mx) does,
 * NaN and signed zeros included), so the same bits. The even and odd columns are
 * gathered within each 128-bit half by shuffle_ps; the outputs' order that leaves
 * (0 1 4 5 2 3 6 7 in 64-bit pairs) is undone once at the end. Reads cm up to
 * index 2 count + 1. pool1-pool5 were 3 % of the forward, half of it in the scalar loop. */
__attribute__((target("avx2")))
static void pool_row_k3s2_avx2(const float *cm, float *d, int count)
{
    const __m256 lowest = _mm256_set1_ps(-FLT_MAX);
    int ox;
    for (ox = 0; ox < count; ox += 8) {
        const float *c;
        if (ox > count - 8)  /* the last eight, overlapping the block before: same values */
            ox = count - 8;
        c = cm + 2 * ox;
        const __m256 a0 = _mm256_loadu_ps(c), a1 = _mm256_loadu_ps(c + 8);
        const __m256 b0 = _mm256_loadu_ps(c + 2), b1 = _mm256_loadu_ps(c + 10);
        const __m256 even = _mm256_shuffle_ps(a0, a1, _MM_SHUFFLE(2, 0, 2, 0));
        const __m256 odd = _mm256_shuffle_ps(a0, a1, _MM_SHUFFLE(3, 1, 3, 1));
        const __m256 next = _mm256_shuffle_ps(b0, b1, _MM_SHUFFLE(2, 0, 2, 0));
        __m256 mx = _mm256_max_ps(even, lowest);
        mx = _mm256_max_ps(odd, mx);
        mx = _mm256_max_ps(next, mx);
        _mm256_storeu_ps(d + ox, _mm256_castpd_ps(_mm256_permute4x64_pd(
            _mm256_castps_pd(mx), _MM_SHUFFLE(3, 1, 2, 0))));
    }
}

void fw_max_pool(const fw_ctx *ctx, const fw_view *in, const fw_view *out, int kh, int kw,
                 int sh, int sw, int ph, int pw)
{
    const int T = ctx->threads > 0 ? ctx->threads : 1;
    const long planes = (long)in->n * in->c;
    const int H = in->h, W = in->w, OH = out->h, OW = out->w;
    const int fast = kw == 3 && sw == 2 && pw == 0 && W >= 3 && fw_isa() >= FW_ISA_AVX2;
    #pragma omp parallel num_threads(T) if (planes > 1)
    {
        float *cm = malloc(sizeof(float) * (size_t)(W > 0 ? W : 1));
        long pl;
        #pragma omp for schedule(dynamic, 8)  /* see fw_inner_product */
        for (pl = 0; pl < planes; pl++) {
            const long n = pl / in->c;
            const int c = (int)(pl % in->c);
            const float *src = in->data + n * in->sn + c * in->sc;
            float *dst = out->data + n * out->sn + c * out->sc;
            int oy, ox, y, x;
            for (oy = 0; oy < OH; oy++) {
                int hs = oy * sh - ph, he = fw_min(hs + kh, H);
                float *d = dst + (long)oy * OW;
                hs = fw_max(hs, 0);
                if (he <= hs || !cm) {
                    for (ox = 0; ox < OW; ox++) {
                        int ws = fw_max(ox * sw - pw, 0), we = fw_min(ox * sw - pw + kw, W);
                        float mx = -FLT_MAX;
                        for (y = hs; y < he; y++)
                            for (x = ws; x < we; x++) {
                                float v = src[(long)y * W + x];
                                if (v > mx) mx = v;
                            }
                        d[ox] = mx;
                    }
                    continue;
                }
                memcpy(cm, src + (long)hs * W, sizeof(float) * W);
                for (y = hs + 1; y < he; y++) {
                    const float *r = src + (long)y * W;
                    for (x = 0; x < W; x++) cm[x] = r[x] > cm[x] ? r[x] : cm[x];
                }
                ox = 0;
                if (fast) {  /* the outputs whose windows lie inside the row */
                    ox = fw_min(OW, (W - 3) / 2 + 1);
                    if (ox >= 8)
                        pool_row_k3s2_avx2(cm, d, ox);
                    else
                        ox = 0;
                }
                for (; ox < OW; ox++) {
                    int ws = fw_max(ox * sw - pw, 0), we = fw_min(ox * sw - pw + kw, W);
                    float mx = -FLT_MAX;
                    for (x = ws; x < we; x++)
                        if (cm[x] > mx) mx = cm[x];
                    d[ox] = mx;
                }
            }
        }
        free(cm);
    }
}
