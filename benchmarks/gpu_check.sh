#!/usr/bin/env bash
# One prepared GPU run: the precision benchmark on the paper model (every objective, fp32 vs bf16,
# HMC and scoring), then the quick pipeline end to end on CUDA in both precisions (Fashion-MNIST from FMNIST_DIR).
# Writes benchmarks/results/precision_gpu.{json,md} and runs/gpu-quick-{fp32,bf16}/; copies the results and the
# quick runs' output (quick_{fp32,bf16}.txt) to $OUT if set (benchmarks/results/gpu_quick_h100/ holds those of an H100).
#   FMNIST_DIR=.gpudata/fmnist bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
PY=${PY:-python3}
OUT=${OUT:-runs/gpu-check}
mkdir -p "$OUT"
nvidia-smi -L; $PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
timeout ${BENCH_TIMEOUT:-300} $PY benchmarks/bench_precision.py --model paper --iterations 5 --warmup 2 \
  --name precision_gpu 2>&1 | tail -n 40
cp benchmarks/results/precision_gpu.* "$OUT"/ 2>/dev/null
for p in fp32 bf16; do
  start=$SECONDS
  # --hmc.settle_rhat 0: the fixed budget these results were measured with (the quick preset now settles)
  timeout ${RUN_TIMEOUT:-120} $PY -m pseudocoresets.cli table --preset quick --hmc.settle_rhat 0 \
    --methods random,fkl --ipcs 10 \
    --precision $p --data.root "${FMNIST_DIR:-/usr/share/datasets/fashion-mnist}" --out runs/gpu-quick-$p --quiet \
    > "$OUT/quick_$p.txt" 2>&1
  echo "quick $p: exit $? in $((SECONDS - start)) s" | tee -a "$OUT/quick_$p.txt"
  tail -n 8 "$OUT/quick_$p.txt"
done
