#!/usr/bin/env bash
# The device sends the work tree, at most 64 MiB, and every finished run adds to it. Before a device call
# (docs/GPU_RUN.md) take out the tracked files the one-shot never reads; put them back after the call.
#   bash scripts/gpu_travel.sh size      # MiB that would travel now: the work tree, .whl and .data
#   bash scripts/gpu_travel.sh trim      # on a clean tree only, so that restore gives back exactly what it took
#   bash scripts/gpu_travel.sh restore
# Left behind: rendered reports, Grad-CAM images, published weights and the committed predictions (*.npz).
# Records stay: the sweep skips finished runs and `profile --missing` skips profiled models by them.
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT_MIB=64
LEAVE=(reports/README.md reports/models reports/plots reports/explain
       'bloodbench/models/published/*.safetensors' 'reports/results/train/*/*.npz')

travelling() {  # bytes of what exists of the tracked and untracked-not-ignored files, plus the carried folders
  { git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
      [ -f "$f" ] && printf '%s\0' "$f"; done
    find .whl .data -type f -print0 2>/dev/null || true; } | xargs -0 -r du -cb | tail -1 | cut -f1
}

size() {
  local mib
  mib=$(awk -v b="$(travelling)" 'BEGIN { printf "%.1f", b / 1048576 }')
  echo "travels: ${mib} MiB of the device's ${LIMIT_MIB} MiB (work tree + .whl + .data)"
  awk -v m="$mib" -v l="$LIMIT_MIB" 'BEGIN { exit !(m >= l) }' && {
    echo "error: over the limit: run \`bash scripts/gpu_travel.sh trim\` before the device call" >&2; return 1; }
  return 0
}

case "${1:-}" in
  size) size ;;
  trim)
    if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
      echo "error: the work tree has uncommitted changes: commit them first (restore puts back what git has)" >&2
      exit 2
    fi
    git ls-files -z -- "${LEAVE[@]}" | xargs -0 -r rm -f
    echo "took out $(git ls-files --deleted | wc -l) tracked files; put them back with: bash scripts/gpu_travel.sh restore"
    size ;;
  restore)
    git ls-files -z --deleted -- "${LEAVE[@]}" | xargs -0 -r git checkout --
    echo "restored; $(git ls-files --deleted | wc -l) tracked files still missing" ;;
  *) echo "usage: bash scripts/gpu_travel.sh size|trim|restore" >&2; exit 2 ;;
esac
