"""The outer distillation loop: SGD with momentum (the paper's) or Adam on the pixels of the coreset.

It knows nothing of the divergence: each iteration it asks the objective for the gradient estimate
(``objective.step``), takes one optimiser step, and lets the objective react (``after_update``).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ..errors import ResumeMismatch, UserError
from ..objectives import DistillContext, Objective, StudentSettings, build_objective, has_objective, method_names
from .. import parallel
from ..utils import generator, progress
from . import watch as watching


@dataclass
class DistillConfig:
    """Pseudocoreset learning, shared by every objective (defaults: the official ipc-10 values).

    Each objective's own hyperparameters are in its section (``--fkl.num_samples``, ``--dc.outer_loop``...).
    """

    method: str = field(default="fkl", metadata={"help": "objective: random or one of the registered divergences"})
    ipc: int = field(default=10, metadata={"help": "images per class (regression data: coreset points in all)"})
    iterations: int = field(default=5000, metadata={"help": "outer iterations K"})
    lr_images: float = field(default=1000.0, metadata={"help": "learning rate on the pixels"})
    momentum_images: float = field(default=0.5, metadata={"help": "SGD momentum on the pixels"})
    optimizer: str = field(
        default="sgd",
        metadata={
            "help": "optimiser of the pixels: sgd (the paper's, with "
            "momentum) or adam (blind to the objectives' scalings)"
        },
    )
    lr_schedule: str = field(
        default="constant",
        metadata={"help": "pixel learning rate: constant, or linear (decayed to 0 over the iterations)"},
    )
    lr_student: float = field(default=0.03, metadata={"help": "student SGD step size (lr_init)"})
    student_steps: int = field(default=30, metadata={"help": "L_u: student SGD steps on the coreset"})
    expert_epochs: int = field(default=1, metadata={"help": "L_x: target = expert snapshot r + L_x"})
    max_start_epoch: int = field(default=20, metadata={"help": "T+: start epoch r ~ U{0..T+}"})
    batch_syn: int = field(default=0, metadata={"help": "student mini-batch size (0 = whole coreset)"})
    augment: bool = field(default=False, metadata={"help": "apply DSA to the coreset inside the objective"})
    augment_per_image: bool = field(
        default=True, metadata={"help": "DSA draws per image (as the reference DSA); false: one draw per batch"}
    )
    seed: int = field(default=0, metadata={"help": "seed for initialisation and all sampling"})
    seeds: int = field(
        default=1,
        metadata={
            "help": "coresets learnt per method and ipc, with seeds seed, seed+1, ...; each is evaluated and the "
            "tables report mean ± std over them and paired differences with 95-percent intervals",
            "identity": "unless-set",
        },
    )
    expert_sets: str = field(
        default="shared",
        metadata={
            "help": "with --distill.seeds K: shared (every coreset learns from the run's experts) or independent "
            "(coreset k learns from its own expert set, trained with seeds shifted by k x num_experts)",
            "identity": "unless-set",
        },
    )
    import_from: str = field(
        default="",
        metadata={
            "help": "method imported: a distilled set made elsewhere (an "
            "MTT-style directory or .pt of images/labels, or an .npz)",
            "identity": "unless-set",
        },
    )
    checkpoint_every: int = field(
        default=25,
        metadata={
            "help": "save a resumable checkpoint every this many "
            "iterations (and on SIGINT/SIGTERM); 0 = only on signals"
        },
    )
    snapshot_every: int = field(
        default=0,
        metadata={
            "help": "keep the coreset every this many iterations "
            "(snapshots/) with a quick SGD score in progress.jsonl; 0 = off"
        },
    )

    def validate(self, expert_epochs_available: int | None = None) -> None:
        methods = method_names()
        if self.method not in methods:
            raise UserError(f"unknown method {self.method!r}; choose one of {', '.join(methods)}")
        if self.ipc < 1:
            raise UserError(f"--distill.ipc must be >= 1 (got {self.ipc})")
        if self.expert_sets not in ("shared", "independent"):
            raise UserError(f"--distill.expert_sets must be shared or independent (got {self.expert_sets!r})")
        if not 1 <= self.seeds <= 1000:
            raise UserError(f"--distill.seeds must be in 1..1000 coresets per cell (got {self.seeds})")
        if min(self.iterations, self.student_steps, self.batch_syn, self.checkpoint_every, self.snapshot_every) < 0:
            raise UserError(
                "--distill.iterations, student_steps, batch_syn, checkpoint_every and snapshot_every must be >= 0"
            )
        if self.optimizer not in ("sgd", "adam") or self.lr_schedule not in ("constant", "linear"):
            raise UserError("--distill.optimizer must be sgd or adam and --distill.lr_schedule constant or linear")
        if self.lr_images <= 0 or self.lr_student <= 0:
            raise UserError("--distill.lr_images and --distill.lr_student must be > 0")
        if self.method == "imported" and not self.import_from:
            raise UserError("method imported needs --distill.import_from PATH (an MTT-style directory, .pt or .npz)")
        if self.expert_epochs < 1 or self.max_start_epoch < 0:
            raise UserError(
                f"--distill.expert_epochs must be >= 1 and --distill.max_start_epoch >= 0 (got "
                f"{self.expert_epochs} and {self.max_start_epoch})"
            )
        if expert_epochs_available is not None and self.max_start_epoch + self.expert_epochs > expert_epochs_available:
            raise UserError(
                f"max_start_epoch ({self.max_start_epoch}) + expert_epochs ({self.expert_epochs}) exceeds the "
                f"experts' {expert_epochs_available} epochs; lower them or train longer experts"
            )

    def student(self) -> StudentSettings:
        return StudentSettings(
            lr=self.lr_student,
            steps=self.student_steps,
            batch=self.batch_syn,
            expert_epochs=self.expert_epochs,
            max_start_epoch=self.max_start_epoch,
        )


def random_real_subset(y: torch.Tensor, num_classes: int, ipc: int, g: torch.Generator) -> torch.Tensor:
    """Indices of ``ipc`` random real images of every class (class-major order); without classes (regression,
    ``num_classes`` = 0), ``ipc`` random points in all."""
    if num_classes == 0:
        if len(y) < ipc:
            raise UserError(f"the training split has {len(y)} points, fewer than the coreset size {ipc}")
        return torch.randperm(len(y), generator=g)[:ipc]
    picks = []
    for c in range(num_classes):
        idx = torch.nonzero(y == c).flatten()
        if len(idx) < ipc:
            raise UserError(f"class {c} has {len(idx)} training images, fewer than ipc={ipc}")
        picks.append(idx[torch.randperm(len(idx), generator=g)[:ipc]])
    return torch.cat(picks)


def prepare_objective(config: DistillConfig, objective_config: Any, context: DistillContext) -> Objective:
    """The objective ``config.method``, its context completed with the student settings and seed of ``config``."""
    size = config.ipc * context.num_classes if context.num_classes else config.ipc
    context = dataclasses.replace(context, student=config.student(), seed=config.seed, coreset_size=size)
    return build_objective(config.method, objective_config, context)


def loop_state(
    k: int,
    images: torch.Tensor,
    optimisers: list,
    objective: Objective,
    g: torch.Generator,
    elapsed: float,
    watched: list[float] | None = None,
    first_loss: float | None = None,
) -> dict[str, torch.Tensor]:
    """Everything iteration ``k`` (the next to run) depends on, as named tensors (a checkpoint); ``watched``: the
    values of the objective's watched metric so far, ``first_loss`` the first value of a divergence loss
    (distill/watch.py)."""
    state = {
        "iteration": torch.tensor([k]),
        "images": images.detach(),
        "generator": g.get_state(),
        "elapsed": torch.tensor([elapsed], dtype=torch.float64),
    }
    if watched:
        state["watch"] = torch.tensor(watched, dtype=torch.float64)
    if first_loss is not None:
        state["first_loss"] = torch.tensor([first_loss], dtype=torch.float64)
    for i, opt in enumerate(optimisers):
        for pid, entries in opt.state_dict()["state"].items():
            for key, value in entries.items():
                state[f"optimiser.{i}.{pid}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    state.update({f"objective.{k2}": v for k2, v in objective.state_dict().items()})
    return state


def checkpoint_iteration(state: dict[str, torch.Tensor], iterations: int) -> int:
    """The next iteration a :func:`loop_state` checkpoint resumes at, checked: one integer in [0, iterations]."""
    k = state.get("iteration")
    if not torch.is_tensor(k) or k.numel() != 1 or k.dtype.is_floating_point or k.dtype.is_complex:
        raise ResumeMismatch("its iteration is not one integer")
    if not 0 <= int(k.reshape(-1)[0]) <= iterations:
        raise ResumeMismatch(f"its iteration {int(k.reshape(-1)[0])} is outside 0..{iterations} (--distill.iterations)")
    return int(k.reshape(-1)[0])


def _check_like(state: dict[str, torch.Tensor], name: str, like: torch.Tensor) -> None:
    value = state[name]
    if not torch.is_tensor(value) or value.shape != like.shape or value.dtype != like.dtype:
        got = f"{value.dtype} {tuple(value.shape)}" if torch.is_tensor(value) else type(value).__name__
        raise ResumeMismatch(f"its {name} is {got} where this run has {like.dtype} {tuple(like.shape)}")
    if value.dtype.is_floating_point and not torch.isfinite(value).all():
        raise ResumeMismatch(f"its {name} holds non-finite values")


def check_state(
    state: dict[str, torch.Tensor],
    images: torch.Tensor,
    optimisers: list,
    objective: Objective,
    g: torch.Generator,
    iterations: int,
) -> int:
    """Refuse (:class:`ResumeMismatch`) a checkpoint that this run's live objects cannot take: the iteration,
    the images, the generator state, every optimiser entry (shaped like its parameter; ``step`` a finite
    count) and every objective entry the objective has now; returns the iteration."""
    k = checkpoint_iteration(state, iterations)
    _check_like(state, "images", images.detach())
    _check_like(state, "generator", g.get_state())
    elapsed = state["elapsed"]
    if elapsed.numel() != 1 or not elapsed.dtype.is_floating_point or not 0 <= float(elapsed.reshape(-1)[0]) < 1e12:
        raise ResumeMismatch("its elapsed time is not one finite number of seconds")
    for i, opt in enumerate(optimisers):
        params = [p for group in opt.param_groups for p in group["params"]]
        for name, value in state.items():
            if not name.startswith(f"optimiser.{i}."):
                continue
            parts = name.split(".", 3)
            if len(parts) != 4 or not parts[2].isdigit() or int(parts[2]) >= len(params):
                raise ResumeMismatch(f"its entry {name!r} names no parameter of optimiser {i}")
            if parts[3] == "step":
                if value.numel() != 1 or not torch.isfinite(value.double()).all() or float(value.reshape(-1)[0]) < 0:
                    raise ResumeMismatch(f"its {name} is not one count")
            else:
                _check_like(state, name, params[int(parts[2])].detach())
    if any(n.startswith("optimiser.") and n.split(".")[1] not in map(str, range(len(optimisers))) for n in state):
        raise ResumeMismatch("it holds the state of an optimiser this run does not have")
    for name, like in objective.state_dict().items():
        if f"objective.{name}" in state and torch.is_tensor(like):
            _check_like(state, f"objective.{name}", like)
    watched = state.get("watch")
    if watched is not None and (
        not torch.is_tensor(watched)
        or watched.dim() != 1
        or not watched.dtype.is_floating_point
        or len(watched) > k
        or not torch.isfinite(watched).all()
    ):
        raise ResumeMismatch("its watched values are not one finite value per iteration run")
    first_loss = state.get("first_loss")
    if first_loss is not None and (
        not torch.is_tensor(first_loss) or first_loss.numel() != 1 or not torch.isfinite(first_loss.double()).all()
    ):
        raise ResumeMismatch("its first loss is not one finite number")
    return k


def restore_state(
    state: dict[str, torch.Tensor], images: torch.Tensor, optimisers: list, objective: Objective, g: torch.Generator
) -> tuple[int, float]:
    """Load a :func:`loop_state` checkpoint into the live objects (checked first by :func:`check_state`);
    returns (next iteration, elapsed seconds)."""
    with torch.no_grad():
        images.copy_(state["images"].to(images.device))
    g.set_state(state["generator"].cpu())
    for i, opt in enumerate(optimisers):
        sd = opt.state_dict()
        entries: dict[int, dict] = {}
        for name, value in state.items():
            if name.startswith(f"optimiser.{i}."):
                _, _, pid, key = name.split(".", 3)
                entries.setdefault(int(pid), {})[key] = value
        sd["state"] = entries
        opt.load_state_dict(sd)
    objective.load_state_dict({k[len("objective.") :]: v for k, v in state.items() if k.startswith("objective.")})
    return int(state["iteration"][0]), float(state["elapsed"][0])


def distill(
    config: DistillConfig,
    objective_config: Any,
    context: DistillContext,
    init_images: torch.Tensor,
    labels: torch.Tensor,
    quiet: bool = False,
    on_iteration: Callable[[int, dict], None] | None = None,
    resume: dict[str, torch.Tensor] | None = None,
    on_checkpoint: Callable[[dict[str, torch.Tensor]], None] | None = None,
    stop_requested: Callable[[], bool] | None = None,
    on_snapshot: Callable[[int, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, dict]:
    """Run ``config.iterations`` outer steps of the objective ``config.method`` (configured by
    ``objective_config``, its module's ``Config``) from ``init_images``.

    ``resume``: a checkpoint (:func:`loop_state`) to continue from, bit for bit. ``on_checkpoint`` receives one
    every ``config.checkpoint_every`` iterations, and when ``stop_requested()`` turns true (e.g. after SIGTERM),
    after which the loop raises KeyboardInterrupt. ``on_snapshot(k, images)`` is called after every
    ``config.snapshot_every``-th iteration.

    Returns the learnt images (normalised space) and a summary (timings, last metrics, learnt extras).
    """
    g = generator(config.seed + 1, context.device)
    images = init_images.detach().clone().to(context.device).requires_grad_(True)
    labels = labels.to(context.device)
    if not has_objective(config.method) or config.iterations == 0:
        return images.detach(), {"iterations": 0, "seconds_per_iteration": None}
    objective = prepare_objective(config, objective_config, context)
    if config.optimizer == "adam":
        pixels = torch.optim.Adam([images], lr=config.lr_images)
        optimisers = [pixels] + ([torch.optim.SGD(objective.param_groups())] if objective.param_groups() else [])
    else:  # one SGD over the pixels and the objective's own parameters (e.g. W's learnt student step size)
        pixels = torch.optim.SGD(
            [
                {"params": [images], "lr": config.lr_images, "momentum": config.momentum_images},
                *objective.param_groups(),
            ]
        )
        optimisers = [pixels]
    own = [p for group in objective.param_groups() for p in group["params"]]  # its own learnt tensors
    metrics: dict = {}
    if resume is not None:
        check_state(resume, images, optimisers, objective, g, config.iterations)
    first, before = restore_state(resume, images, optimisers, objective, g) if resume is not None else (0, 0.0)
    start = time.perf_counter() - before
    watch = getattr(objective, "watch", None)
    # a checkpoint written before the loop watched anything resumes with the values from there on
    watched: list[float] = resume["watch"].tolist() if resume is not None and "watch" in resume else []
    first_loss = float(resume["first_loss"][0]) if resume is not None and "first_loss" in resume else None
    for k in progress(
        range(first, config.iterations), config.iterations - first, f"distill {config.method}", quiet, initial=first
    ):
        for opt in optimisers:
            opt.zero_grad(set_to_none=True)
        metrics = objective.step(images, labels, g)
        if images.grad is None or not torch.isfinite(images.grad).all():
            raise UserError(
                f"{config.method}: non-finite gradient at iteration {k}; lower --distill.lr_images or lr_student"
            )
        if any(p.grad is not None and not torch.isfinite(p.grad).all() for p in own):
            raise UserError(
                f"{config.method}: non-finite gradient of the objective's own learnt values at iteration "
                f"{k}; lower its learning rates (e.g. --{config.method}.lr_weights)"
            )
        if watch is not None and watch.metric in metrics:
            watched.append(float(metrics[watch.metric]))
        if getattr(objective, "loss_is_divergence", False) and "loss" in metrics:
            first_loss = metrics["loss"] if first_loss is None else first_loss
            if watching.diverging(first_loss, metrics["loss"]):
                options = " or ".join(f"--{o}" for o in getattr(objective, "guard_options", ()))
                raise UserError(
                    f"{config.method}: the run diverges (its loss, the divergence up to a constant, went from "
                    f"{first_loss:.4g} to {metrics['loss']:.4g} by iteration {k}); lower {options}"
                )
        if config.lr_schedule == "linear":
            pixels.param_groups[0]["lr"] = config.lr_images * (1 - k / config.iterations)
        for opt in optimisers:
            opt.step()
        objective.after_update(images, labels)
        if on_iteration is not None:
            on_iteration(k, metrics)
        if on_snapshot is not None and config.snapshot_every and (k + 1) % config.snapshot_every == 0:
            on_snapshot(k + 1, images.detach())
        stop = stop_requested is not None and stop_requested()
        periodic = config.checkpoint_every and (k + 1) % config.checkpoint_every == 0 and k + 1 < config.iterations
        if on_checkpoint is not None and (stop or periodic):
            on_checkpoint(
                loop_state(k + 1, images, optimisers, objective, g, time.perf_counter() - start, watched, first_loss)
            )
        if stop:
            raise KeyboardInterrupt
    elapsed = time.perf_counter() - start
    summary = {
        "iterations": config.iterations,
        "seconds_per_iteration": elapsed / config.iterations,
        "last_metrics": metrics,
    }
    if watch is not None:
        verdict = watching.compare(watched, watch.better)
        if verdict is not None:
            # values < iterations: resumed from a checkpoint written before the loop watched (the tail only)
            summary["watch"] = {"metric": watch.metric, "better": watch.better, "values": len(watched), **verdict}
            if verdict["worse"] and parallel.is_main():
                print(
                    f"bpc: warning: {config.method}: {watch.meaning} ({watch.metric} {verdict['first']:.4g} over "
                    f"the first {verdict['window']} iterations, {verdict['last']:.4g} over the last); the coreset is "
                    f"returned as learnt: check it, or change {', '.join('--' + o for o in watch.options)}",
                    file=sys.stderr,
                )
    summary.update(objective.summary())
    return images.detach(), summary
