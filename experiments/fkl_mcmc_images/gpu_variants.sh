#!/usr/bin/env bash
# One prepared GPU session for issue 8 (quick preset, ipc 10, HMC evaluation with agreement against each dataset's
# full-data reference posterior): fkl_mcmc with chains started at the pi_x samples (CD-k, --fkl_mcmc.chain_start x)
# beside the paper's fkl, fkl_mcmc with persistent chains and Random, at equal settings on one card, with each
# method's distillation seconds; and W+aug with DSA drawn per image vs once per batch. Experts and references are
# copied from the CPU agreement runs (benchmarks/agreement_images.sh), so every row shares them.
#   VARIANTS="cd10 cd100 dsa cifar base" bash benchmarks/gpu_issue8.sh      (the first call)
#   VARIANTS="lw10 cdlw10 cdk5" RUN_TIMEOUT=95 bash benchmarks/gpu_issue8.sh   (the second: learnt weights, k = 5)   (writes runs/g8-*; $OUT/g8.tgz if set)
# The device copy needs Fashion-MNIST at the default root and the CIFAR JPEG copy at ../shared/data (carried in
# .gpudata, put in place below when absent). EXTRA adds options to every command (a CPU dry run uses it).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
PY=${PY:-python3}
FM=/usr/share/datasets/fashion-mnist
[[ -d $FM ]] || { mkdir -p "$(dirname $FM)" && cp -r .gpudata/fmnist $FM; }
[[ -f ../shared/data/cifar10-jpeg.tar.gz ]] || { mkdir -p ../shared/data && cp .gpudata/cifar10-jpeg.tar.gz ../shared/data/; }
nvidia-smi -L 2>/dev/null; $PY -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())"
mkdir -p runs && $PY -c "import json, sys; sys.path.insert(0, 'benchmarks'); from common import machine; print(json.dumps(machine()))" > runs/g8-machine.json
read -r -a extra <<< "${EXTRA:-}"
common=(--preset quick --ipcs 10 --evaluate.agreement --quiet "${extra[@]}")
cifar=(--data.name cifar10 --data.root ../shared/data/cifar10-jpeg.tar.gz)
run() {  # name, source run, extra args...
  local out=runs/g8-$1 source=runs/$2; shift 2
  mkdir -p "$out"
  for stage in experts reference; do [[ -d $out/$stage ]] || cp -r "$source/$stage" "$out/"; done
  local start=$SECONDS
  timeout "${RUN_TIMEOUT:-150}" $PY -m pseudocoresets.cli table "${common[@]}" "$@" --out "$out" > "$out/log.txt" 2>&1
  echo "$out: exit $? in $((SECONDS - start)) s"; tail -n 3 "$out/log.txt"
  [[ -z ${OUT:-} ]] || tar czf "$OUT/g8.tgz" --exclude='experts' --exclude='reference' runs/g8-*
}
for v in ${VARIANTS:-cd10 cd100 dsa cifar base}; do
  case $v in
    cd10) run cd10-fmnist agreement-fmnist --methods fkl_mcmc --fkl_mcmc.chain_start x --distill.lr_images 10 ;;
    cd100) run cd100-fmnist agreement-fmnist --methods fkl_mcmc --fkl_mcmc.chain_start x ;;
    dsa) run dsa-image-fmnist agreement-fmnist --methods wasserstein+aug
         run dsa-batch-fmnist agreement-fmnist --methods wasserstein+aug --no-distill.augment_per_image \
           --no-evaluate.augment_per_image ;;
    cifar) run cd10-cifar agreement-cifar10jpeg "${cifar[@]}" --methods fkl_mcmc --fkl_mcmc.chain_start x \
             --distill.lr_images 10 ;;
    base) run base-fmnist agreement-fmnist --methods random,fkl,fkl_mcmc ;;
    lw10) run lw10-fmnist agreement-fmnist --methods fkl_mcmc --fkl_mcmc.learn_weights --distill.lr_images 10 ;;
    cdlw10) run cdlw10-fmnist agreement-fmnist --methods fkl_mcmc --fkl_mcmc.chain_start x \
              --fkl_mcmc.learn_weights --distill.lr_images 10 ;;
    cdk5) run cdk5-fmnist agreement-fmnist --methods fkl_mcmc --fkl_mcmc.chain_start x --distill.lr_images 10 \
            --fkl_mcmc.chain_steps 5 --fkl_mcmc.chain_thin 5 ;;
  esac
done
if [[ -n ${OUT:-} ]]; then
  echo "then here: tar xzf g8.tgz, copy each run's experts and reference back, python benchmarks/gpu_issue8_table.py"
fi
