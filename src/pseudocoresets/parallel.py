"""Scale-out with torch.distributed: what a rank is, and the few collectives the stages use.

Launched under ``torchrun --nproc-per-node K`` (or several nodes with torchrun's rendezvous), every process runs
the same ``bpc`` command; :func:`init_from_env` joins the process group (gloo on CPU, nccl on CUDA, one GPU per
local rank). The stages then split their work by rank — experts e with e % K == rank, the S sample terms of
fKL/rKL, evaluation repeats — and combine it with the collectives below; only rank 0 writes artifacts. Without
torchrun (no WORLD_SIZE in the environment, or 1) every function here is the single-process identity.
"""

from __future__ import annotations

import os
import time
from typing import Any

import torch
import torch.distributed as dist


def init_from_env(device: torch.device) -> torch.device:
    """Join the process group torchrun describes in the environment (once); returns this rank's device."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def mine(index: int) -> bool:
    """Whether work item ``index`` (an expert, a sample term, a repeat) belongs to this rank (round robin)."""
    return index % world() == rank()


def barrier() -> None:
    if active():
        dist.barrier()


COMMUNICATION = {"seconds": 0.0, "calls": 0}  # time this process spent in the all-reduces (incl. waiting)


def all_reduce_sum_(tensor: torch.Tensor) -> torch.Tensor:
    """In-place sum over ranks (no-op in one process). Its time, waiting for slower ranks included, is added to
    COMMUNICATION, which the stages record in their manifests."""
    if active():
        t0 = time.perf_counter()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        COMMUNICATION["seconds"] += time.perf_counter() - t0
        COMMUNICATION["calls"] += 1
    return tensor


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (JSON-like), in rank order; ``[obj]`` in one process."""
    if not active():
        return [obj]
    out: list[Any] = [None] * world()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
