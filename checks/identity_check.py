"""Behaviour-preservation check: hash every coreset tensor and every evaluation result of a fixed small run.

Run it before and after a refactor on the same machine; the fingerprints must be bit-identical::

    python checks/identity_check.py --write checks/results/identity_before.json   # the code before the change
    python checks/identity_check.py --compare checks/results/identity_before.json # the code after it

The run: synthetic Fashion-MNIST-shaped IDX data (class-dependent blobs), ConvNet width 8, 2 experts x 3
epochs, every method (random, fkl, fkl+aug, rkl, wasserstein, dc) at ipc 2 for 4 iterations, evaluated with HMC
and A-SGHMC on the clean test split and one corrupted set. Timings are dropped from the results before hashing.

``--suite evaluation`` runs the evaluation's other paths on the same data: VBPC's and fkl_mcmc's coresets, the
three protocols (hmc, asghmc, vbpc) with agreement against a cyclical-SGHMC reference, then HMC with a diagonal
mass matrix, the coreset's learnt targets and evaluation-time posterior options. Its fingerprints also cover the
reference samples and every artifact's identity (the ``config`` of its config.json, with the directory it lies
in), so a change that moves an existing artifact shows.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

# Option keys of the run. The objective-specific ones live in each objective's own section; in code without
# per-objective sections they were fields of the shared distill section (see OLD_KEYS).
OPTIONS = {
    "model.width": 8,
    "experts.num_experts": 2,
    "experts.epochs": 3,
    "experts.batch_size": 64,
    "distill.iterations": 4,
    "distill.max_start_epoch": 1,
    "distill.student_steps": 3,
    "distill.lr_images": 10.0,
    "fkl.num_samples": 3,
    "rkl.num_samples": 3,
    "rkl.real_batch": 64,
    "dc.real_batch": 16,
    "dc.inner_loop": 2,
    "dc.outer_loop": 2,
    "evaluate.chains": 2,
    "evaluate.iterations": 6,
    "evaluate.burn_in": 2,
    "evaluate.thin": 2,
    "evaluate.repeats": 2,
    "hmc.settle_rhat": 0,  # the fixed budget these results were measured with (the quick preset now settles)
    "evaluate.corruptions": ["fog"],
    "evaluate.severities": [2],
    "methods": ["random", "fkl", "fkl+aug", "rkl", "wasserstein", "dc"],
    "ipcs": [2],
    "protocols": ["hmc", "asghmc"],
}
OLD_KEYS = {
    "fkl.num_samples": "distill.num_samples",
    "rkl.num_samples": None,
    "rkl.real_batch": "distill.real_batch",
    "dc.real_batch": "distill.dc_real_batch",
    "dc.inner_loop": "distill.dc_inner_loop",
    "dc.outer_loop": "distill.dc_outer_loop",
    "hmc.settle_rhat": None,  # code without per-objective sections has no stopping rule: a fixed budget
}
# timings vary run to run; "posterior" (the resolved coreset posterior) was added to results.json after the
# fingerprints of checks/results/identity_before.json were recorded, so it is left out of the comparison
TIMING_KEYS = {"sampling_seconds", "prediction_seconds", "posterior"}
# convergence diagnostics (split R-hat, ESS) were added to results.json later too: measurements of the same chains,
# dropped so that a fingerprint file written before them still compares every value both versions hold
TIMING_KEYS |= {"rhat_median", "rhat_max", "ess_median", "ess_min"}


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes()))


def make_data(root: Path) -> None:
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 300), ("t10k", 60)):
        y = np.arange(n) % 10
        x = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(y):
            x[i, 2 * c : 2 * c + 6, 4:24] = 220
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", x)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", y.astype(np.uint8))


# the evaluation suite came later: only what varies from run to run is dropped (its diagnostics are compared)
EVALUATION_TIMING_KEYS = {"sampling_seconds", "prediction_seconds", "training_seconds"}


def strip_timings(obj, keys=TIMING_KEYS):
    if isinstance(obj, dict):
        return {k: strip_timings(v, keys) for k, v in obj.items() if k not in keys}
    if isinstance(obj, list):
        return [strip_timings(v, keys) for v in obj]
    return obj


def fingerprints(out: Path, keys=TIMING_KEYS) -> dict[str, str]:
    from safetensors.torch import load_file

    prints = {}
    for path in sorted(out.glob("experts/*.safetensors")) + sorted(out.glob("coresets/*/coreset.safetensors")):
        for key, tensor in sorted(load_file(str(path)).items()):
            prints[f"{path.relative_to(out)}:{key}"] = hashlib.sha256(tensor.numpy().tobytes()).hexdigest()[:16]
    for path in sorted(out.glob("evals/*/results.json")):
        text = json.dumps(strip_timings(json.loads(path.read_text()), keys), sort_keys=True)
        prints[str(path.relative_to(out))] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return prints


# Options that restore two earlier defaults that were changed on purpose: one DSA draw per batch (now per image)
# and the rKL estimator at the coreset weight N/M (now the coreset posterior's weight, default 1), evaluated at w = 1.
# With them, the current code reproduces fingerprints recorded with those earlier defaults.
EARLIER_DEFAULTS = {
    "distill.augment_per_image": False,
    "evaluate.augment_per_image": False,
    "posterior.weight": "n/m",
    "evaluate.coreset_weight": 1.0,
}


EVALUATION_OPTIONS = {
    "model.width": 8,
    "experts.num_experts": 2,
    "experts.epochs": 3,
    "experts.batch_size": 64,
    "distill.iterations": 4,
    "distill.max_start_epoch": 1,
    "distill.student_steps": 3,
    "distill.lr_images": 10.0,
    "fkl_mcmc.chains": 2,
    "fkl_mcmc.chain_burn_in": 2,
    "vbpc.pool_size": 2,
    "vbpc.real_batch": 64,
    "evaluate.chains": 2,
    "evaluate.iterations": 6,
    "evaluate.burn_in": 2,
    "evaluate.thin": 2,
    "evaluate.repeats": 2,
    "hmc.settle_rhat": 0,  # the fixed budget of the recorded fingerprints
    "evaluate.agreement": True,
    "evaluate.step_size": 0.001,
    "evaluate.vbpc_steps": 5,
    "reference.chains": 2,
    "reference.cycles": 2,
    "reference.samples_per_cycle": 2,
    "reference.sample_spacing": 1,
    "reference.batch_size": 64,
    "methods": ["random", "vbpc", "fkl_mcmc"],
    "ipcs": [2],
    "protocols": ["hmc", "asghmc", "vbpc"],
}
# the second pass of the evaluation suite, on the same run directory: options that name other evaluations
EVALUATION_SECOND = {
    "evaluate.agreement": False,
    "evaluate.mass": "diagonal",
    "evaluate.learnt_targets": True,
    "evaluate.temperature": 0.5,
    "evaluate.coreset_weight": 2.0,
    "methods": ["vbpc"],
    "protocols": ["hmc", "asghmc"],
}


# the third pass: A-SGHMC's own temperature given explicitly, which earlier versions wrote under a suffix of its own
EVALUATION_THIRD = {
    "evaluate.agreement": False,
    "evaluate.temperature": 0.01,
    "methods": ["random"],
    "ipcs": [1],
    "protocols": ["asghmc"],
}
# the one location that moved: the evaluation of the third pass, compared under its location now
MOVED = {"evals/random-ipc1-asghmc-eval-T0.01": "evals/random-ipc1-asghmc"}


def moved(key: str) -> str:
    for old, new in MOVED.items():
        if key.startswith(old + "/"):
            return new + key[len(old) :]
    return key


def identities(out: Path, data_root: Path) -> dict[str, str]:
    """The identity (``config`` of config.json) of every artifact directory, keyed by where it lies (the data's
    temporary directory written as <data>, so that two runs compare)."""
    prints = {}
    for path in sorted(out.glob("*/config.json")) + sorted(out.glob("*/*/config.json")):
        saved = json.loads(path.read_text())
        text = json.dumps({"kind": saved.get("kind"), "config": saved.get("config")}, sort_keys=True)
        text = text.replace(json.dumps(str(data_root))[1:-1], "<data>")
        prints[f"{path.relative_to(out)}"] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return prints


def run_evaluation(tmp: Path) -> dict[str, str]:
    from pseudocoresets import config
    from pseudocoresets.pipeline import Workspace, run_all

    if not (tmp / "train-images-idx3-ubyte.gz").exists():
        make_data(tmp)
    for options in (
        EVALUATION_OPTIONS,
        {**EVALUATION_OPTIONS, **EVALUATION_SECOND},
        {**EVALUATION_OPTIONS, **EVALUATION_THIRD},
    ):
        cfg = config.preset("quick")
        config.apply_overrides(cfg, {**options, "data.root": str(tmp)})
        run_all(Workspace(cfg, tmp / "run", torch.device("cpu"), quiet=True))
    out = tmp / "run"
    prints = {moved(k): v for k, v in fingerprints(out, EVALUATION_TIMING_KEYS).items()}
    from safetensors.torch import load_file

    for key, tensor in sorted(load_file(str(out / "reference" / "samples.safetensors")).items()):
        prints[f"reference/samples.safetensors:{key}"] = hashlib.sha256(tensor.numpy().tobytes()).hexdigest()[:16]
    # evaluations' identities are checked by --reuse: an earlier version's evaluations must be found and reused
    prints.update({f"identity:{k}": v for k, v in identities(out, tmp).items() if not k.startswith("evals/")})
    return prints


def file_hashes(out: Path) -> dict[str, str]:
    """Every file of a run directory but the report and the lock, by path: what a re-run must leave as it is."""
    return {
        moved(str(p.relative_to(out))): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.parent != out
    }


def reuse(directory: Path) -> int:
    """Run the evaluation suite with this code on a run directory an earlier version wrote (``--keep``): every
    artifact must be found and reused, no file rewritten and none added (the moved evaluation compared at its
    location now)."""
    out = directory / "run"
    before = file_hashes(out)
    run_evaluation(directory)
    after = file_hashes(out)
    changed = sorted(k for k in before if after.get(k) != before[k])
    added = sorted(k for k in after if k not in before)
    for k in changed:
        print(f"CHANGED {k}")
    for k in added:
        print(f"ADDED {k}")
    artifacts = {k.rsplit("/", 1)[0] for k in before if k.endswith("manifest.json")}
    print(
        f"{len(artifacts)} artifacts of the earlier run; {len(before) - len(changed)} of {len(before)} files as "
        f"they were, {len(added)} added"
    )
    return 1 if changed or added else 0


def run(tmp: Path, legacy: bool = False) -> dict[str, str]:
    from pseudocoresets import config
    from pseudocoresets.pipeline import Workspace, run_all

    make_data(tmp)
    cfg = config.preset("quick")
    options = dict(OPTIONS)
    if not hasattr(config, "sections"):  # code without per-objective sections: their options in distill
        options = {OLD_KEYS.get(k, k): v for k, v in options.items()}
        options.pop(None, None)
    options["data.root"] = str(tmp)
    if legacy:
        options.update(EARLIER_DEFAULTS)
    config.apply_overrides(cfg, options)
    run_all(Workspace(cfg, tmp / "run", torch.device("cpu"), quiet=True))
    return fingerprints(tmp / "run")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", help="write the fingerprints to this JSON file")
    parser.add_argument("--compare", help="compare with the fingerprints in this JSON file")
    parser.add_argument(
        "--suite",
        choices=("objectives", "evaluation"),
        default="objectives",
        help="objectives: every method under HMC and A-SGHMC (the original run); evaluation: the evaluation's "
        "protocols, reference and identities",
    )
    parser.add_argument(
        "--earlier-defaults",
        action="store_true",
        help="run with the options that restore the earlier DSA and rKL defaults (EARLIER_DEFAULTS)",
    )
    parser.add_argument("--keep", help="run in this new directory and keep it (to compare files or reuse the run)")
    parser.add_argument(
        "--reuse",
        help="a directory kept by an earlier version with --suite evaluation --keep: run the suite on it with this "
        "code and check that every artifact is reused as it is",
    )
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.reuse:
        os.environ["BPC_CACHE"] = str(Path(args.reuse) / "cache")
        return reuse(Path(args.reuse))
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or scratch
        if args.keep:
            Path(tmp).mkdir(parents=True, exist_ok=False)
        os.environ["BPC_CACHE"] = str(Path(tmp) / "cache")
        if args.suite == "evaluation":
            prints = run_evaluation(Path(tmp))
        else:
            prints = run(Path(tmp), args.earlier_defaults)
    if args.write:
        Path(args.write).write_text(json.dumps(prints, indent=1, sort_keys=True) + "\n")
        print(f"{len(prints)} fingerprints written to {args.write}")
    if args.compare:
        before = json.loads(Path(args.compare).read_text())
        differ = sorted(k for k in before.keys() | prints.keys() if before.get(k) != prints.get(k))
        for k in differ:
            print(f"DIFFERENT {k}: {before.get(k)} -> {prints.get(k)}")
        print(f"{len(before) - len(differ)} of {len(before)} fingerprints identical")
        return 1 if differ else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
