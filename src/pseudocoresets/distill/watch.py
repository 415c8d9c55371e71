"""What the outer loop watches so that a run which makes its coreset worse does not end silently.

An objective's gradient is an estimate; where it is dominated by noise, or biased (chains that do not mix), the
optimiser moves the coreset at random or the wrong way, and the divergence the objective stands for rises. The
loop cannot compute that divergence (the full-data posterior is unknown), so each objective names what it can
tell from its own samples (``ObjectiveBase.watch``, objectives/interface.py):

- a **watched metric** (e.g. rKL's expected log-likelihood of the real batch under its pi_u samples, a term of
  the reverse KL): its mean over the last window of iterations is compared with its mean over the first window
  (each the larger of 5 iterations and a tenth of the run). The run is called worse when the difference, in the
  bad direction, exceeds ``Z`` standard errors of the difference of the two means (W1):

      worse = s (mean_last - mean_first),  se = sqrt(v_first + v_last),  worse > Z se,

  with s = +1 when lower is better and -1 when higher is better. The values come from persistent chains and a
  slowly moving coreset, so consecutive values are correlated and var / n understates a window mean's variance.
  Each window's variance of its mean is therefore the batch-means estimate (W3), floored at the independent one:

      v = max(var(window) / n,  var(batch means) / b),  b = floor(sqrt(n)) batches of floor(n / b) values,

  the batches taken from the window's last b floor(n / b) values (Flegal & Jones 2010: batches of about sqrt(n)
  values). The loop then says so in one line and records the comparison in the coreset's summary; the coreset is
  still returned, as learnt.
- a **divergence loss** (``ObjectiveBase.loss_is_divergence``: the loss is the divergence up to a constant, as
  VBPC's): a run whose loss leaves its first value by more than ``GUARD`` times max(|first|, 1) upwards, or
  turns non-finite, is diverging and is refused at that iteration (W2), naming the options to change.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

Z = 3.0
"""Standard errors by which the last window must be worse than the first before the loop says so."""
GUARD = 10.0
"""A divergence loss this many times max(|first value|, 1) above its first value is a diverging run."""
MIN_WINDOW = 5


def window(count: int) -> int:
    return max(MIN_WINDOW, count // 10)


def mean_variance(values: list[float]) -> float:
    """(W3): the variance of the mean of ``values`` (at least 4 of them), by batch means floored at var / n."""
    n = len(values)
    b = math.isqrt(n)
    size = n // b
    batches = [statistics.fmean(values[n - (j + 1) * size : n - j * size]) for j in range(b)]
    return max(statistics.variance(values) / n, statistics.variance(batches) / b)


def compare(values: list[float], better: str) -> dict[str, Any] | None:
    """(W1) on the watched metric's values, one per iteration; None when the run is too short for two windows
    (fewer than 2 x MIN_WINDOW iterations) or a value is not finite."""
    n = window(len(values))
    if len(values) < 2 * n or not all(math.isfinite(v) for v in values):
        return None
    first, last = values[:n], values[-n:]
    sign = 1.0 if better == "lower" else -1.0
    worse = sign * (statistics.fmean(last) - statistics.fmean(first))
    se = math.sqrt(mean_variance(first) + mean_variance(last))
    return {
        "first": statistics.fmean(first),
        "last": statistics.fmean(last),
        "window": n,
        "worse_by": worse,
        "standard_error": se,
        "worse": worse > Z * se and worse > 0,
    }


def diverging(first: float, value: float) -> bool:
    """(W2): the divergence loss ``value`` has left its ``first`` value upwards by GUARD x max(|first|, 1)."""
    return not math.isfinite(value) or value - first > GUARD * max(abs(first), 1.0)
