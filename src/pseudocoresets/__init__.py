"""Bayesian pseudocoresets: learn a small synthetic dataset whose posterior matches the full-data posterior.

Implements "On Divergence Measures for Bayesian Pseudocoresets" (Kim et al., NeurIPS 2022).
The Python API mirrors the ``bpc`` command line: see :mod:`pseudocoresets.pipeline.stages`.
"""

__version__ = "0.1.0"
