#!/usr/bin/env bash
# The paper's A-SGHMC column and its Figure 4 (CIFAR-10-C per corruption) on real images, at the quick scale.
# CIFAR-10 JPEG copy, quick preset (ConvNet width 32, 3 experts x 4 epochs, 150 distillation iterations, 3 seeds),
# ipc 10; Random, BPC-fKL, BPC-W and VBPC, each evaluated with
#   - HMC (the quick preset's 4 chains x 40 iterations) and VBPC's last-layer protocol, and
#   - A-SGHMC (official friction 0.1, temperature 0.01, 1000 steps with 500 burn-in, 4 chains; one sample per 50
#     steps, 40 per repeat, instead of the official one per 5: scoring 400 samples per repeat would take about
#     6.5 minutes on 2 cores for the clean test set alone; ASGHMC_REPEATS repeats, default 1: one repeat is about
#     10 minutes of sampling (4 chains x 1000 steps with DSA) and 3 of scoring on 2 cores),
# on the clean test split and on the 15 standard CIFAR-10-C corruptions at severities 1-5, each corrupted set
# made from the first CORRUPTION_SUBSET (default 200) test images (the paper's CIFAR-10-C has all 10,000 per set),
# with agreement / TV / predictive KL to the full-data reference posterior on every set.
# Re-running resumes: finished stages are reused. SEED_RUN=DIR first copies a finished run of the same
# configuration (e.g. runs/vbpc-cifar10jpeg of experiments/vbpc_images: its experts, reference and Random / VBPC
# coresets), without its evaluations, so that only what is new is computed.
# Writes experiments/cifar10c_asghmc/results/cifar10c_asghmc.{md,json} and the Figure 4 radar plots (svg).
#   bash experiments/cifar10c_asghmc/cifar10c_asghmc.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BPC=${BPC:-.venv/bin/bpc}
CIFAR=${CIFAR:-../shared/data/cifar10-jpeg.tar.gz}
OUT=${OUT:-runs/cifar10c-asghmc}
RESULTS=experiments/cifar10c_asghmc/results
# --hmc.settle_rhat 0, --asghmc.settle_tv 0: the fixed budgets these results were measured with (the quick preset now
# settles both protocols)
common=(--preset quick --hmc.settle_rhat 0 --asghmc.settle_tv 0 --methods "${METHODS:-random,fkl,wasserstein,vbpc}" --ipcs 10
        --evaluate.agreement --quiet --data.name cifar10 --data.root "$CIFAR"
        --evaluate.corruptions standard --evaluate.corruption_subset "${CORRUPTION_SUBSET:-200}")
mkdir -p $RESULTS
if [[ -n ${SEED_RUN:-} && ! -e $OUT ]]; then
  cp -a "$SEED_RUN" "$OUT"
  rm -rf "$OUT/evals" "$OUT"/report.* "$OUT"/table.* "$OUT/figures"
fi
start=$SECONDS
$BPC table "${common[@]}" --protocols hmc,vbpc --out "$OUT" > /dev/null
$BPC evaluate "${common[@]}" --protocols asghmc --asghmc.thin 50 --evaluate.repeats "${ASGHMC_REPEATS:-1}" \
  --out "$OUT" > /dev/null
$BPC report --out "$OUT" > /dev/null
{
  echo "# CIFAR-10 JPEG, quick preset, ipc 10: HMC, A-SGHMC and VBPC's protocol on the clean and corrupted test sets"
  echo
  echo "Machine: $(lscpu | grep 'Model name' | sed 's/ *Model name: *//'), $(nproc) cores; flags: $(grep -o -w 'avx512f\|avx2\|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  echo "Command: ${SEED_RUN:+SEED_RUN=$SEED_RUN }${METHODS:+METHODS=$METHODS }${ASGHMC_REPEATS:+ASGHMC_REPEATS=$ASGHMC_REPEATS }bash experiments/cifar10c_asghmc/cifar10c_asghmc.sh (wall time of this invocation: $((SECONDS - start)) s; each stage's own time:)"
  for d in "$OUT"/experts "$OUT"/reference "$OUT"/coresets/* "$OUT"/evals/*; do
    [[ -e $d/manifest.json ]] || continue
    echo "- ${d#"$OUT"/}: $(python3 -c "import json,sys;t=json.load(open(sys.argv[1]))['timings_seconds'];print(round(t.get('total', sum(t.values()))))" "$d/manifest.json") s$([[ -e $d/results.json ]] && python3 -c "
import json,sys
r=json.load(open(sys.argv[1])).get('repeats',[])
t=[(x.get('sampling_seconds'),x.get('prediction_seconds')) for x in r if x.get('sampling_seconds') is not None]
print(' (per repeat, sampling / scoring: ' + ', '.join(f'{a:.0f} / {b:.0f} s' for a,b in t) + ')' if t else '')" "$d/results.json")"
  done
  echo
  tail -n +5 "$OUT/report.md"
} > "$RESULTS/cifar10c_asghmc.md"
cp "$OUT/report.json" "$RESULTS/cifar10c_asghmc.json"
cp "$OUT"/figures/fig4_radar_*.svg "$RESULTS/" 2>/dev/null || true
