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

from .version import __version__
from .api import Evaluation, Run, make_config  # noqa: E402
from .config import PRESETS, RunConfig  # noqa: E402
from .data import DataConfig  # noqa: E402
from .distill import DistillConfig  # noqa: E402
from .errors import UserError  # noqa: E402
from .evaluation import EvalConfig  # noqa: E402
from .evaluation.protocols import PROTOCOLS  # noqa: E402
from .experts import ExpertConfig  # noqa: E402
from .models import ModelConfig  # noqa: E402
from .objectives import OBJECTIVES  # noqa: E402
from .pipeline.coreset import Coreset, load_coreset  # noqa: E402
from .reference import ReferenceConfig  # noqa: E402
from .samplers import PosteriorConfig  # noqa: E402

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
