"""Paired tests and sample sizes (sce_checks/regression/paired.py, planning.py) against hand-computed tables.

Definitions: the exact one-sided McNemar p-value is P(X >= b) for X ~ Binomial(b + c, 1/2), b
the discordant pairs that got worse (McNemar 1947, exact form); the one-sided Wilcoxon
signed-rank p-value is P(W+ >= w) under the null in which every sign is equally likely, zero
differences dropped (Wilcoxon 1945); Holm's adjusted p-values (Holm 1979); Newcombe's score
interval for paired proportions (Newcombe 1998, method 10)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom

from sce_checks.regression.paired import (
    binary_test,
    bootstrap_mean_interval,
    continuous_test,
    holm,
    mcnemar_p,
    newcombe_paired,
    wilcoxon_p,
)
from sce_checks.regression.planning import (
    independent_changes,
    mcnemar_power,
    mcnemar_sample_size,
    plan_sample_size,
    smallest_detectable,
)


@pytest.mark.parametrize("worse, better, p", [
    (6, 0, 1 / 64),            # all 6 discordant pairs the bad way: 2^-6
    (6, 1, 8 / 128),           # P(X >= 6 | 7) = (C(7,6) + C(7,7)) / 2^7
    (3, 3, 42 / 64),           # P(X >= 3 | 6) = (20 + 15 + 6 + 1) / 64
    (0, 5, 1.0),               # only improvements: P(X >= 0) = 1
    (0, 0, 1.0),               # no discordant pair: nothing to test
])
def test_exact_mcnemar_by_hand(worse, better, p):
    assert mcnemar_p(worse, better) == pytest.approx(p, abs=1e-12)


def test_binary_table_counts_and_direction():
    # 20 pairs: 12 valid in both, 6 valid -> invalid, 1 invalid -> valid, 1 invalid in both
    pairs = [(True, True)] * 12 + [(True, False)] * 6 + [(False, True)] + [(False, False)]
    t = binary_test(pairs, higher_is_better=True)
    assert (t.n, t.worse, t.better, t.same) == (20, 6, 1, 13)
    assert t.before == pytest.approx(18 / 20) and t.after == pytest.approx(13 / 20)
    assert t.delta == pytest.approx(-5 / 20)
    assert t.p == pytest.approx(8 / 128) and t.min_p == pytest.approx(2 ** -7)
    assert t.low < t.delta < t.high
    # lower is better (an INV failure): the same table reads the other way round
    flipped = binary_test(pairs, higher_is_better=False)
    assert (flipped.worse, flipped.better) == (1, 6) and flipped.p == pytest.approx(127 / 128)  # P(X >= 1 | 7)


def test_no_discordant_pairs_test_nothing():
    t = binary_test([(True, True)] * 8 + [(False, False)] * 2)
    assert (t.worse, t.better, t.delta, t.p, t.min_p) == (0, 0, 0.0, 1.0, 1.0)
    assert t.low < 0 < t.high  # ten pairs cannot rule out a change either way


def test_newcombe_interval_worked_example():
    # Newcombe (1998), Table II, example (a): a=36, b=12, c=2, d=0; theta = 0.2; method 10 gives
    # 0.0569 to 0.3404. Our b is the pairs 1 -> 0, so the same table reads as a drop of 0.2.
    delta, low, high = newcombe_paired(36, 12, 2, 0)
    assert delta == pytest.approx(-0.2)
    assert (low, high) == (pytest.approx(-0.3404, abs=5e-5), pytest.approx(-0.0569, abs=5e-5))
    assert newcombe_paired(36, 2, 12, 0)[1:] == (pytest.approx(0.0569, abs=5e-5), pytest.approx(0.3404, abs=5e-5))


@pytest.mark.parametrize("diffs, worse_is_positive, p", [
    ([1.0, 2.0, 3.0], True, 1 / 8),         # W+ = 6, the largest of 2^3 equally likely sign patterns
    ([0.0, 1.0, 2.0, 3.0], True, 1 / 8),    # the zero difference is dropped
    ([1.0, -2.0, 3.0, 4.0], True, 3 / 16),  # W+ = 8; subsets of {1,2,3,4} summing to >= 8: {1,3,4}, {2,3,4}, all
    ([1.0, 2.0, 3.0], False, 1.0),          # every move was an improvement
    ([0.0, 0.0, 0.0], True, 1.0),           # all ties: no example moved
    ([], True, 1.0),
])
def test_wilcoxon_by_hand(diffs, worse_is_positive, p):
    assert wilcoxon_p(diffs, worse_is_positive) == pytest.approx(p, abs=1e-12)


def test_continuous_all_ties_and_a_real_shift():
    same = continuous_test([(0.2, 0.2)] * 10, higher_is_better=False)
    assert (same.delta, same.low, same.high, same.p, same.min_p, same.same) == (0.0, 0.0, 0.0, 1.0, 1.0, 10)
    worse = continuous_test([(0.1, 0.3), (0.2, 0.5), (0.0, 0.1), (0.4, 0.4)], higher_is_better=False)
    assert (worse.worse, worse.better, worse.same) == (3, 0, 1)
    assert worse.p == pytest.approx(1 / 8) and worse.min_p == pytest.approx(1 / 8)
    assert worse.delta == pytest.approx(0.15) and worse.low <= 0.15 <= worse.high


def test_bootstrap_is_seeded_and_brackets_the_mean():
    diffs = [0.1, -0.05, 0.3, 0.0, 0.2, 0.15]
    assert bootstrap_mean_interval(diffs) == bootstrap_mean_interval(diffs)
    low, high = bootstrap_mean_interval(diffs)
    assert low < sum(diffs) / len(diffs) < high and -0.05 <= low and high <= 0.3
    assert bootstrap_mean_interval([0.25] * 5) == pytest.approx((0.25, 0.25))


def test_holm_by_hand():
    # sorted: 0.01 * 3 = 0.03; 0.03 * 2 = 0.06; 0.04 * 1 = 0.04 -> kept at the running 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_smallest_detectable_change():
    assert smallest_detectable(20, 0.05) == 5          # 2^-5 = 0.031 <= 0.05 < 2^-4
    assert smallest_detectable(20, 0.05 / 9) == 8      # 2^-8 = 0.0039 <= 0.0056 < 2^-7
    assert smallest_detectable(4, 0.05) is None


def test_power_when_every_change_is_a_regression_is_a_binomial_tail():
    # changed = drop: every discordant pair is worse, the one-sided exact test rejects from 5 of
    # them on (2^-5 <= 0.05), so power(n) = P(Binomial(n, drop) >= 5)
    for n in (10, 40, 66):
        assert mcnemar_power(n, 0.1, 0.1, 0.05) == pytest.approx(binom.sf(4, n, 0.1), abs=1e-12)
    first = next(n for n in range(1, 1000) if binom.sf(4, n, 0.1) >= 0.8)
    assert mcnemar_sample_size(0.1, 0.1) == first == 66


def test_sample_size_against_connor_and_a_seeded_simulation():
    # Connor (1987), Biometrics 43:207-211, the normal approximation for McNemar's test:
    # n = (z_a sqrt(psi) + z_b sqrt(psi - d^2))^2 / d^2; one-sided alpha 0.05, power 0.8
    drop, changed = 0.1, 0.3
    z_a, z_b = 1.6448536, 0.8416212
    connor = (z_a * math.sqrt(changed) + z_b * math.sqrt(changed - drop ** 2)) ** 2 / drop ** 2  # 186.1
    n = mcnemar_sample_size(drop, changed)
    assert abs(n - connor) / connor < 0.1
    # simulation: examples change for the worse with probability 0.2, for the better 0.1
    rng = np.random.default_rng(7)
    cache: dict[tuple[int, int], float] = {}

    def simulated_power(size: int, trials: int = 3000) -> float:
        counts = rng.multinomial(size, [0.2, 0.1, 0.7], size=trials)
        hits = 0
        for worse, better, _ in counts:
            key = (int(worse), int(better))
            if key not in cache:
                cache[key] = mcnemar_p(*key)
            hits += cache[key] <= 0.05
        return hits / trials

    at_n = simulated_power(n)
    se = math.sqrt(0.8 * 0.2 / 3000)
    assert at_n >= 0.8 - 3 * se
    assert abs(at_n - mcnemar_power(n, drop, changed)) < 3 * se
    assert simulated_power(n // 2) < 0.7


def test_plan_gives_both_ends_of_the_range():
    plan = plan_sample_size(0.8, 0.1)
    assert plan.fewest == 66
    assert independent_changes(0.8, 0.1) == pytest.approx(0.8 * 0.3 + 0.7 * 0.2)
    assert plan.independent == mcnemar_sample_size(0.1, 0.38) and plan.independent > plan.fewest
    assert "at least 66 examples" in plan.describe()
    assert plan_sample_size(0.8, 0.1, changed=0.3).given == mcnemar_sample_size(0.1, 0.3)
    with pytest.raises(ValueError, match="drop"):
        plan_sample_size(0.5, 0.6)
    with pytest.raises(ValueError, match="changed"):
        plan_sample_size(0.8, 0.2, changed=0.1)
