#!/usr/bin/env bash
# The GPU leg in one command, for a machine with CUDA torch and no .NET, no network and perhaps no
# make (README, "The GPU leg"). `make gpu-check` calls it; on the GPU machine run it directly:
#
#   bash scripts/gpu-check.sh OUT_DIR            # DEVICE=cpu to simulate; GPU_CASES=a,b; GPU_BUDGET=480
#
# OUT_DIR receives two files, nothing else: gpu-check-<id>.tar.gz (the fixture set and gpu-run.json,
# every cell's raw reply; at most 16 MiB) and gpu-check.log. Nothing is judged there: bring the
# archive back and run `conformance judge-gpu ARCHIVE` on a CPU machine. The run stops starting cells
# GPU_BUDGET - 20 s after it began, packs what ran and exits 3, so it ends inside a 10-minute command limit.
# GPU_PYTHON picks the interpreter (default: the first of python3, /usr/bin/python3, python3.12,
# python3.13 that imports torch); for a rootfs, GPU_PYTHON="chroot ROOTFS python3" with OUT_DIR inside
# the mounted repository.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:?usage: scripts/gpu-check.sh OUT_DIR}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
if [ -z "${GPU_PYTHON:-}" ]; then
  for p in python3 /usr/bin/python3 python3.12 python3.13; do
    if "$p" -c 'import torch' >/dev/null 2>&1; then GPU_PYTHON="$(command -v "$p")"; break; fi
  done
fi
[ -n "${GPU_PYTHON:-}" ] || { echo "gpu-check: no python3 here imports torch; set GPU_PYTHON=" >&2; exit 2; }
cases=()
[ -z "${GPU_CASES:-}" ] || cases=(--cases "$GPU_CASES")
# shellcheck disable=SC2086 # GPU_PYTHON may be a command with arguments (chroot ROOTFS python3)
PYTHONUNBUFFERED=1 PYTHONPATH="$here/python" $GPU_PYTHON -m torchconformance gpu-check --out "$out" \
  --device "${DEVICE:-cuda}" --fixtures "$here/fixtures" \
  --budget "${GPU_BUDGET:-480}" "${cases[@]}"
