#!/bin/sh
# The matplotlib oracles of the image stage (refimpl/image/oracles.py), each in its own
# folder under DEST, without touching the project's venv:
#   DEST/matplotlib-2.0.2/    a venv of Python 3.6 with requirements-mpl2017.txt (2017)
#   DEST/matplotlib-3.11.2/   matplotlib 3.11.2 alone (pip --target), put on the project
#                             Python's path by the oracle client; its dependencies are
#                             the venv's own
# Python 3.6: $REFIMPL_PYTHON36, else python3.6 on PATH, else pyenv's (any 3.6.x). Where
# there is none the 2017 oracle is not installed (its tests skip by name; under
# REFIMPL_REQUIRE they fail) and this says how to get one.
#
# Usage: tools/install_mpl_oracles.sh DEST PYTHON      (PYTHON: the project venv's python)
# Idempotent: a finished oracle (its .complete) is left alone.
set -eu
DEST=${1:?usage: install_mpl_oracles.sh DEST PYTHON}
PY=${2:?usage: install_mpl_oracles.sh DEST PYTHON}
HERE=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$DEST"

works36() {  # a Python that runs and is 3.6 (pyenv's shims exist but may refuse)
    [ -n "$1" ] && [ -x "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 6))' 2>/dev/null
}

find_python36() {
    root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
    for p in "${REFIMPL_PYTHON36:-}" "$(command -v python3.6 2>/dev/null || true)" \
             "$root"/versions/3.6*/bin/python3.6; do
        works36 "$p" && { echo "$p"; return; }
    done
    return 0
}

OLD=$DEST/matplotlib-2.0.2
if [ ! -e "$OLD/.complete" ]; then
    PY36=$(find_python36)
    if [ -z "$PY36" ]; then
        echo "oracles: no Python 3.6 found, so matplotlib 2.0.2 (the 2017 image oracle) is not"
        echo "  installed; get one with 'pyenv install 3.6.15' (or set REFIMPL_PYTHON36) and"
        echo "  run 'make oracles' again."
    else
        # built where it stays (a venv records its path); .complete marks it finished
        rm -rf "$OLD"
        "$PY36" -m venv "$OLD"
        # official wheels only: a source build would not be the 2017 binary
        "$OLD/bin/python" -m pip install -q --disable-pip-version-check \
            --only-binary :all: --no-deps -r "$HERE/requirements-mpl2017.txt"
        "$OLD/bin/python" -c 'import matplotlib, numpy, imread, skimage.util.dtype; print("oracles: matplotlib", matplotlib.__version__, "numpy", numpy.__version__, "on Python 3.6 works")'
        touch "$OLD/.complete"
    fi
fi

NEW=$DEST/matplotlib-3.11.2
if [ ! -e "$NEW/.complete" ]; then
    rm -rf "$NEW.partial"
    "$PY" -m pip install -q --disable-pip-version-check --no-deps --only-binary :all: \
        --target "$NEW.partial" matplotlib==3.11.2
    touch "$NEW.partial/.complete"
    rm -rf "$NEW"
    mv "$NEW.partial" "$NEW"
    echo "oracles: matplotlib 3.11.2 in $NEW"
fi
