#!/usr/bin/env bash
# The medium preset's scaled Table 1 on the CIFAR-10 JPEG copy (Random, rKL, W, fKL at ipc 10; HMC,
# 3 seeds) on this machine, with its wall time (target: <= 2 hours on 2 CPU cores, nothing else running).
#   bash experiments/table1/table1_medium.sh   # writes experiments/table1/results/table1_medium_cifar10jpeg.{md,json}
# Re-running resumes (finished stages are reused; the wall time then covers only what was left, and says so).
set -euo pipefail
cd "$(dirname "$0")/../.."
BPC=${BPC:-.venv/bin/bpc}
PY=${PY:-.venv/bin/python}
CIFAR=${CIFAR:-../shared/data/cifar10-jpeg.tar.gz}
OUT=${OUT:-runs/medium-cifar10jpeg}
resumed=no; [[ -d $OUT ]] && resumed=yes
start=$SECONDS
$BPC table --preset medium --data.root "$CIFAR" --out "$OUT" --quiet
wall=$((SECONDS - start))
$BPC report --out "$OUT" --no-figures > /dev/null
$PY - "$OUT" "$wall" "$resumed" <<'PY'
import json, sys
from pathlib import Path
sys.path.insert(0, "benchmarks")
from common import machine
out, wall, resumed = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
stages = {}
for manifest in sorted(out.glob("*/**/manifest.json")):
    timings = json.loads(manifest.read_text()).get("timings_seconds", {})
    stages[str(manifest.parent.relative_to(out))] = round(sum(timings.values()), 1)
m = machine()
report = json.loads((out / "report.json").read_text())
payload = {"machine": m, "wall_seconds": wall, "resumed": resumed == "yes", "stage_seconds": stages, "report": report}
(Path("experiments/table1/results") / "table1_medium_cifar10jpeg.json").write_text(json.dumps(payload, indent=2) + "\n")
lines = [f"# Scaled Table 1, medium preset, CIFAR-10 JPEG copy (ipc 10, HMC)", "",
         f"Machine: {m['cpu']}, {m['cores']} cores, CPU flags: {m['cpu_flags']}; torch {m['torch']}; {m['date']}.",
         f"Command: `bash experiments/table1/table1_medium.sh`; wall time {wall} s ({wall / 3600:.2f} h)"
         + (" (a resumed run: only what was left)" if resumed == "yes" else "") + ".", "",
         "Seconds per stage (from the artifacts' manifests; data loading not included):", ""]
lines += ["| stage | seconds |", "|---|---|"] + [f"| {k} | {v} |" for k, v in stages.items()] + [""]
lines += (out / "report.md").read_text().splitlines()[4:]
(Path("experiments/table1/results") / "table1_medium_cifar10jpeg.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
