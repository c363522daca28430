/* Hot loops of csrc/_rir.pyx: the room impulse response of a shoebox room with one
 * omnidirectional source and microphone, the same floats as pyroomacoustics 0.10's
 * libroom (Room::image_source_shoebox, then threaded_rir_builder_impl<float> on one
 * thread) fed through simulation/ism.compute_ism_rir.  Each value is made by the same IEEE
 * operations in the same order; the module is built with -ffp-contract=off (setup.py), so
 * no multiply-add is fused, and sinf/cosf come from the same libm at run time.  What is
 * faster is the organisation: no image-source objects, no intermediate arrays of every
 * image, and the sinc table stored tap-major so that the 81 taps of one image vectorise
 * (each output sample still receives its images' contributions one by one, in image
 * order).  A header of static functions that _rir.pyx includes (cdef extern from),
 * compiled with it.
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define RIR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define RIR_CLONES
#endif

/* Arrival time (s, float32) and amplitude (float32) of every image source, in libroom's
 * order (the L1 ball of radius `order`, z outermost, x innermost), from per-axis tables
 * indexed by reflection index + order: coordinate-minus-microphone squared (float64) and
 * the 'west'/'east' wall factors (float32).  As compute_ism_rir: distance = sqrt of the
 * squares summed in axis order, time = distance / c + delay, amplitude = attenuation /
 * distance in float64, both rounded to float32 for the builder.  Returns the number of
 * images; *t_max gets the largest float64 time (compute_ism_rir sizes the RIR from it). */
static ptrdiff_t rir_images(int order, const double *sqx, const double *sqy,
                            const double *sqz, const float *wx, const float *ex,
                            const float *wy, const float *ey, const float *wz,
                            const float *ez, double c, double delay, float *times,
                            float *alphas, double *t_max)
{
    ptrdiff_t i = 0;
    double tmax = -INFINITY;
    for (int z = -order; z <= order; z++) {
        const int ymax = order - abs(z);
        for (int y = -ymax; y <= ymax; y++) {
            const int xmax = ymax - abs(y);
            for (int x = -xmax; x <= xmax; x++) {
                float att = 1.0f;
                att = att * wx[x + order];
                att = att * ex[x + order];
                att = att * wy[y + order];
                att = att * ey[y + order];
                att = att * wz[z + order];
                att = att * ez[z + order];
                double d2 = sqx[x + order] + sqy[y + order];
                d2 = d2 + sqz[z + order];
                const double dist = sqrt(d2);
                double t = dist / c;
                t = t + delay;
                const double a = (double)att / dist;
                if (t > tmax)
                    tmax = t;
                times[i] = (float)t;
                alphas[i] = (float)a;
                i++;
            }
        }
    }
    *t_max = tmax;
    return i;
}

/* The sinc table and Hann window of threaded_rir_builder_impl<float>, computed as there. */
static void rir_sinc_tables(int fdl, int lut_gran, float *lut, float *hann)
{
    const float pi = (float)3.14159265358979323846;
    const size_t fdl2 = (size_t)(fdl - 1) / 2;
    const size_t lut_size = (size_t)(fdl + 2) * (size_t)lut_gran;
    const float lut_delta = 1.0f / (float)lut_gran;
    float n = -(float)fdl2 - 1;
    for (size_t idx = 0; idx < lut_size; n += lut_delta, idx++) {
        if (n == 0.0)
            lut[idx] = 1.0f;
        else
            lut[idx] = sinf(pi * n) / (pi * n);
    }
    for (size_t idx = 0; idx < (size_t)fdl; idx++)
        hann[idx] = 0.5f - 0.5f * cosf((pi * (float)(2 * idx)) / (float)(fdl - 1));
}

/* One tap row of the builder: out[k] += (a * hann[k]) * (l0[k] + x * (l1[k] - l0[k])). */
RIR_CLONES
static void rir_taps(float *out, const float *hann, const float *l0, const float *l1,
                     float a, float x, int fdl)
{
    for (int k = 0; k < fdl; k++) {
        const float interp = l0[k] + x * (l1[k] - l0[k]);
        out[k] = out[k] + (a * hann[k]) * interp;
    }
}

/* threaded_rir_builder_impl<float> on one thread: rir (rir_len floats, as given) gets the
 * fractional-delay sinc of every image added, in image order.  `acc` is rir_len zeroed
 * floats of scratch (libroom's per-thread buffer, added to rir at the end); `table` is
 * (lut_gran + 2) * fdl floats.  Returns 0, or -1 where a time falls outside rir, as
 * libroom raises. */
static int rir_build(float *rir, ptrdiff_t rir_len, const float *times,
                     const float *alphas, ptrdiff_t n, int fs, int fdl,
                     int lut_gran, float *acc, float *table)
{
    const int fdl2 = (fdl - 1) / 2;
    const size_t lut_size = (size_t)(fdl + 2) * (size_t)lut_gran;
    float *lut = (float *)malloc(lut_size * sizeof(float));
    float hann[fdl];
    if (!lut)
        return -2;
    rir_sinc_tables(fdl, lut_gran, lut, hann);
    /* tap-major copy: row p holds lut[p + k * lut_gran] for k = 0..fdl-1 */
    for (int p = 0; p < lut_gran + 2; p++)
        for (int k = 0; k < fdl; k++)
            table[(size_t)p * fdl + k] = lut[(size_t)p + (size_t)k * lut_gran];
    free(lut);
    float t_min = INFINITY, t_max = -INFINITY;
    for (ptrdiff_t i = 0; i < n; i++) {
        if (times[i] > t_max) t_max = times[i];
        if (times[i] < t_min) t_min = times[i];
    }
    const float fs_f = (float)fs;
    if (n > 0 && ((int)floorf(fs_f * t_min) - fdl2 < 0
                  || (int)ceilf(fs_f * t_max) + fdl2 >= rir_len))
        return -1;
    const float lut_gran_f = (float)lut_gran;
    for (ptrdiff_t i = 0; i < n; i++) {
        const float sample_frac = fs_f * times[i];
        const float time_ip = floorf(sample_frac);
        const float time_fp = sample_frac - time_ip;
        const float x_off_frac = (float)((1. - (double)time_fp) * (double)lut_gran_f);
        const float lut_gran_off = floorf(x_off_frac);
        const float x_off = x_off_frac - lut_gran_off;
        const int lut_pos = (int)lut_gran_off;
        const int f = (int)time_ip - fdl2;
        const float *l0 = table + (size_t)lut_pos * fdl;
        rir_taps(acc + f, hann, l0, l0 + fdl, alphas[i], x_off, fdl);
    }
    for (ptrdiff_t j = 0; j < rir_len; j++)
        rir[j] = rir[j] + acc[j];
    return 0;
}
