"""``bpc``: the command line, a thin layer over the Python API (:mod:`pseudocoresets.api`).

Every option of every stage config is available as ``--section.name`` (e.g. ``--distill.ipc 20``);
``--preset`` picks a complete starting point and ``--config FILE.yaml`` overrides it, then the flags.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
from pathlib import Path

from .config import PRESETS, renamed_options, sections
from .errors import INTERRUPTED, UserError
from .utils import keep_freed_memory

# Every stage accepts every section, so one config file or command line serves all stages of a run.
STAGES = ("experts", "reference", "distill", "evaluate", "run", "table", "import")
DESCRIPTIONS = {
    "experts": "Train expert SGD trajectories on the full data (snapshot after every epoch).",
    "reference": "Sample the full-data posterior (cyclical SGHMC on mini-batches, or full-batch HMC): the 'Full "
    "data' row and the yardstick of --evaluate.agreement.",
    "distill": "Learn pseudocoresets (or draw random ones) for every method x ipc of the config.",
    "evaluate": "Bayesian evaluation (HMC, A-SGHMC or VBPC's last-layer protocol on the coreset, optionally on corrupted test sets) of every "
    "method x ipc x protocol of the config.",
    "run": "All stages from one config: experts -> coresets -> evaluation -> report.",
    "table": "The paper's Table 1 for methods x ipcs x protocols: runs what is missing, reuses finished cells "
    "(an interrupted table resumes), writes table.md and table.csv.",
    "import": "Bring in a distilled set made elsewhere (an MTT-style directory of images_best.pt/labels_best.pt, a .pt "
    "or an .npz; --from PATH) as the coreset 'imported' of this run, and evaluate it (every --protocols).",
    "export": "Write one learnt coreset as MTT/DD-Ranking-style tensors (images_best.pt, labels_best.pt, lr_best.pt), "
    "an .npz (input-space images, uint8 pixels, labels) and a PNG grid.",
    "verify": "Check every finished artifact of a run directory against the SHA-256 checksums in its manifest "
    "(exit 2 when any file is missing, damaged, replaced or edited).",
    "report": "Markdown/JSON results, Table 1, Figures 1-4 (PNG+SVG) and one self-contained report.html of a run.",
}


def _type_name(t) -> str:
    return t if isinstance(t, str) else getattr(t, "__name__", str(t))


def _add_section(parser: argparse.ArgumentParser, section: str) -> None:
    group = parser.add_argument_group(f"{section} options")
    for f in dataclasses.fields(sections()[section]):
        tname = _type_name(f.type)
        default = f.default
        help_text = f"{f.metadata.get('help', '')} (default of no preset: {default})"
        flag = f"--{section}.{f.name}"
        if tname == "bool":
            group.add_argument(
                flag,
                dest=f"{section}.{f.name}",
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_text,
            )
        else:
            group.add_argument(
                flag, dest=f"{section}.{f.name}", default=argparse.SUPPRESS, metavar=tname.upper(), help=help_text
            )


def _add_renamed(parser: argparse.ArgumentParser) -> None:
    """Earlier option names (``--evaluate.chains``, now ``--hmc.chains`` and ``--asghmc.chains``), accepted for one
    release and left out of the help."""
    for old, new in renamed_options().items():
        section, name = new[0].split(".", 1)
        field = next(f for f in dataclasses.fields(sections()[section]) if f.name == name)
        kwargs = {"action": argparse.BooleanOptionalAction} if _type_name(field.type) == "bool" else {}
        parser.add_argument(f"--{old}", dest=old, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs)


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line (what is wrong, where to look) and exit 2."""

    def error(self, message: str):  # noqa: D401
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bpc",
        description="Bayesian pseudocoresets: expert trajectories, divergence-based coreset learning (BPC-fKL "
        "and baselines), HMC evaluation and reports. Start with 'bpc run --preset quick --out runs/quick'.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for name in STAGES:
        p = sub.add_parser(name, help=DESCRIPTIONS[name], description=DESCRIPTIONS[name])
        p.add_argument(
            "--preset",
            default="quick",
            choices=list(PRESETS),
            help="starting configuration: quick (Fashion-MNIST, small ConvNet, CPU minutes), demo (quick "
            "on a 10,000-image subset with smaller budgets: `make demo`), "
            "medium (CIFAR-10, ConvNet width 48, 4 experts x 5 epochs, 250 iterations, HMC 5 chains: "
            "Random, rKL, W and fKL in about 40 minutes on 2 CPU cores), "
            "paper (CIFAR-10, the paper's settings, meant for a GPU), blr (Bayesian linear regression on synthetic "
            "data: every posterior exact), none (dataclass defaults)",
        )
        p.add_argument(
            "--config",
            action="append",
            help="YAML/JSON file of sections (e.g. 'distill: {ipc: 20}') applied on the preset; give it once (a "
            "second --config is refused: merge the files into one)",
        )
        p.add_argument("--out", help="run directory holding every stage's artifacts (default: runs/<preset>)")
        p.add_argument("--device", default="auto", help="auto (CUDA when present, else CPU), cpu, cuda, cuda:1 ...")
        p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch default)")
        p.add_argument("--quiet", action="store_true", help="no progress output")
        p.add_argument(
            "--precision",
            default=argparse.SUPPRESS,
            choices=["fp32", "bf16", "auto"],
            help="compute precision of every network pass (same as --model.precision): fp32; bf16 mixed "
            "precision (parameters, pixels and sums stay fp32); auto = bf16 where the device has it",
        )
        p.add_argument(
            "--methods",
            default=argparse.SUPPRESS,
            help="comma-separated methods, e.g. random,fkl (default: the preset's)",
        )
        p.add_argument("--ipcs", default=argparse.SUPPRESS, help="comma-separated images per class, e.g. 1,10,20")
        p.add_argument(
            "--protocols",
            default=argparse.SUPPRESS,
            help="comma-separated evaluation protocols: hmc, asghmc, vbpc (default: the preset's)",
        )
        if name == "import":
            p.add_argument("--from", dest="source", required=True, help="the distilled set to import")
        for section in sections():
            _add_section(p, section)
        _add_renamed(p)
    p = sub.add_parser("export", help=DESCRIPTIONS["export"], description=DESCRIPTIONS["export"])
    p.add_argument("--out", default="runs/quick", help="run directory holding the coreset")
    p.add_argument("--coreset", required=True, help="coreset directory name under OUT/coresets, e.g. fkl-ipc10")
    p.add_argument("--to", required=True, help="directory to write the exported files into")
    p = sub.add_parser("verify", help=DESCRIPTIONS["verify"], description=DESCRIPTIONS["verify"])
    p.add_argument("--out", required=True, help="run directory to check")
    p = sub.add_parser("report", help=DESCRIPTIONS["report"], description=DESCRIPTIONS["report"])
    p.add_argument("--out", default="runs/quick", help="run directory to summarise")
    p.add_argument("--bench", default="", help="benchmark JSON (benchmarks/results/distill*.json) for Figure 3")
    p.add_argument("--no-figures", action="store_true", help="tables only")
    return parser


def _config_from_args(args: argparse.Namespace):
    from .api import make_config

    overrides = {k: v for k, v in vars(args).items() if "." in k or k in ("methods", "ipcs", "protocols")}
    if getattr(args, "source", None):
        from .io import check_path_kind

        check_path_kind(args.source, "--from")
        overrides.update({"methods": "imported", "distill.import_from": str(Path(args.source).resolve())})
    if "precision" in vars(args):
        given = vars(args).get("model.precision")
        if given is not None and given != args.precision:
            raise UserError(
                f"--precision {args.precision} contradicts --model.precision {given} (the same option); give one"
            )
        overrides["model.precision"] = args.precision
    return make_config(args.preset, _config_file(args.config), overrides)


def _config_file(given: list[str] | None) -> str | None:
    """The one ``--config`` file; a second one is refused rather than silently replacing the first."""
    if given and len(given) > 1:
        raise UserError(
            f"--config given {len(given)} times ({', '.join(given)}); bpc reads one configuration file: merge "
            "them into one"
        )
    return given[0] if given else None


def summary_line(summary: dict) -> str:
    """'accuracy 0.7291, nll 0.9964' (classification) or 'rmse 1.0497, nll 1.4706' (regression)."""
    return ", ".join(f"{m} {summary[m]['mean']:.4f}" for m in ("accuracy", "rmse", "nll") if m in summary)


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a terminal that cannot print "±" gets "\xb1", not a traceback
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    keep_freed_memory()  # 1.23x on the quick model's training step (benchmarks/results/malloc_w32.md)
    if getattr(args, "out", "") is None:
        args.out = f"runs/{args.preset}"
    try:
        for option in ("out", "to"):
            if isinstance(getattr(args, option, None), str) and not getattr(args, option).strip():
                raise UserError(f"--{option} is empty; name a directory, e.g. --{option} runs/quick")
        if args.command == "export":
            from .pipeline.interop import export_coreset

            source = Path(args.out) / "coresets" / args.coreset
            if not (source / "coreset.safetensors").is_file():
                raise UserError(
                    f"no coreset {args.coreset!r} in {Path(args.out) / 'coresets'}; see the directory names there"
                )
            for path in export_coreset(source, Path(args.to)):
                print(f"wrote {path}")
            return 0
        if args.command == "verify":
            from .pipeline.artifacts import verify_run

            if not (Path(args.out) / ".bpc.lock").is_file():
                raise UserError(f"{args.out} is not a bpc run directory (no .bpc.lock); give --out a run's directory")
            rows = verify_run(Path(args.out))
            for name, status in rows:
                print(f"{name}: {status}")
            bad = [(name, status) for name, status in rows if not status.startswith(("ok", "unfinished", "unverified"))]
            if bad:
                raise UserError(
                    f"{len(bad)} damaged artifact(s) in {args.out}: {', '.join(name for name, _ in bad)} (the first: "
                    f"{bad[0][1]}); delete each and re-run its stage to rebuild it"
                )
            return 0
        if args.command == "report":
            from .report import write_report

            report = write_report(Path(args.out))
            print(report["markdown"], end="")
            if not args.no_figures:
                from .report.page import write_page

                print(f"report page: {write_page(Path(args.out), Path(args.bench) if args.bench else None)}")
            return 0
        from . import parallel
        from .api import Run
        from .utils import choose_device, configure_threads

        cpus = os.cpu_count() or 1
        if not 0 <= args.threads <= 8 * cpus:
            raise UserError(f"--threads must be in 0..{8 * cpus} (0 = torch's default; this machine has {cpus} CPUs)")
        configure_threads(args.threads)
        cfg = _config_from_args(args)
        device = parallel.init_from_env(choose_device(args.device))  # under torchrun: join the process group
        run = Run(cfg, Path(args.out), device=device, quiet=args.quiet)
        with run.lock():
            if parallel.is_main():
                run_stage(args, run)
            else:  # the other ranks work alongside rank 0 and print nothing
                with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
                    run_stage(args, run)
        parallel.shutdown()
        return 0
    except UserError as exc:
        print(f"bpc: error: {' '.join(str(exc).split())}", file=sys.stderr)  # always one line
        return 2
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except OSError as exc:  # read-only or full disk, a path that is not a directory, permissions...
        where = f" ({exc.filename})" if exc.filename else ""
        print(
            f"bpc: error: {exc.strerror or exc}{where}; check that --out and the data paths are writable "
            "directories on a disk with free space",
            file=sys.stderr,
        )
        return 2


def run_stage(args: argparse.Namespace, run) -> None:
    """One stage command (everything but ``report`` and ``export``) on a :class:`~pseudocoresets.api.Run` whose
    lock is held."""
    from .pipeline.resources import check_cells

    cfg = run.config
    if args.command not in ("import", "run", "table"):  # every cell, memory and disk, before any work (run_all
        check_cells(run.workspace)  # checks them itself; import reads its source first)
    if args.command == "experts":
        print(f"experts: {run.experts()}")
    elif args.command == "reference":
        ref = run.reference()
        print(f"full-data reference ({ref.results['samples']} samples): {summary_line(ref.summary)} ({ref.path})")
        if cfg.reference.compare:
            from .io import read_json
            from .pipeline.artifacts import ceiling_path

            for row in read_json(ceiling_path(run.out))["against"]:
                print(
                    f"against {row['sampler']} (seed {row['seed']}): agreement {row['agreement']:.4f}, "
                    f"tv {row['tv']:.4f}, kl {row['predictive_kl']:.4f} ({ceiling_path(run.out)})"
                )
    elif args.command == "distill":
        for ipc in cfg.ipcs:
            for method in cfg.methods:
                for k in range(cfg.distill.seeds):
                    print(f"coreset: {run.distill(method, ipc, k).path.parent}")
    elif args.command in ("evaluate", "import"):
        methods = ["imported"] if args.command == "import" else cfg.methods
        seeds = 1 if args.command == "import" else cfg.distill.seeds
        for ipc in cfg.ipcs:
            for method in methods:
                if args.command == "import":
                    print(f"coreset: {run.distill(method, ipc).path.parent}")
                for k in range(seeds):
                    for protocol in cfg.protocols:
                        ev = run.evaluate(method, ipc, protocol, k)
                        which = f" (coreset seed {ev.results.get('coreset_seed', '?')})" if seeds > 1 else ""
                        line = f"{method} ipc {ipc}{which} {protocol}: {summary_line(ev.summary)}"
                        if "corrupted_mean" in ev.results:
                            line += f"; corrupted sets: {summary_line(ev.results['corrupted_mean'])}"
                        print(f"{line} ({ev.path})")
    elif args.command == "table":
        from .report.table import write_table

        run.run_all()
        print(write_table(Path(args.out)))
    elif args.command == "run":
        report = run.run_all()
        print(report["markdown"], end="")
        print(f"wall time {report['wall_seconds']:.0f}s; artifacts in {args.out}")


if __name__ == "__main__":
    sys.exit(main())
