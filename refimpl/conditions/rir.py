"""The noisy condition's room impulse response, pyroomacoustics' bits, several times faster.

`shoebox_rir(params, fs)` returns what pyroomacoustics 0.10 computes for one
omnidirectional source and microphone in a shoebox room with flat absorption and no air
absorption (Room.compute_rir -> simulation/ism.compute_ism_rir -> libroom's image sources
and rir_builder -> its high-pass filter), equal array for equal array, not merely close:
tests/conditions/test_rir.py compares it with pyroomacoustics' own compute_rir, image
sources and rir_builder. What changes is the organisation:

- an image's coordinate and wall factors along one axis depend only on that axis's
  reflection index, so they are tabulated per index and gathered (libroom builds an object
  per image, which is most of compute_rir's time in our rooms: orders 40-90, 0.1-1 M
  images);
- a compiled builder (csrc/_rir.pyx, _rir_kernels.h -> refimpl.conditions._rir) makes the
  arrival times and amplitudes and adds the fractional-delay sincs with the same float32
  operations in the same order. It proves itself once per process against libroom and
  numpy; where it is not built or disagrees, numpy and libroom.rir_builder do
  the same arithmetic.

Threads: libroom's rir_builder splits the images over `num_threads` threads and adds the
per-thread float32 partial sums, so the last bits of pyroomacoustics' RIR depend on the
thread count, whose default is os.cpu_count() (the PRA_NUM_THREADS variable sets it;
OMP_NUM_THREADS does not). RIR_THREADS = 1 here, on every machine: the response is the
same everywhere, and parallelism comes from worker processes over files instead.
"""
import math
import warnings

import numpy as np
from scipy.signal import sosfiltfilt

from refimpl._util.native import import_kernel
from refimpl.errors import KernelWarning, MissingDependency

# pyroomacoustics is imported inside the functions that use it: a heavy import that only
# simulating a room needs (importing refimpl.conditions does not).

__all__ = ["shoebox_rir", "shoebox_images", "pyroomacoustics_rir", "RIR_THREADS"]

# One thread: the bits do not depend on the machine's core count (see the module's note).
RIR_THREADS = 1


def _room(params):
    dims = [params["room_length_m"], params["room_width_m"], params["room_height_m"]]
    source = [params["source_x_m"], params["source_y_m"], params["source_z_m"]]
    mic = [params["mic_x_m"], params["mic_y_m"], params["mic_z_m"]]
    return dims, source, mic


def pyroomacoustics_rir(params, fs, num_threads=RIR_THREADS):
    """The reference: pyroomacoustics' ShoeBox.compute_rir of the drawn room (absorption and
    image-source order from the RT60 by Sabine's formula), its builder on `num_threads`
    threads. Returns (rir float64, wall absorption, image-source order)."""
    import pyroomacoustics as pra
    dims, source, mic = _room(params)
    absorption, max_order = pra.inverse_sabine(params["rt60_s"], dims)
    room = pra.ShoeBox(dims, fs=fs, materials=pra.Material(absorption), max_order=max_order)
    room.add_source(source)
    room.add_microphone(mic)
    before = pra.constants.get("num_threads")
    pra.constants.set("num_threads", int(num_threads))
    try:
        room.compute_rir()
    finally:
        pra.constants.set("num_threads", before)
    return np.asarray(room.rir[0][0], dtype=np.float64), float(absorption), int(max_order)


def _lattice(order):
    """Reflection indices (3 x n) of the image sources: the points of the L1 ball of radius
    `order`, z outermost and x innermost, the order in which libroom walks them."""
    k = np.arange(-order, order + 1)
    z = np.repeat(k, 2 * (order - np.abs(k)) + 1)
    y = np.concatenate([np.arange(-(order - abs(i)), order - abs(i) + 1) for i in k])
    x_max = order - np.abs(y) - np.abs(z)
    run = 2 * x_max + 1
    x = np.arange(run.sum()) - np.repeat(np.cumsum(run) - run, run) - np.repeat(x_max, run)
    return np.stack([x, np.repeat(y, run), np.repeat(z, run)]).astype(np.int32)


def _axis_tables(dims, source, order, absorption):
    """Per axis and reflection index k in -order..order: the image's coordinate and its two
    wall factors, float32 with libroom's arithmetic (Room::image_source_shoebox): coordinate
    k * size + (size - source if k is odd else source); factors sqrt(1 - absorption) to the
    number of reflections off the axis's lower ('west') and upper ('east') wall, as repeated
    products like libroom's, not pow()."""
    size = np.asarray(dims, dtype=np.float32)
    src = np.asarray(source, dtype=np.float32)
    k = np.arange(-order, order + 1)
    a = np.abs(k)
    coord = [(k.astype(np.float32) * size[d]
              + np.where(a % 2 == 1, size[d] - src[d], src[d]).astype(np.float32))
             for d in range(3)]
    power = np.ones(order + 1, dtype=np.float32)
    if order > 0:
        power[1] = np.sqrt(np.float32(1.0) - np.float32(absorption))
    for i in range(2, order + 1):
        power[i] = power[i - 1] * power[1]
    west = power[np.where(k > 0, a // 2, (a + 1) // 2)]
    east = power[np.where(k > 0, (a + 1) // 2, a // 2)]
    return coord, west, east


def _attenuation(index, west, east, order):
    # libroom multiplies an image's attenuation (1 at first) by west then east factor,
    # axis by axis: the same float32 products in the same order.
    att = np.ones(index.shape[1], dtype=np.float32)
    for d in range(3):
        att *= west[index[d] + order]
        att *= east[index[d] + order]
    return att


def shoebox_images(dims, source, max_order, absorption):
    """Image sources (3 x n, float32) and attenuations (n, float32) of a shoebox room, equal
    to libroom's own, from the per-axis tables."""
    order = int(max_order)
    index = _lattice(order)
    coord, west, east = _axis_tables(dims, source, order, absorption)
    images = np.stack([coord[d][index[d] + order] for d in range(3)])
    return images, _attenuation(index, west, east, order)


_KERNEL = []      # per process: the compiled builder if built and agreeing, else None


def _kernel():
    """The compiled builder, once it has shown on this machine that it gives libroom's and
    numpy's bits; None if it is not built or does not."""
    if not _KERNEL:
        try:
            kernel = import_kernel("refimpl.conditions._rir")
        except MissingDependency:
            kernel = None
        if kernel is not None and not _kernel_agrees(kernel):
            warnings.warn("refimpl.conditions._rir differs from pyroomacoustics on this "
                          "machine; the room simulation uses the slower exact path",
                          KernelWarning)
            kernel = None
        _KERNEL.append(kernel)
    return _KERNEL[0]


def _kernel_agrees(kernel):
    from pyroomacoustics import libroom
    rng = np.random.default_rng(12345)
    times = rng.uniform(0.003, 0.5, 3000).astype(np.float32)
    alphas = rng.standard_normal(3000).astype(np.float32)
    ours, theirs = np.zeros(8200, np.float32), np.zeros(8200, np.float32)
    kernel.rir_builder(ours, times, alphas, 16000, 81, 20)
    libroom.rir_builder(theirs, times, alphas, 16000, 81, 20, 1)
    params = {"room_length_m": 3.1, "room_width_m": 2.9, "room_height_m": 2.7,
              "rt60_s": 0.15, "source_x_m": 1.2, "source_y_m": 1.7, "source_z_m": 1.1,
              "mic_x_m": 2.3, "mic_y_m": 0.8, "mic_z_m": 1.6}
    return (np.array_equal(ours, theirs)
            and all(np.array_equal(x, y) for x, y in zip(_image_arrivals(params, 16000, kernel),
                                                         _image_arrivals(params, 16000, None))))


def _image_arrivals(params, fs, kernel):
    """(arrival times float32, amplitudes float32, largest float64 time) of every image
    source, as pyroomacoustics' compute_ism_rir hands them to its rir_builder."""
    import pyroomacoustics as pra
    dims, source, mic = _room(params)
    absorption, max_order = pra.inverse_sabine(params["rt60_s"], dims)
    order = int(max_order)
    mic = np.array(mic, dtype=np.float64)
    coord, west, east = _axis_tables(dims, source, order, absorption)
    # Distances in float64, summed over the axes in axis order as numpy's sum(axis=0) in
    # pyroomacoustics does; each axis's squared offset is tabulated per reflection index.
    square = [(coord[d].astype(np.float64) - mic[d]) ** 2 for d in range(3)]
    c = pra.constants.get("c")
    delay = (pra.constants.get("frac_delay_length") // 2) / fs
    if kernel is not None:
        return kernel.images(order, square, (west,) * 3, (east,) * 3, c, delay)
    index = _lattice(order)
    dist = square[0][index[0] + order]
    dist += square[1][index[1] + order]
    dist += square[2][index[2] + order]
    dist = np.sqrt(dist)
    arrival = dist / c
    arrival += delay
    amplitude = _attenuation(index, west, east, order) / dist
    return arrival.astype(np.float32), amplitude.astype(np.float32), float(arrival.max())


def shoebox_rir(params, fs, num_threads=RIR_THREADS, compiled=True):
    """pyroomacoustics_rir(params, fs, num_threads), bit for bit, faster; with
    compiled=False (or where the compiled builder is not built) numpy and libroom do the
    same arithmetic. Returns (rir float64, wall absorption, image-source order)."""
    import pyroomacoustics as pra
    from pyroomacoustics import libroom
    from pyroomacoustics.utilities import design_highpass_filter_sos
    dims = [params["room_length_m"], params["room_width_m"], params["room_height_m"]]
    absorption, max_order = pra.inverse_sabine(params["rt60_s"], dims)
    kernel = _kernel() if compiled else None
    times, alphas, t_max = _image_arrivals(params, fs, kernel)
    fdl = pra.constants.get("frac_delay_length")
    lut_gran = pra.constants.get("sinc_lut_granularity")
    length = int(math.ceil(t_max * fs + fdl // 2 + 1)) + 1
    built = np.zeros(length, dtype=np.float32)
    if kernel is not None and int(num_threads) == 1:
        kernel.rir_builder(built, times, alphas, fs, fdl, lut_gran)
    else:
        libroom.rir_builder(built, times, alphas, fs, fdl, lut_gran, int(num_threads))
    # compute_ism_rir adds the built response into a zeroed float32 array (0 + x keeps x,
    # except -0.0, which becomes +0.0: the same step, the same bits)
    rir = np.zeros(length, dtype=np.float32)
    rir += built
    if pra.constants.get("rir_hpf_enable"):
        sos = design_highpass_filter_sos(fs, pra.constants.get("rir_hpf_fc"),
                                         **pra.constants.get("rir_hpf_kwargs"))
        rir = np.ascontiguousarray(sosfiltfilt(sos, rir))
    return np.asarray(rir, dtype=np.float64), float(absorption), int(max_order)
