#!/usr/bin/env bash
# fkl_mcmc and DSA variants on one GPU (quick preset, ipc 10, HMC evaluation with agreement against each dataset's
# full-data reference posterior): fkl_mcmc with chains started at the pi_x samples (CD-k, --fkl_mcmc.chain_start x)
# beside the paper's fkl, fkl_mcmc with persistent chains and Random, at equal settings on one card, with each
# method's distillation seconds; fkl_mcmc with learnt point weights; and W+aug with DSA drawn per image vs once per
# batch. Experts and references are copied from the CPU agreement runs (experiments/agreement/agreement_images.sh),
# so every row shares them. Each variant is a run directory under $RUNS (default runs/gpu-variants) with a
# variant.json (dataset, what it varies) that gpu_table.py reads; the machine goes to $RUNS/machine.json.
#   VARIANTS="cd10 cd100 dsa cifar base" bash experiments/fkl_mcmc_images/gpu_variants.sh
#   VARIANTS="lw10 cdlw10 cdk5" RUN_TIMEOUT=95 bash experiments/fkl_mcmc_images/gpu_variants.sh
# then, where the agreement runs are: python experiments/fkl_mcmc_images/gpu_table.py (results/gpu_h100.{md,json}).
# With OUT set, the runs (without experts and references) are also packed into $OUT/gpu-variants.tgz after each run.
# A GPU machine without the data finds Fashion-MNIST and the CIFAR JPEG copy in .gpudata (put in place below when
# absent). EXTRA adds options to every command (a CPU dry run uses it).
set -uo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
PY=${PY:-python3}
RUNS=${RUNS:-runs/gpu-variants}
FM=/usr/share/datasets/fashion-mnist
[[ -d $FM ]] || { mkdir -p "$(dirname $FM)" && cp -r .gpudata/fmnist $FM; }
[[ -f ../shared/data/cifar10-jpeg.tar.gz ]] || { mkdir -p ../shared/data && cp .gpudata/cifar10-jpeg.tar.gz ../shared/data/; }
nvidia-smi -L 2>/dev/null; $PY -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())"
mkdir -p "$RUNS"
$PY -c "import json, sys; sys.path.insert(0, 'benchmarks'); from common import machine; print(json.dumps(machine()))" \
  > "$RUNS/machine.json"
read -r -a extra <<< "${EXTRA:-}"
# --hmc.settle_rhat 0, --asghmc.settle_tv 0 --asghmc.thin 5: the fixed budgets these results were measured with
# (the quick preset now settles both protocols and keeps one A-SGHMC state per 50 steps)
common=(--preset quick --hmc.settle_rhat 0 --asghmc.settle_tv 0 --asghmc.thin 5 --ipcs 10 --evaluate.agreement --quiet "${extra[@]}")
cifar=(--data.name cifar10 --data.root ../shared/data/cifar10-jpeg.tar.gz)
run() {  # name, source run, dataset, what it varies, extra args...
  local out=$RUNS/$1 source=runs/$2
  mkdir -p "$out"
  $PY -c "import json, sys; print(json.dumps({'dataset': sys.argv[1], 'varies': sys.argv[2]}))" "$3" "$4" \
    > "$out/variant.json"
  shift 4
  for stage in experts reference; do [[ -d $out/$stage ]] || cp -r "$source/$stage" "$out/"; done
  local start=$SECONDS
  timeout "${RUN_TIMEOUT:-150}" $PY -m pseudocoresets.cli table "${common[@]}" "$@" --out "$out" > "$out/log.txt" 2>&1
  echo "$out: exit $? in $((SECONDS - start)) s"; tail -n 3 "$out/log.txt"
  [[ -z ${OUT:-} ]] || tar czf "$OUT/gpu-variants.tgz" --exclude='experts' --exclude='reference' "$RUNS"
}
FMNIST=fashion-mnist CIFAR="cifar10 (JPEG)"
for v in ${VARIANTS:-cd10 cd100 dsa cifar base}; do
  case $v in
    cd10) run cd10-fmnist agreement-fmnist $FMNIST "fkl_mcmc chain_start x (CD-k), lr_images 10" \
            --methods fkl_mcmc --fkl_mcmc.chain_start x --distill.lr_images 10 ;;
    cd100) run cd100-fmnist agreement-fmnist $FMNIST "fkl_mcmc chain_start x (CD-k), lr_images 100" \
             --methods fkl_mcmc --fkl_mcmc.chain_start x ;;
    dsa) run dsa-image-fmnist agreement-fmnist $FMNIST "DSA drawn per image (default)" --methods wasserstein+aug
         run dsa-batch-fmnist agreement-fmnist $FMNIST "DSA drawn once per batch" --methods wasserstein+aug \
           --no-distill.augment_per_image --no-asghmc.augment_per_image ;;
    cifar) run cd10-cifar agreement-cifar10jpeg "$CIFAR" "fkl_mcmc chain_start x (CD-k), lr_images 10" "${cifar[@]}" \
             --methods fkl_mcmc --fkl_mcmc.chain_start x --distill.lr_images 10 ;;
    base) run base-fmnist agreement-fmnist $FMNIST "preset settings (fkl_mcmc: persistent chains, lr_images 100)" \
            --methods random,fkl,fkl_mcmc ;;
    lw10) run lw10-fmnist agreement-fmnist $FMNIST "fkl_mcmc persistent chains, learnt point weights, lr_images 10" \
            --methods fkl_mcmc --fkl_mcmc.learn_weights --distill.lr_images 10 ;;
    cdlw10) run cdlw10-fmnist agreement-fmnist $FMNIST \
              "fkl_mcmc chain_start x (CD-k), learnt point weights, lr_images 10" \
              --methods fkl_mcmc --fkl_mcmc.chain_start x --fkl_mcmc.learn_weights --distill.lr_images 10 ;;
    cdk5) run cdk5-fmnist agreement-fmnist $FMNIST "fkl_mcmc chain_start x (CD-k), k = 5 transitions, lr_images 10" \
            --methods fkl_mcmc --fkl_mcmc.chain_start x --distill.lr_images 10 \
            --fkl_mcmc.chain_steps 5 --fkl_mcmc.chain_thin 5 ;;
    *) echo "unknown variant $v (cd10 cd100 dsa cifar base lw10 cdlw10 cdk5)" >&2 ;;
  esac
done
if [[ -n ${OUT:-} ]]; then
  echo "then, where the agreement runs are: tar xzf gpu-variants.tgz, copy each run's experts and reference back,"
  echo "python experiments/fkl_mcmc_images/gpu_table.py --runs-dir $RUNS"
fi
