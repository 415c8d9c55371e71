#!/usr/bin/env bash
# Time `make demo` from a fresh clone of this repository (set-up included), as a new user would run it.
# Run it with nothing else computing. Writes checks/results/demo_time.md.
#   bash checks/demo_time.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
clone=$(mktemp -d)/pseudocoresets
git clone -q "$repo" "$clone"
trap 'echo "demo_time.sh failed; the clone and its log are in $(dirname "$clone")" >&2' ERR
start=$(date +%s.%N)
(cd "$clone" && make demo) > "$clone.log" 2>&1
total=$(python3 -c "import time;print(round(time.time() - $start))")
stage() { python3 -c "import json,sys;t=json.load(open('$clone/runs/demo/$1/manifest.json'))['timings_seconds'];print(round(sum(t.values())))"; }
{
  echo "# demo_time"
  echo
  echo "Machine: $(lscpu | grep 'Model name' | sed 's/ *Model name: *//'), $(nproc) cores; flags: $(grep -o -w 'avx512f\|avx2\|amx_bf16\|avx512_bf16' /proc/cpuinfo | sort -u | tr '\n' ' '); $(date -u +%F)"
  echo "Command: bash checks/demo_time.sh (git clone, then make demo: venv set-up, bpc run --preset demo)"
  echo
  echo "| part | seconds |"
  echo "|---|---|"
  echo "| make demo from a fresh clone, total | $total |"
  echo "| experts (3 x 4 epochs on 10,000 images) | $(stage experts) |"
  echo "| fKL distillation (100 iterations) | $(stage coresets/fkl-ipc10) |"
  echo "| HMC evaluation, Random | $(stage evals/random-ipc10-hmc) |"
  echo "| HMC evaluation, fKL | $(stage evals/fkl-ipc10-hmc) |"
  echo
  echo "Printed table:"
  echo
  grep '^|' "$clone.log" || echo "(no table printed: see $clone.log)"
} > checks/results/demo_time.md
cat checks/results/demo_time.md
rm -rf "$(dirname "$clone")"
