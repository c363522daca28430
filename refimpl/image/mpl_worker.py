"""Draw spectrogram pictures with whatever matplotlib this interpreter has: the worker half
of refimpl.image.oracles.

It runs in the oracles' own environments (Python 3.6 with matplotlib 2.0.2 and numpy
1.13.3, as in 2017; or the project's Python with another matplotlib on its path), never
imports refimpl, and keeps to what Python 3.6, numpy 1.13 and matplotlib 2.0 have.

    python mpl_worker.py REQUEST.npz OUT_DIR

REQUEST.npz holds `signal_<i>` arrays and a JSON `jobs` string: a list of
{"rate", "nfft", "cmap", "fmax"}. For job i the worker writes OUT_DIR/<i>.png, drawn as
the DeepSpectrum toolkit drew it in 2017 (deep_spectrum_extractor/backend/
extract_deep_spectrum.py, plot_spectrograms): pyplot, a frameless 1 x 1 inch figure, one
axis-off Axes over all of it, plt.specgram with noverlap = nfft / 2, the x limits and the
y limits set to the image extent (the top lowered to fmax when given), savefig as PNG at
dpi = 227. Two things are pinned that the toolkit took from the defaults of its day: the
style (matplotlib's defaults, so no matplotlibrc changes a pixel) and the interpolation
'nearest' (2.0's default; from 3.2 on the default is 'antialiased').

Where the `imread` package and scikit-image are importable (the 2017 environment), the
worker also writes OUT_DIR/<i>.toolkit.npy: the picture as the toolkit handed it to
caffe.io.Transformer, i.e. imread_from_blob(png), skimage's img_as_float, float32, alpha
dropped. OUT_DIR/versions.json names the libraries that drew.
"""
import io
import json
import sys
import warnings

import numpy as np
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.style  # noqa: E402

SIZE = 227  # dpi of the 1 x 1 inch figure


def draw(signal, rate, nfft, cmap, fmax):
    with matplotlib.style.context("default"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig = plt.figure(frameon=False)
        fig.set_size_inches(1, 1)
        ax = plt.Axes(fig, [0., 0., 1., 1.])
        ax.set_axis_off()
        fig.add_axes(ax)
        with np.errstate(divide="ignore"):
            _, _, _, im = ax.specgram(signal, NFFT=nfft, noverlap=int(nfft / 2), Fs=rate,
                                      cmap=cmap)
        im.set_interpolation("nearest")
        extent = im.get_extent()
        ax.set_xlim([extent[0], extent[1]])
        ax.set_ylim([extent[2], fmax if fmax else extent[3]])
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=SIZE)
        plt.close("all")
    return buf.getvalue()


def toolkit_decoder():
    """imread + img_as_float as the 2017 toolkit decoded its PNG, or None."""
    try:   # the 2017 oracle's environment has them; the 3.11 one does not
        from imread import imread_from_blob
        from skimage.util.dtype import img_as_float
    except ImportError:
        return None

    def decode(png):
        img = img_as_float(imread_from_blob(png, "png")).astype(np.float32)
        return img[:, :, :-1]
    return decode


def versions(decoder):
    found = {"python": sys.version.split()[0], "numpy": np.__version__,
             "matplotlib": matplotlib.__version__}
    if decoder is not None:   # present where toolkit_decoder found them
        import imread
        import skimage
        found["imread"] = getattr(imread, "__version__", "?")
        found["scikit-image"] = skimage.__version__
    return found


def main(request, out_dir):
    data = np.load(request)
    jobs = json.loads(str(data["jobs"]))
    decoder = toolkit_decoder()
    with open(out_dir + "/versions.json", "w") as f:
        json.dump(versions(decoder), f)
    for i, job in enumerate(jobs):
        png = draw(np.asarray(data["signal_%d" % i], dtype=np.float64), job["rate"],
                   job["nfft"], job["cmap"], job["fmax"])
        with open("%s/%d.png" % (out_dir, i), "wb") as f:
            f.write(png)
        if decoder is not None:
            np.save("%s/%d.toolkit.npy" % (out_dir, i), decoder(png))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
