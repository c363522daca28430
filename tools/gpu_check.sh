#!/usr/bin/env bash
# The PyTorch backend on a GPU, in one short run (a few minutes), report under $OUT:
#   1. builds the C core with this machine's python3 (setup.py build_ext, all cores);
#   2. `refimpl golden verify --stage fc7 --impl refimpl.network.torch_backend:golden_fc7` with
#      REFIMPL_TORCH_DEVICE=$DEVICE (the golden fc7 came from real Caffe);
#   3. tests/network/test_torch_backend.py, whose every-blob and golden tests also run on cuda
#      where PyTorch sees a GPU;
#   4. throughput at batch 1/32/256: the torch backend on $DEVICE vs the C core on the
#      CPUs (tools/torch_throughput.py).
#
# On the device machine (no network: it uses the image's python3, torch, numpy, scipy,
# Cython, pytest and hypothesis; nothing is installed):
#     bash tools/gpu_check.sh                      # DEVICE=cuda, OUT from the tool
# Anywhere else, to try the script itself:
#     DEVICE=cpu BATCHES="1 32" PYTHON=.venv/bin/python OUT=/tmp/gc bash tools/gpu_check.sh
# (GPU_CHECK_GOLDEN_PARSER=1 forces the golden-only parser of step 2, to try that path.)
# Files in $OUT: report.md (the summary), gpu_check.log (every step's output),
# throughput.json. Exit status: 0 when every step passed.
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
BATCHES=${BATCHES:-"1 32 256"}
PY=${PYTHON:-python3}
OUT=${OUT:-out/gpu_check}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export REFIMPL_CACHE=${REFIMPL_CACHE:-$PWD/.cache}  # the synthetic weights are made here
LOG=$OUT/gpu_check.log
REPORT=$OUT/report.md
: >"$LOG"
failed=()

step() {  # step NAME TIMEOUT_S COMMAND...: run, log, remember a failure
    local name=$1 limit=$2; shift 2
    echo "== $name: $*" | tee -a "$LOG"
    local t0=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee -a "$LOG"
    local rc=${PIPESTATUS[0]}
    echo "== $name: exit $rc after $((SECONDS - t0)) s" | tee -a "$LOG"
    [ "$rc" -eq 0 ] || failed+=("$name (exit $rc)")
    return "$rc"
}

step environment 60 bash -c "uname -m; nproc; $PY --version; \
    (command -v nvidia-smi >/dev/null && nvidia-smi -L) || echo 'no nvidia-smi'; \
    $PY -c 'import torch, numpy; print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, \
\"available\", torch.cuda.is_available(), \"numpy\", numpy.__version__)'"

# Extensions built here are for another python (and machine): build with this one.
step build 400 "$PY" setup.py -q build_ext --inplace -j "$(nproc)"

# The CLI registers every stage's commands, and some import packages a GPU image may lack
# (soundfile); then refimpl.golden.verify, which the command calls, runs directly.
golden_args=(golden verify --stage fc7 --impl refimpl.network.torch_backend:golden_fc7)
if [ -z "${GPU_CHECK_GOLDEN_PARSER:-}" ] &&
        "$PY" -c "import refimpl.cli; refimpl.cli.build_parser()" >/dev/null 2>&1; then
    golden_cmd=("$PY" -m refimpl "${golden_args[@]}")
else
    echo "(refimpl's full CLI not used (it does not import here, or GPU_CHECK_GOLDEN_PARSER);" \
        "the golden command's own parser runs it)" | tee -a "$LOG"
    golden_cmd=("$PY" -c "import sys
from refimpl import golden
spec = 'refimpl.network.torch_backend:golden_fc7'
results = golden.verify('fc7', golden.load_callable(spec))
for r in results:
    print(('ok  ' if r.passed else 'FAIL'), r.name, f'error {r.error:.3g}', r.detail)
print(f'fc7 via {spec}: {sum(r.passed for r in results)}/{len(results)} cases pass; '
      f'worst {max(r.error for r in results):.3g}')
sys.exit(0 if all(r.passed for r in results) else 1)")
fi
REFIMPL_TORCH_DEVICE=$DEVICE step "golden-verify-$DEVICE" 300 "${golden_cmd[@]}"
[ "$DEVICE" = cpu ] || REFIMPL_TORCH_DEVICE=cpu step golden-verify-cpu 300 "${golden_cmd[@]}"

# The CLI test needs the full CLI (see above); its code path is the golden test's.
REFIMPL_HYPOTHESIS_EXAMPLES=${REFIMPL_HYPOTHESIS_EXAMPLES:-20} step pytest 400 \
    "$PY" -m pytest -q -p no:cacheprovider tests/network/test_torch_backend.py -k "not cli"

# shellcheck disable=SC2086  # BATCHES is a list of numbers
step throughput 400 "$PY" tools/torch_throughput.py --device "$DEVICE" --batches $BATCHES \
    --json "$OUT/throughput.json" --md "$OUT/throughput.md"

{
    echo "# gpu_check: torch backend on $DEVICE ($(date -u +%Y-%m-%dT%H:%MZ))"
    echo
    echo "## golden verify --stage fc7 (real Caffe's fc7)"
    sed -n '/^== golden-verify-[a-z0-9:]*: /,/^== golden-verify-[a-z0-9:]*: exit/p' "$LOG" \
        | grep -E "^fc7 via|^FAIL|^== golden-verify-[a-z0-9:]*: exit" \
        || echo "(no result: see gpu_check.log)"
    echo
    echo "## tests/network/test_torch_backend.py"
    # pytest's summary lines: its FAILED lines and the final count
    sed -n '/^== pytest: /,/^== pytest: exit/p' "$LOG" | grep -E "^FAILED|^ERROR| passed| failed|^== pytest: exit"
    echo
    echo "## throughput, AlexNet to fc7"
    cat "$OUT/throughput.md" 2>/dev/null || echo "(no result: see gpu_check.log)"
    echo
    if [ ${#failed[@]} -eq 0 ]; then echo "All steps passed."
    else echo "FAILED steps: ${failed[*]}"; fi
} >"$REPORT"
rm -f "$OUT/throughput.md"
cat "$REPORT"
[ ${#failed[@]} -eq 0 ]
