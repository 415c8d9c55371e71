#!/usr/bin/env bash
# fkl_mcmc on images: variants of its image settings beside the paper's fkl and Random, with the same experts and
# full-data reference posterior as the agreement runs (experiments/agreement/agreement_images.sh, which must have
# run first: its experts and reference are copied). Quick preset, ipc 10, HMC, agreement with the reference.
#   fmnist-lr10: pi_x from expert snapshots (default), lr_images 10 (the agreement run used the preset's 100)
#   fmnist-ref:  pi_x from the reference posterior's samples, no noise, lr_images 100
#   cifar-lr10:  CIFAR-10 JPEG copy, as fmnist-lr10, also evaluated at w = N/M = 500
# Re-running resumes; writes experiments/fkl_mcmc_images/results/fkl_mcmc_variants.md (+ .json).
#   THREADS=1 bash experiments/fkl_mcmc_images/fkl_mcmc_variants.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BPC=${BPC:-.venv/bin/bpc}
CIFAR=${CIFAR:-../shared/data/cifar10-jpeg.tar.gz}
# --hmc.settle_rhat 0: the fixed budget these results were measured with (the quick preset now settles)
common=(--preset quick --hmc.settle_rhat 0 --methods fkl_mcmc --ipcs 10 --evaluate.agreement --quiet
        --threads "${THREADS:-0}")
variant() {  # name, source run, extra args...
  local out=runs/fklmcmc-$1 source=runs/$2; shift 2
  mkdir -p "$out"
  for stage in experts reference; do [[ -d $out/$stage ]] || cp -r "$source/$stage" "$out/"; done
  $BPC table "${common[@]}" "$@" --out "$out" > /dev/null
}
variant lr10-fmnist agreement-fmnist --distill.lr_images 10
variant ref-fmnist agreement-fmnist --fkl_mcmc.x_source reference --fkl_mcmc.noise_x 0
cifar=(--data.name cifar10 --data.root "$CIFAR" --distill.lr_images 10)
variant lr10-cifar agreement-cifar10jpeg "${cifar[@]}"
$BPC evaluate "${common[@]}" "${cifar[@]}" --evaluate.coreset_weight 500 --out runs/fklmcmc-lr10-cifar > /dev/null
.venv/bin/python - <<'EOF'
import json, sys
sys.path.insert(0, "benchmarks")
from common import machine, write_results
from pseudocoresets.report import collect_results

runs = {"fmnist, agreement run (fkl_mcmc: pi_x experts, lr 100)": "runs/agreement-fmnist",
        "fmnist, fkl_mcmc pi_x experts, lr_images 10": "runs/fklmcmc-lr10-fmnist",
        "fmnist, fkl_mcmc pi_x reference, lr_images 100": "runs/fklmcmc-ref-fmnist",
        "cifar10 (JPEG), agreement run": "runs/agreement-cifar10jpeg",
        "cifar10 (JPEG), fkl_mcmc pi_x experts, lr_images 10": "runs/fklmcmc-lr10-cifar"}
metrics = ("accuracy", "nll", "ece", "brier", "agreement", "tv")
lines = ["| run | method | posterior | " + " | ".join(metrics) + " |", "|---" * (3 + len(metrics)) + "|"]
payload = {"machine": machine(), "runs": {}}
for label, path in runs.items():
    rows = [r for r in collect_results(path) if r["method"] != "full data"]
    payload["runs"][label] = rows
    for r in sorted(rows, key=lambda r: (r["protocol"], r["method"])):
        cells = [f"{r[m]['mean']:.4f} ± {r[m]['std']:.4f}" if r.get(m) else "-" for m in metrics]
        lines.append(f"| {label} | {r['method']} | {r['protocol']} | " + " | ".join(cells) + " |")
note = ("\nQuick preset (ConvNet width 32, 3 experts x 4 epochs, 150 iterations), ipc 10, HMC 4 chains x 40 "
        "iterations, 3 seeds; agreement / TV with each dataset's full-data reference posterior (cyclical SGHMC). "
        "Command: bash experiments/fkl_mcmc_images/fkl_mcmc_variants.sh "
        "(after experiments/agreement/agreement_images.sh).\n")
write_results("fkl_mcmc_variants", payload, "\n".join(lines) + "\n" + note, "experiments/fkl_mcmc_images/results")
print("\n".join(lines))
EOF
