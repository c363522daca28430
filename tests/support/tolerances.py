"""Tolerances of the numerical tests, derived from float32 rounding (one place, no magic numbers).

Every float comparison in tests/ uses a bound from here, computed from the operation being
checked: its reduction length and the size of the terms it sums, never the smallest number
that passed once. Machines differ: OpenBLAS picks its kernels at run time (Haswell, SkylakeX,
SandyBridge, ...; OPENBLAS_CORETYPE forces one), and the kernels block sums differently and
use fused multiply-adds or not, so only rounding-level agreement is machine-independent.

Notation. u = 2^-24 is float32's unit roundoff: a correctly rounded operation gives
(a op b)(1 + d) with |d| <= u. One ulp of x is np.spacing(x), at most 2u|x|.

1. Sums and dot products, worst case. A sum s = t_1 + ... + t_n (products t_i = a_i b_i; a
   bias counts as one more term) computed in float32 in ANY order obeys
       |fl(s) - s| <= gamma(n) * sum|t_i|,   gamma(n) = n u / (1 - n u)
   (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., section 3.1). This is
   certain, and it grows like n: for n in the thousands it is thousands of times the real
   error, because it needs every rounding to push the same way.

2. Sums, statistically. Written out, fl(s) - s = sum_j d_j s_j + sum_i d'_i t_i (s_j the
   partial sums, d'_i the rounding of each product), to first order. With the rounding
   errors taken as independent, mean zero and bounded by u (the model of Higham & Mary, "A
   new approach to probabilistic rounding error analysis", SIAM J. Sci. Comput. 41(5),
   2019), Hoeffding's inequality gives
       P(|fl(s) - s| >= LAMBDA * sigma) <= 2 exp(-LAMBDA^2 / 2),
       sigma^2 = u^2 (sum_j s_j^2 + sum_i t_i^2)                       (Hoeffding scale)
   The partial sums depend on the summation order, which a BLAS does not tell. For an order
   unrelated to the values (a uniformly random permutation of the terms) the j-th partial
   sum is a sum of j terms drawn without replacement, and summing E[s_j^2] over j gives
       E[sum_j s_j^2] = (n + 1) (sum_i t_i^2 / 6 + s^2 / 3)
   (E[s_j^2] = j m2 + j (j - 1) (s^2 - n m2) / (n (n - 1)), m2 = sum_i t_i^2 / n; then
   sum_j j = n (n + 1) / 2 and sum_j j (j - 1) = (n - 1) n (n + 1) / 3). The first part is
   a random walk (terms that cancel), the second the linear growth of same-signed terms.
   It describes ONE running sum over all n terms, the least accurate order a BLAS or a
   port may use: blocked kernels keep several shorter partial sums, whose squares add up to
   less. LAMBDA = 6 makes a single compared element exceed its bound with probability at
   most 2 exp(-18) = 3e-8.

   Two evaluations A and B of the same quantity (ours and Caffe's) have independent
   rounding errors: |A - B| <= LAMBDA sqrt(sigma_A^2 + sigma_B^2). An element-wise test
   bound is min(worst case, statistical): both hold, the smaller is the sharper.

3. Networks. Through a network, errors made early are carried forward by every later layer.
   To first order each output's error is a linear combination of all rounding errors made
   anywhere, so the same Hoeffding argument applies to the whole network, with sigma^2
   carried forward layer by layer: through y = W x + b it becomes (W*W) sigma_x^2 plus the
   layer's own sigma^2 from 2.; through an element-wise function f, f'(x)^2 sigma_x^2 plus
   f's own rounding; through max pooling at most the largest sigma^2 of the window; through
   ReLU unchanged, or 0 where the exact input is below -LAMBDA sigma (the output is then 0
   in both evaluations). alexnet_variance() does this for AlexNet, lstm_variance() for the
   enhancer's LSTM network. The values are computed in float64, a stand-in for exact.

4. Single operations. A correctly rounded operation (+ - * / sqrt, float conversions) is
   within half an ulp; two of them within one ulp of each other. Library functions (expf,
   tanhf, powf) are within a few ulps (glibc documents its maxima per function).

5. float64 code (signal processing, statistics) has the same bounds with u = 2^-53
   (U64, gamma64). A radix-2 FFT of length N obeys ||fl(FFT x) - FFT x||_2 <= fft_error(N)
   ||FFT x||_2 (Higham, Thm 24.2: log2(N) eta / (1 - log2(N) eta), eta = u + gamma(4)
   (sqrt(2) + u) with twiddle factors accurate to u), in any precision.
"""
import numpy as np

def _one_blas_thread(fn):
    """Bounds are float64 bookkeeping of many small products; on a busy machine OpenBLAS's
    own threads make them many times slower (they spin against the other load)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*a, **k):
        from threadpoolctl import threadpool_limits
        with threadpool_limits(limits=1, user_api="blas"):
            return fn(*a, **k)
    return wrapper


U = 2.0 ** -24            # float32 unit roundoff (half an ulp of 1)
U64 = 2.0 ** -53          # float64 unit roundoff
LAMBDA = 6.0              # Hoeffding: P(one element beyond its bound) <= 2 exp(-18) = 3e-8


# ------------------------------------------------------------------- sums: 1. and 2.

def gamma(n):
    """Higham's gamma_n = n u / (1 - n u): the worst-case relative error of an n-term sum."""
    nu = n * U
    if nu >= 1:
        raise ValueError(f"gamma({n}) is undefined: n u >= 1")
    return nu / (1 - nu)


def gamma64(n):
    """gamma_n for float64."""
    nu = n * U64
    return nu / (1 - nu)


def fft_error(n, unit=U64):
    """Relative norm-wise error bound of a radix-2 FFT of length n (section 5)."""
    g4 = 4 * unit / (1 - 4 * unit)
    eta = unit + g4 * (np.sqrt(2) + unit)
    k = np.log2(n) * eta
    return k / (1 - k)


def sum_variance(n, sq_terms, total):
    """sigma^2 of section 2: one float32 evaluation of a sum of n terms (any order, modelled
    as random) whose squares sum to sq_terms and whose exact value is total."""
    sq_terms = np.asarray(sq_terms, dtype=np.float64)
    total = np.asarray(total, dtype=np.float64)
    return U * U * ((n + 1) * (sq_terms / 6 + total * total / 3) + sq_terms)


def statistical(var_a, var_b=0.0):
    """LAMBDA sqrt(sigma_A^2 + sigma_B^2): bound on |A - B| (var_b = 0: A against exact)."""
    return LAMBDA * np.sqrt(np.asarray(var_a, np.float64) + np.asarray(var_b, np.float64))


def sum_bound(n, abs_terms, sq_terms, total, evaluations=2):
    """Element-wise bound on the difference of `evaluations` (2: two float32 sums in
    different orders; 1: one float32 sum against the exact value) of sums of n terms:
    min(worst case, statistical)."""
    worst = evaluations * gamma(n) * np.asarray(abs_terms, np.float64)
    stat = LAMBDA * np.sqrt(evaluations * sum_variance(n, sq_terms, total))
    return np.minimum(worst, stat)


def _f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def _pair(v):
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def conv64(x, w, b=None, stride=1, pad=0, group=1):
    """Caffe's convolution (as refimpl.network.conv2d) in float64: the stand-in for the
    exact result (refimpl.network.conv2d itself computes in float32)."""
    x, w = _f64(x), _f64(w)
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    (sh, sw), (ph, pw) = _pair(stride), _pair(pad)
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw))
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    s = xp.strides
    fields = np.lib.stride_tricks.as_strided(
        xp, (n, group, cg, kh, kw, oh, ow),
        (s[0], cg * s[1], s[1], s[2], s[3], sh * s[2], sw * s[3]), writeable=False)
    cols = fields.reshape(n, group, cg * kh * kw, oh * ow)
    y = w.reshape(group, m // group, cg * kh * kw) @ cols          # (N, G, M/G, OH*OW)
    y = y.reshape(n, m, oh, ow)
    if b is not None:
        y = y + _f64(b).reshape(1, m, 1, 1)
    return y


def conv_terms(x, w, b=None, **conv_args):
    """(n, sum|t|, sum t^2, exact) of each output of Caffe's convolution, float64."""
    x, w, b = _f64(x), _f64(w), _f64(b)
    n = w.shape[1] * w.shape[2] * w.shape[3] + (b is not None)
    ab = conv64(np.abs(x), np.abs(w), None if b is None else np.abs(b), **conv_args)
    sq = conv64(x * x, w * w, None if b is None else b * b, **conv_args)
    return n, ab, sq, conv64(x, w, b, **conv_args)


@_one_blas_thread
def conv_bound(x, w, b=None, evaluations=2, **conv_args):
    """Element-wise bound on |A - B| for two float32 evaluations of conv2d(x, w, b)."""
    n, ab, sq, exact = conv_terms(x, w, b, **conv_args)
    return sum_bound(n, ab, sq, exact, evaluations)


def inner_product_terms(x, w, b=None):
    x, w, b = _f64(x), _f64(w), _f64(b)
    x = x.reshape(len(x), -1)
    n = w.shape[1] + (b is not None)
    ab = np.abs(x) @ np.abs(w).T + (0 if b is None else np.abs(b))
    sq = (x * x) @ (w * w).T + (0 if b is None else b * b)
    return n, ab, sq, x @ w.T + (0 if b is None else b)


@_one_blas_thread
def inner_product_variance(x, var, w, b=None):
    """(y, sigma^2) of one float32 evaluation of x W^T + b, x carrying sigma^2 = var."""
    n, _, sq, y = inner_product_terms(x, w, b)
    var = np.broadcast_to(_f64(var), np.shape(x)).reshape(len(x), -1)
    return y, var @ (_f64(w) ** 2).T + sum_variance(n, sq, y)


@_one_blas_thread
def inner_product_bound(x, w, b=None, evaluations=2):
    """Element-wise bound on |A - B| for two float32 evaluations of x W^T + b."""
    n, ab, sq, exact = inner_product_terms(x, w, b)
    return sum_bound(n, ab, sq, exact, evaluations)


# -------------------------------------------------------------- single operations: 4.

def ulp(x):
    """One float32 ulp of x (element-wise), as float64."""
    return np.spacing(np.abs(np.asarray(x, dtype=np.float32))).astype(np.float64)


def ulps(x, k):
    """k float32 ulps of x: the bound for k roundings' worth of difference."""
    return k * ulp(x)


# -------------------------------------------------------------------------------- LRN

def lrn_variance(x, var, size, alpha, beta, k):
    """(y, sigma^2 of one evaluation, worst-case |error| of one evaluation's own rounding)
    for Caffe's LRN (across channels) of x (N, C, H, W) whose elements carry sigma^2 = var.

    Caffe's order (and ours, refimpl.network.lrn): a running window sum over channels,
    started with k plus a x_i^2 of the first window's channels, then per channel plus the
    entering channel and minus the leaving one (a = alpha / size; each step rounds x^2, a x^2
    and the sum: three roundings, the product's vanishing under a fused multiply-add);
    then y = x S^-beta (the power and the product). The running sum's error
    is absolute, of the size of the sums met along the way, so a small S after large ones
    is only that accurate, in Caffe as here.
    """
    x = np.asarray(x, dtype=np.float64)
    var = np.broadcast_to(np.asarray(var, dtype=np.float64), x.shape)
    n, c = x.shape[:2]
    pre = (size - 1) // 2
    a = alpha / size
    asq = a * x * x
    padded = np.zeros((n, c + size - 1) + x.shape[2:])
    padded[:, pre:pre + c] = asq
    s = k + sum(padded[:, i:i + c] for i in range(size))          # exact window sums
    run_var = np.zeros_like(s)      # u^2 sum of squared rounded magnitudes, per channel
    run_abs = np.zeros_like(s)      # u sum of rounded magnitudes (worst case)
    acc_var = np.zeros(s[:, 0].shape)
    acc_abs = np.zeros(s[:, 0].shape)
    partial = np.full(s[:, 0].shape, float(k))
    for i in range(min(size - pre, c)):                          # the first window
        partial = partial + asq[:, i]
        acc_var = acc_var + partial ** 2 + 2 * asq[:, i] ** 2
        acc_abs = acc_abs + partial + 2 * asq[:, i]
    run_var[:, 0], run_abs[:, 0] = acc_var, acc_abs
    for ch in range(1, c):
        enter, leave = ch + size - 1 - pre, ch - 1 - pre
        mid = s[:, ch - 1]
        if enter < c:
            mid = mid + asq[:, enter]
            acc_var = acc_var + mid ** 2 + 2 * asq[:, enter] ** 2
            acc_abs = acc_abs + mid + 2 * asq[:, enter]
        if leave >= 0:
            acc_var = acc_var + s[:, ch] ** 2 + 2 * asq[:, leave] ** 2
            acc_abs = acc_abs + s[:, ch] + 2 * asq[:, leave]
        run_var[:, ch], run_abs[:, ch] = acc_var, acc_abs
    scale = s ** -beta
    y = x * scale
    # the power within 1 ulp (2u; glibc's pow and powf are both below 1 ulp), the product
    # within half an ulp; and a = alpha / size is itself a float32 constant (alpha rounded,
    # then the division: 2u relative), which moves S - k by up to 2u of itself
    const = 2 * U * beta * (s - k) / s
    own_var = U * U * y * y * (beta ** 2 * run_var / (s * s) + 5) + (const * y) ** 2
    own_abs = np.abs(y) * (beta * U * run_abs / s + 3 * U + const) * (1 + 1e-3)  # 2nd order
    # carried errors: dy_c/dx_c = S^-beta - g x_c, dy_c/dx_i = -g x_i, g = 2 beta a x_c S^(-beta-1)
    g = 2 * beta * a * x * s ** (-beta - 1)
    xv = np.zeros((n, c + size - 1) + x.shape[2:])
    xv[:, pre:pre + c] = x * x * var
    window_xv = sum(xv[:, i:i + c] for i in range(size))
    carried = (scale - g * x) ** 2 * var + g * g * (window_xv - x * x * var)
    return y, carried + own_var, own_abs


@_one_blas_thread
def lrn_bound(x, size, alpha, beta, k, evaluations=2):
    """Element-wise bound on |A - B| for two float32 evaluations of LRN on an exact input."""
    _, var, own_abs = lrn_variance(x, 0.0, size, alpha, beta, k)
    return np.minimum(evaluations * own_abs, LAMBDA * np.sqrt(evaluations * var))


# ------------------------------------------------------------------- AlexNet: 3.

@_one_blas_thread
def conv_variance(x, var, w, b=None, **conv_args):
    """(y, sigma^2) of one float32 evaluation of conv2d (im2col + any SGEMM) of x carrying
    sigma^2 = var (section 3)."""
    n, _, sq, y = conv_terms(x, w, b, **conv_args)
    carried = conv64(np.broadcast_to(var, np.shape(x)), _f64(w) ** 2, None, **conv_args)
    return y, carried + sum_variance(n, sq, y)


def _winograd_tool():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[2] / "tools" / "winograd_matrices.py"
    spec = importlib.util.spec_from_file_location("winograd_matrices", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def winograd_matrices(r):
    """A^T (m x n), G (n x r), B^T (n x n) of the C core's F(mxm, rxr)
    (tools/winograd_matrices.py, which also picks m per r), as float64."""
    return tuple(np.array([[float(v) for v in row] for row in m])
                 for m in _winograd_tool().matrices(r))


def _tiles(x, n_in, step):
    """x (N, C, H, W), already padded and cut to whole tiles -> (N, C, TH, TW, n_in, n_in)
    overlapping n_in x n_in patches with stride `step` (m, the outputs per tile side)."""
    n, c, h, w = x.shape
    th, tw = (h - n_in) // step + 1, (w - n_in) // step + 1
    s = x.strides
    return np.lib.stride_tricks.as_strided(
        x, (n, c, th, tw, n_in, n_in), (s[0], s[1], step * s[2], step * s[3], s[2], s[3]),
        writeable=False)


@_one_blas_thread
def winograd_conv_variance(x, var, w, b, pad):
    """(y, sigma^2) of one float32 evaluation of a stride-1 convolution by Winograd's
    F(mxm, rxr), Y = A^T [sum_c (G g_c G^T) .* (B^T d_c B)] A + b, as the C core does it
    (m x m output tiles, m per r as tools/winograd_matrices.py picks it):
    the filter transform in double rounded once to float32, the input transform and the
    output transform float32 sums of their few non-zero terms, the channel sum of the
    element-wise products an n = C sum, the bias one more rounding. x and var (N, C, H, W).

    The errors the input carries in pass through the convolution itself (Winograd's is the
    same linear map, exactly): conv with w^2 of var. Only the roundings made inside go
    through the transforms, each independent, so with squared coefficients."""
    x, var, w = _f64(x), np.broadcast_to(_f64(var), np.shape(x)), _f64(w)
    b = None if b is None else _f64(b)
    m_out, cg, r, _ = w.shape
    n, c, h, wd = x.shape
    group = c // cg
    at, gm, bt = winograd_matrices(r)
    mt, nt = at.shape              # outputs per tile side, points per side
    oh, ow = h + 2 * pad - r + 1, wd + 2 * pad - r + 1
    th, tw = -(-oh // mt), -(-ow // mt)
    hp, wp = mt * th + r - 1, mt * tw + r - 1

    def padded(a):
        p = np.zeros((n, c, hp, wp))
        hh, ww = min(h, hp - pad), min(wd, wp - pad)
        p[:, :, pad:pad + hh, pad:pad + ww] = a[:, :, :hh, :ww]
        return p

    d = _tiles(padded(x), nt, mt)
    bt2, at2 = bt * bt, at * at
    # input transform V = B^T d B: two passes of float32 sums with small integer weights
    k_bt = int((bt != 0).sum(axis=1).max())
    v1 = np.einsum("ij,nchwjk->nchwik", bt, d)
    v1_var = sum_variance(k_bt, np.einsum("ij,nchwjk->nchwik", bt2, d * d), v1)
    v = np.einsum("nchwik,lk->nchwil", v1, bt)
    v_var = (np.einsum("nchwik,lk->nchwil", v1_var, bt2)
             + sum_variance(k_bt, np.einsum("nchwik,lk->nchwil", v1 * v1, bt2), v))
    # filter transform U = G g G^T, exact in double, rounded to float32 once
    u = np.einsum("ij,mcjk,lk->mcil", gm, w, gm)
    u_var = U * U * u * u
    # channel sums of the products, per group and transform position (i, l):
    # M[n, m, tile, i, l] = sum_c U[m, c, i, l] V[n, c, tile, i, l], as batched products
    mg = m_out // group

    def by_position(a):            # (N, C, TH, TW, i, l) -> (i, l, C, N*TH*TW)
        return np.ascontiguousarray(a.transpose(4, 5, 1, 0, 2, 3)).reshape(nt, nt, a.shape[1], -1)

    def filters(a):                # (M, C, i, l) -> (i, l, M, C); contiguous, for BLAS
        return np.ascontiguousarray(a.transpose(2, 3, 0, 1))

    prod = np.empty((nt, nt, m_out, n * th * tw))
    prod_var = np.empty_like(prod)
    for gi in range(group):
        cs, ms = slice(gi * cg, (gi + 1) * cg), slice(gi * mg, (gi + 1) * mg)
        vs, vv = by_position(v[:, cs]), by_position(v_var[:, cs])
        us, uv = filters(u[ms]), filters(u_var[ms])
        total = us @ vs
        carried = (us * us) @ vv + uv @ (vs * vs)
        prod[:, :, ms] = total
        prod_var[:, :, ms] = carried + sum_variance(cg, (us * us) @ (vs * vs), total)

    def by_tile(a):                # (i, l, M, N*TH*TW) -> (N, M, TH, TW, i, l)
        return a.reshape(nt, nt, m_out, n, th, tw).transpose(3, 2, 4, 5, 0, 1)

    prod, prod_var = by_tile(prod), by_tile(prod_var)
    # output transform Y = A^T M A, then the bias
    k_at = int((at != 0).sum(axis=1).max())
    y1 = np.einsum("ij,nmhwjk->nmhwik", at, prod)
    y1_var = (np.einsum("ij,nmhwjk->nmhwik", at2, prod_var)
              + sum_variance(k_at, np.einsum("ij,nmhwjk->nmhwik", at2, prod * prod), y1))
    y = np.einsum("nmhwik,lk->nmhwil", y1, at)
    y_var = (np.einsum("nmhwik,lk->nmhwil", y1_var, at2)
             + sum_variance(k_at, np.einsum("nmhwik,lk->nmhwil", y1 * y1, at2), y))

    def untile(t):
        return t.transpose(0, 1, 2, 4, 3, 5).reshape(n, m_out, mt * th, mt * tw)[:, :, :oh, :ow]

    y, y_var = untile(y), untile(y_var) + conv64(var, w * w, None, pad=pad, group=group)
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1)
        y_var = y_var + U * U * y * y
    return y, y_var


def max_pool64(x, kernel, stride, pad):
    """Caffe's max pooling (refimpl.network.max_pool's windows) in float64."""
    from refimpl.network import reference as N
    n, c, h, w = x.shape
    oh, ow = N.pool_output_size(h, kernel, stride, pad), N.pool_output_size(w, kernel, stride, pad)
    need_h, need_w = (oh - 1) * stride + kernel, (ow - 1) * stride + kernel
    p = np.full((n, c, need_h, need_w), -np.inf)
    hh, ww = min(h, need_h - pad), min(w, need_w - pad)
    p[:, :, pad:pad + hh, pad:pad + ww] = x[:, :, :hh, :ww]
    out = np.full((n, c, oh, ow), -np.inf)
    for dy in range(kernel):
        for dx in range(kernel):
            np.maximum(out, p[:, :, dy:dy + stride * (oh - 1) + 1:stride,
                              dx:dx + stride * (ow - 1) + 1:stride], out=out)
    return out


def relu_variance(x, var):
    """ReLU: the error passes where the input may be positive; where the exact input is
    below -LAMBDA sigma the evaluation gives exactly 0, as the exact result does."""
    return np.maximum(x, 0), np.where(x < -LAMBDA * np.sqrt(var), 0.0, var)


@_one_blas_thread
def alexnet_variance(params, blob, names, winograd=False):
    """{Caffe blob name: (exact value, sigma^2 of one float32 evaluation)} for AlexNet on
    `blob` (exact float32 pixels), layer by layer as in section 3. Blobs are read as Caffe
    does (conv1 after relu1 and so on). winograd: conv2-5 as the C core's Winograd path."""
    from refimpl.network import reference as N
    last_writer = {"conv1": "relu1", "conv2": "relu2", "conv3": "relu3", "conv4": "relu4",
                   "conv5": "relu5", "fc6": "relu6", "fc7": "relu7"}
    wanted = {last_writer.get(name, name): name for name in names}
    x = _f64(blob)
    var = np.zeros_like(x)
    out = {}
    for layer, kind, cfg in N.ALEXNET_LAYERS:
        if kind == "conv":
            w, b = params[layer]
            if winograd and layer != "conv1":
                x, var = winograd_conv_variance(x, var, w, b, cfg["pad"])
            else:
                x, var = conv_variance(x, var, w, b, **cfg)
        elif kind == "relu":
            x, var = relu_variance(x, var)
        elif kind == "lrn":
            x, var, _ = lrn_variance(x, var, **cfg)
        elif kind == "pool":
            x, var = max_pool64(x, **cfg), max_pool64(var, **cfg)
        elif kind == "fc":
            x, var = inner_product_variance(x, var, *params[layer])
        if layer in wanted:
            out[wanted[layer]] = (x, var)
            if len(out) == len(wanted):
                return out
    return out


# The largest fraction of its bound each test used (test id -> what -> fraction), written
# by conftest at the end of the run when REFIMPL_TOLERANCE_REPORT names a file.
USED = {}


def _record(what, used, err=0.0, scale=0.0):
    """Keep the worst fraction of the bound, with the largest |error| and |value| seen."""
    import os
    test = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" (", 1)[0]
    old = USED.setdefault(test, {}).get(what, (0.0, 0.0, 0.0))
    USED[test][what] = (max(old[0], used), max(old[1], err), max(old[2], scale))


def assert_within(got, want, bound, what):
    """|got - want| <= bound element-wise, else a message with the worst element, its
    error, its bound and the worst error as a fraction of its bound. Returns that
    fraction (and records it, see USED)."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if want.ndim == 0:                       # a constant expected everywhere
        want = np.broadcast_to(want, got.shape)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    err = np.abs(got - want)
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), err.shape)
    excess = np.where(err > bound, err - bound, 0.0)
    if excess.any():
        worst = np.unravel_index(np.argmax(excess), err.shape)
        _record(what, float("inf"))
        raise AssertionError(f"{what}: {int((err > bound).sum())} of {err.size} elements "
                             f"beyond their bound; worst at {worst}: |diff| {err[worst]:.3g}, "
                             f"bound {bound[worst]:.3g}, value {want[worst]:.6g}")
    used = fraction_of_bound(err, bound)
    _record(what, used, float(err.max(initial=0.0)), float(np.abs(want).max(initial=0.0)))
    return used


def fraction_of_bound(err, bound):
    """max |err| / bound over the elements (0 where both are 0): how close a test came."""
    err = np.asarray(err, dtype=np.float64)
    bound = np.asarray(bound, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(err == 0, 0.0, err / bound)
    return float(frac.max()) if frac.size else 0.0


def alexnet_bound(params, blob, names, winograd=False):
    """{blob name: (exact, bound on |A - Caffe|)}: A our float32 forward (winograd: the C
    core's Winograd path for conv2-5), Caffe im2col + SGEMM."""
    ref = alexnet_variance(params, blob, names)
    side = alexnet_variance(params, blob, names, winograd=True) if winograd else ref
    return {k: (ref[k][0], statistical(side[k][1], ref[k][1])) for k in names}


def fc7_rel_to_max(bound, fc7):
    """The golden tolerance's measure: largest bound of each vector over its maximum."""
    bound = np.asarray(bound).reshape(len(fc7), -1)
    return (bound.max(axis=1) / np.abs(np.asarray(fc7)).reshape(len(fc7), -1).max(axis=1))




# --------------------------------------------------------------- EfficientNet-Lite0: 3.

def _bn_folded_variance(y, b, sq):
    """Extra sigma^2 where batch norm is folded (ours: each weight w * scale rounded once,
    a product rounding per term) or applied after the convolution (PyTorch: z - mean,
    times the scale, plus beta: roundings of |y - b|, of |y - b| again for the scale's
    own rounding, and of |y|). Both sides get it: one bound covers either evaluation."""
    return U * U * (sq + 4 * (y - b) ** 2 + y * y)


def _pointwise_variance(x, var, w, b):
    """1x1 convolution x @ w + b (NHWC) with batch norm folded: (y, sigma^2)."""
    w, b = _f64(w), _f64(b)
    y = x @ w + b
    sq = (x * x) @ (w * w) + b * b
    return y, var @ (w * w) + sum_variance(w.shape[0] + 1, sq, y) + _bn_folded_variance(y, b, sq)


def _relu6_variance(x, var):
    """ReLU6 = clip(x, 0, 6): the error passes where the input may lie inside (0, 6)."""
    sigma = LAMBDA * np.sqrt(var)
    dead = (x < -sigma) | (x > 6 + sigma)
    return np.clip(x, 0, 6), np.where(dead, 0.0, var)


def _depthwise64(net, x, w, k, s):
    n, h, wd, c = x.shape
    oh, rows = net._tap_ranges(h, k, s)
    ow, cols = net._tap_ranges(wd, k, s)
    out = np.zeros((n, oh, ow, c))
    for dy, (oy0, oy1, iy0, iy1) in enumerate(rows):
        for dx, (ox0, ox1, ix0, ix1) in enumerate(cols):
            out[:, oy0:oy1, ox0:ox1] += x[:, iy0:iy1:s, ix0:ix1:s] * w[dy, dx]
    return out


@_one_blas_thread
def efficientnet_variance(net, x, input_var=0.0):
    """{"head", "features", "logits"}: (exact value, sigma^2 of one float32 evaluation) of
    refimpl.network.efficientnet's network (or PyTorch's, with batch norm after each convolution)
    on the normalised NHWC input x, whose elements carry sigma^2 = input_var."""
    x = _f64(x)
    var = np.broadcast_to(_f64(input_var), x.shape)
    # stem: 3x3 stride 2 "same" convolution as a product over 27-element patches
    oh, ow = net._same_padding(x.shape[1], 3, 2)[0], net._same_padding(x.shape[2], 3, 2)[0]
    padded, pvar = _pad64(net, x, 3, 2), _pad64(net, var, 3, 2)

    def patches(a):
        p = np.empty((a.shape[0], oh, ow, 3, 3, a.shape[3]))
        for dy in range(3):
            for dx in range(3):
                p[:, :, :, dy, dx] = a[:, dy:dy + 2 * oh - 1:2, dx:dx + 2 * ow - 1:2]
        return p.reshape(a.shape[0], oh, ow, -1)

    v, var = _relu6_variance(*_pointwise_variance(patches(padded), patches(pvar), *net.stem))
    for layer in net.blocks:
        skip_v, skip_var = v, var
        if "expand" in layer:
            v, var = _relu6_variance(*_pointwise_variance(v, var, *layer["expand"]))
        w, b = (_f64(a) for a in layer["depthwise"])
        k, s = layer["k"], layer["stride"]
        y = _depthwise64(net, v, w, k, s) + b
        sq = _depthwise64(net, v * v, w * w, k, s) + b * b
        var = (_depthwise64(net, var, w * w, k, s) + sum_variance(k * k + 1, sq, y)
               + _bn_folded_variance(y, b, sq))
        v, var = _relu6_variance(y, var)
        v, var = _pointwise_variance(v, var, *layer["project"])
        if layer["skip"]:
            v = v + skip_v
            var = var + skip_var + U * U * v * v
    head, head_var = _relu6_variance(*_pointwise_variance(v, var, *net.head))
    cells = head.shape[1] * head.shape[2]
    feats = head.mean(axis=(1, 2))                      # a sum of `cells` terms, then / cells
    # The cells' errors are not independent: a rounded (folded) weight or a channel's batch
    # norm scale is the same at every position, and the head's outputs are all >= 0, so
    # such errors add up coherently in the mean. sigma of a sum is at most the sum of the
    # sigmas whatever the correlation (Minkowski), so that is what the mean carries.
    carried = np.sqrt(head_var).sum(axis=(1, 2)) / cells
    feats_var = (carried ** 2
                 + sum_variance(cells, (head ** 2).sum(axis=(1, 2)) / cells ** 2, feats)
                 + U * U * feats ** 2)
    w, b = (_f64(a) for a in net.fc)
    logits = feats @ w + b
    logits_var = (feats_var @ (w * w)
                  + sum_variance(w.shape[0] + 1, (feats ** 2) @ (w * w) + b * b, logits))
    return {"head": (head, head_var), "features": (feats, feats_var),
            "logits": (logits, logits_var)}


def _pad64(net, x, k, s):
    """net._pad (TensorFlow "same" zero padding) in float64."""
    n, h, w, c = x.shape
    _, top, bottom = net._same_padding(h, k, s)
    _, left, right = net._same_padding(w, k, s)
    out = np.zeros((n, h + top + bottom, w + left + right, c))
    out[:, top:top + h, left:left + w] = x
    return out
