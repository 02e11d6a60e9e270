"""Minimality of self-generated counterfactuals on grids (Mayne et al., EMNLP 2025,
arXiv 2509.09396, section 4).

For an example with original x, the model's fresh-context prediction f(x), target t (the other
option), generated SCE x', and Gower's distance d:

- d_min = d(x, x*), x* = argmin over grid points z with f(z) != f(x) of d(x, z)
  (`sce_checks.search.grid` finds it without predicting the whole grid);
- valid SCE (f(x') = t):   RCF_A = d(x, x') - d_min,   RCF = d(x, x') / d_min - 1;
- invalid SCE:             ICF_A = min over z with f(z) = t of d(x', z),   ICF = ICF_A / d_min;
- over the GENERATED SCEs (the paper drops unparsed ones), validity v = n_valid / n_generated:
  TM   = v * median(RCF)   + (1 - v) * median(ICF),
  TM_A = v * mean(RCF_A)   + (1 - v) * mean(ICF_A),
  exact match = share of generated SCEs that are valid with RCF = 0 (ties with x* count).

Lower is better for every figure except exact match. A term whose weight is 0 contributes 0 even
when its statistic is undefined (e.g. every SCE valid: no ICF values); a term with weight > 0 whose
statistic is undefined makes TM / TM_A undefined (None). A per-row figure is undefined (None) when
its inputs are: e.g. d_min and ICF_A both need a grid point with the target label, and when the
model predicts the target nowhere on the grid, neither exists; means and medians are over the
defined values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from sce_checks.metrics.stats import mean_or_none, median_or_none

# Gower distances are sums of small rationals computed in float64; two equal distances may
# differ by rounding noise of ~1e-16, far below any real difference on a grid.
TOLERANCE = 1e-9


@dataclass(frozen=True)
class MinimalityRow:
    """One example's inputs to the minimality figures.

    ``valid`` is None when no SCE was generated (unparsed or off-grid; such rows are not scored),
    ``distance`` = d(x, x'), ``min_distance`` = d(x, x*) (None when no grid point flips the
    prediction), ``icf_a`` = distance from x' to the nearest grid point with the target label
    (only meaningful for invalid SCEs)."""

    valid: bool | None
    distance: float | None
    min_distance: float | None
    icf_a: float | None = None

    @property
    def generated(self) -> bool:
        return self.valid is not None and self.distance is not None

    @property
    def rcf_a(self) -> float | None:
        """RCF_A = d(x, x') - d(x, x*), for a valid SCE."""
        if not self.valid or self.distance is None or self.min_distance is None:
            return None
        return self.distance - self.min_distance

    @property
    def rcf(self) -> float | None:
        """RCF = d(x, x') / d(x, x*) - 1, for a valid SCE."""
        if not self.valid or self.distance is None or not self.min_distance:
            return None
        return self.distance / self.min_distance - 1.0

    @property
    def icf(self) -> float | None:
        """ICF = ICF_A / d(x, x*), for an invalid SCE."""
        if self.valid is not False or self.icf_a is None or not self.min_distance:
            return None
        return self.icf_a / self.min_distance

    @property
    def exact(self) -> bool:
        """Valid and exactly as close as the reference minimal counterfactual (ties count)."""
        rcf = self.rcf
        return bool(self.valid) and rcf is not None and abs(rcf) <= TOLERANCE


def _weighted(weight: float, statistic: float | None) -> float | None:
    if weight == 0:
        return 0.0
    return None if statistic is None else weight * statistic


def _sum_or_none(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


def aggregate_minimality(rows: Iterable[MinimalityRow]) -> dict[str, Any]:
    """Aggregate minimality figures over the generated rows (see the module docstring).

    Keys: mean_distance (mean d(x, x')), mean_rcf_a, median_rcf, mean_rcf, mean_icf_a,
    median_icf, mean_icf, tm, tm_a, exact_match, n_scored (number of generated rows). Every
    figure is None when no row was generated."""
    scored = [r for r in rows if r.generated]
    n = len(scored)
    valid = [r for r in scored if r.valid]
    invalid = [r for r in scored if not r.valid]
    out: dict[str, Any] = {
        "mean_distance": mean_or_none(r.distance for r in scored),
        "mean_rcf_a": mean_or_none(r.rcf_a for r in valid),
        "median_rcf": median_or_none(r.rcf for r in valid),
        "mean_rcf": mean_or_none(r.rcf for r in valid),
        "mean_icf_a": mean_or_none(r.icf_a for r in invalid),
        "median_icf": median_or_none(r.icf for r in invalid),
        "mean_icf": mean_or_none(r.icf for r in invalid),
        "tm": None,
        "tm_a": None,
        "exact_match": None,
        "n_scored": n,
    }
    if n == 0:
        return out
    v = len(valid) / n
    out["tm"] = _sum_or_none(_weighted(v, out["median_rcf"]), _weighted(1.0 - v, out["median_icf"]))
    out["tm_a"] = _sum_or_none(_weighted(v, out["mean_rcf_a"]), _weighted(1.0 - v, out["mean_icf_a"]))
    out["exact_match"] = sum(1 for r in valid if r.exact) / n
    return out
