"""Stage 2, fast path: the spectrogram picture without matplotlib's figure, Agg and PNG.

`refimpl.image.spectrogram_image` draws the picture with matplotlib and stays the
reference. This module computes the very same 227 x 227 RGB pixels directly, by repeating
each step matplotlib takes for this one picture, in the same floating-point operations (a
pixel's colour is the floor of a scaled float, so one ulp of difference at a colour-table
boundary would change it), under either pixel rule (refimpl.image.options):

  1. PSD as mlab._spectral_helper computes it: Hann-windowed frames of NFFT samples every
     NFFT - noverlap, numpy's FFT, conj(X) * X, one-sided doubling, / Fs, / sum(window**2),
     all in complex128 with the same array layout as mlab (numpy's complex multiply uses
     fused multiply-add on some CPUs, so it is repeated, not re-derived);
  2. Axes.specgram: 10 * log10, flipped upside down; -inf (exact zero power) is masked;
  3. imshow's autoscaling and Normalize: vmin/vmax over the finite values,
     (Z - vmin) / (vmax - vmin), then Colormap: * 256, truncated to an index
     (256 -> 255), masked -> the "bad" colour, which is transparent;
  4. the colour: nearest-neighbour resampling picks whole data pixels, so a screen pixel
     is exactly one colour-table entry, converted to bytes by truncation:
     uint8(lut * 255) (3.10's 'rgba' interpolation stage and 2.0's 'data' stage give the
     same bytes here: both oracles agree). Transparent pixels keep Agg's canvas colour,
     white;
  5. which data pixel each screen pixel shows: the image-to-screen affine matrix built by
     the same chain of 3 x 3 products matplotlib's transforms compute (with numpy.dot,
     as they do), inverted as Agg inverts it, and sampled
       "2017"             as Agg's span_interpolator_linear does (matplotlib 2.0 to
                          3.10): each row's two ends rounded to 1/256 of a data pixel,
                          an integer dda2 line between them (_sample_indices_linear);
       "matplotlib-3.11"  on the flipped data, as accurate_interpolator_affine_nn does:
                          pixel centres, 1/256-pixel coordinates from a floating-point
                          interpolation along each row with a 1e-8 fudge (none on the
                          row's last pixel), truncated (_sample_indices_accurate);
     with reflection at the image borders.

Identity is tested, not assumed: against the installed matplotlib (tests/image/
test_fastimage*.py: synthetic signals, a hypothesis sweep, all 535 EmoDB files) and against
real matplotlib 2.0.2 and 3.11.2 in their own environments (tests/image/test_oracles.py,
refimpl.image.oracles). It is proven for the options the paper uses, NFFT=256 with
noverlap 128, any colour map matplotlib knows, fmax None or within (0, Fs/2]; other
options fall back to matplotlib (`render_image(..., renderer="auto")`, see
`fast_path_supported`).
"""
import functools

import numpy as np

from refimpl.image.options import (DEFAULT_OPTIONS, IMAGE_SIZE, PIXEL_RULES, PIXELS_2017,
                                   PIXELS_MPL311, ImageError, check_signal)

__all__ = ["spectrogram_image_fast", "fast_path_supported", "colour_table", "psd_complex",
           "psd_db", "spectrum_extent", "sample_indices", "dda2_positions"]

# Colour tables as matplotlib quantises them, by name: (uint8 table of N entries, N).
_LUTS = {}


def colour_table(cmap):
    """(N x 3 uint8 colours, N) of a matplotlib colour map, as its images show them.

    matplotlib's float RGBA table times 255, truncated: that is what
    Colorizer._pass_image_data does to the resampled RGBA float image."""
    if cmap not in _LUTS:
        import matplotlib  # slow to import: only where a picture or colour map needs it

        colormap = matplotlib.colormaps[cmap]
        # build _lut (N + 3 rows: the table, under, over, bad); 3.11 renamed the call
        if hasattr(colormap, "_ensure_inited"):
            colormap._ensure_inited()
        elif not colormap._isinit:
            colormap._init()
        lut = (colormap._lut[:colormap.N, :3] * 255).astype(np.uint8)
        # Only opaque tables with a fully transparent "bad" colour (every built-in map)
        # come out as table entries on a white canvas; others would need Agg's blending.
        if not (np.all(colormap._lut[:colormap.N, 3] == 1.0)
                and colormap._lut[colormap._i_bad, 3] == 0.0):
            raise ImageError(f"colour map {cmap!r}: the fast renderer only draws opaque "
                             f"colour maps whose 'bad' colour is transparent")
        _LUTS[cmap] = (np.ascontiguousarray(lut), colormap.N)
    return _LUTS[cmap]


def fast_path_supported(rate, options=DEFAULT_OPTIONS):
    """True where this renderer is proven pixel-identical to matplotlib's (see the
    module docstring); `render_image(renderer="auto")` uses matplotlib elsewhere."""
    if options.nfft != 256 or options.noverlap != 128 or not rate > 0:
        return False
    if options.fmax is not None and not (0 < options.fmax <= rate / 2):
        return False
    try:
        colour_table(options.cmap)
    except (KeyError, ImageError):
        return False
    return True


def _frames_spectrum(signal, nfft, noverlap):
    """numpy's FFT of the Hann-windowed frames, one row per frame (frames x nfft)."""
    x = np.ascontiguousarray(signal, dtype=np.float64)
    window = np.hanning(nfft) * np.ones(nfft, x.dtype)  # mlab.window_hanning(ones)
    # mlab transforms the columns of an (nfft, frames) view; one contiguous row per frame
    # gives the same numbers (numpy's pocketfft transforms one 1-D slice at a time) faster.
    frames = np.lib.stride_tricks.sliding_window_view(x, nfft)[::nfft - noverlap]
    if _kernel_mode() is None:
        return np.fft.fft(frames * window, n=nfft, axis=1), window
    _render = _render_kernel()
    # the same products, written straight into a complex buffer (numpy's FFT of real
    # input first converts it to complex with zero imaginary parts: same numbers)
    buffer = np.empty(frames.shape, np.complex128)
    _render.windowed_frames(x, window, nfft - noverlap, buffer)
    return np.fft.fft(buffer, n=nfft, axis=1, out=buffer), window


def _psd_numpy(spectrum, rate, window, n_freqs):
    """mlab's PSD steps, literally, on mlab's layout: C-contiguous (freqs, frames)."""
    result = np.ascontiguousarray(spectrum[:, :n_freqs].T)
    result = np.conj(result) * result
    result[1:-1] *= 2.0
    result /= rate
    result /= (window ** 2).sum()
    return result


def _psd_kernel(spectrum, rate, window, n_freqs, use_fma):
    out = np.empty((n_freqs, spectrum.shape[0]), np.complex128)
    _render_kernel().psd_columns(spectrum, out, float(rate), float((window ** 2).sum()),
                                 use_fma)
    return out


@functools.cache
def _render_kernel():
    """The compiled kernels of csrc/_render.pyx, or None when they are not built (then
    every step runs in NumPy, with the same pixels)."""
    try:
        from refimpl.image import _render   # optional: the NumPy paint gives the same pixels
    except ImportError:
        return None
    return _render


@functools.cache
def _kernel_mode():
    """How the compiled PSD kernel must multiply to equal numpy's conj(X) * X here:
    True (fused multiply-add, as numpy's AVX2/AVX-512 loops do), False (plain), or None
    (the kernel is not built, or neither variant reproduces numpy: use numpy)."""
    _render = _render_kernel()
    kernels = ("windowed_frames", "psd_columns")  # a stale build may lack them
    if _render is None or not all(hasattr(_render, f) for f in kernels):
        return None
    rng = np.random.default_rng(20170101)
    probe = rng.standard_normal((67, 256)) * 10.0 ** rng.uniform(-9, 3, (67, 1))
    spectrum, window = np.fft.fft(probe, axis=1), np.hanning(256)
    frames = np.empty((3, 256), np.complex128)
    line = probe.ravel()
    _render.windowed_frames(line, window, 64, frames)
    want = np.lib.stride_tricks.sliding_window_view(line, 256)[::64][:3] * window
    if not (np.array_equal(frames.real, want) and not frames.imag.any()):
        return None
    for use_fma in (True, False):
        if all(np.array_equal(_psd_kernel(spectrum, rate, window, 129, use_fma).real,
                              _psd_numpy(spectrum, rate, window, 129).real)
               for rate in (16000, 44100, 8000.5)):
            return use_fma
    return None


def psd_complex(signal, rate, nfft=256, noverlap=128):
    """mlab.specgram's complex `result` array (freqs x frames, C order) whose real part
    is the PSD, equal bit for bit (its imaginary part is not kept)."""
    spectrum, window = _frames_spectrum(signal, nfft, noverlap)
    n_freqs = nfft // 2 + 1
    mode = _kernel_mode()
    if mode is None:
        return _psd_numpy(spectrum, rate, window, n_freqs)
    return _psd_kernel(spectrum, rate, window, n_freqs, mode)


def psd_db(signal, rate, nfft=256, noverlap=128):
    """Axes.specgram's image data before flipping: 10*log10(PSD), freqs x frames.

    log10 runs on the real part of a complex array, as in matplotlib, so numpy takes the
    same (strided) loop; -inf where the power is exactly zero."""
    with np.errstate(divide="ignore"):
        return 10. * np.log10(psd_complex(signal, rate, nfft, noverlap).real)


def _scale(m, sx, sy):  # Affine2D.scale: rows multiplied in place
    m[0] *= sx
    m[1] *= sy
    return m


def _translate(m, tx, ty):  # Affine2D.translate
    m[0, 2] += tx
    m[1, 2] += ty
    return m


def _scale_translate(sx, sy, tx, ty):  # Affine2D().scale(sx, sy).translate(tx, ty)
    return _translate(_scale(np.identity(3), sx, sy), tx, ty)


def _translate_scale(tx, ty, sx, sy):  # Affine2D().translate(tx, ty).scale(sx, sy)
    return _scale(_translate(np.identity(3), tx, ty), sx, sy)


def _affine_matrix(width, height, extent, ylim, size=IMAGE_SIZE):
    """The 3 x 3 matrix matplotlib (up to 3.10) hands to _image.resample for this
    picture: data pixel (column, row) of the RGBA array -> screen pixel. Mirrors
    _ImageBase._make_image (origin 'upper'), each Affine2D built element by element as
    Affine2D.scale/translate do, each composite as numpy.dot. 3.11 flips it once more
    for 'nearest' (_flip_for_nearest)."""
    xmin, xmax, ymin, ymax = extent
    vx0, vx1 = xmin, xmax
    vy0, vy1 = ylim

    # transData = transScale (identity) + (transLimits + transAxes)
    inw, inh = vx1 - vx0, vy1 - vy0
    x_scale, y_scale = 1.0 / inw, 1.0 / inh
    limits = np.array([[x_scale, 0.0, -vx0 * x_scale],
                       [0.0, y_scale, -vy0 * y_scale],
                       [0.0, 0.0, 1.0]])
    axes = np.array([[float(size), 0.0, 0.0], [0.0, float(size), 0.0], [0.0, 0.0, 1.0]])
    data = np.dot(np.dot(axes, limits), np.identity(3))

    # in_bbox = the extent; out_bbox = its corners through transData, clipped to the axes
    in_x0, in_y0, in_w, in_h = xmin, ymin, xmax - xmin, ymax - ymin
    corners = np.array([[xmin, ymin], [xmax, ymin], [xmin, ymax], [xmax, ymax]])
    # TransformedBbox: the four corners through the affine (x*a + y*c + e, as in C)
    pts = np.column_stack([corners[:, 0] * data[0, 0] + corners[:, 1] * data[0, 1] + data[0, 2],
                           corners[:, 0] * data[1, 0] + corners[:, 1] * data[1, 1] + data[1, 2]])
    ox0, ox1 = min(pts[:, 0]), max(pts[:, 0])
    oy0, oy1 = min(pts[:, 1]), max(pts[:, 1])
    cx0, cy0 = max(ox0, 0.0), max(oy0, 0.0)
    cx1, cy1 = min(ox1, float(size)), min(oy1, float(size))
    mx0 = np.floor(cx0 + 0.5)
    my0 = np.ceil(cy0 - 0.5 - 1e-8)
    mx1 = np.floor(cx1 + 0.5 + 1e-8)
    my1 = np.ceil(cy1 - 0.5)
    if (mx0, my0, mx1, my1) != (0.0, 0.0, float(size), float(size)):
        raise ImageError("the image does not fill the axes; the fast renderer only "
                         "draws pictures that do")

    flip_rows = _translate_scale(0, -height, 1, -1)  # origin 'upper'
    bbox = _scale_translate(in_w / width, in_h / height, in_x0, in_y0)
    t0 = np.dot(np.dot(data, bbox), flip_rows)
    return np.dot(_scale_translate(1.0, 1.0, -mx0, -my0), t0)


def _flip_for_nearest(t, width, height):
    """matplotlib 3.11's _resample for 'nearest' (origin 'upper'): the data is flipped
    left-right, then up-down, and the transform with it, so that an exact tie between
    two source pixels goes to the lower one. Earlier versions hand t to Agg as it is."""
    t = np.dot(t, _translate_scale(-width, 0, -1, 1))
    return np.dot(t, _translate_scale(0, -height, 1, -1))


def _agg_invert(m):
    """agg::trans_affine::invert, operation by operation."""
    sx, shx, tx = m[0]
    shy, sy, ty = m[1]
    d = 1.0 / (sx * sy - shy * shx)
    t0 = sy * d
    sy = sx * d
    shy = -shy * d
    shx = -shx * d
    t4 = -tx * t0 - ty * shx
    ty = -tx * shy - ty * sy
    sx = t0
    tx = t4
    return sx, shx, tx, shy, sy, ty


def _reflect(v, size):
    """agg::wrap_mode_reflect: index v mirrored into [0, size)."""
    v = np.mod(v, 2 * size)
    return np.where(v >= size, 2 * size - v - 1, v)


def sample_indices(width, height, extent, ylim, size=IMAGE_SIZE, pixels=PIXELS_2017):
    """Which data pixel each screen pixel shows, as Agg's nearest-neighbour resampling
    picks it under the pixel rule `pixels`: (columns[size], rows_main[size],
    rows_last[size]) indices into the array handed to Agg (for "matplotlib-3.11" the
    flipped one), where screen row y (upwards) of screen column x < size-1 shows
    rows_main[y] and the last column shows rows_last[y]."""
    if pixels == PIXELS_2017:
        return _sample_indices_linear(width, height, extent, ylim, size)
    if pixels == PIXELS_MPL311:
        return _sample_indices_accurate(width, height, extent, ylim, size)
    raise ImageError(f"unknown pixel rule {pixels!r}; choose from {', '.join(PIXEL_RULES)}")


def _inverse_without_shear(matrix):
    sx, shx, tx, shy, sy, ty = _agg_invert(matrix)
    if shx != 0.0 or shy != 0.0:  # products of axis-aligned matrices: cannot happen
        raise ImageError("sheared image transform; the fast renderer cannot draw it")
    return sx, shx, tx, shy, sy, ty


def _iround(v):
    """agg::iround: round half away from zero, then C's truncating int()."""
    v = np.asarray(v, dtype=np.float64)
    return np.trunc(np.where(v < 0.0, v - 0.5, v + 0.5)).astype(np.int64)


def dda2_positions(first, last, count):
    """agg::dda2_line_interpolator(first, last, count) (the 'forward-adjusted line'),
    its value at steps 0 .. count-1, in closed form: Agg steps an integer Bresenham
    line (lft = (last - first) / count and rem = (last - first) % count, as C truncates,
    moved to 0 < rem <= count; each step adds lft plus 1 when the accumulated rem
    overflows count), which after i steps has added i * lft + ceil(rem * (i+1) / count) - 1.
    tests/image/test_oracles.py runs Agg's loop itself against this."""
    d = int(last) - int(first)
    lft = abs(d) // count * (1 if d >= 0 else -1)   # C division truncates toward zero
    rem = d - lft * count
    if rem <= 0:
        rem += count
        lft -= 1
    i = np.arange(count, dtype=np.int64)
    return int(first) + i * lft + (rem * (i + 1) + count - 1) // count - 1


def _sample_indices_linear(width, height, extent, ylim, size):
    """matplotlib 2.0 to 3.10: agg::span_interpolator_linear<trans_affine, 8>. Each
    screen row is one span of `size` pixels starting at x = 0; begin() transforms the
    first pixel's centre (0.5, y + 0.5) and the point `size` pixels to its right (not the
    last centre) by the inverted matrix, rounds both to 1/256 of a data pixel (iround),
    and the pixels in between step along an integer dda2 line. Data pixel = >> 8.
    So a position within 1/512 of a pixel below a cell boundary rounds up into the next
    cell: the pixels that 3.11's floating-point interpolator gives the cell below."""
    sx, shx, tx, shy, sy, ty = _inverse_without_shear(
        _affine_matrix(width, height, extent, ylim, size))
    x0, x1 = 0.0 + 0.5, 0.0 + 0.5 + size
    ys = np.arange(size, dtype=np.float64) + 0.5
    # trans_affine::transform: x' = x * sx + y * shx + tx; y' = x * shy + y * sy + ty.
    # Without shear (shx = shy = 0) every row has the same x line and each row's y is
    # constant along its span, so one x line and one y per row are all there is.
    first_x = int(_iround((x0 * sx + 0.5 * shx + tx) * 256))
    last_x = int(_iround((x1 * sx + 0.5 * shx + tx) * 256))
    rows_y = _iround((x0 * shy + ys * sy + ty) * 256)
    columns = _reflect(dda2_positions(first_x, last_x, size) >> 8, width)
    rows = _reflect(rows_y >> 8, height)
    return columns, rows, rows


def _sample_indices_accurate(width, height, extent, ylim, size):
    """matplotlib 3.11: accurate_interpolator_affine_nn (src/agg_workaround.h) on the
    transform _resample flipped for 'nearest' (_flip_for_nearest)."""
    sx, shx, tx, shy, sy, ty = _inverse_without_shear(_flip_for_nearest(
        _affine_matrix(width, height, extent, ylim, size), width, height))
    length = size  # each screen row is one span from x = 0 to size - 1
    last = float(length - 1)
    xs = np.arange(size, dtype=np.float64)
    # the interpolator transforms the span's first and last pixel centres ...
    x_begin, x_end = 0.0 + 0.5, 0.0 + 0.5 + last
    stx1 = (x_begin * sx + 0.5 * shx + tx) * 256  # y term is +-0 (no shear)
    stx2 = (x_end * sx + 0.5 * shx + tx) * 256
    # ... and interpolates linearly between them, in doubles, truncating
    sub_x = np.trunc(stx1 + (stx2 - stx1) * xs / last + 1e-8)
    sub_x[-1] = np.trunc(stx2)
    columns = _reflect(np.floor_divide(sub_x.astype(np.int64), 256), width)
    ys = np.arange(size, dtype=np.float64) + 0.5
    sty1 = (x_begin * shy + ys * sy + ty) * 256
    sty2 = (x_end * shy + ys * sy + ty) * 256
    rows_main = _reflect(np.floor_divide(np.trunc(sty1 + (sty2 - sty1) * 0.0 / last + 1e-8)
                                         .astype(np.int64), 256), height)
    rows_last = _reflect(np.floor_divide(np.trunc(sty2).astype(np.int64), 256), height)
    return columns, rows_main, rows_last


def spectrum_extent(n_samples, rate, nfft=256, noverlap=128):
    """Axes.specgram's image extent (xmin, xmax, fmin, fmax), computed as it does."""
    freqs = np.fft.fftfreq(nfft, 1 / rate)[:nfft // 2 + 1]
    if not nfft % 2:
        freqs[-1] *= -1
    freqs += 0  # Fc
    t = np.arange(nfft / 2, n_samples - nfft / 2 + 1, nfft - noverlap) / rate
    pad_xextent = (nfft - noverlap) / rate / 2
    return (np.min(t) - pad_xextent, np.max(t) + pad_xextent, freqs[0], freqs[-1])


def spectrogram_image_fast(signal, rate, options=DEFAULT_OPTIONS, name=""):
    """Signal -> 227 x 227 x 3 uint8 RGB, the same pixels as
    refimpl.image.spectrogram_image, without matplotlib's drawing.

    Raises ImageError for signals check_signal refuses and for options outside
    fast_path_supported."""
    check_signal(signal, options.nfft, name)
    if not fast_path_supported(rate, options):
        raise ImageError(f"{name or '<signal>'}: the fast renderer does not support "
                         f"{options} at {rate} Hz; use renderer='matplotlib' or 'auto'")
    lut, _ = colour_table(options.cmap)
    z = psd_db(signal, rate, options.nfft, options.noverlap)
    height, width = z.shape
    extent = spectrum_extent(len(signal), rate, options.nfft, options.noverlap)
    top = extent[3] if options.fmax is None else float(options.fmax)
    columns, rows_main, rows_last = _screen_samples(width, height, extent, (extent[2], top),
                                                    options.pixels)
    _render = _render_kernel()
    if _render is None:
        return _paint_numpy(z, columns, rows_main, rows_last, lut)
    vmin, vmax, any_finite = _render.finite_range(z)
    image = np.empty((IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    if not any_finite:  # every value masked: matplotlib draws nothing on the white canvas
        image.fill(255)
        return image
    return np.asarray(_render.paint(z, columns, rows_main, rows_last, lut, vmin, vmax, image))


@functools.lru_cache(maxsize=4096)
def _screen_samples_cached(width, height, extent, ylim, pixels):
    columns, rows_main, rows_last = sample_indices(width, height, extent, ylim,
                                                   pixels=pixels)
    if pixels == PIXELS_MPL311:
        # specgram's flipud and _resample's two flips: Agg's data pixel (row r, column c)
        # is z[r, width - 1 - c] of the unflipped psd_db array
        arrays = (width - 1 - columns, rows_main, rows_last)
    else:
        # specgram's flipud alone: Agg's (r, c) is z[height - 1 - r, c]
        arrays = (columns, height - 1 - rows_main, height - 1 - rows_last)
    result = tuple(np.ascontiguousarray(a, dtype=np.intp) for a in arrays)
    for a in result:
        a.flags.writeable = False
    return result


def _screen_samples(width, height, extent, ylim, pixels):
    return _screen_samples_cached(int(width), int(height), tuple(map(float, extent)),
                                  tuple(map(float, ylim)), pixels)


def _paint_numpy(z, columns, rows_main, rows_last, lut):
    """NumPy version of _render.paint (used when the extension is not built)."""
    finite = z[np.isfinite(z)]
    image = np.full((IMAGE_SIZE, IMAGE_SIZE, 3), 255, np.uint8)
    if finite.size == 0:
        return image
    vmin, vmax = finite.min(), finite.max()
    n_colours = len(lut)
    picked = np.empty((IMAGE_SIZE, IMAGE_SIZE))
    picked[:, :-1] = z[rows_main[:, None], columns[None, :-1]]
    picked[:, -1] = z[rows_last, columns[-1]]
    masked = ~np.isfinite(picked)
    if vmin == vmax:
        index = np.zeros(picked.shape, np.intp)
    else:
        with np.errstate(invalid="ignore"):
            scaled = picked - vmin
            scaled /= (vmax - vmin)
            scaled *= n_colours
            scaled[scaled == n_colours] = n_colours - 1
            index = scaled.astype(np.intp)
        index[masked] = 0
    image[:] = lut[index]
    image[masked] = 255
    return np.ascontiguousarray(image[::-1])
