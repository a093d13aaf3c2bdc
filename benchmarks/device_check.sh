#!/usr/bin/env bash
# The GPU check, in one go (about 3-4 minutes on one H200; budget 5): the whole test suite with
# FORGETLAB_DEVICE=cuda (every "auto" device and the unit tests' toy data on the GPU), then the engine
# benchmark on the GPU (DataLoader loop, forgetlab 1 seed and 5 seeds, fraction of the GPU's float32
# matmul peak). Each step has its own time limit; the log is also written to ${OUT:-.}/device_check.log.
#
#   FORGETLAB_DATA=/path/with/MNIST/raw PYTHON=python3 benchmarks/device_check.sh
#
# On the lent device machine only the repository travels: copy ../shared/data/MNIST into an ignored folder
# of the checkout (e.g. .data/MNIST, 55 MB), carry it, and point FORGETLAB_DATA at it.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DATA=${FORGETLAB_DATA:-../shared/data}
LOG=${OUT:-.}/device_check.log
export PYTHONPATH=src FORGETLAB_DATA="$DATA" FORGETLAB_DEVICE=cuda PYTHONUNBUFFERED=1 CI=1
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  "$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device visible to torch'; \
print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name(0))" || exit 1
  start=$SECONDS
  timeout 180 "$PY" -m pytest -q -p no:cacheprovider; tests=$?
  echo "test suite on cuda: exit $tests, $((SECONDS - start)) s"
  start=$SECONDS
  timeout 100 "$PY" benchmarks/bench_engine.py --data-dir "$DATA" --device cuda --repeat 2; bench=$?
  echo "engine benchmark on cuda: exit $bench, $((SECONDS - start)) s"
  exit $((tests || bench))
} 2>&1 | tee "$LOG"
exit "${PIPESTATUS[0]}"
