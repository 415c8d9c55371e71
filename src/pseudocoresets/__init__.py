"""Bayesian pseudocoresets: learn a small synthetic dataset whose posterior matches the full-data posterior.

Implements "On Divergence Measures for Bayesian Pseudocoresets" (Kim, Choi, Lee, Lee, Ha and Lee, NeurIPS 2022) and its
successors. The public API (everything in ``__all__``):

- :func:`make_config` and :class:`RunConfig` with its sections (:class:`DataConfig`, :class:`ModelConfig`,
  :class:`ExpertConfig`, :class:`PosteriorConfig`, :class:`ReferenceConfig`, :class:`DistillConfig`,
  :class:`EvalConfig`); ``PRESETS`` names the starting points;
- :class:`Run`: one run directory, its stages as methods (``experts``, ``reference``, ``distill``,
  ``evaluate``, ``run_all``, ``report``), returning typed results (:class:`Coreset`, :class:`Evaluation`);
- :func:`load_coreset`: a coreset artifact as a :class:`Coreset`;
- the registries: ``OBJECTIVES`` (method name -> objective module) and ``PROTOCOLS`` (evaluation protocol name
  -> sampler set-up);
- :class:`UserError`: every problem a user can fix, with a message saying how.

The ``bpc`` command line is a thin layer over this API.
"""

from typing import TYPE_CHECKING

from .version import __version__

# The public names are imported on first use (PEP 562), so that ``import pseudocoresets`` and the ``bpc`` entry
# point start without importing torch: an interrupt during the command line's start-up then gets one line.
_PUBLIC = {
    "Evaluation": ".api",
    "Run": ".api",
    "make_config": ".api",
    "PRESETS": ".config",
    "RunConfig": ".config",
    "DataConfig": ".data",
    "DistillConfig": ".distill",
    "UserError": ".errors",
    "EvalConfig": ".evaluation",
    "PROTOCOLS": ".evaluation.protocols",
    "ExpertConfig": ".experts",
    "ModelConfig": ".models",
    "OBJECTIVES": ".objectives",
    "Coreset": ".pipeline.coreset",
    "load_coreset": ".pipeline.coreset",
    "ReferenceConfig": ".reference",
    "PosteriorConfig": ".samplers",
}

if TYPE_CHECKING:  # what static tools (type checkers, the docs' API page) read
    from .api import Evaluation, Run, make_config
    from .config import PRESETS, RunConfig
    from .data import DataConfig
    from .distill import DistillConfig
    from .errors import UserError
    from .evaluation import EvalConfig
    from .evaluation.protocols import PROTOCOLS
    from .experts import ExpertConfig
    from .models import ModelConfig
    from .objectives import OBJECTIVES
    from .pipeline.coreset import Coreset, load_coreset
    from .reference import ReferenceConfig
    from .samplers import PosteriorConfig


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_PUBLIC[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "OBJECTIVES",
    "PRESETS",
    "PROTOCOLS",
    "Coreset",
    "DataConfig",
    "DistillConfig",
    "EvalConfig",
    "Evaluation",
    "ExpertConfig",
    "ModelConfig",
    "PosteriorConfig",
    "ReferenceConfig",
    "Run",
    "RunConfig",
    "UserError",
    "__version__",
    "load_coreset",
    "make_config",
]
