"""The ring search under a budget of grid points per search: it stops before the ring that would
take it past the budget and returns certified bounds on the minimal distance, never a guess.

Hand computation on the toy grid of tests/helpers/rule_models.py (Gower's distance: x span 10,
level span 4, so d = 0.05 per x step + 0.125 per level step; the model says Yes iff x >= 5 and
level >= c). From x = (2, a) (label No) the rings of unknown points, nearest first:

    d = 0.05: (1,a) (3,a)   d = 0.10: (0,a) (4,a)   d = 0.125: (2,b)   d = 0.15: (5,a)
    d = 0.175: (1,b) (3,b)  ...  and the nearest Yes, x* = (5,c), at d = 0.15 + 0.25 = 0.4.

With a budget of 6 points the search predicts the first four rings (2 + 2 + 1 + 1 = 6 points, no
Yes among them) and stops before the ring at 0.175, which would make 8: every point nearer than
0.175 is known to be No, so d(x, x*) >= 0.175 (d > 0.15, the radius walked), and with no Yes
known, there is no upper bound.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sce_checks.metrics.gower import distances_from
from sce_checks.search.grid import BoundarySearch, exhaustive_nearest
from tests.helpers.rule_models import TOY, toy_rule
from tests.search.test_grid import Oracle, all_labels, income_rule
from sce_checks.tasks.builtin_grids import INCOME

X = (2, "a")


def search(budget: int, min_batch: int = 1) -> tuple[BoundarySearch, Oracle]:
    oracle = Oracle(toy_rule)
    s = BoundarySearch(TOY, oracle, min_batch=min_batch, budget=budget)
    s.remember([X], [toy_rule(X)])
    return s, oracle


@pytest.mark.parametrize("min_batch", [1, 32])
def test_budget_stops_before_the_ring_that_would_exceed_it(min_batch: int) -> None:
    s, oracle = search(6, min_batch)
    r = s.min_counterfactual(X, "No")
    assert r.bounded and r.distance is None and r.points == []
    assert r.lower == pytest.approx(0.175) and r.radius == pytest.approx(0.15) and r.upper is None
    assert r.bounds == (pytest.approx(0.175), None)
    assert r.evaluated == 6 == len(oracle.seen)
    assert oracle.seen == {(1, "a"), (3, "a"), (0, "a"), (4, "a"), (2, "b"), (5, "a")}


def test_a_known_flip_gives_the_upper_bound() -> None:
    s, _ = search(6)
    s.remember([(6, "c")], ["Yes"])  # d((2,a), (6,c)) = 0.2 + 0.25 = 0.45
    r = s.min_counterfactual(X, "No")
    assert r.bounded and r.lower == pytest.approx(0.175) and r.upper == pytest.approx(0.45)
    # labels learned later tighten it, without asking the model
    s.remember([(5, "c")], ["Yes"])
    assert s.nearest_known(X, lambda y: y != "No") == pytest.approx(0.4)


def test_a_large_enough_budget_changes_nothing() -> None:
    s, _ = search(0)
    exact = s.min_counterfactual(X, "No")
    assert exact.distance == pytest.approx(0.4) and exact.points == [(5, "c")]
    s2, _ = search(exact.evaluated)
    assert s2.min_counterfactual(X, "No") == exact


def test_a_ring_holding_a_known_flip_is_the_minimum_even_at_the_budget() -> None:
    """The next ring already holds a known Yes at d = 0.175: lower = upper, the distance is exact."""
    s, oracle = search(6)
    s.remember([(3, "b")], ["Yes"])  # a made-up label: the search must believe the model
    r = s.min_counterfactual(X, "No")
    assert not r.bounded and r.distance == pytest.approx(0.175) and r.points == [(3, "b")]
    assert (1, "b") not in oracle.seen  # its ring-mate was not predicted: the budget held


@settings(max_examples=60, deadline=None)
@given(st.integers(0, len(INCOME.features[0].values) - 1), st.integers(0, 23), st.integers(1, 400))
def test_bounds_always_hold_the_exhaustive_minimum(age_i: int, edu_i: int, budget: int) -> None:
    """Soundness on the income grid: whatever the budget, lower <= exact minimum <= upper, every
    point nearer than lower was predicted and does not flip, and no search sends more than its budget."""
    from sce_checks.tasks.builtin_grids import EDUCATION_LEVELS

    x = (INCOME.features[0].values[age_i], EDUCATION_LEVELS[edu_i])
    fx = income_rule(x)
    oracle = Oracle(income_rule)
    s = BoundarySearch(INCOME, oracle, min_batch=16, budget=budget)
    s.remember([x], [fx])
    r = s.min_counterfactual(x, fx)
    truth = exhaustive_nearest(INCOME, LABELS, x, lambda y: y != fx)
    assert r.evaluated <= budget
    if not r.bounded:
        assert r.distance == truth.distance
        return
    assert truth.distance is None or r.lower <= truth.distance + 1e-12
    assert r.upper is None or (truth.distance is not None and truth.distance <= r.upper + 1e-12)
    dist = distances_from(INCOME, x)
    nearer = [INCOME.point_at(int(i)) for i in np.flatnonzero(dist < r.lower - 1e-9)]
    assert all(s.is_known(p) and s.label_of(p) == fx for p in nearer)
    assert r.radius is None or r.radius < r.lower
    assert math.isclose(r.radius, max(dist[dist < r.lower - 1e-9])) if nearer else r.radius is None


LABELS = all_labels(INCOME, income_rule)
