"""Stage 1, ``bpc experts``: expert SGD trajectories on the full data, one file per expert, resumable per epoch."""

from __future__ import annotations

import time
from pathlib import Path

from .. import integrity, parallel
from ..augment import build_dsa
from ..errors import ResumeMismatch, UserError
from ..experts import expert_file, expert_files, save_trajectory, sgd_trajectory, trajectory_shape
from ..io import atomic_write_json, read_json, remove_file, save_tensors
from ..utils import progress_bar
from .progress import ProgressLog, claim, load_checkpoint, rank_log_name
from .workspace import Workspace


EXPERT_KEYS = {"snapshots", "velocity", "generator_state", "losses"}


def run_experts(ws: Workspace, expert_set: int = 0) -> Path:
    """Stage 1: ``num_experts`` SGD trajectories, one file each (finished experts are kept on re-runs); with
    ``expert_set`` k >= 1 the k-th independent set (Workspace.experts_dir)."""
    cfg = ws.expert_config(expert_set)
    cfg.validate()
    ws.check_image_options(augment=cfg.augment)
    art = ws.experts_dir(expert_set)
    if art.is_complete():
        return art.path
    batches = -(-len(ws.data.train_y) // cfg.batch_size)  # loads the data first: a missing dataset leaves no directory
    model = ws.model(planned_calls=cfg.num_experts * cfg.epochs * batches)
    claim(art)
    x, y = ws.train_x(), ws.targets(ws.data.train_y)
    timings = {}
    done = [_finished(expert_file(art.path, e), (cfg.epochs + 1, model.num_params)) for e in range(cfg.num_experts)]
    bar = progress_bar(cfg.num_experts * cfg.epochs, "experts (epochs)", ws.quiet, cfg.epochs * sum(done))
    for e in range(cfg.num_experts):
        path = expert_file(art.path, e)
        if done[e] or not parallel.mine(e):
            continue  # finished earlier (a missing, broken or mis-shaped file is retrained), or another rank's
        t0 = time.perf_counter()
        seed = cfg.seed + e
        partial = path.with_name(f"{path.stem}.partial.safetensors")  # its state after the last finished epoch
        resume = load_checkpoint(partial, EXPERT_KEYS, ws.device) or None
        log = [] if resume is None else [float(v) for v in resume["losses"]]
        bar.update(len(log))
        # progress.jsonl: one line per expert epoch; lines of this expert past its saved state are dropped
        metrics = ProgressLog(
            art.path / rank_log_name(),
            keep=lambda row, e=e, n=len(log): row.get("expert") != e or row.get("epoch", 0) <= n,
        )

        def on_epoch(epoch: int, loss: float, e=e, metrics=metrics) -> None:
            log.append(loss)
            metrics.write(epoch, {"expert": e, "train_loss": loss}, key="epoch")
            bar.update(1)

        augment = build_dsa(cfg.augment, per_image=cfg.augment_per_image)
        try:
            traj = sgd_trajectory(
                model,
                model.init(seed),
                x,
                y,
                cfg,
                seed,
                augment=augment,
                on_epoch=on_epoch,
                resume=resume,
                on_checkpoint=lambda state: save_tensors(partial, state),
            )
        except ResumeMismatch as exc:  # a damaged or edited partial file: the user decides
            raise UserError(
                f"{partial} does not fit this run ({exc}): it was damaged or edited; delete it to retrain "
                f"expert {e} from its first epoch"
            ) from None
        except UserError:  # diverged: its partial state is of no use to a corrected re-run
            remove_file(partial)
            raise
        save_trajectory(path, traj, seed, log)
        atomic_write_json(_digest_path(path), {"sha256": integrity.sha256(path)})  # this expert is finished
        remove_file(partial)
        timings[f"expert_{e:03d}"] = time.perf_counter() - t0
        bar.set_postfix_str(f"expert {e + 1}: final train loss {log[-1]:.4f}")
    bar.close()
    for part in parallel.all_gather_objects(timings):  # also waits for every rank's experts
        timings.update(part)
    if parallel.is_main():
        art.finish(
            cfg.seed,
            timings,
            {"num_params": model.num_params, "snapshots": cfg.epochs + 1, "processes": parallel.world()},
        )
        for e in range(cfg.num_experts):  # the manifest's checksums take over
            remove_file(_digest_path(expert_file(art.path, e)))
    parallel.barrier()
    return art.path


def _digest_path(path: Path) -> Path:
    """Where a finished expert's SHA-256 is kept until the stage's manifest records it (resume state)."""
    return path.with_name(f"{path.stem}.digest.partial.json")


def _finished(path: Path, shape: tuple[int, int]) -> bool:
    """Whether an expert file of an unfinished stage is one this stage finished: the expected shape, and the
    checksum recorded when it was written. A file without that record (its record or the stage's manifest lost,
    or the file replaced) is trained again, never trusted."""
    if trajectory_shape(path) != shape or not _digest_path(path).is_file():
        return False
    try:
        recorded = read_json(_digest_path(path))
    except UserError:
        return False
    return isinstance(recorded, dict) and recorded.get("sha256") == integrity.sha256(path)


def expert_paths(ws: Workspace, expert_set: int = 0) -> list[Path]:
    art = ws.experts_dir(expert_set)
    if not art.is_complete():
        raise UserError(f"no complete experts in {art.path} for this configuration; run 'bpc experts' first")
    paths = expert_files(art.path, ws.config.experts.num_experts)
    expected = (ws.config.experts.epochs + 1, ws.model().num_params)
    for path in paths:
        shape = trajectory_shape(path)
        if shape != expected:
            found = "unreadable" if shape is None else f"shape {shape[0]}x{shape[1]}"
            raise UserError(
                f"{path} is damaged ({found}, expected {expected[0]}x{expected[1]}); delete it and re-run 'bpc experts'"
            )
    return paths
