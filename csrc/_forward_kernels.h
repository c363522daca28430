/* The AlexNet forward-pass kernels behind refimpl.network._forward (see _forward_kernels.c).
 *
 * Every kernel reads and writes 4-D float32 blobs through an fw_view: rows of a (H, W)
 * plane are contiguous and planes sit at data + n*sn + c*sc. That one description covers
 * Caffe's NCHW (sn = C*H*W, sc = H*W) and the CNHW layout the fused forward keeps between
 * convolutions (sc = N*H*W, sn = H*W), where the columns of a whole batch are one
 * contiguous range and the batch becomes one matrix product per group.
 */
#ifndef REFIMPL_FORWARD_KERNELS_H
#define REFIMPL_FORWARD_KERNELS_H

#include <stddef.h>

typedef struct {
    float *data;
    int n, c, h, w;
    ptrdiff_t sn, sc;
} fw_view;

typedef struct {
    int kh, kw, sh, sw, ph, pw, group, relu;
} fw_conv_cfg;

typedef struct {
    /* OpenMP threads (>= 1). They take whole work items (column or tile chunks of a
     * convolution, blocks of neurons of an inner product, ...), which changes who
     * computes an output, never its value: each is one fixed sum (gemm). */
    int threads;
    int chunk_cols;    /* im2col columns per work item; 0 = automatic */
    int wino_tiles;    /* Winograd tiles per work item; 0 = automatic */
} fw_ctx;

int fw_conv(const fw_ctx *ctx, const fw_view *in, const float *weights, const float *bias,
            int m, const fw_conv_cfg *cfg, const fw_view *out);
/* Winograd minimal filtering F(mxm, rxr), r = 3 or 5, for stride-1 convolutions
 * (fw_conv_wino), m = fw_wino_tile(r) outputs per tile side (0: no Winograd for r). The
 * filters are transformed once: weights (M, C/group, r, r) -> u, for each of the
 * (m+r-1)^2 positions and each group, the group's M/group rows of C/group values in
 * panels of FW_PANEL rows, value-major inside a panel: u[position][group][panel][c][row],
 * the last panel of a group padded with zero rows (fw_wino_filters_size floats;
 * fw_wino_panels panels a group). */
#define FW_PANEL 6
int fw_wino_tile(int r);
int fw_wino_panels(int m, int group);
size_t fw_wino_filters_size(int r, int m, int cg, int group);
int fw_wino_transform_filters(const float *weights, int r, int m, int cg, int group, float *u);
int fw_conv_wino(const fw_ctx *ctx, const fw_view *in, const float *u, const float *bias,
                 int m, const fw_conv_cfg *cfg, const fw_view *out);
/* Inner-product weights w (m x k) rearranged for fw_inner_product (done once). */
size_t fw_packed_size(int m, int k);
void fw_pack_rows(const float *w, int m, int k, float *out);
int fw_inner_product(const fw_ctx *ctx, const float *x, int n, int k, const float *wp,
                     const float *bias, int m, int relu, float *out);
int fw_lrn(const fw_ctx *ctx, const fw_view *in, const fw_view *out, int size, float alpha,
           float beta, float k);
void fw_max_pool(const fw_ctx *ctx, const fw_view *in, const fw_view *out, int kh, int kw,
                 int sh, int sw, int ph, int pw);
void fw_relu(const fw_ctx *ctx, float *x, const float *src, ptrdiff_t count);
int fw_pool_output_size(int size, int kernel, int stride, int pad);

/* The instruction set of the matrix products (the bits are the same on each: every
 * output is one fused-multiply-add chain in k order). fw_set_isa(-1) = the best this CPU
 * has; asking for more than it has gives that best. Returns the one now in use. */
enum { FW_ISA_BASELINE = 0, FW_ISA_AVX2 = 1, FW_ISA_AVX512 = 2 };
int fw_set_isa(int isa);
int fw_isa(void);

#endif
