#!/usr/bin/env bash
# `pip install .` into a fresh virtual environment, then use the installed refimpl from a
# folder outside the checkout: extract two EmoDB files, verify fc7 against golden/, check
# the EmoDB counts. Proves the wheel carries what it needs (network definition, golden
# files, tables, compiled kernels). Usage: tools/install_check.sh [WORKDIR]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d /tmp/refimpl-install.XXXXXX)}
python=${PYTHON:-python3}
emodb=${REFIMPL_SHARED_DATA:-$(dirname "$repo")/shared/data}/emodb
mkdir -p "$work"
"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install -q --upgrade pip
# the exact pins of requirements.txt as constraints: the same versions as the checkout's
"$work/venv/bin/pip" install -q -c "$repo/requirements.txt" "$repo"
cd "$work"                       # nothing of the checkout on the path from here on
export REFIMPL_CACHE="$work/cache"
unset REFIMPL_CAFFE_PREFIX PYTHONPATH
bin="$work/venv/bin"
"$bin/python" -c "import refimpl, refimpl.network.cforward as c; assert c.available(), 'C core not built'; print('refimpl from', refimpl.__file__)"
files=("$emodb"/wav/*.wav)
"$bin/refimpl" extract "${files[@]:0:2}" -o "$work/two.csv" --backend c --weights synthetic:0 --no-progress
test "$(wc -l < "$work/two.csv")" -eq 3
"$bin/refimpl" golden verify --stage fc7
"$bin/refimpl" golden verify --stage fc7 --impl refimpl.network.cforward:golden_fc7
"$bin/refimpl" corpus check emodb --root "$emodb"
echo "install check: OK ($work)"
