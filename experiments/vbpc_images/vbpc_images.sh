#!/usr/bin/env bash
# VBPC against Random on real images, with the full-data reference posterior as the yardstick.
# Quick preset (ConvNet width 32, the quick preset's 150 distillation iterations and HMC budget, 3 seeds), ipc 10;
# every coreset evaluated with VBPC's own protocol (a network trained on the coreset, its last layer's closed-form
# posterior, the one-pass predictive) and with HMC on the whole network (the coreset's class labels; HMC does not
# read VBPC's learnt targets); agreement / TV / predictive KL to the full-data reference posterior for every row.
# The experts are trained first although neither method reads them: the reference chains start at the experts'
# final snapshots (as in experiments/agreement, whose reference this matches); from a random start, the quick
# preset's 3 cSGHMC cycles leave a much weaker reference (0.45 accuracy on CIFAR-10 against 0.63).
# Re-running resumes: finished stages are reused.
# Writes experiments/vbpc_images/results/vbpc_NAME.{md,json} (NAME: fmnist, cifar10jpeg).
# ITERATIONS=N sets --distill.iterations (run and results named NAME-itN); Random's coreset artifact is keyed on
# the distillation options too, so give METHODS=vbpc with it.
#   bash experiments/vbpc_images/vbpc_images.sh [fmnist|cifar|all]
#   METHODS=vbpc ITERATIONS=500 bash experiments/vbpc_images/vbpc_images.sh cifar
# EXTRA="--option value ..." adds options to every bpc command, e.g. HMC on VBPC's learnt targets:
#   METHODS=vbpc PROTOCOLS=hmc EXTRA=--evaluate.learnt_targets RESULTS_TAG=-targets bash experiments/vbpc_images/vbpc_images.sh all
# RESULTS_TAG=-x names the results vbpc_NAME-x.* (the run directory stays the same, so its finished cells are reused):
#   PROTOCOLS=asghmc RESULTS_TAG=-asghmc bash experiments/vbpc_images/vbpc_images.sh all
# (A-SGHMC keeps 4 x 100 samples per repeat; scoring them on the 10,000 test images takes about 6.5 minutes of its
# about 8 per repeat on 2 cores, so this adds about 1.5 hours for both datasets.)
set -euo pipefail
cd "$(dirname "$0")/../.."
BPC=${BPC:-.venv/bin/bpc}
CIFAR=${CIFAR:-../shared/data/cifar10-jpeg.tar.gz}
what=${1:-all}
# --hmc.settle_rhat 0, --asghmc.settle_tv 0 --asghmc.thin 5: the fixed budgets these results were measured with
# (the quick preset now settles both protocols and keeps one A-SGHMC state per 50 steps)
common=(--preset quick --hmc.settle_rhat 0 --asghmc.settle_tv 0 --asghmc.thin 5 --methods "${METHODS:-random,vbpc}" --ipcs 10
        --protocols "${PROTOCOLS:-vbpc,hmc}" --evaluate.agreement --quiet ${ITERATIONS:+--distill.iterations $ITERATIONS}
        ${EXTRA:-})
RESULTS=experiments/vbpc_images/results
mkdir -p $RESULTS
run() {  # name, extra args...
  local name=$1${ITERATIONS:+-it$ITERATIONS}; shift
  local start=$SECONDS
  $BPC experts "${common[@]}" "$@" --out "runs/vbpc-$name" > /dev/null
  $BPC table "${common[@]}" "$@" --out "runs/vbpc-$name" > /dev/null
  $BPC report --out "runs/vbpc-$name" --no-figures > /dev/null
  {
    echo "# VBPC on $name (quick preset, ipc 10)"
    echo
    echo "Machine: $(lscpu | grep 'Model name' | sed 's/ *Model name: *//'), $(nproc) cores; flags: $(grep -o -w 'avx512f\|avx2\|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
    echo "Command: ${METHODS:+METHODS=$METHODS }${PROTOCOLS:+PROTOCOLS=$PROTOCOLS }${ITERATIONS:+ITERATIONS=$ITERATIONS }${EXTRA:+EXTRA=\"$EXTRA\" }${RESULTS_TAG:+RESULTS_TAG=$RESULTS_TAG }bash experiments/vbpc_images/vbpc_images.sh $what (wall time of this invocation: $((SECONDS - start)) s; finished stages in runs/vbpc-$name are reused; each stage's own time:)"
    for d in experts reference coresets/vbpc-ipc10 coresets/random-ipc10 evals/vbpc-ipc10-vbpc evals/vbpc-ipc10-hmc evals/random-ipc10-vbpc evals/random-ipc10-hmc evals/vbpc-ipc10-asghmc evals/random-ipc10-asghmc evals/vbpc-ipc10-hmc-eval-targets; do
      [[ -e runs/vbpc-$name/$d/manifest.json ]] || continue
      echo "- $d: $(python3 -c "import json;t=json.load(open('runs/vbpc-$name/$d/manifest.json'))['timings_seconds'];print(round(t.get('total', sum(t.values()))))") s"
    done
    echo
    tail -n +5 "runs/vbpc-$name/report.md"
  } > "$RESULTS/vbpc_$name${RESULTS_TAG:-}.md"
  cp "runs/vbpc-$name/report.json" "$RESULTS/vbpc_$name${RESULTS_TAG:-}.json"
}
if [[ $what == fmnist || $what == all ]]; then run fmnist; fi
if [[ $what == cifar || $what == all ]]; then run cifar10jpeg --data.name cifar10 --data.root "$CIFAR"; fi
