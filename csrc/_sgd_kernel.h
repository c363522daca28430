/* scikit-learn's plain SGD (SGDClassifier: hinge loss, L2 penalty, "optimal" learning rate,
 * per-sample updates, shuffling before every epoch, no averaging, no early stopping), for one
 * binary problem and SGD_LANES regularisation strengths at once.
 *
 * Why lanes: the protocol's inner CV fits the same (X, y) with 24 alphas, and scikit-learn's
 * random_state makes every alpha see the same sample order. Its own loop computes each dot
 * product as one serial chain of double additions, so it runs at the adder's latency. Here
 * the weights of SGD_LANES alphas are interleaved (W[j * SGD_LANES + lane]) and one pass
 * over a sample's features feeds SGD_LANES independent chains, each still summed in
 * scikit-learn's order (feature 0 first), so every lane gives scikit-learn's result bit for
 * bit: the same operations in the same order on the same doubles, compiled without FMA
 * contraction (setup.py: -ffp-contract=off; x86-64's baseline has no FMA either).
 *
 * What is copied, step for step, from sklearn/linear_model/_sgd_fast.pyx.tp (_plain_sgd),
 * utils/_weight_vector.pyx.tp (WeightVector: w = wscale * v), utils/_seq_dataset.pyx.tp
 * (ArrayDataset.shuffle: Fisher-Yates with our_rand_r, the same seed every epoch, applied to
 * the already shuffled order) and utils/_random.pxd (our_rand_r, xorshift):
 *   p = wscale * sum_j v_j x_j + b
 *   eta = 1 / (alpha (optimal_init + t - 1)),  optimal_init = 1 / (alpha^(-1/4) alpha)
 *   dloss = -y if p y <= 1 else 0;  update = -eta dloss
 *   wscale *= max(0, 1 - eta alpha); if wscale < 1e-9: v *= wscale, wscale = 1
 *   if update != 0: v += x (update / wscale), b += update
 *   t += 1;  after every epoch: non-finite v or b is an error;  at the end v *= wscale.
 * The squared and L1 norms scikit-learn also tracks feed only its verbose output and its
 * tol-based stopping, both off in this protocol, so they are not computed.
 */
#ifndef REFIMPL_SGD_KERNEL_H
#define REFIMPL_SGD_KERNEL_H

#include <emmintrin.h>   /* SSE2: part of every x86-64 */
#include <math.h>
#include <stdint.h>
#include <stddef.h>

#define SGD_LANES 8

/* acc[0..8) = sum_j W[j][0..8) * x[j], each lane summed from j = 0 upwards: two-double
 * SSE2 multiplies and adds (exact IEEE operations, no fused multiply-add), four registers
 * of accumulators. */
static inline void sgd_dot_lanes(const double *W, const double *x, int d, double *acc)
{
    __m128d s0 = _mm_setzero_pd(), s1 = _mm_setzero_pd(), s2 = _mm_setzero_pd(),
            s3 = _mm_setzero_pd();
    for (int j = 0; j < d; j++) {
        const double *w = W + (size_t)j * SGD_LANES;
        const __m128d xj = _mm_set1_pd(x[j]);
        s0 = _mm_add_pd(s0, _mm_mul_pd(_mm_loadu_pd(w + 0), xj));
        s1 = _mm_add_pd(s1, _mm_mul_pd(_mm_loadu_pd(w + 2), xj));
        s2 = _mm_add_pd(s2, _mm_mul_pd(_mm_loadu_pd(w + 4), xj));
        s3 = _mm_add_pd(s3, _mm_mul_pd(_mm_loadu_pd(w + 6), xj));
    }
    _mm_storeu_pd(acc + 0, s0);
    _mm_storeu_pd(acc + 2, s1);
    _mm_storeu_pd(acc + 4, s2);
    _mm_storeu_pd(acc + 6, s3);
}

/* W[j][a] += x[j] * step[a] for the lanes with active[a], the others left exactly as they
 * are (adding x * 0 could turn a -0.0 weight into +0.0): a bit mask picks per lane. */
static inline void sgd_add_some_lanes(double *W, const double *x, int d, const double *step,
                                      const int *active)
{
    __m128d c[4], keep[4];
    for (int k = 0; k < 4; k++) {
        c[k] = _mm_loadu_pd(step + 2 * k);
        keep[k] = _mm_castsi128_pd(_mm_set_epi64x(active[2 * k + 1] ? -1 : 0,
                                                  active[2 * k] ? -1 : 0));
    }
    for (int j = 0; j < d; j++) {
        double *w = W + (size_t)j * SGD_LANES;
        const __m128d xj = _mm_set1_pd(x[j]);
        for (int k = 0; k < 4; k++) {
            __m128d old = _mm_loadu_pd(w + 2 * k);
            __m128d moved = _mm_add_pd(old, _mm_mul_pd(xj, c[k]));
            _mm_storeu_pd(w + 2 * k, _mm_or_pd(_mm_and_pd(keep[k], moved),
                                               _mm_andnot_pd(keep[k], old)));
        }
    }
}

/* W[j][0..8) += x[j] * step[0..8) for every j (all lanes updated). */
static inline void sgd_add_lanes(double *W, const double *x, int d, const double *step)
{
    const __m128d c0 = _mm_loadu_pd(step + 0), c1 = _mm_loadu_pd(step + 2),
                  c2 = _mm_loadu_pd(step + 4), c3 = _mm_loadu_pd(step + 6);
    for (int j = 0; j < d; j++) {
        double *w = W + (size_t)j * SGD_LANES;
        const __m128d xj = _mm_set1_pd(x[j]);
        _mm_storeu_pd(w + 0, _mm_add_pd(_mm_loadu_pd(w + 0), _mm_mul_pd(xj, c0)));
        _mm_storeu_pd(w + 2, _mm_add_pd(_mm_loadu_pd(w + 2), _mm_mul_pd(xj, c1)));
        _mm_storeu_pd(w + 4, _mm_add_pd(_mm_loadu_pd(w + 4), _mm_mul_pd(xj, c2)));
        _mm_storeu_pd(w + 6, _mm_add_pd(_mm_loadu_pd(w + 6), _mm_mul_pd(xj, c3)));
    }
}

/* scikit-learn's our_rand_r (utils/_random.pxd). */
static inline uint32_t sgd_rand_r(uint32_t *seed)
{
    if (*seed == 0)
        *seed = 1;
    *seed ^= (uint32_t)(*seed << 13);
    *seed ^= (uint32_t)(*seed >> 17);
    *seed ^= (uint32_t)(*seed << 5);
    return *seed % ((uint32_t)2147483647 + 1);
}

/* SequentialDataset.shuffle: the seed is passed by value, so every epoch draws the same
 * swaps, applied to the order the previous epoch left. */
static void sgd_shuffle(int *index, int n, uint32_t seed)
{
    for (unsigned i = 0; n > 1 && i < (unsigned)(n - 1); i++) {
        unsigned j = i + sgd_rand_r(&seed) % (unsigned)(n - i);
        int tmp = index[i];
        index[i] = index[j];
        index[j] = tmp;
    }
}

/* One binary problem, SGD_LANES alphas. X: n x d, row-major; y: +1 / -1 per row;
 * W: d x SGD_LANES, zeroed by the caller; intercept: SGD_LANES zeros; index: n ints of work
 * space. Returns 0, or 1 + the epoch (0-based) after which some lane held a non-finite
 * weight or intercept (scikit-learn raises ValueError there); `bad_lane` gets that lane. */
static int sgd_hinge_l2_lanes(const double *X, const double *y, int n, int d,
                              const double *alpha, int epochs, uint32_t seed,
                              double *W, double *intercept, int *index, int *bad_lane)
{
    double wscale[SGD_LANES], optimal_init[SGD_LANES], acc[SGD_LANES], step[SGD_LANES];
    int active[SGD_LANES];
    for (int a = 0; a < SGD_LANES; a++) {
        /* typw = sqrt(1 / sqrt(alpha)); initial_eta0 = typw / max(1, gradient(1, -typw)),
         * and the hinge's gradient there is -1, so initial_eta0 = typw. */
        double typw = sqrt(1.0 / sqrt(alpha[a]));
        optimal_init[a] = 1.0 / (typw * alpha[a]);
        wscale[a] = 1.0;
        intercept[a] = 0.0;
    }
    for (int i = 0; i < n; i++)
        index[i] = i;
    double t = 1.0;
    for (int epoch = 0; epoch < epochs; epoch++) {
        sgd_shuffle(index, n, seed);
        for (int s = 0; s < n; s++) {
            const double *x = X + (size_t)index[s] * (size_t)d;
            const double label = y[index[s]];
            sgd_dot_lanes(W, x, d, acc);
            int n_active = 0;
            for (int a = 0; a < SGD_LANES; a++) {
                double p = acc[a] * wscale[a] + intercept[a];
                double eta = 1.0 / (alpha[a] * (optimal_init[a] + t - 1));
                double dloss = (p * label <= 1.0) ? -label : 0.0;
                double update = -eta * dloss;
                double shrink = 1.0 - ((1.0 - 0.0) * eta * alpha[a]);
                wscale[a] *= (shrink > 0 ? shrink : 0.0);
                if (wscale[a] < 1e-9) {         /* WeightVector.reset_wscale */
                    for (int j = 0; j < d; j++)
                        W[(size_t)j * SGD_LANES + a] *= wscale[a];
                    wscale[a] = 1.0;
                }
                active[a] = update != 0.0;
                step[a] = active[a] ? update / wscale[a] : 0.0;
                if (active[a])
                    intercept[a] += update * 1.0;
                n_active += active[a];
            }
            if (n_active == SGD_LANES) {
                sgd_add_lanes(W, x, d, step);
            } else if (n_active > 0) {
                /* Lanes without an update are left exactly as they are (adding x * 0 could
                 * turn a -0.0 weight into +0.0). */
                sgd_add_some_lanes(W, x, d, step, active);
            }
            t += 1;
        }
        for (int a = 0; a < SGD_LANES; a++) {
            int finite = isfinite(intercept[a]);
            for (int j = 0; finite && j < d; j++)
                finite = isfinite(W[(size_t)j * SGD_LANES + a]);
            if (!finite) {
                *bad_lane = a;
                return 1 + epoch;
            }
        }
    }
    for (int j = 0; j < d; j++)
        for (int a = 0; a < SGD_LANES; a++)
            W[(size_t)j * SGD_LANES + a] *= wscale[a];
    return 0;
}

#endif
