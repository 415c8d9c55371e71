"""Evaluation protocols, one module each, behind one interface (:mod:`.interface`).

The registry below is the only place that lists them; its order is the display order of reports. Adding a
protocol = one new module + one entry here: the configuration (its ``--SECTION.*`` options), the command line,
the pipeline, the resource check and the report pick it up.
"""

from __future__ import annotations

from types import ModuleType

from ...errors import UserError
from . import asghmc, hmc, vbpc
from .interface import Prediction, ProtocolContext

PROTOCOLS: dict[str, ModuleType] = {m.NAME: m for m in (hmc, asghmc, vbpc)}


def protocol_module(name: str) -> ModuleType:
    if name not in PROTOCOLS:
        raise UserError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def protocol_sections() -> dict[str, ModuleType]:
    """Section name (``hmc``, ``asghmc``, ``vbpc_eval``) -> protocol module."""
    return {m.SECTION: m for m in PROTOCOLS.values()}


def aliases() -> dict[str, list[str]]:
    """Earlier option names -> the ``section.option`` keys they set now (one earlier name may set several)."""
    out: dict[str, list[str]] = {}
    for module in PROTOCOLS.values():
        for old, name in getattr(module, "ALIASES", {}).items():
            out.setdefault(old, []).append(f"{module.SECTION}.{name}")
    return out


__all__ = ["PROTOCOLS", "Prediction", "ProtocolContext", "aliases", "protocol_module", "protocol_sections"]
