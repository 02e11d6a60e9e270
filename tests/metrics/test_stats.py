"""Wilson score intervals (the 95% intervals reported beside validity; Dehghanighobadi et al.,
EMNLP 2025, arXiv 2502.18156, report validity with 95% confidence intervals) and None-skipping
mean / median."""

from __future__ import annotations

import math

import pytest

from sce_checks.metrics.stats import Z_95, mean_or_none, median_or_none, wilson_interval


def test_wilson_zero_of_ten_by_hand() -> None:
    # p = 0, z^2 = 3.841459; denom = 1 + z^2/n = 1.3841459; centre = (z^2 / 2n) / denom
    # = 0.1920729 / 1.3841459 = 0.1387659; half = z / denom * sqrt(z^2 / 4n^2) = centre.
    low, high = wilson_interval(0, 10)
    assert low == 0.0
    assert high == pytest.approx(0.2775318, abs=1e-6)


def test_wilson_half_and_all() -> None:
    # Textbook values: 5/10 -> (0.2366, 0.7634); 10/10 mirrors 0/10.
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.236593, abs=1e-6)
    assert high == pytest.approx(0.763407, abs=1e-6)
    low, high = wilson_interval(10, 10)
    assert low == pytest.approx(1 - 0.2775318, abs=1e-6)
    assert high == 1.0


def test_wilson_formula_general_case() -> None:
    # 37/50 against the closed form written out independently.
    k, n, z = 37, 50, Z_95
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert wilson_interval(k, n) == pytest.approx((centre - half, centre + half))
    # a wider z gives a wider interval
    lo99, hi99 = wilson_interval(k, n, z=2.5758293035489)
    assert lo99 < centre - half and hi99 > centre + half


def test_wilson_empty_and_bad_input() -> None:
    assert wilson_interval(0, 0) == (None, None)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
    with pytest.raises(ValueError):
        wilson_interval(-1, 2)


def test_mean_and_median_skip_none() -> None:
    assert mean_or_none([1.0, None, 2.0, 4.5]) == pytest.approx(2.5)
    assert median_or_none([3.0, None, 1.0, 2.0]) == 2.0
    assert median_or_none([4.0, 1.0, None, 2.0, 3.0]) == 2.5  # even count: mean of the middle two
    assert mean_or_none([]) is None and median_or_none([None, None]) is None
    assert mean_or_none(iter([0.0])) == 0.0  # generators accepted; 0 is a value, not "missing"
