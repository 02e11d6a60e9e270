"""Small statistics used by every check: Wilson score intervals for proportions (validity is a
proportion over generated SCEs; Dehghanighobadi et al., EMNLP 2025, arXiv 2502.18156, report 95%
intervals) and mean / median that skip undefined values."""

from __future__ import annotations

import math
import statistics
from typing import Iterable

Z_95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float | None, float | None]:
    """Wilson score interval for ``successes`` out of ``n`` (Wilson 1927).

    Chosen over the normal (Wald) interval because audits often have small ``n`` and validity
    near 0 or 1, where Wald collapses to a zero-width interval. Returns ``(None, None)`` when
    ``n == 0`` (no proportion to estimate)."""
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return None, None
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))
    # At p = 0 (p = 1) the lower (upper) bound is exactly 0 (1); set it so, free of rounding.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def _defined(values: Iterable[float | None]) -> list[float]:
    return [v for v in values if v is not None]


def mean_or_none(values: Iterable[float | None]) -> float | None:
    """Arithmetic mean of the values that are not None; None when there are none."""
    kept = _defined(values)
    return math.fsum(kept) / len(kept) if kept else None


def median_or_none(values: Iterable[float | None]) -> float | None:
    """Median (mean of the two middle values for an even count) of the values that are not
    None; None when there are none."""
    kept = _defined(values)
    return float(statistics.median(kept)) if kept else None


def put_proportion(figures: dict, undefined: dict[str, str], name: str, k: int, n: int, why: str) -> None:
    """Set ``figures[name]`` = k/n and ``figures[name + "_ci"]`` its Wilson 95% interval; when
    n = 0 the figure is None and ``undefined[name]`` says ``why`` (reports show the reason)."""
    figures[name] = k / n if n else None
    figures[f"{name}_ci"] = list(wilson_interval(k, n))
    if not n:
        undefined[name] = why
