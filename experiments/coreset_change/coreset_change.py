"""How far each learnt coreset moved from its initial images: root-mean-square pixel change (normalised units).

    python experiments/coreset_change/coreset_change.py runs/agreement-fmnist runs/fklmcmc-lr10-fmnist ...

Writes experiments/coreset_change/results/coreset_change.{json,md}.
"""

from __future__ import annotations

import sys
from pathlib import Path

from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # common.py
RESULTS = Path(__file__).resolve().parent / "results"
from common import machine, write_results  # noqa: E402

rows = []
for run in sys.argv[1:]:
    for path in sorted(Path(run).glob("coresets/*/coreset.safetensors")):
        t = load_file(str(path))
        rms = float((t["images"] - t["init_images"]).pow(2).mean().sqrt())
        rows.append({"run": run, "coreset": path.parent.name, "rms_change": rms})
lines = ["| run | coreset | rms pixel change |", "|---|---|---|"]
lines += [f"| {r['run']} | {r['coreset']} | {r['rms_change']:.4f} |" for r in rows]
write_results(
    "coreset_change",
    {"machine": machine(), "rows": rows},
    "\n".join(lines)
    + "\n\nCommand: python experiments/coreset_change/coreset_change.py "
    + " ".join(sys.argv[1:])
    + "\n",
    RESULTS,
)
print("\n".join(lines))
