/* The AlexNet forward-pass kernels behind refimpl.network._forward (see forward_impl.c).
 *
 * Every kernel reads and writes 4-D float32 blobs through an fw_view: rows of a (H, W)
 * plane are contiguous and planes sit at data + n*sn + c*sc. That one description covers
 * Caffe's NCHW (sn = C*H*W, sc = H*W) and the CNHW layout the fused forward keeps between
 * convolutions (sc = N*H*W, sn = H*W), where the columns of a whole batch are one
 * contiguous range and the batch becomes one matrix product per group.
 */
#ifndef REFIMPL_FORWARD_IMPL_H
#define REFIMPL_FORWARD_IMPL_H

#include <stddef.h>

typedef struct {
    float *data;
    int n, c, h, w;
    ptrdiff_t sn, sc;
} fw_view;

/* How work is split over the cores (never the result: every output is one fixed sum,
 * see gemm in forward_impl.c, whichever thread computes it).
 *   FW_SPLIT_OMP:  OpenMP threads take whole work items (column chunks of a convolution,
 *                  blocks of neurons of an inner product).
 *   FW_SPLIT_BLAS: convolutions' work items run one after another, wide, and the threads
 *                  share each item's products and the loops around them (the split
 *                  that once handed the products to BLAS's threads). */
enum { FW_SPLIT_OMP = 0, FW_SPLIT_BLAS = 1 };

typedef struct {
    int kh, kw, sh, sw, ph, pw, group, relu;
} fw_conv_cfg;

typedef struct {
    int threads;       /* OpenMP threads (>= 1) */
    int split;         /* FW_SPLIT_OMP or FW_SPLIT_BLAS */
    int chunk_cols;    /* im2col columns per work item; 0 = automatic */
    int wino_tiles;    /* Winograd tiles per work item; 0 = automatic */
} fw_ctx;

int fw_conv(const fw_ctx *ctx, const fw_view *in, const float *weights, const float *bias,
            int m, const fw_conv_cfg *cfg, const fw_view *out);
/* Winograd minimal filtering F(2x2, rxr), r = 3 or 5, for stride-1 convolutions
 * (fw_conv_wino). The filters are transformed once: weights (M, C/group, r, r) ->
 * u ((r+1)^2, M, C/group). */
int fw_wino_transform_filters(const float *weights, int r, int m, int cg, float *u);
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

/* BLAS thread control for FW_SPLIT_OMP (found next to the sgemm in use). */
int fw_blas_bind(void *sgemm_ptr);
int fw_blas_get_threads(void);
void fw_blas_set_threads(int n);

#endif
