"""What is not a result: refused before an evaluation (or the reference) is saved."""

from __future__ import annotations

import math

from ..errors import UserError

MIN_ACCEPTANCE = 1e-3
"""Below this mean acceptance probability after burn-in, HMC's chains have stayed where they started: no result."""


def check_result(
    what: str,
    metrics: dict[str, dict],
    acceptance: float | None = None,
    advice: str = "lower --hmc.init_std or step_size, or --asghmc.init_std or step_size",
) -> None:
    """Refuse what is not a result (:class:`UserError`, one line with advice): a non-finite metric on any test set
    (``metrics``: set name -> metric name -> value), or chains that accepted (almost) none of their proposals."""
    for name, row in metrics.items():
        for key, value in row.items():
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise UserError(
                    f"{what} gave {key} = {value} on the {name} set: the posterior samples' predictions are not "
                    f"finite (a diverged chain, or a start too far out: {advice}); not saved"
                )
    if acceptance is not None and math.isfinite(acceptance) and acceptance < MIN_ACCEPTANCE:
        raise UserError(
            f"{what}: its chains accepted {acceptance:.1e} of their proposals after burn-in, so they never left "
            "their starting points; lower --hmc.step_size or keep --hmc.adapt_step_size on (and check "
            "--evaluate.temperature and coreset_weight); not saved"
        )


# the values a metric can take (metrics.py); a finished repeat's record outside them was not written by bpc
RANGES = {
    "accuracy": (0.0, 1.0),
    "ece": (0.0, 1.0),
    "brier": (0.0, 2.0),
    "coverage_95": (0.0, 1.0),
    "agreement": (0.0, 1.0),
    "tv": (0.0, 1.0),
    "nll": (0.0, math.inf),
    "rmse": (0.0, math.inf),
    "predictive_kl": (-1e-6, math.inf),
}


def _metric_row_fits(row, keys: tuple[str, ...]) -> bool:
    """One test set's metrics of a finished repeat: exactly ``keys``, each a finite number in its range."""
    if not isinstance(row, dict) or set(row) != set(keys):
        return False
    for key, value in row.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        low, high = RANGES.get(key, (-math.inf, math.inf))
        if not low <= value <= high:
            return False
    return True


def repeat_records_fit(records, sets: set[str], keys: tuple[str, ...], seed: int, repeats: int) -> bool:
    """Whether the saved records of finished repeats (an evaluation's resume state) are what this evaluation
    writes: a list of ``{"sets", "stats"}``, one per distinct repeat seed in ``seed .. seed + repeats - 1``, each
    with every test set of ``sets`` holding exactly the metrics ``keys`` within their ranges."""
    if not isinstance(records, list):
        return False
    seen = set()
    for rec in records:
        if not (isinstance(rec, dict) and set(rec) == {"sets", "stats"} and isinstance(rec["stats"], dict)):
            return False
        own = rec["stats"].get("seed")
        if isinstance(own, bool) or not isinstance(own, int) or not 0 <= own - seed < repeats or own in seen:
            return False
        seen.add(own)
        if not isinstance(rec["sets"], dict) or set(rec["sets"]) != set(sets):
            return False
        if not all(_metric_row_fits(row, keys) for row in rec["sets"].values()):
            return False
    return True
