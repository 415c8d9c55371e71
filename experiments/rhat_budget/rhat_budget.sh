#!/usr/bin/env bash
# How far is HMC on a weighted image coreset posterior from converging, and what would R-hat <= 1.1 cost?
# CIFAR-10 JPEG copy, quick preset (ConvNet width 32), BPC-fKL's ipc-10 coreset of experiments/cifar10c_asghmc,
# evaluated at the full data's scale w = N/M = 500 with HMC at growing budgets: 4 chains of ITERATIONS (default
# "40 160 640 2560"; the quick preset's budget is 40) with half of them burn-in (the step size adapts during it),
# one kept sample per max(10, ITERATIONS / 64) iterations (at most 128 samples to score), one repeat. The split R-hat and ESS of 100 test points' log predictive
# probabilities (evaluation/diagnostics.py) are read from each evaluation, with its sampling and scoring time.
# Each budget runs in its own copy of the source run (experts, reference and coresets; no evaluations), so the
# source run is left as it is. Re-running resumes: finished budgets are reused.
# MASS=diagonal: HMC with a diagonal mass matrix that each chain estimates from its own burn-in
# (--hmc.mass diagonal), in runs named ...-diagonal.
# Writes experiments/rhat_budget/results/rhat_budget.{md,json} (MASS=diagonal: rhat_budget_diagonal.{md,json}).
#   bash experiments/rhat_budget/rhat_budget.sh
#   MASS=diagonal ITERATIONS="160 640" bash experiments/rhat_budget/rhat_budget.sh
#   SOURCE=runs/cifar10c-asghmc ITERATIONS="40 160" METHOD=wasserstein bash experiments/rhat_budget/rhat_budget.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BPC=${BPC:-.venv/bin/bpc}
CIFAR=${CIFAR:-../shared/data/cifar10-jpeg.tar.gz}
SOURCE=${SOURCE:-runs/cifar10c-asghmc}
METHOD=${METHOD:-fkl}
MASS=${MASS:-identity}
SUFFIX=$([[ $MASS == identity ]] && echo "" || echo "-$MASS")
RESULTS=experiments/rhat_budget/results
mkdir -p "$RESULTS"
[[ -e $SOURCE/coresets/$METHOD-ipc10/manifest.json ]] || {
  echo "rhat_budget: $SOURCE has no finished $METHOD-ipc10 coreset; run experiments/cifar10c_asghmc first" >&2; exit 2; }
names=()
for it in ${ITERATIONS:-40 160 640 2560}; do
  out=runs/rhat-budget-$METHOD-it$it$SUFFIX
  if [[ ! -e $out ]]; then
    mkdir -p "$out.tmp" && cp -a "$SOURCE"/{experts,reference,coresets,.bpc.lock} "$out.tmp/" && mv "$out.tmp" "$out"
  fi
  # each budget fixed (--hmc.settle_rhat 0: the quick preset now settles; --hmc.max_iterations 0: its cap of 640
  # would refuse 2560 iterations)
  $BPC evaluate --preset quick --data.name cifar10 --data.root "$CIFAR" --methods "$METHOD" --ipcs 10 \
    --protocols hmc --evaluate.agreement --hmc.iterations "$it" --hmc.burn_in $((it / 2)) \
    --hmc.settle_rhat 0 --hmc.max_iterations 0 \
    --hmc.thin $((it / 64 > 10 ? it / 64 : 10)) --evaluate.repeats 1 --evaluate.coreset_weight 500 --quiet \
    $([[ $MASS == identity ]] || echo "--hmc.mass $MASS") --out "$out" > /dev/null
  names+=("$out")
done
python3 - "$RESULTS" "$METHOD" "$SUFFIX" "${names[@]}" <<'PY'
import json, platform, re, subprocess, sys
from pathlib import Path
results, method, suffix, runs = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
rows = []
for run in runs:
    (ev,) = Path(run, "evals").glob(f"{method}-ipc10-hmc*")
    r = json.loads((ev / "results.json").read_text())
    rep = r["repeats"][0]
    it = int(re.search(r"-it(\d+)", run).group(1))
    rows.append({"iterations": it, "burn_in": it // 2, "thin": max(10, it // 64), "samples": rep["samples"],
                 "acceptance": rep["acceptance_rate"],
                 **{k: rep[k] for k in ("rhat_median", "rhat_max", "ess_median", "ess_min", "accuracy", "nll", "ece",
                                         "agreement", "sampling_seconds", "prediction_seconds")}})
cpu = subprocess.run("lscpu | grep 'Model name' | sed 's/ *Model name: *//'", shell=True, capture_output=True,
                     text=True).stdout.strip()
flags = sorted(set(open("/proc/cpuinfo").read().split()) & {"avx2", "avx512f", "avx512_bf16", "amx_bf16"})
machine = f"{cpu}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores; flags: {' '.join(flags)}"
(results / f"rhat_budget{suffix.replace('-', '_')}.json").write_text(json.dumps({"machine": machine, "method": method, "rows": rows}, indent=1))
mass = suffix.lstrip("-") or "identity"
lines = [f"# HMC budget against convergence: {method} ipc 10, CIFAR-10 JPEG, quick preset, w = 500, {mass} mass matrix", "",
         f"Machine: {machine}. Command: {'MASS=' + mass + ' ' if suffix else ''}bash experiments/rhat_budget/rhat_budget.sh", "",
         "| iterations per chain (burn-in, thinning) | kept samples | acceptance | R-hat median / max | ESS median / min | "
         "accuracy | NLL | ECE | agreement | sampling s | scoring s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
for r in rows:
    lines.append(f"| {r['iterations']} ({r['burn_in']}, {r['thin']}) | {r['samples']} | {r['acceptance']:.2f} | {r['rhat_median']:.2f} / "
                 f"{r['rhat_max']:.2f} | {r['ess_median']:.1f} / {r['ess_min']:.1f} | {r['accuracy']:.4f} | {r['nll']:.4f} | "
                 f"{r['ece']:.4f} | {r['agreement']:.4f} | {r['sampling_seconds']:.0f} | {r['prediction_seconds']:.0f} |")
lines += ["", "4 chains, one repeat; R-hat and ESS of the log predictive probabilities of 100 fixed test points over the "
          "post-burn-in iterations of the 4 chains (split R-hat; 1.1 is the looser usual threshold)."]
(results / f"rhat_budget{suffix.replace('-', '_')}.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
