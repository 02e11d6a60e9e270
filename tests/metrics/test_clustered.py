"""Intervals over clustered samples (sce_checks/metrics/clustered.py): one sample per example is
Wilson's interval exactly; samples that agree within their example widen the interval; a rerun
with the same seed is the same interval."""

from __future__ import annotations

import pytest

from sce_checks.metrics.clustered import (
    bootstrap_seed, clustered_mean_interval, clustered_proportion_interval, wilson_interval_real,
)
from sce_checks.metrics.stats import wilson_interval


@pytest.mark.parametrize("k,n", [(0, 7), (3, 7), (7, 7), (12, 40)])
def test_one_sample_per_example_is_wilson(k, n):
    clusters = [(1.0, 1)] * k + [(0.0, 1)] * (n - k)
    assert clustered_proportion_interval(clusters, seed=1) == wilson_interval(k, n)


def test_agreeing_samples_widen_the_interval():
    # 20 examples, 5 samples each, half of all samples valid either way
    agree = [(5.0, 5)] * 10 + [(0.0, 5)] * 10
    independent = [(3.0, 5), (2.0, 5)] * 10
    lo_a, hi_a = clustered_proportion_interval(agree, seed=0)
    lo_i, hi_i = clustered_proportion_interval(independent, seed=0)
    assert hi_a - lo_a > 1.8 * (hi_i - lo_i)
    # perfect agreement: as wide as one sample per example (20 examples, 10 valid)
    assert (lo_a, hi_a) == pytest.approx(wilson_interval(10, 20), abs=0.02)
    # never narrower than 100 independent samples would give
    assert hi_i - lo_i >= wilson_interval(50, 100)[1] - wilson_interval(50, 100)[0] - 1e-9


def test_all_valid_falls_back_to_the_number_of_examples():
    assert clustered_proportion_interval([(4.0, 4)] * 9, seed=0) == wilson_interval(9, 9)


def test_same_seed_same_interval_and_seed_per_figure():
    clusters = [(3.0, 5), (1.0, 5), (5.0, 5), (0.0, 4), (2.0, 3)]
    assert clustered_mean_interval(clusters, 5) == clustered_mean_interval(clusters, 5)
    assert clustered_mean_interval(clusters, 5) != clustered_mean_interval(clusters, 6)
    assert bootstrap_seed(0, "validity") != bootstrap_seed(0, "mean_distance") != bootstrap_seed(1, "validity")


def test_mean_interval_covers_the_mean_and_skips_empty_examples():
    clusters = [(0.3, 1), (1.2, 3), (0.0, 0), (2.0, 4)]
    lo, hi = clustered_mean_interval(clusters, 0)
    assert lo <= 3.5 / 8 <= hi
    assert clustered_mean_interval([(0.0, 0)], 0) == (None, None)


def test_real_wilson_matches_the_integer_one():
    assert wilson_interval_real(3 / 7, 7.0) == wilson_interval(3, 7)
    lo, hi = wilson_interval_real(0.5, 12.5)  # a larger effective sample: a narrower interval than 6 of 12
    assert wilson_interval(6, 12)[0] < lo < 0.5 < hi < wilson_interval(6, 12)[1]
