"""Figure 3 (memory and time per iteration against ipc, per method) from benchmark JSON files.

python benchmarks/plot_cost.py benchmarks/results/distill_quick.json benchmarks/results/distill_paper.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pseudocoresets.report.figures import cost_plot

RESULTS = Path(__file__).parent / "results"

if __name__ == "__main__":
    for arg in sys.argv[1:]:
        rows = json.loads(Path(arg).read_text())["rows"]
        for model in sorted({r["model"] for r in rows}):
            for path in cost_plot(rows, RESULTS / f"fig3_cost_{model}", model):
                print(path)
