#!/usr/bin/env bash
# How close is each objective's coreset posterior to the full-data posterior on images?
# Quick preset (ConvNet width 32, 3 experts x 4 epochs, 150 distillation iterations, HMC 4 chains x 40
# iterations, 3 seeds), ipc 10, with the full-data reference posterior (cyclical SGHMC, 2 chains x 3 cycles of
# one epoch, 3 samples per cycle) and agreement / TV / predictive KL to it for every coreset.
# Then the same coresets evaluated at the full-data scale, w = N/M (N training images, M = 100 coreset images),
# in the same run directory (evaluation directories tagged -eval-w<N/M>).
# Re-running resumes: finished stages are reused. THREADS=1 leaves a core free (the timings then say so);
# METHODS=random,rkl,wasserstein,fkl limits the methods.
# Writes experiments/agreement/results/agreement_NAME.{md,json} (NAME: fmnist, cifar10jpeg).
#   bash experiments/agreement/agreement_images.sh [fmnist|cifar|all]
set -euo pipefail
cd "$(dirname "$0")/../.."
BPC=${BPC:-.venv/bin/bpc}
CIFAR=${CIFAR:-../shared/data/cifar10-jpeg.tar.gz}
what=${1:-fmnist}
# --hmc.settle_rhat 0: the fixed budget these results were measured with (the quick preset now settles)
common=(--preset quick --hmc.settle_rhat 0 --methods "${METHODS:-random,rkl,wasserstein,fkl,fkl_mcmc}" --ipcs 10
        --evaluate.agreement --quiet --threads "${THREADS:-0}")
RESULTS=experiments/agreement/results
mkdir -p $RESULTS
run() {  # name, N/M, extra args...
  local name=$1 full_scale=$2; shift 2
  local start=$SECONDS
  $BPC table "${common[@]}" "$@" --out "runs/agreement-$name"
  $BPC evaluate "${common[@]}" "$@" --evaluate.coreset_weight "$full_scale" --out "runs/agreement-$name" > /dev/null
  $BPC report --out "runs/agreement-$name" --no-figures > /dev/null
  {
    echo "# Agreement with the full-data posterior: $name (quick preset, ipc 10, HMC)"
    echo
    echo "Machine: $(lscpu | grep 'Model name' | sed 's/ *Model name: *//'), $(nproc) cores; flags: $(grep -o -w 'avx512f\|avx2\|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
    echo "Command: bash experiments/agreement/agreement_images.sh $name (wall time of this invocation: $((SECONDS - start)) s; threads ${THREADS:-torch default})"
    echo "Reference wall time (s): $(python3 -c "import json;t=json.load(open('runs/agreement-$name/reference/manifest.json'))['timings_seconds'];print(round(t.get('total', sum(t.values()))))")"
    echo
    tail -n +5 "runs/agreement-$name/report.md"
    echo
    echo "Rankings (python experiments/agreement/agreement_rankings.py runs/agreement-$name/report.json):"
    echo
    .venv/bin/python experiments/agreement/agreement_rankings.py "runs/agreement-$name/report.json"
  } > "$RESULTS/agreement_$name.md"
  cp "runs/agreement-$name/report.json" "$RESULTS/agreement_$name.json"
}
if [[ $what == fmnist || $what == all ]]; then run fmnist 600; fi
if [[ $what == cifar || $what == all ]]; then run cifar10jpeg 500 --data.name cifar10 --data.root "$CIFAR"; fi
