"""``bpc run``: every stage of one configuration in order, then the report."""

from __future__ import annotations

import time

from .. import parallel
from ..report import write_report
from .distill import run_distill
from .evaluate import run_evaluate
from .experts import run_experts
from .reference import run_reference
from .resources import check_cells
from .workspace import Workspace, needs_experts, needs_reference


def run_all(ws: Workspace) -> dict:
    """``bpc run``: experts (if any method needs them), every (method, ipc) coreset and its evaluation, report."""
    t0 = time.perf_counter()
    check_cells(ws)
    if any(needs_experts(m) for m in ws.config.methods):
        run_experts(ws)
    if ws.config.evaluate.agreement or any(needs_reference(c.method, c.objective) for c in ws.cells()):
        run_reference(ws)
    for ipc in ws.config.ipcs:
        for method in ws.config.methods:
            for k in range(ws.config.distill.seeds):  # the cell's coresets, one per seed
                run_distill(ws, method, ipc, k)
                for protocol in ws.config.protocols:
                    run_evaluate(ws, method, ipc, protocol, k)
    report = write_report(ws.out) if parallel.is_main() else {"markdown": ""}
    report["wall_seconds"] = time.perf_counter() - t0
    return report
