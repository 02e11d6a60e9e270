"""What counts as a change: the tolerances a comparison allows each figure, the figures a gate
may name, and the rounding below which a move is no move at all."""

from __future__ import annotations

import math
from typing import Any, Sequence

from sce_checks.errors import UserInputError
from sce_checks.regression.files import all_compared

# Rounding, not a regression: figures computed from fp32 log-probabilities move when the same
# prompts are scored in other batches or chunks (padding, shared-prefix passes and the one-pass
# option segments change the order of sums: SmolLM2's log-probabilities moved by up to 3.9e-5
# between two scoring layouts); a real change moves a figure by far more (one example of 40
# moves a rate by 0.025).
ROUNDING = 1e-4


Tolerances = dict  # metric -> allowed worsening; the key "*" is the default for the others


def parse_tolerances(value: Any, where: str = "tolerance") -> Tolerances:
    """Tolerances from a number (every metric), a mapping {metric: number} (``"*"`` for the rest),
    or command-line strings such as ``["0.01", "validity=0.05"]``. Errors name ``where``."""
    if value is None:
        return {"*": 0.0}
    if isinstance(value, (list, tuple)):
        out: Tolerances = {}
        for item in value:
            name, sep, number = str(item).rpartition("=")
            out[name.strip() if sep else "*"] = number
        value = out
    if not isinstance(value, dict):
        value = {"*": value}
    out = {}
    for metric, tol in value.items():
        try:
            number = float(tol)
        except (TypeError, ValueError, OverflowError):
            number = -1.0
        if isinstance(tol, bool) or not 0 <= number < math.inf:
            raise UserInputError(f"{where}: {metric if metric != '*' else 'tolerance'} must be a finite non-negative number, "
                                 f"got {tol!r}")
        if metric != "*" and metric not in all_compared():
            raise UserInputError(f"{where}: {metric!r} is not a compared metric; compared: {', '.join(all_compared())}")
        out[metric] = number
    out.setdefault("*", 0.0)
    return out


def check_baseline_metrics(metrics: Sequence[str], where: str = "--baseline-metric") -> None:
    for m in metrics:
        if m not in all_compared():
            raise UserInputError(f"{where}: {m!r} is not a compared metric; compared: {', '.join(all_compared())}")
