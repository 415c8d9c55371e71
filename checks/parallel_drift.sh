#!/usr/bin/env bash
# How far a 2-process fKL coreset drifts from the 1-process one as iterations accumulate (quick preset settings,
# Fashion-MNIST, ipc 2, S = 4): the all-reduce sums the gradient terms in another order, a float-rounding
# difference that the pixel updates (lr_images 100) then amplify. Writes checks/results/parallel_drift.md.
#   bash checks/parallel_drift.sh [FASHION_MNIST_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
W=$(mktemp -d)
A=(distill --preset quick --data.root "${1:-/usr/share/datasets/fashion-mnist}" --quiet --threads 1 --methods fkl
   --ipcs 2 --experts.num_experts 2 --experts.epochs 1 --distill.max_start_epoch 0 --fkl.num_samples 4)
OMP_NUM_THREADS=1 $PY -m pseudocoresets.cli experts "${A[@]:1}" --out "$W/one" > /dev/null
cp -r "$W/one" "$W/two"
{
  echo "# parallel_drift"; echo
  echo "| iterations | max abs difference, 2 vs 1 process | max abs change of the pixels from the start |"
  echo "|---|---|---|"
} > checks/results/parallel_drift.md
for it in 1 2 5; do
  rm -rf "$W/one/coresets" "$W/two/coresets"
  OMP_NUM_THREADS=1 $PY -m pseudocoresets.cli "${A[@]}" --distill.iterations $it --out "$W/one" > /dev/null
  OMP_NUM_THREADS=1 BPC_QUIET=1 $PY -m torch.distributed.run --standalone --nproc-per-node 2 -m pseudocoresets.cli \
    "${A[@]}" --distill.iterations $it --out "$W/two" > /dev/null 2>&1
  $PY -c "
from safetensors.torch import load_file
a = load_file('$W/one/coresets/fkl-ipc2/coreset.safetensors'); b = load_file('$W/two/coresets/fkl-ipc2/coreset.safetensors')
print(f\"| $it | {float((a['images'] - b['images']).abs().max()):.2e} | {float((a['images'] - a['init_images']).abs().max()):.3f} |\")
" >> checks/results/parallel_drift.md
done
cat checks/results/parallel_drift.md
