#!/usr/bin/env bash
# The GPU check of issue 18, on a machine with CUDA, within 10 minutes; everything goes to one log.
#
#   bash benchmarks/gpu_check.sh [LOG]        # LOG: default out/gpu_check.log ($OUT/gpu_check.log when OUT is set)
#
# 1. the CUDA tests: every test whose id names cuda (tests that skip without CUDA: compiled updates with CUDA graphs,
#    datasets and evaluation on the device);
# 2. speed_bench's GPU table: the CUDA-graph sampler at K = 1..32 and batch-1 latency (sample), 8 packed seeds
#    against one (packing), compiled (reduce-overhead, CUDA graphs) against eager updates (compile);
# 3. a short packed sweep: the smoke beta ablation, GMPO only, 2 seeds per trial on the GPU.
# Each step has its own time limit; a step whose packages are missing (Ray, Gymnasium, Minari) is skipped with a line
# saying so. PYTHON picks the interpreter (default: .venv/bin/python, else python3).
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
LOG=${1:-${OUT:-out}/gpu_check.log}
mkdir -p "$(dirname "$LOG")"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_check: no CUDA device here (torch.cuda.is_available() is False with $PY); nothing was run" >&2
    exit 2
fi
exec > >(tee "$LOG") 2>&1
START=$(date +%s)
step() { echo; echo "=== $1 ($(( $(date +%s) - START )) s in)"; }
has() { "$PY" -c "import $1" 2>/dev/null; }

step "machine"
"$PY" -c "import torch; print('torch', torch.__version__, '|', torch.cuda.get_device_name(), '| CUDA', torch.version.cuda)"
nvidia-smi --query-gpu=name,memory.used,memory.total,utilization.gpu --format=csv 2>/dev/null || true

step "CUDA tests (pytest -k cuda)"
timeout 180 "$PY" -m pytest -q -k cuda -p no:cacheprovider --continue-on-collection-errors \
    tests/test_compile.py tests/test_data.py tests/test_evaluation.py
echo "pytest exit: $?"

step "speed_bench GPU table: CUDA-graph sampler, 8 packed seeds vs 1, compiled vs eager updates"
timeout 330 "$PY" benchmarks/speed_bench.py --device cuda --only sample,packing,compile \
    --compile-algos bc,gmpo,idql,gtp,dql --json "$(dirname "$LOG")/gpu_speed.json"
echo "speed_bench exit: $?"

step "packed sweep: smoke beta ablation, GMPO, 2 seeds per trial on the GPU"
if has ray && has minari && has gymnasium; then
    TMP=$(mktemp -d)
    MINARI_DATASETS_PATH=${MINARI_DATASETS_PATH:-$PWD/out/minari} timeout 150 "$PY" sweeps/beta_ablation.py \
        --preset smoke --only algorithm=gmpo --seeds 0 --set seeds_per_trial=2 --set device=cuda \
        --gpus-per-trial 0.5 --storage "$TMP/store" --temp-dir "$TMP/ray" --fresh
    echo "sweep exit: $?"
    rm -rf "$TMP"
else
    echo "skipped: the sweep needs ray, minari and gymnasium in $PY (missing: $(for m in ray minari gymnasium; do has $m || printf '%s ' $m; done))"
fi

echo; echo "gpu_check: done in $(( $(date +%s) - START )) s; log: $LOG"
