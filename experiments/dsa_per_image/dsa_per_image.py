"""What DSA's per-image draws change against one draw per batch, on Fashion-MNIST.

The reference DSA draws its random numbers per image (each image its own scale, angle, shift, cutout box, colour
factors; one operation family per call), and so does ours by default; one draw per batch (the library's earlier
behaviour) stays an option (`--no-distill.augment_per_image`, `--no-asghmc.augment_per_image`). Same experts and
full-data reference posterior (copied from the agreement run, `bash experiments/agreement/agreement_images.sh
fmnist`), quick preset, ipc 10:
- fkl+aug and wasserstein+aug learnt with each variant, evaluated by HMC (DSA plays no part in HMC), agreement
  with the reference posterior included;
- A-SGHMC (which trains on augmented coreset batches) on the Random coreset, with each variant (scaled down to
  one chain of 1000 steps per seed, every 50th post-burn-in step kept, 2 seeds).

    python experiments/dsa_per_image/dsa_per_image.py [--threads N] [--methods fkl+aug,wasserstein+aug]

Writes experiments/dsa_per_image/results/dsa_per_image.{json,md}. W+aug with each variant on an H100 is part of
experiments/fkl_mcmc_images/gpu_variants.sh (results/gpu_h100.md there).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # common.py
RESULTS = Path(__file__).resolve().parent / "results"
from common import machine, write_results  # noqa: E402

from pseudocoresets.report import collect_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "runs/agreement-fmnist"
VARIANTS = {"per image": [], "per batch": ["--no-distill.augment_per_image", "--no-asghmc.augment_per_image"]}
# A-SGHMC scaled to fit: 1 chain per seed, 2 seeds, every 50th of the 500 post-burn-in steps kept (10 samples)
ASGHMC = ["--asghmc.chains", "1", "--evaluate.repeats", "2", "--asghmc.thin", "50"]
METRICS = ("accuracy", "nll", "ece", "brier", "agreement", "tv")


def bpc(*args: str) -> None:
    exe = Path(sys.executable).parent / "bpc"
    subprocess.run([str(exe), *args], check=True, cwd=ROOT)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", default="0")
    p.add_argument("--methods", default="fkl+aug,wasserstein+aug")
    args = p.parse_args()
    if not (SOURCE / "experts/manifest.json").exists() or not (SOURCE / "reference/manifest.json").exists():
        sys.exit(
            f"{SOURCE} has no finished experts and reference: "
            "run 'bash experiments/agreement/agreement_images.sh fmnist'"
        )
    # the fixed budgets these results were measured with (the quick preset now settles both protocols)
    fixed = ["--hmc.settle_rhat", "0", "--asghmc.settle_tv", "0"]
    common = ["--preset", "quick", *fixed, "--ipcs", "10", "--evaluate.agreement", "--quiet", "--threads", args.threads]
    rows, seconds = [], {}
    for variant, flags in VARIANTS.items():
        out = ROOT / "runs" / f"dsa-{variant.replace(' ', '-')}"
        for stage in ("experts", "reference"):
            if not (out / stage).exists():
                shutil.copytree(SOURCE / stage, out / stage)
        t0 = time.perf_counter()
        bpc("table", *common, *flags, "--methods", args.methods, "--protocols", "hmc", "--out", str(out))
        bpc("table", *common, *flags, *ASGHMC, "--methods", "random", "--protocols", "asghmc", "--out", str(out))
        seconds[variant] = time.perf_counter() - t0
        for row in collect_results(out):
            if row["method"] != "full data":
                rows.append({"variant": variant, **row})
    lines = ["| method | protocol | DSA draws | " + " | ".join(METRICS) + " |", "|---" * (3 + len(METRICS)) + "|"]
    for row in sorted(rows, key=lambda r: (r["method"], r["protocol"], r["variant"])):
        cells = [f"{row[m]['mean']:.4f} ± {row[m]['std']:.4f}" if row.get(m) else "-" for m in METRICS]
        lines.append(f"| {row['method']} | {row['protocol']} | {row['variant']} | " + " | ".join(cells) + " |")
    note = (
        "\n\nFashion-MNIST, quick preset (ConvNet width 32, 3 experts x 4 epochs, 150 iterations), ipc 10; HMC 4 "
        "chains x 40 iterations, 3 seeds; A-SGHMC friction 0.1, T 0.01, 1000 steps (500 burn-in), 1 chain, every "
        "50th step kept, 2 seeds (scaled down: scoring 100 kept samples per chain on 10,000 test images would "
        "dominate); agreement / TV with "
        f"the full-data reference posterior of {SOURCE.relative_to(ROOT)}. Command: python experiments/"
        f"dsa_per_image/dsa_per_image.py --threads {args.threads} --methods {args.methods}. "
        "Wall time per variant (s): "
        + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items())
        + " (other jobs may have shared the cores).\n"
    )
    write_results(
        "dsa_per_image", {"machine": machine(), "rows": rows, "seconds": seconds}, "\n".join(lines) + note, RESULTS
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
