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

*Bounds.* When the exact search for x* (or for ICF_A's nearest target point) stopped at its budget
(sce_checks/search/grid.py), the row holds bounds instead of the distance: lo <= d(x, x*) <= hi
(hi = infinity when no flipping point is known). Every figure above is non-decreasing in d_min's
complement terms and can be bounded from them (d = d(x, x'), exact for every row):

- RCF_A = d - d_min        in [d - min(hi, d), d - lo]  (a valid x' is itself a flipping grid
  point, so d_min <= d and RCF_A >= 0);
- RCF   = d / d_min - 1    in [d / min(hi, d) - 1, d / lo - 1];
- ICF_A in [a_lo, a_hi], the bounds of its own search; ICF = ICF_A / d_min in [a_lo / hi, a_hi / lo];
- exact match (d_min = d): decided true when lo >= d, decided false when hi < d, else undecided.

The weights v and 1 - v depend on validity only, which the budget never touches, and mean and
median are non-decreasing in every value, so each aggregate computed from the rows' lower ends is
a lower bound and from their upper ends an upper bound: `aggregate_minimality` reports both, as
``<figure>_bounds`` = [lower, upper] (upper None: unbounded), and the figure itself only where
the two ends meet (None otherwise: never a guess between them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from sce_checks.metrics.stats import mean_or_none, median_or_none

# Gower distances are sums of small rationals computed in float64; two equal distances may
# differ by rounding noise of ~1e-16, far below any real difference on a grid.
TOLERANCE = 1e-9
# The figures `aggregate_minimality` can only bound when a row is bounded.
BOUNDED_FIGURES = ("mean_rcf_a", "median_rcf", "mean_rcf", "mean_icf_a", "median_icf", "mean_icf", "tm", "tm_a",
                   "exact_match")
Interval = tuple[float, float]  # (lower, upper); upper may be math.inf


@dataclass(frozen=True)
class MinimalityRow:
    """One example's inputs to the minimality figures.

    ``valid`` is None when no SCE was generated (unparsed or off-grid; such rows are not scored),
    ``distance`` = d(x, x'), ``min_distance`` = d(x, x*) (None when no grid point flips the
    prediction), ``icf_a`` = distance from x' to the nearest grid point with the target label
    (only meaningful for invalid SCEs). ``min_distance_bounds`` / ``icf_a_bounds``: (lower,
    upper) when the search for that distance stopped at its budget (upper None: unbounded); the
    distance itself is then None (module docstring)."""

    valid: bool | None
    distance: float | None
    min_distance: float | None
    icf_a: float | None = None
    min_distance_bounds: tuple[float, float | None] | None = None
    icf_a_bounds: tuple[float, float | None] | None = None

    @property
    def bounded(self) -> bool:
        """Some figure of this row is only known within bounds."""
        return any(b is not None and (b[1] is None or b[1] - b[0] > TOLERANCE)
                   for b in (self.min_distance_bounds, self.icf_a_bounds))

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


    # -- intervals (module docstring, "Bounds"); an exact row's interval is (value, value) -----
    def _dmin(self) -> Interval | None:
        return _interval(self.min_distance, self.min_distance_bounds)

    def rcf_a_interval(self) -> Interval | None:
        dmin = self._dmin()
        if not self.valid or self.distance is None or dmin is None:
            return None
        d = self.distance
        return (max(0.0, d - min(dmin[1], d)), d - dmin[0])

    def rcf_interval(self) -> Interval | None:
        dmin = self._dmin()
        if not self.valid or self.distance is None or dmin is None or not dmin[0] or not self.distance:
            return None  # d = 0 with a valid SCE: the example itself gets the target, d(x, x*) = 0
        d = self.distance
        return (d / min(dmin[1], d) - 1.0, d / dmin[0] - 1.0)

    def icf_a_interval(self) -> Interval | None:
        return _interval(self.icf_a, self.icf_a_bounds) if self.valid is False else None

    def icf_interval(self) -> Interval | None:
        dmin, icf_a = self._dmin(), self.icf_a_interval()
        if icf_a is None or dmin is None or not dmin[0]:
            return None
        return (icf_a[0] / dmin[1] if math.isfinite(dmin[1]) else 0.0, icf_a[1] / dmin[0])

    def exact_interval(self) -> Interval:
        """(0, 0) not exact, (1, 1) exact, (0, 1) undecided."""
        if self.min_distance_bounds is None:
            return (1.0, 1.0) if self.exact else (0.0, 0.0)
        dmin = self._dmin()
        if not self.valid or self.distance is None or dmin is None or not dmin[0]:
            return (0.0, 0.0)
        d = self.distance
        if min(dmin[1], d) < d - TOLERANCE:
            return (0.0, 0.0)
        return (1.0, 1.0) if dmin[0] >= d - TOLERANCE else (0.0, 1.0)

    def end(self, side: int) -> dict[str, Any]:
        """The row's figures at the lower (``side`` 0) or upper (1) ends of their intervals."""
        def pick(iv: Interval | None) -> float | None:
            return None if iv is None else iv[side]

        return {"valid": self.valid, "distance": self.distance, "rcf_a": pick(self.rcf_a_interval()),
                "rcf": pick(self.rcf_interval()), "icf_a": pick(self.icf_a_interval()),
                "icf": pick(self.icf_interval()), "exact": self.exact_interval()[side]}


def _interval(value: float | None, bounds: tuple[float, float | None] | None) -> Interval | None:
    if bounds is not None:
        return (bounds[0], math.inf if bounds[1] is None else bounds[1])
    return None if value is None else (value, value)


def interval_mean(intervals: Sequence[tuple[float, float | None] | None]) -> list[float | None] | None:
    """[mean of the lower ends, mean of the upper ends] over the defined intervals (an upper end
    None: unbounded, and so is the mean's); None when none is defined."""
    given = [iv for iv in intervals if iv is not None]
    if not given:
        return None
    lows = [iv[0] for iv in given]
    highs = [iv[1] for iv in given]
    return [sum(lows) / len(lows), None if any(h is None for h in highs) else sum(highs) / len(highs)]


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
    figure is None when no row was generated. When a row is bounded, also
    ``<figure>_bounds`` = [lower, upper] for each defined figure of `BOUNDED_FIGURES`, and
    ``n_bounded``; a
    figure whose ends differ is then None ("Bounds" in the module docstring)."""
    scored = [r for r in rows if r.generated]
    low = _aggregate([r.end(0) for r in scored])
    if not any(r.bounded for r in scored):
        return low
    high = _aggregate([r.end(1) for r in scored])
    out = dict(low)
    for name in BOUNDED_FIGURES:
        lo, hi = low[name], high[name]
        if lo is not None:
            out[f"{name}_bounds"] = [lo, hi if hi is not None and math.isfinite(hi) else None]
        same = lo is not None and hi is not None and abs(hi - lo) <= TOLERANCE
        out[name] = lo if same else None
    out["n_bounded"] = sum(1 for r in scored if r.bounded)
    return out


def _aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of `aggregate_minimality` from per-row values (`MinimalityRow.end`)."""
    n = len(rows)
    valid = [r for r in rows if r["valid"]]
    invalid = [r for r in rows if not r["valid"]]
    out: dict[str, Any] = {
        "mean_distance": mean_or_none(r["distance"] for r in rows),
        "mean_rcf_a": mean_or_none(r["rcf_a"] for r in valid),
        "median_rcf": median_or_none(r["rcf"] for r in valid),
        "mean_rcf": mean_or_none(r["rcf"] for r in valid),
        "mean_icf_a": mean_or_none(r["icf_a"] for r in invalid),
        "median_icf": median_or_none(r["icf"] for r in invalid),
        "mean_icf": mean_or_none(r["icf"] for r in invalid),
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
    out["exact_match"] = sum(r["exact"] for r in valid) / n
    return out
