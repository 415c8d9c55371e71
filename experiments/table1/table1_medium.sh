#!/usr/bin/env bash
# The medium preset's scaled Table 1 on the CIFAR-10 JPEG copy (Random, rKL, W, fKL at ipc 10; HMC,
# 3 seeds) on this machine, with its wall time and the peak memory of its process (nothing else running).
#   bash experiments/table1/table1_medium.sh   # writes experiments/table1/results/$RESULT.{md,json}
# RESULT (default table1_medium_cifar10jpeg) names the results files, OUT (default runs/medium-cifar10jpeg) the run;
# extra arguments go to `bpc table` (e.g. --no-model.compile).
# Re-running resumes (finished stages are reused; the wall time then covers only what was left, and says so).
set -euo pipefail
cd "$(dirname "$0")/../.."
BPC=${BPC:-.venv/bin/bpc}
PY=${PY:-.venv/bin/python}
CIFAR=${CIFAR:-../shared/data/cifar10-jpeg.tar.gz}
OUT=${OUT:-runs/medium-cifar10jpeg}
RESULT=${RESULT:-table1_medium_cifar10jpeg}
if [[ ! $RESULT =~ ^[A-Za-z0-9_-]+$ ]]; then
  echo "table1_medium.sh: RESULT='$RESULT' must be a file name of letters, digits, '_' and '-' (no path)" >&2
  exit 2
fi
resumed=no; [[ -d $OUT ]] && resumed=yes
start=$SECONDS
# the table's process, reaped with os.wait4 for its peak resident set size (MiB; its children's count if larger)
peak=$($PY -c 'import os, subprocess, sys
p = subprocess.Popen(sys.argv[1:], stdout=sys.stderr)  # the table goes to the log, only the peak is captured
_, status, usage = os.wait4(p.pid, 0)
print(round(usage.ru_maxrss / 1024))
sys.exit(os.waitstatus_to_exitcode(status))' $BPC table --preset medium --data.root "$CIFAR" --out "$OUT" --quiet "$@")
wall=$((SECONDS - start))
$BPC report --out "$OUT" --no-figures > /dev/null
$PY - "$OUT" "$wall" "$resumed" "$RESULT" "$peak" "$*" <<'PY'
import json, sys
from pathlib import Path
sys.path.insert(0, "benchmarks")
from common import machine
out, wall, resumed, name, peak, extra = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
stages = {}
for manifest in sorted(out.glob("*/**/manifest.json")):
    timings = json.loads(manifest.read_text()).get("timings_seconds", {})
    stages[str(manifest.parent.relative_to(out))] = round(sum(timings.values()), 1)
m = machine()
report = json.loads((out / "report.json").read_text())
payload = {"machine": m, "wall_seconds": wall, "resumed": resumed == "yes", "peak_rss_mb": peak, "extra_arguments": extra,
           "stage_seconds": stages, "report": report}
(Path("experiments/table1/results") / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
lines = [f"# Scaled Table 1, medium preset, CIFAR-10 JPEG copy (ipc 10, HMC)", "",
         f"Machine: {m['cpu']}, {m['cores']} cores, CPU flags: {m['cpu_flags']}; torch {m['torch']}; {m['date']}.",
         f"Command: `RESULT={name} bash experiments/table1/table1_medium.sh{(' ' + extra) if extra else ''}`; "
         f"wall time {wall} s ({wall / 3600:.2f} h)" + (" (a resumed run: only what was left)" if resumed == "yes" else "")
         + f"; peak resident set size {peak} MiB.", "",
         "Seconds per stage (from the artifacts' manifests; data loading not included):", ""]
lines += ["| stage | seconds |", "|---|---|"] + [f"| {k} | {v} |" for k, v in stages.items()] + [""]
lines += (out / "report.md").read_text().splitlines()[4:]
(Path("experiments/table1/results") / f"{name}.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
