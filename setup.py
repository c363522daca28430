"""Build the refimpl package and its compiled core.

Every Cython source csrc/NAME.pyx becomes the extension module refimpl.NAME, so a new
kernel needs no edit here. NumPy headers are added to each; OpenMP is used where a
module asks for it (EXTRA below).
"""
import glob
import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))

# Per-module extra flags: name -> (extra_compile_args, extra_link_args).
EXTRA = {
    "_forward": (["-fopenmp"], ["-fopenmp"]),
    "_boaw": (["-fopenmp"], ["-fopenmp"]),
}

BASE_CFLAGS = ["-O3", "-ffp-contract=off", "-fno-strict-aliasing"]


def extensions():
    exts = []
    for pyx in sorted(glob.glob(os.path.join("csrc", "*.pyx"))):
        name = os.path.splitext(os.path.basename(pyx))[0]
        cflags, ldflags = EXTRA.get(name, ([], []))
        exts.append(Extension(
            "refimpl." + name, [pyx],
            include_dirs=[numpy.get_include(), "csrc"],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            extra_compile_args=BASE_CFLAGS + cflags,
            extra_link_args=ldflags,
        ))
    return cythonize(exts, language_level=3, compiler_directives={
        "boundscheck": False, "wraparound": False, "cdivision": True})


def pins(requirements, only=None):
    """The pinned lines of a requirements file (all, or the packages named in `only`):
    optional extras keep the pins of the files `make` installs from."""
    with open(os.path.join(HERE, requirements)) as f:
        lines = [line.split("#")[0].strip() for line in f]
    return [line for line in lines
            if line and (only is None or line.split("==")[0].strip() in only)]


setup(
    name="refimpl",
    version="0.1.0",
    description="Reference implementation of deep spectrum features (Cummins et al., ACM MM 2017)",
    packages=find_packages(include=["refimpl", "refimpl.*"]),
    package_data={"refimpl": ["data/*", "*.py"]},
    ext_modules=extensions(),
    entry_points={"console_scripts": ["refimpl = refimpl.cli:main"]},
    python_requires=">=3.10",
    # torch: the PyTorch backend (refimpl.torch_backend); bench: the peers of the
    # benchmarks (refimpl.peers: ONNX Runtime, OpenVINO)
    extras_require={"torch": pins("requirements-torch.txt", only={"torch"}),
                    "bench": pins("requirements-bench.txt")},
)
