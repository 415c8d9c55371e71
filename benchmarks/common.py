"""Shared helpers of the benchmark, check and experiment scripts: machine description, peak memory, result files.

The scripts under checks/ and experiments/<study>/ put this folder on sys.path and pass their own results
folder to ``write_results``; the timing benchmarks here write to benchmarks/results/ (the default).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"
MODELS = {"quick": dict(channels=1, size=28, width=32), "paper": dict(channels=3, size=32, width=128)}


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "fma")
                flags = [f for f in line.split(":", 1)[1].split() if f in wanted]
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "cpu_flags": " ".join(flags),
        "torch_cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
        "memory_gb": round(mem_gb, 1),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d"),
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def run_cell(script: str, args: list[str], timeout: float = 3600) -> dict:
    """Run one measurement in a fresh process (so peak memory is its own) and parse its JSON line."""
    proc = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit code {proc.returncode}"
        if (
            "MemoryError" in proc.stderr
            or "can't allocate memory" in proc.stderr
            or "DefaultCPUAllocator" in proc.stderr
        ):
            last = "out of memory under the cap"
        return {"error": last[:200]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_results(name: str, payload: dict, markdown: str, results: Path = RESULTS) -> None:
    """Write ``results/name.json`` (the payload) and ``results/name.md`` (a header with the machine, then the
    markdown)."""
    results = Path(results)
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    m = payload["machine"]
    header = (
        f"# {name}\n\nMachine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, GPU: {m['gpu']}; "
        f"CPU flags: {m.get('cpu_flags', '?')}; "
        f"torch {m['torch']}, python {m['python']}; {m['date']}.\n\n"
    )
    (results / f"{name}.md").write_text(header + markdown)


def synthetic_context(model_name: str, precision: str = "fp32", augment: bool = False):
    """(DistillContext, device, model spec) with random tensors of the real shapes: 5000 "real" images and one
    expert trajectory of 4 snapshots (an iteration's cost does not depend on the values)."""
    import tempfile

    import torch

    from pseudocoresets.augment import DSA
    from pseudocoresets.experts import ExpertPool, expert_file, save_trajectory
    from pseudocoresets.models import FlatModel, ModelConfig, build_convnet
    from pseudocoresets.objectives import DistillContext

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    spec = MODELS[model_name]
    model = FlatModel(build_convnet(ModelConfig(width=spec["width"]), spec["channels"], spec["size"], 10))
    model = model.to(device).with_precision(precision)
    g = torch.Generator().manual_seed(0)
    real_x = torch.randn(5000, spec["channels"], spec["size"], spec["size"], generator=g).to(device)
    real_y = (torch.arange(5000) % 10).to(device)
    tmp = Path(tempfile.mkdtemp())
    theta0 = model.init(0).cpu()
    traj = torch.stack([theta0 + 0.01 * k * torch.randn(theta0.shape, generator=g) for k in range(4)])
    save_trajectory(expert_file(tmp, 0), traj, 0, [])
    ctx = DistillContext(
        model, ExpertPool([expert_file(tmp, 0)], device), real_x, real_y, 10, DSA() if augment else None, device
    )
    return ctx, device, spec
