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
