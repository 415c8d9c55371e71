"""The memory check reads what the process may really allocate: free memory, and the room under its
address-space limit (``ulimit -v``), whichever is smaller."""

import resource

import torch

from pseudocoresets.pipeline import resources


def _mapped() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize")


def test_the_address_space_limit_bounds_the_available_memory(monkeypatch):
    real = resource.getrlimit
    limit = _mapped() + 2**30  # one GiB of room left under the limit
    monkeypatch.setattr(
        resource,
        "getrlimit",
        lambda kind: (limit, resource.RLIM_INFINITY) if kind == resource.RLIMIT_AS else real(kind),
    )
    room = resources.address_space_room()
    assert 0.5 * 2**30 < room <= 2**30
    assert resources.available_memory(torch.device("cpu")) <= room


def test_no_limit_leaves_the_free_memory(monkeypatch):
    real = resource.getrlimit
    monkeypatch.setattr(
        resource,
        "getrlimit",
        lambda kind: (resource.RLIM_INFINITY, resource.RLIM_INFINITY) if kind == resource.RLIMIT_AS else real(kind),
    )
    assert resources.address_space_room() == 2**62
    assert resources.available_memory(torch.device("cpu")) < 2**62  # MemAvailable, read from /proc/meminfo
