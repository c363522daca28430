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
 * (setup.py: -ffp-contract=off; neither x86-64's baseline nor the AVX2 clone enables FMA,
 * and scikit-learn's wheels are built for the baseline).
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

#include <math.h>
#include <stdint.h>
#include <stddef.h>

#define SGD_LANES 8

/* Four doubles per vector (GCC's vector extension): two SSE2 registers in the baseline
 * build, one AVX register in the AVX2 clone (target_clones below picks one at load time).
 * Either way an element is one IEEE multiply and one IEEE add; no FMA is enabled and the
 * module is built with -ffp-contract=off. The aligned(8) types allow unaligned access. */
typedef double sgd_v4 __attribute__((vector_size(32), aligned(8)));
typedef long long sgd_m4 __attribute__((vector_size(32), aligned(8)));

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define SGD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SGD_CLONES
#endif
/* Helpers are inlined into each clone, so they are compiled for its instruction set. */
#define SGD_INLINE static inline __attribute__((always_inline))


/* scikit-learn's our_rand_r (utils/_random.pxd). */
SGD_INLINE uint32_t sgd_rand_r(uint32_t *seed)
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
SGD_INLINE void sgd_shuffle(int *index, int n, uint32_t seed)
{
    for (unsigned i = 0; n > 1 && i < (unsigned)(n - 1); i++) {
        unsigned j = i + sgd_rand_r(&seed) % (unsigned)(n - i);
        int tmp = index[i];
        index[i] = index[j];
        index[j] = tmp;
    }
}

/* acc[0..8) = sum_j W[j][0..8) * x[j], each lane summed from j = 0 upwards. */
SGD_INLINE void sgd_dot_lanes(const double *W, const double *x, int d, double *acc)
{
    sgd_v4 s0 = {0, 0, 0, 0}, s1 = {0, 0, 0, 0};
    for (int j = 0; j < d; j++) {
        const sgd_v4 *w = (const sgd_v4 *)(W + (size_t)j * SGD_LANES);
        const double xj = x[j];
        s0 = s0 + w[0] * xj;
        s1 = s1 + w[1] * xj;
    }
    *(sgd_v4 *)(acc + 0) = s0;
    *(sgd_v4 *)(acc + 4) = s1;
}

/* W[j][0..8) += x[j] * step[0..8) for every j (all lanes updated). */
SGD_INLINE void sgd_add_lanes(double *W, const double *x, int d, const double *step)
{
    const sgd_v4 c0 = *(const sgd_v4 *)(step + 0), c1 = *(const sgd_v4 *)(step + 4);
    for (int j = 0; j < d; j++) {
        sgd_v4 *w = (sgd_v4 *)(W + (size_t)j * SGD_LANES);
        const double xj = x[j];
        w[0] = w[0] + xj * c0;
        w[1] = w[1] + xj * c1;
    }
}

/* W[j][a] += x[j] * step[a] for the lanes with active[a], the others left exactly as they
 * are (adding x * 0 could turn a -0.0 weight into +0.0): a bit mask picks per lane. */
SGD_INLINE void sgd_add_some_lanes(double *W, const double *x, int d, const double *step,
                                      const int *active)
{
    const sgd_v4 c0 = *(const sgd_v4 *)(step + 0), c1 = *(const sgd_v4 *)(step + 4);
    const sgd_m4 k0 = {active[0] ? -1 : 0, active[1] ? -1 : 0, active[2] ? -1 : 0,
                       active[3] ? -1 : 0};
    const sgd_m4 k1 = {active[4] ? -1 : 0, active[5] ? -1 : 0, active[6] ? -1 : 0,
                       active[7] ? -1 : 0};
    for (int j = 0; j < d; j++) {
        sgd_v4 *w = (sgd_v4 *)(W + (size_t)j * SGD_LANES);
        const double xj = x[j];
        const sgd_v4 m0 = w[0] + xj * c0, m1 = w[1] + xj * c1;
        w[0] = (sgd_v4)(((sgd_m4)m0 & k0) | ((sgd_m4)w[0] & ~k0));
        w[1] = (sgd_v4)(((sgd_m4)m1 & k1) | ((sgd_m4)w[1] & ~k1));
    }
}

/* One binary problem, SGD_LANES alphas. X: n x d, row-major; y: +1 / -1 per row;
 * W: d x SGD_LANES, zeroed by the caller; intercept: SGD_LANES zeros; index: n ints of work
 * space. Returns 0, or 1 + the epoch (0-based) after which some lane held a non-finite
 * weight or intercept (scikit-learn raises ValueError there); `bad_lane` gets that lane. */
SGD_CLONES
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
