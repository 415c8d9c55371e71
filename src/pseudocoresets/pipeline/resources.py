"""Memory and disk checked against the configuration before any stage starts.

Each stage's largest allocations follow from the configuration and the data's shapes alone: with P the number
of network parameters (counted on PyTorch's ``meta`` device, which allocates nothing), an expert holds its
trajectory of (epochs + 1) x P numbers, an evaluation stacks the chains' kept states (chains x kept x P), the
Gaussian objectives draw num_samples x P at once, the reference keeps chains x cycles x samples_per_cycle x P,
and a network's first layer alone produces batch x width x H x W activations. Every term below is a *lower
bound* of what the stage allocates (4 bytes per number, no work buffers counted), so a refusal is certain to be
right: a run whose single largest term exceeds the memory available now (``MemAvailable``, or the GPU's free
memory) would fail in the allocator after the costly stages began. The experts are also checked against the
free disk space of the run directory, where they are written.

Refused in one line naming the option to lower (:func:`check_resources`).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import torch

from ..errors import UserError
from ..models import build_likelihood, build_model
from .workspace import Workspace, needs_experts, needs_reference

FLOAT = 4  # bytes per stored number (fp32)


def available_memory(device: torch.device) -> int:
    """Bytes the device can still allocate: the GPU's free memory, or the host's MemAvailable, and never more than
    the room left under the process's address-space limit (``ulimit -v``, ``prlimit --as``)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    free = 2**62  # unknown: no refusal
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
    except OSError:
        pass
    return min(free, address_space_room())


def address_space_room() -> int:
    """Bytes this process may still map under its address-space limit (RLIMIT_AS) beyond what it has mapped
    (VmSize); 2**62 without a limit or where it cannot be read."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        return 2**62
    if soft == resource.RLIM_INFINITY or soft < 0:
        return 2**62
    mapped = 0
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                mapped = int(line.split()[1]) * 1024
    except OSError:
        pass
    return max(0, soft - mapped)


def parameter_count(ws: Workspace) -> int:
    """P of the run's network, built on the meta device (no memory)."""
    d = ws.data
    outputs = build_likelihood(ws.config.model.likelihood).num_outputs(d.num_classes)
    input_shape = tuple(ws.prepare(d.train_x[:1]).shape[1:])
    with torch.device("meta"):
        return build_model(ws.config.model, input_shape, outputs).num_params


def memory_terms(ws: Workspace, p: int) -> list[tuple[int, str, str]]:
    """``(bytes, what, option to lower)`` for the largest allocation of every stage this run will do (``p``: the
    network's parameter count)."""
    cfg = ws.config
    shape = tuple(ws.prepare(ws.data.train_x[:1]).shape[1:])
    pixels = math.prod(shape[1:]) if len(shape) == 3 else 1  # H x W of an image (1 for tabular rows)
    width = cfg.model.width if cfg.model.arch == "convnet" else 1
    terms = [(3 * p * FLOAT, "the network's parameters, gradients and momenta", "--model.width or --model.depth")]
    cells = [(c.distill, c.objective) for c in ws.cells()]
    if any(needs_experts(m) for m in cfg.methods):
        e = cfg.experts
        terms.append(((e.epochs + 1) * p * FLOAT, "an expert's trajectory", "--experts.epochs or --model.width"))
        batch = min(e.batch_size, len(ws.data.train_y))
        terms.append((batch * width * pixels * FLOAT, "an expert mini-batch's activations", "--experts.batch_size"))
    for distill_cfg, objective_cfg in cells:
        samples = getattr(objective_cfg, "num_samples", 0) if objective_cfg is not None else 0
        if samples:
            terms.append(
                (
                    samples * p * FLOAT,
                    f"{distill_cfg.method}'s samples",
                    f"--{distill_cfg.method}.num_samples or --model.width",
                )
            )
        if objective_cfg is not None and distill_cfg.student_steps:
            batch = distill_cfg.batch_syn or distill_cfg.ipc * max(ws.data.num_classes, 1)
            terms.append(
                (
                    distill_cfg.student_steps * batch * width * pixels * FLOAT,
                    f"{distill_cfg.method}'s unrolled student steps",
                    "--distill.student_steps, --distill.batch_syn or --ipcs",
                )
            )
    for ipc in cfg.ipcs:
        for protocol in cfg.protocols:
            ev = cfg.resolve(cfg.methods[0], ipc, protocol).evaluation
            kept = ev.kept_states()
            if kept:
                section = ev.module.SECTION
                terms.append(
                    (
                        kept * p * FLOAT,
                        f"the {protocol} chains' kept states",
                        f"--{section}.chains, iterations, thin or --model.width",
                    )
                )
            batch = min(ev.common.test_batch, len(ws.data.test_y))
            terms.append((batch * width * pixels * FLOAT, "a test batch's activations", "--evaluate.test_batch"))
    if cfg.evaluate.agreement or any(needs_reference(c.method, o) for c, o in cells):
        r = cfg.reference
        per_chain = {"csghmc": r.cycles * r.samples_per_cycle, "ensemble": 1}
        kept = r.chains * per_chain.get(r.sampler, -(-(r.iterations - r.burn_in) // r.thin))
        terms.append(
            (
                kept * p * FLOAT,
                "the reference posterior's samples",
                "--reference.chains, samples_per_cycle or --model.width",
            )
        )
    return terms


def check_cells(ws: Workspace) -> None:
    """Every (method, ipc, protocol) cell of the run against the data, then memory and disk, before any work."""
    for method in ws.config.methods:
        for ipc in ws.config.ipcs:
            ws.check_distill_cell(ws.config.resolve(method, ipc))
            for protocol in ws.config.protocols:
                ws.check_eval_cell(ws.config.resolve(method, ipc, protocol))
    check_resources(ws)


def check_resources(ws: Workspace) -> None:
    """Refuse, before any work, a configuration whose largest allocation exceeds the memory available now, or
    whose experts exceed the run directory's free disk space; and an ``--ipcs`` above the smallest class."""
    data = ws.data
    if data.is_image and not ws.is_regression and len(data.train_y):
        counts = torch.bincount(data.train_y.long(), minlength=max(data.num_classes, 1))
        smallest = int(counts.min())
        if smallest == 0:
            empty = data.classes[int(counts.argmin())] if counts.argmin() < len(data.classes) else "?"
            raise UserError(
                f"the training data has no image of class {empty!r} (after --data.train_subset, if set); "
                "raise --data.train_subset or check the data"
            )
        above = [ipc for ipc in ws.config.ipcs if ipc > smallest]
        if above:
            raise UserError(
                f"--ipcs {above[0]} is more than the {smallest} training images of the smallest class; lower --ipcs"
            )
    p = parameter_count(ws)
    free = available_memory(ws.device)
    need, what, option = max(memory_terms(ws, p))
    if need > free:
        raise UserError(
            f"{what} alone would take {need / 2**30:.1f} GiB and {ws.device} has {free / 2**30:.1f} GiB available "
            f"(free memory, within the process's address-space limit); lower {option}"
        )
    if any(needs_experts(m) for m in ws.config.methods):
        e = ws.config.experts
        disk = e.num_experts * (e.epochs + 1) * p * FLOAT
        where = ws.out if ws.out.exists() else next((p for p in ws.out.absolute().parents if p.exists()), Path("/"))
        room = shutil.disk_usage(where).free
        if disk > room:
            raise UserError(
                f"the experts would take {disk / 2**30:.1f} GiB on disk and {where} has {room / 2**30:.1f} GiB free; "
                "lower --experts.num_experts, --experts.epochs or --model.width"
            )
