#!/usr/bin/env bash
# The paper's whole evaluation (Table 1 with HMC and A-SGHMC columns, Figure 4 on CIFAR-10-C) at the medium
# preset on the CIFAR-10 JPEG copy, with agreement to a full-data reference posterior of the same scale.
#
#   bash experiments/medium_evaluation/medium_evaluation.sh          # every step, then the results files
#   bash experiments/medium_evaluation/medium_evaluation.sh results  # the results files from what has finished
#
# Medium preset: ConvNet width 48, 4 experts x 5 epochs, 250 distillation iterations (L_u = 10, S = 10), HMC 5 chains
# x 50 iterations (20 burn-in, every 10th state kept), 3 evaluation seeds; the reference posterior is the preset's
# cyclical SGHMC (2 chains x 3 cycles) started at the experts. Methods: Random, BPC-rKL, BPC-W, BPC-fKL, and VBPC
# with VBPC_ITERATIONS (default 2000) iterations, about fKL's distillation time at this scale. Protocols:
#   - hmc: the paper's coreset posterior (w = 1), 3 seeds;
#   - asghmc: the official friction 0.1, temperature 0.01, DSA at every step, 5 chains x 1000 steps with 500 burn-in;
#     one sample per 50 steps (the official one per 5 would score 500 samples), ASGHMC_REPEATS seeds (default 1);
#   - vbpc: VBPC's own protocol, for VBPC's coreset and Random's (its baseline).
# At ipc 10 every protocol also scores the 15 standard CIFAR-10-C corruptions at severities 1-5, each set made from
# the first CORRUPTION_SUBSET (default 200) test images (Figure 4); ipc 1 is scored on the clean test split.
# Every evaluation measures agreement, TV and predictive KL to the reference posterior.
# Steps run in order of what the results need most (ipc 10 before ipc 1, HMC before A-SGHMC); re-running resumes:
# finished stages are reused, an interrupted one continues. The step log (wall seconds per step) is OUT.steps.log.
set -euo pipefail
cd "$(dirname "$0")/../.."
BPC=${BPC:-.venv/bin/bpc}
PY=${PY:-.venv/bin/python}
CIFAR=${CIFAR:-../shared/data/cifar10-jpeg.tar.gz}
OUT=${OUT:-runs/medium-evaluation-cifar10jpeg}
VBPC_IT=${VBPC_ITERATIONS:-2000}
REPEATS=${ASGHMC_REPEATS:-1}
SUBSET=${CORRUPTION_SUBSET:-200}
LOG=$OUT.steps.log
common=(--preset medium --data.name cifar10 --data.root "$CIFAR" --evaluate.agreement --quiet --out "$OUT")
corrupted=(--evaluate.corruptions standard --evaluate.corruption_subset "$SUBSET")
asghmc=(--protocols asghmc --asghmc.thin 50 --evaluate.repeats "$REPEATS")
vbpc=(--methods vbpc --distill.iterations "$VBPC_IT")

step() {  # step NAME COMMAND...: runs COMMAND, appends "NAME seconds" to the step log
  local name=$1 start=$SECONDS
  shift
  echo "== $name ($(date -u +%H:%M:%S))"
  "$@" > /dev/null
  echo "$name $((SECONDS - start))" >> "$LOG"
}

if [[ ${1:-all} == all ]]; then
  mkdir -p "$(dirname "$LOG")"
  step ipc10-hmc $BPC table "${common[@]}" --methods random,fkl,wasserstein --ipcs 10 --protocols hmc "${corrupted[@]}"
  step ipc10-vbpc $BPC table "${common[@]}" "${vbpc[@]}" --ipcs 10 --protocols hmc,vbpc "${corrupted[@]}"
  step ipc10-random-vbpc $BPC evaluate "${common[@]}" --methods random --ipcs 10 --protocols vbpc "${corrupted[@]}"
  step ipc10-asghmc $BPC evaluate "${common[@]}" --methods random,fkl,wasserstein --ipcs 10 "${asghmc[@]}" "${corrupted[@]}"
  step ipc10-vbpc-asghmc $BPC evaluate "${common[@]}" "${vbpc[@]}" --ipcs 10 "${asghmc[@]}" "${corrupted[@]}"
  step ipc10-rkl $BPC table "${common[@]}" --methods rkl --ipcs 10 --protocols hmc "${corrupted[@]}"
  step ipc10-rkl-asghmc $BPC evaluate "${common[@]}" --methods rkl --ipcs 10 "${asghmc[@]}" "${corrupted[@]}"
  step ipc1-hmc $BPC table "${common[@]}" --methods random,rkl,wasserstein,fkl --ipcs 1 --protocols hmc
  step ipc1-vbpc $BPC table "${common[@]}" "${vbpc[@]}" --ipcs 1 --protocols hmc,vbpc
  step ipc1-random-vbpc $BPC evaluate "${common[@]}" --methods random --ipcs 1 --protocols vbpc
  step ipc1-asghmc $BPC evaluate "${common[@]}" --methods random,rkl,wasserstein,fkl --ipcs 1 "${asghmc[@]}"
  step ipc1-vbpc-asghmc $BPC evaluate "${common[@]}" "${vbpc[@]}" --ipcs 1 "${asghmc[@]}"
elif [[ $1 != results ]]; then
  echo "usage: $0 [all|results]" >&2
  exit 2
fi
$BPC report --out "$OUT" > /dev/null
$PY experiments/medium_evaluation/summarise.py "$OUT" "$LOG" "VBPC_ITERATIONS=$VBPC_IT ASGHMC_REPEATS=$REPEATS CORRUPTION_SUBSET=$SUBSET"
