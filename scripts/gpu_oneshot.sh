#!/usr/bin/env bash
# The GPU one-shot (docs/GPU_RUN.md) on a machine without internet: install the carried wheels
# (.whl/), point the data at the carried file (.data/), then `bloodbench oneshot`. Arguments go to it.
#   on the GPU:  bash scripts/gpu_oneshot.sh --out "$OUT" --budget 550
#   rehearsal:   bash scripts/gpu_oneshot.sh --out /tmp/oneshot --rehearse
set -u
cd "$(dirname "$0")/.." || exit 2
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "error: installing the carried wheels in .whl/ failed (see above)" >&2; exit 2; }
  export PYTHONPATH="$PWD:/tmp/site"
fi
if [ -z "${BLOODBENCH_DATA_DIR:-}" ] && [ -f .data/bloodmnist.npz ]; then
  export BLOODBENCH_DATA_DIR="$PWD/.data"
fi
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg KINETO_LOG_LEVEL=5
exec python3 -m bloodbench.cli oneshot "$@"
