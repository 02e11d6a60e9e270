"""Sequential gates (sce_checks/metrics/sequential.py): the betting confidence sequence of
Waudby-Smith and Ramdas (2023, JRSS-B 86:1-27; WSR), checked against its formulas by hand,
against the authors' own implementation, by simulated coverage, and through the gates built on
it (one-sided decisions, sequential McNemar, edge cases, error rates of simulated audits).

WSR's construction, as the module implements it: capital K_t(m) = prod (1 + min(lambda_i, c/m)
(x_i - m)) with c = 1/2; predictable plug-in bets lambda_t = sqrt(2 log(1/a) / (var_{t-1} t
log(1 + t))) with var_t = (1/4 + sum_{i<=t} (x_i - mu_i)^2) / (t + 1), mu_i = (1/2 + sum_{j<=i}
x_j) / (i + 1); a mean m is excluded once K_t(m) >= 1/a (Ville's inequality); the two-sided
hedged CS puts a = alpha/2 on each side (theta = 1/2)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sce_checks.errors import UserInputError
from sce_checks.metrics.sequential import (
    ConfidenceSequence,
    SequentialComparison,
    SequentialGate,
    comparison_paths,
    confidence_sequence,
    gate_paths,
    log_wealth,
    lower_bound,
    plugin_bets,
)

# 30 values in [0, 1] (mean 0.378) and 30 binary outcomes (25 ones), with the hedged capital CS
# at alpha 0.05 (running intersection) after 5, 10, 20 and 30 of them, computed with the
# authors' package confseq 0.0.11 (`confseq.betting.hedged_cs(x, alpha=0.05, breaks=10000,
# running_intersection=True)`: a grid of step 1e-4, each end moved outwards by one step).
VALUES = [0.12, 0.55, 0.31, 0.08, 0.9, 0.42, 0.27, 0.66, 0.05, 0.38, 0.21, 0.73, 0.15, 0.47, 0.33, 0.02, 0.58,
          0.29, 0.81, 0.36, 0.11, 0.44, 0.62, 0.19, 0.25, 0.7, 0.09, 0.51, 0.34, 0.4]
OUTCOMES = [1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1]
CONFSEQ = {
    "values": {5: (0.0581, 0.8229), 10: (0.1550, 0.6922), 20: (0.2277, 0.5836), 30: (0.2556, 0.5290)},
    "outcomes": {5: (0.1942, 1.0), 10: (0.3607, 1.0), 20: (0.4978, 0.9834), 30: (0.5961, 0.9706)},
}
GRID = 1e-4


@pytest.mark.parametrize("name, data", [("values", VALUES), ("outcomes", OUTCOMES)])
def test_hedged_capital_cs_matches_the_authors_implementation(name, data):
    lower, upper = confidence_sequence(data, alpha=0.05)
    for t, (ref_lower, ref_upper) in CONFSEQ[name].items():
        # the grid reports the last excluded grid point minus a step: within two steps below
        assert ref_lower - 1e-9 <= lower[t - 1] <= ref_lower + 2 * GRID
        assert ref_upper - 2 * GRID <= upper[t - 1] <= ref_upper + 1e-9


def test_first_bound_by_hand():
    # x_1 = 1, alpha = 0.5, each side at a = 0.25: lambda_1 = sqrt(2 log 4 / (1/4 * 1 * log 2))
    # = sqrt(16) = 4; K_1(m) = 1 + min(4, 1/(2m)) (1 - m) reaches 1/a = 4 at m = 1/7 (there
    # 1/(2m) = 3.5 < 4 and 1 + 3.5 * 6/7 = 4): the lower end is 1/7, the upper stays 1
    assert plugin_bets(np.ones(1), 0.25)[0].bets[0] == pytest.approx(4.0)
    lower, upper = confidence_sequence([1.0], alpha=0.5)
    assert lower[0] == pytest.approx(1 / 7, abs=1e-9) and lower[0] <= 1 / 7
    assert upper[0] == 1.0
    # at alpha 0.05 the largest capital after one value is 1 + lambda_1 = 1 + 6.52 < 40: nothing excluded
    assert 1 + plugin_bets(np.ones(1), 0.025)[0].bets[0] == pytest.approx(7.525, abs=1e-3)
    assert confidence_sequence([1.0], 0.05) == (pytest.approx([0.0]), pytest.approx([1.0]))


@pytest.mark.parametrize("m", [0.4, 0.7])
def test_mixture_capital_by_hand(m):
    # x = 1, 0, 1 against m, alpha 0.05, horizon 16: bettors tuned to 16 (weight 3/4, c = 3/4)
    # and to 16/8 = 2 (weight 1/4, c = 1/2). Regularised variances before each value: 1/4;
    # after x_1 = 1, mu_1 = 1.5/2 = 0.75, var_1 = (0.25 + 0.25^2) / 2 = 0.15625; after x_2 = 0,
    # mu_2 = 1.5/3 = 0.5, var_2 = (0.25 + 0.0625 + 0.25) / 3 = 0.1875. Bets
    # sqrt(2 log 20 / (var h)) (1.22, 1.38, 1.26 for h = 16), capped at c/m: at m = 0.4 the caps
    # 1.875 and 1.25 bind only the early bettor, at m = 0.7 (1.07 and 0.71) both.
    var = [0.25, 0.15625, 0.1875]
    x = [1.0, 0.0, 1.0]

    def capital(h, c):
        k = 1.0
        for v, xi in zip(var, x):
            k *= 1 + min(math.sqrt(2 * math.log(20) / (v * h)), c / m) * (xi - m)
        return k

    expected = 0.75 * capital(16, 0.75) + 0.25 * capital(2, 0.5)
    got = log_wealth(np.array(x), m, plugin_bets(np.array(x), 0.05, horizon=16))
    assert math.exp(got[-1]) == pytest.approx(expected, rel=1e-12)


def test_one_sided_gate_spends_all_of_alpha_on_its_side():
    # all ones against ">= 0.5", alpha 0.05, no horizon: every bet is capped at c/m = 1 (the
    # plug-in bets stay above 2.5 for the first ten values), each value multiplies the capital
    # by 1.5: 1.5^7 = 17.1 < 20 <= 1.5^8 = 25.6, so the one-sided gate passes at the 8th value...
    gate = SequentialGate("binary", ">=", 0.5, alpha=0.05)
    states = [gate.update([1]) for _ in range(8)]
    assert states == ["undecided"] * 7 + ["pass"]
    assert gate.history[-1][0] == 8 and gate.history[-1][1] > 0.5
    # ...where the two-sided CS at 0.05 (1/a = 40 on each side) needs 1.5^10 = 57.7 >= 40 > 1.5^9
    lower, _ = confidence_sequence(np.ones(10), 0.05)
    assert lower[8] < 0.5 < lower[9]


def test_failing_side_and_lower_is_better():
    gate = SequentialGate("mean", "<=", 0.1, alpha=0.05, horizon=160)
    for _ in range(20):
        if gate.update([0.5] * 8) != "undecided":
            break
    assert gate.state() == "fail" and gate.final() == "fail" and gate.n < 40
    assert gate.interval()[0] > 0.1
    passing = SequentialGate("mean", "<=", 0.5, alpha=0.05, horizon=160)
    while passing.update([0.0] * 8) == "undecided":
        pass
    assert passing.state() == "pass" and passing.interval()[1] < 0.5


def test_the_first_decision_stands():
    gate = SequentialGate("binary", ">=", 0.5)
    gate.update([1] * 8)
    assert gate.state() == "pass"
    for _ in range(5):
        gate.update([0] * 8)
    assert gate.state() == "pass" and gate.interval()[1] < 0.5  # the interval moved on; the verdict did not
    assert [n for n, _, _ in gate.history] == [8, 16, 24, 32, 40, 48]


def test_undecided_gates_and_comparisons_fail():
    gate = SequentialGate("binary", ">=", 0.5, horizon=16)
    gate.update([1, 0] * 8)
    assert gate.state() == "undecided" and gate.final() == "fail"
    comparison = SequentialComparison("binary", "higher")
    assert comparison.mean_change is None
    comparison.update([1, 0, 1, 1], [0, 1, 1, 1])
    assert comparison.state() == "undecided" and comparison.final() == "fail"
    assert (comparison.worse, comparison.improved, comparison.mean_change) == (1, 1, 0.0)
    comparison.update([1, 1], [0, 0])  # 2 more worse of 6: after - before = -2/6
    assert comparison.mean_change == pytest.approx(-2 / 6)
    lower = SequentialComparison("continuous", "lower", tolerance=0.1)
    lower.update([0.1, 0.2], [0.3, 0.2])
    assert lower.mean_change == pytest.approx(0.1) and lower.worse == 1


def test_coverage_at_all_times():
    # two-sided CS at alpha 0.1: the true mean is excluded at some t <= 200 exactly when a side's
    # capital at it ever reaches 2/alpha (the excluded means form an interval on each side)
    rng = np.random.default_rng(7)
    alpha, runs, n = 0.1, 2000, 200
    cases = [(rng.random((runs, n)) < 0.3).astype(float), rng.beta(2, 5, (runs, n)), rng.beta(0.2, 3.8, (runs, n))]
    for x, mean in zip(cases, (0.3, 2 / 7, 0.05)):
        for horizon in (None, n):
            up = log_wealth(x, mean, plugin_bets(x, alpha / 2, horizon)).max(axis=1)
            down = log_wealth(1 - x, 1 - mean, plugin_bets(1 - x, alpha / 2, horizon)).max(axis=1)
            missed = (up >= math.log(2 / alpha)) | (down >= math.log(2 / alpha))
            assert missed.mean() <= alpha, (mean, horizon, missed.mean())
            assert (up >= math.log(2 / alpha)).mean() <= alpha / 2 + 0.01


def test_bound_is_where_the_capital_crosses():
    rng = np.random.default_rng(1)
    x = rng.beta(2, 3, 50)
    bets = plugin_bets(x, 0.05, 50)
    low = lower_bound(x, bets, 0.05)
    assert 0 < low < x.mean()
    assert log_wealth(x, low, bets).max() >= math.log(20)
    assert log_wealth(x, low + 1e-9, bets).max() < math.log(20)


def test_narrows_as_examples_arrive():
    rng = np.random.default_rng(3)
    lower, upper = confidence_sequence(rng.beta(2, 5, 160), 0.05, horizon=160)
    assert np.all(np.diff(lower) >= 0) and np.all(np.diff(upper) <= 0)  # the running intersection
    width = upper - lower
    assert width[0] == 1.0 and width[19] < 0.4 and width[79] < 0.5 * width[19] and width[159] < 0.7 * width[79]
    assert lower[159] <= 2 / 7 <= upper[159]


def test_all_zeros_and_all_ones():
    lower, upper = confidence_sequence(np.zeros(60), 0.05)
    assert np.all(lower == 0.0) and upper[0] == 1.0 and upper[59] < 0.15
    lower, upper = confidence_sequence(np.ones(60), 0.05)
    assert np.all(upper == 1.0) and lower[59] > 0.85
    cs = ConfidenceSequence()
    assert (cs.n, cs.lower, cs.upper) == (0, 0.0, 1.0)
    assert cs.update([0.4]) == (0.0, 1.0)
    gate = SequentialGate("binary", ">=", 0.5)  # a batch without a single SCE adds no validity outcome
    assert gate.update([]) == "undecided" and gate.history == [(0, 0.0, 1.0)]


@pytest.mark.parametrize("values, shown", [([1.5], "1.5 at position 0"), ([0.2, -0.1], "-0.1 at position 1"),
                                           ([float("nan")], "nan at position 0")])
def test_values_outside_the_unit_interval_are_refused(values, shown):
    with pytest.raises(UserInputError, match=r"must be numbers in \[0, 1\]") as info:
        SequentialGate("mean", ">=", 0.5).update(values)
    assert shown in str(info.value)


@pytest.mark.parametrize("make, message", [
    (lambda: SequentialGate("binary", ">=", 0.5).update([0.5]), "binary outcomes must be 0 or 1, got 0.5$"),
    (lambda: SequentialGate("mean", ">=", "0.5"), "threshold must be a number"),
    (lambda: SequentialGate("median", ">=", 0.5), "kind must be"),
    (lambda: SequentialGate("mean", "==", 0.5), "op must be one of"),
    (lambda: SequentialGate("mean", ">=", 0.5, alpha=1.5), "alpha must be in"),
    (lambda: SequentialGate("mean", ">=", float("nan")), "threshold must be a number"),
    (lambda: SequentialGate("mean", ">=", 0.5, horizon=0), "horizon must be"),
    (lambda: SequentialComparison("binary", "up"), "better must be"),
    (lambda: SequentialComparison("continuous", tolerance=-0.1), "tolerance must be"),
    (lambda: SequentialComparison("binary").update([1, 1], [1]), "2 baseline outcomes but 1"),
    (lambda: SequentialComparison("binary").update([1], [0.5]), "binary outcomes must be 0 or 1"),
])
def test_bad_arguments_say_what_is_wrong(make, message):
    with pytest.raises(UserInputError, match=message):
        make()


def test_thresholds_outside_the_unit_interval_decide_at_once():
    assert SequentialGate("mean", ">=", -0.1).state() == "pass"
    assert SequentialGate("mean", "<=", 1.5).state() == "pass"
    assert SequentialGate("mean", ">=", 1.2).state() == "fail"
    assert SequentialGate("mean", "<", 0.0).state() == "undecided"  # still possible to fail
    paths = gate_paths(np.zeros((3, 16)), ">=", -0.1)
    assert list(paths.state) == ["pass"] * 3 and list(paths.n) == [0] * 3


def test_sequential_mcnemar_bets_on_discordant_pairs_only():
    # concordant pairs (w = 0) sit at the null m = 1/2 of (w + 1)/2: their factor is exactly 1
    y = np.full(10, 0.5)
    assert log_wealth(y, 0.5, plugin_bets(y, 0.05, 160)) == pytest.approx(np.zeros(10), abs=1e-15)
    # 8 examples lost validity (1 -> 0), none gained, 3 concordant pairs beside each; WSR's bets
    # (no horizon) stay above the cap c/m = 1 through these 32 pairs, so each worse pair
    # multiplies the capital by 1.5 and the 8th reaches 20 (1.5^8 = 25.6); the fixed-n exact
    # McNemar needs 5 (2^-5 = 0.031): the price of looking after every batch
    comparison = SequentialComparison("binary", "higher", alpha=0.05)
    states = [comparison.update([1, 1, 0, 1], [1, 1, 0, 0]) for _ in range(8)]
    assert states == ["undecided"] * 7 + ["fail"]
    assert (comparison.worse, comparison.improved, comparison.n) == (8, 0, 32)
    low, high = comparison.interval()
    assert -1 <= low < high < 0  # after - before: validity fell
    lower_better = SequentialComparison("binary", "lower")
    for _ in range(8):
        lower_better.update([0], [1])  # a failure rate that rose
    assert lower_better.state() == "fail" and lower_better.interval()[0] > 0


def test_comparison_within_tolerance_holds_early():
    comparison = SequentialComparison("continuous", "lower", tolerance=0.1, horizon=160)
    rng = np.random.default_rng(0)
    before = rng.uniform(0.2, 0.4, 160)
    for i in range(0, 160, 8):
        if comparison.update(before[i:i + 8], before[i:i + 8]) != "undecided":
            break
    assert comparison.state() == "pass" and comparison.n < 160 and comparison.interval()[1] < 0.1


@pytest.mark.parametrize("op, threshold, p", [(">=", 0.8, 0.85), ("<=", 0.3, 0.25), (">", 0.5, 0.5)])
def test_class_and_vectorised_paths_agree(op, threshold, p):
    rng = np.random.default_rng(11)
    x = rng.beta(p * 3, (1 - p) * 3, (40, 64))
    paths = gate_paths(x, op, threshold, 0.05, batch=8)
    for row, state, n in zip(x, paths.state, paths.n):
        gate = SequentialGate("mean", op, threshold, 0.05, horizon=64)
        for i in range(0, 64, 8):
            if gate.update(row[i:i + 8]) != "undecided":
                break
        assert (gate.state(), gate.n) == (state, n)


def test_simulated_error_rates():
    """A small version of benchmarks/bench_sequential.py: 4000 seeded audits per case, limit 160,
    batches of 8, alpha 0.05."""
    rng = np.random.default_rng(2026)
    runs, limit, alpha = 4000, 160, 0.05

    def binary(p):
        return (rng.random((runs, limit)) < p).astype(float)

    for p in (0.8, 0.75):  # at the threshold and just on the failing side: false passes
        assert np.mean(gate_paths(binary(p), ">=", 0.8, alpha).state == "pass") <= alpha
    easy = gate_paths(binary(0.95), ">=", 0.8, alpha)
    assert np.mean(easy.state == "pass") >= 0.99 and easy.n.mean() < 60  # a fixed-n audit uses 160
    for mu in (0.1, 0.125):
        distances = rng.beta(mu * 4, (1 - mu) * 4, (runs, limit))
        assert np.mean(gate_paths(distances, "<=", 0.1, alpha).state == "pass") <= alpha
    u = rng.random((runs, limit))
    null = np.where(u < 0.1, 1.0, np.where(u < 0.2, -1.0, 0.0))  # 20% discordant, half each way
    assert np.mean(comparison_paths(null, 0.0, alpha, horizon=limit).state == "fail") <= alpha
    dropped = np.where(u < 0.175, 1.0, np.where(u < 0.2, -1.0, 0.0))  # a drop of 0.15
    assert np.mean(comparison_paths(dropped, 0.0, alpha, horizon=limit).state == "fail") >= 0.95


def test_a_smaller_alpha_needs_more_examples_to_decide():
    """The run's --alpha is each sequence's level: all ones against >= 0.8 pass after 24 examples
    at 0.05 (docs/sequential.md), 32 at 0.01 and 48 at 0.001."""
    decided = []
    for alpha in (0.05, 0.01, 0.001):
        gate = SequentialGate("binary", ">=", 0.8, alpha=alpha, horizon=160)
        while gate.update([1] * 8) == "undecided":
            pass
        decided.append(gate.n)
    assert decided == [24, 32, 48]
