#!/usr/bin/env bash
# Issue 9: how close is each objective's coreset posterior to the full-data posterior on images?
# Quick preset (ConvNet width 32, 3 experts x 4 epochs, 150 distillation iterations, HMC 4 chains x 40
# iterations, 3 seeds), ipc 10, with the full-data reference posterior (cyclical SGHMC, 2 chains x 3 cycles of
# one epoch, 3 samples per cycle) and agreement / TV / predictive KL to it for every coreset.
# Re-running resumes: finished stages are reused.
#   bash benchmarks/agreement_images.sh [fmnist|cifar|all]
set -euo pipefail
cd "$(dirname "$0")/.."
BPC=${BPC:-.venv/bin/bpc}
CIFAR=${CIFAR:-../shared/data/cifar10-jpeg.tar.gz}
what=${1:-fmnist}
common=(--preset quick --methods random,rkl,wasserstein,fkl,fkl_mcmc --ipcs 10 --evaluate.agreement --quiet)
mkdir -p benchmarks/results
run() {  # name, extra args...
  local name=$1; shift
  local start=$SECONDS
  $BPC table "${common[@]}" "$@" --out "runs/agreement-$name"
  $BPC report --out "runs/agreement-$name" --no-figures > /dev/null
  {
    echo "# Agreement with the full-data posterior: $name (quick preset, ipc 10, HMC)"
    echo
    echo "Machine: $(lscpu | grep 'Model name' | sed 's/ *Model name: *//'), $(nproc) cores; flags: $(grep -o -w 'avx512f\|avx2\|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
    echo "Command: bash benchmarks/agreement_images.sh $name (wall time of this invocation: $((SECONDS - start)) s)"
    echo "Reference wall time (s): $(python3 -c "import json;print(round(json.load(open('runs/agreement-$name/reference/manifest.json'))['timings_seconds']['total']))")"
    echo
    tail -n +5 "runs/agreement-$name/report.md"
  } > "benchmarks/results/agreement_$name.md"
  cp "runs/agreement-$name/report.json" "benchmarks/results/agreement_$name.json"
}
if [[ $what == fmnist || $what == all ]]; then run fmnist; fi
if [[ $what == cifar || $what == all ]]; then run cifar10jpeg --data.name cifar10 --data.root "$CIFAR"; fi
