"""Build the refimpl package and its compiled core.

The kernels of csrc/ become extension modules beside the stage they serve (KERNELS below),
with NumPy's headers; OpenMP is used where a kernel asks for it. csrc/ names its files
by extension module: _NAME.pyx (the Cython wrapper), _NAME_kernels.h (C it includes:
declarations, or static functions compiled into the wrapper's translation unit),
_NAME_kernels.c (C compiled as a translation unit of its own and linked in), _NAME_*.h
(other included C, e.g. generated tables). The C that Cython makes of each .pyx goes
to build/cython/, out of the source tree. The repository's top-level
weights/ and golden/ folders travel in the wheel as package data (refimpl/_assets/), so an
installed refimpl finds its network definitions and golden files without a checkout
(refimpl._util.locations). Build requirements are declared in pyproject.toml.
"""
import os
import shutil

import numpy
from Cython.Build import cythonize
from setuptools import Extension, find_namespace_packages, setup
from setuptools.command.build_py import build_py

# csrc/NAME.pyx (+ csrc/NAME_kernels.c where there is one) -> (extension module, uses OpenMP)
KERNELS = {
    "_forward": ("refimpl.network._forward", True),
    "_render": ("refimpl.image._render", False),
    "_boaw": ("refimpl.baselines._boaw", True),
    "_rir": ("refimpl.conditions._rir", False),
    "_sgd": ("refimpl.protocol._sgd", False),
}

BASE_CFLAGS = ["-O3", "-ffp-contract=off", "-fno-strict-aliasing"]
ASSETS = ("weights", "golden")
CYTHON_BUILD_DIR = os.path.join("build", "cython")


def extensions():
    exts = []
    for name, (module, openmp) in KERNELS.items():
        omp = ["-fopenmp"] if openmp else []
        sources = [os.path.join("csrc", name + ".pyx")]
        own_unit = os.path.join("csrc", name + "_kernels.c")
        if os.path.exists(own_unit):
            sources.append(own_unit)
        exts.append(Extension(
            module, sources,
            include_dirs=[numpy.get_include(), "csrc"],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            extra_compile_args=BASE_CFLAGS + omp,
            extra_link_args=omp,
        ))
    return cythonize(exts, language_level=3, build_dir=CYTHON_BUILD_DIR, compiler_directives={
        "boundscheck": False, "wraparound": False, "cdivision": True})


class build_py_with_assets(build_py):
    """Also copy weights/ and golden/ into the built package as refimpl/_assets/."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):  # editable: read from the checkout
            return
        for name in ASSETS:
            target = os.path.join(self.build_lib, "refimpl", "_assets", name)
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(name, target)


setup(
    # namespace packages too, so that refimpl/data/ (tables, configs) is package data
    packages=find_namespace_packages(include=["refimpl", "refimpl.*"],
                                     exclude=["*.__pycache__"]),
    package_data={"refimpl.data": ["*"]},
    ext_modules=extensions(),
    cmdclass={"build_py": build_py_with_assets},
)
