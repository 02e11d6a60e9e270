"""x* on a three-option grid: the nearest point the model answers as the target (docs/method.md,
multi-class tasks), checked by hand on the grid TRI of tests/checks/test_multiclass.py and
against the brute-force search; with two options the target search is Mayne et al.'s x*."""

from __future__ import annotations

import pytest

from sce_checks.search.grid import BoundarySearch, exhaustive_nearest
from tests.checks.test_multiclass import TRI, tri_rule
from tests.helpers.rule_models import TOY, toy_rule


def oracle(rule):
    return lambda points: [rule(p) for p in points]


@pytest.mark.parametrize("origin, target, distance, points", [
    # (0,a) is low: medium at (1,b) = (1/4 + 1/2)/2 and (3,a) = (3/4)/2, both 0.375
    ((0, "a"), "medium", 0.375, [(1, "b"), (3, "a")]),
    # high at (1,c) = (1/4 + 2/2)/2 and (3,b) = (3/4 + 1/2)/2, both 0.625
    ((0, "a"), "high", 0.625, [(1, "c"), (3, "b")]),
    # (2,b) is medium: low at (0,b) = (2/4)/2 and (2,a) = (1/2)/2; high at (3,b) = (1/4)/2
    ((2, "b"), "low", 0.25, [(0, "b"), (2, "a")]),
    ((2, "b"), "high", 0.125, [(3, "b")]),
    # (4,c) is high: medium at (0,c) = (4/4)/2, (2,b) = (2/4 + 1/2)/2, (4,a) = (2/2)/2
    ((4, "c"), "medium", 0.5, [(0, "c"), (2, "b"), (4, "a")]),
])
def test_xstar_per_target_by_hand(origin, target, distance, points):
    res = BoundarySearch(TRI, oracle(tri_rule)).nearest_with_label(origin, target)
    assert res.distance == pytest.approx(distance) and res.points == points


def test_xstar_per_target_equals_brute_force_everywhere():
    labels = {p: tri_rule(p) for p in TRI.points()}
    search = BoundarySearch(TRI, oracle(tri_rule))
    for x in TRI.points():
        for t in TRI.options:
            if t == labels[x]:
                continue
            got = search.nearest_with_label(x, t)
            want = exhaustive_nearest(TRI, labels, x, lambda y, t=t: y == t)
            assert (got.distance, got.points) == (pytest.approx(want.distance), want.points)


def test_with_two_options_the_target_search_is_the_nearest_different_answer():
    search = BoundarySearch(TOY, oracle(toy_rule))
    for x in TOY.points():
        flip = search.min_counterfactual(x, toy_rule(x))
        target = search.nearest_with_label(x, TOY.other_option(toy_rule(x)))
        assert (flip.distance, flip.points) == (target.distance, target.points)
