"""The ring search finds exactly the paper's reference minimal counterfactual x* = argmin over
z with f(z) != f(x) of Gower d(x, z), and ICF_A's nearest target point (Mayne et al., EMNLP 2025,
arXiv 2509.09396, section 3), while asking the model about far fewer points than the
exhaustive evaluation of the grid used in the paper."""

from __future__ import annotations

import random
from typing import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sce_checks.errors import BackendError, UserInputError
from sce_checks.metrics.gower import distances_from, gower_distance
from sce_checks.search.grid import BoundarySearch, NearestResult, exhaustive_nearest
from sce_checks.tasks.builtin_grids import EDUCATION_LEVELS, HEART_DISEASE, HOUSE_PRICES, INCOME
from sce_checks.tasks.grid import Feature, GridTask, Point, integer_feature

BACHELOR = EDUCATION_LEVELS.index("Bachelor's degree")


def income_rule(p: Point) -> str:
    return "Above $50,000" if p[0] >= 40 and EDUCATION_LEVELS.index(p[1]) >= BACHELOR else "Below $50,000"


def heart_rule(p: Point) -> str:
    age, sex, bp, chol = p
    sick = (sex == "Male" and age >= 55) or (bp >= 160 and chol >= 240)
    return "Heart disease" if sick else "No heart disease"


class Oracle:
    """A rule 'model' that records every batch it is asked, and fails on a repeated point."""

    def __init__(self, rule: Callable[[Point], str | None]) -> None:
        self.rule = rule
        self.batches: list[list[Point]] = []
        self.seen: set[Point] = set()

    def __call__(self, points: list[Point]) -> list[str | None]:
        assert not self.seen & set(points), "a point was sent to the oracle twice"
        self.seen.update(points)
        self.batches.append(list(points))
        return [self.rule(p) for p in points]


def all_labels(task: GridTask, rule: Callable[[Point], str | None]) -> dict[Point, str | None]:
    return {p: rule(p) for p in task.points()}


def same(a: NearestResult, b: NearestResult) -> None:
    assert a.distance == b.distance
    assert a.points == b.points
    assert a.unparsed_within == b.unparsed_within


def test_income_hand_computed_and_cheap() -> None:
    oracle = Oracle(income_rule)
    search = BoundarySearch(INCOME, oracle)
    x = (35, "Associate's degree")  # index 19: one level below a Bachelor's degree
    r = search.min_counterfactual(x, income_rule(x))
    # x* = (40, "Bachelor's degree"): (5/79 + 1/23) / 2, a single point
    assert r.distance == pytest.approx((5 / 79 + 1 / 23) / 2)
    assert r.points == [(40, "Bachelor's degree")]
    same(r, exhaustive_nearest(INCOME, all_labels(INCOME, income_rule), x, lambda y: y != income_rule(x)))
    # only the points strictly closer than x* plus its ring are asked: here under 3% of the grid
    closer = int(np.count_nonzero(distances_from(INCOME, x) < r.distance - 1e-9))
    assert closer < r.evaluated <= closer + 8
    assert r.evaluated / INCOME.size < 0.03
    assert search.evaluated == r.evaluated == len(oracle.seen)


def test_one_oracle_batch_per_ring_in_increasing_distance() -> None:
    oracle = Oracle(income_rule)
    search = BoundarySearch(INCOME, oracle)
    x = (30, "Bachelor's degree")
    r = search.min_counterfactual(x, income_rule(x))
    # 10 years younger than the boundary: x* = (40, Bachelor's), d = (10/79)/2
    assert r.distance == pytest.approx(10 / 79 / 2) and r.points == [(40, "Bachelor's degree")]
    ring_distances = []
    for batch in oracle.batches:
        ds = {round(gower_distance(INCOME, x, p), 12) for p in batch}
        assert len(ds) == 1  # one ring per batch
        ring_distances.append(ds.pop())
    assert ring_distances == sorted(ring_distances) and len(set(ring_distances)) == len(ring_distances)
    assert ring_distances[-1] == pytest.approx(r.distance)
    assert search.oracle_calls == len(oracle.batches)


def test_look_ahead_fills_batches_and_keeps_the_minimum() -> None:
    """A lone search with small rings asks for at least ``min_batch`` points per batch (rings
    further out included), never past a ring known to hold the answer; the answer is unchanged."""
    x = (30, "Bachelor's degree")
    plain_oracle, ahead_oracle = Oracle(income_rule), Oracle(income_rule)
    plain = BoundarySearch(INCOME, plain_oracle).min_counterfactual(x, income_rule(x))
    ahead = BoundarySearch(INCOME, ahead_oracle, min_batch=16).min_counterfactual(x, income_rule(x))
    same(plain, ahead)
    assert all(len(b) >= 16 for b in ahead_oracle.batches[:-1])
    assert len(ahead_oracle.batches) < len(plain_oracle.batches)
    assert plain.evaluated <= ahead.evaluated < plain.evaluated + 16 * 3


def test_memo_is_shared_between_searches() -> None:
    oracle = Oracle(income_rule)  # fails if a point is ever asked twice
    search = BoundarySearch(INCOME, oracle)
    x = (35, "Associate's degree")
    first = search.min_counterfactual(x, income_rule(x))
    again = search.min_counterfactual(x, income_rule(x))
    assert again.evaluated == 0 and again.distance == first.distance and again.points == first.points
    # The nearest "Below" point to x* is one year younger, (39, Bachelor's) at (1/79)/2. Its ring
    # {(39, Bachelor's), (41, Bachelor's)} is known except (41, Bachelor's), which lies outside
    # the first search's region ((6/79 + 1/23)/2 = 0.060 > d_min = 0.053): one new point.
    below = search.nearest_with_label((40, "Bachelor's degree"), "Below $50,000")
    assert below.distance == pytest.approx(1 / 79 / 2)
    assert below.points == [(39, "Bachelor's degree")]
    assert below.evaluated == 1 and oracle.batches[-1] == [(41, "Bachelor's degree")]
    assert search.known_points == len(oracle.seen)


def test_ties_are_all_returned() -> None:
    # 5x5 grid, x and y in 0..4 (Gower = (|dx| + |dy|) / 8); B iff |x-2| + |y-2| >= 2:
    #   y 4 | B B B B B
    #     3 | B B A B B
    #     2 | B A A A B
    #     1 | B B A B B
    #     0 | B B B B B
    #         0 1 2 3 4  x
    # From the centre, the eight points at L1 distance 2 (axes and diagonals) all tie at 2/8.
    grid = GridTask("g", "q", "p", ("A", "B"), (integer_feature("x", "X", 0, 4), integer_feature("y", "Y", 0, 4)))
    rule = lambda p: "B" if abs(p[0] - 2) + abs(p[1] - 2) >= 2 else "A"  # noqa: E731
    got = BoundarySearch(grid, Oracle(rule)).min_counterfactual((2, 2), "A")
    assert got.distance == pytest.approx(2 / 8)
    assert got.points == [(0, 2), (1, 1), (1, 3), (2, 0), (2, 4), (3, 1), (3, 3), (4, 2)]  # grid order
    assert got.evaluated == 1 + 4 + 8  # rings at 0, 1/8 and 2/8


def test_float_noise_cannot_split_a_ring() -> None:
    # Three features of span 10: (1,2,0) and (3,0,0) are both at Gower 3/30 from the origin,
    # but 0.1 + 0.2 != 0.3 in floating point. Both must come back as tied minima.
    grid = GridTask("g", "q", "p", ("A", "B"), tuple(integer_feature(n, n, 0, 10) for n in "abc"))
    tie = {(1, 2, 0), (3, 0, 0)}
    d1, d2 = gower_distance(grid, (0, 0, 0), (1, 2, 0)), gower_distance(grid, (0, 0, 0), (3, 0, 0))
    assert d1 != d2 and abs(d1 - d2) < 1e-15  # the premise
    rule = lambda p: "B" if p in tie else "A"  # noqa: E731
    got = BoundarySearch(grid, Oracle(rule)).min_counterfactual((0, 0, 0), "A")
    assert set(got.points) == tie and len(got.points) == 2
    same(got, exhaustive_nearest(grid, all_labels(grid, rule), (0, 0, 0), lambda y: y != "A"))


def test_heart_disease_categorical_and_numeric_rule_matches_exhaustive() -> None:
    labels = all_labels(HEART_DISEASE, heart_rule)
    search = BoundarySearch(HEART_DISEASE, Oracle(heart_rule))
    rng = random.Random(7)
    per_origin = []
    for _ in range(25):
        x = HEART_DISEASE.point_at(rng.randrange(HEART_DISEASE.size))
        fx = heart_rule(x)
        fresh = BoundarySearch(HEART_DISEASE, Oracle(heart_rule)).min_counterfactual(x, fx)
        per_origin.append(fresh.evaluated / HEART_DISEASE.size)
        shared = search.min_counterfactual(x, fx)
        expected = exhaustive_nearest(HEART_DISEASE, labels, x, lambda y: y != fx)
        same(fresh, expected)
        same(shared, expected)
    # A man of 60 with BP 120 is sick only through "male and age >= 55": flipping sex costs
    # 1/4 (categorical), age 60 -> 50 costs (10/50)/4 = 0.05: the numeric change is nearer.
    x = (60, "Male", 120, 180)
    r = search.min_counterfactual(x, heart_rule(x))
    assert r.distance == pytest.approx(0.05) and r.points == [(50, "Male", 120, 180)]
    # one search asks a small share of the grid on average (measured ~4%)
    assert float(np.mean(per_origin)) < 0.15


def test_heart_categorical_flip_when_nearest() -> None:
    # (55, Male, 170, 180): sick through "male and age >= 55" only (cholesterol < 240).
    # Flips: age 50 -> (5/50)/4 = 0.025; sex Female -> 1/4. Nearest: the age change.
    # (55, Female, 170, 225) is healthy; nearest "Heart disease": one cholesterol step up,
    # (15/150)/4 = 0.025 (sex Male would cost 1/4).
    x = (55, "Male", 170, 180)
    r = BoundarySearch(HEART_DISEASE, Oracle(heart_rule)).min_counterfactual(x, heart_rule(x))
    assert r.distance == pytest.approx(0.025) and r.points == [(50, "Male", 170, 180)]
    y = (55, "Female", 170, 225)
    r = BoundarySearch(HEART_DISEASE, Oracle(heart_rule)).nearest_with_label(y, "Heart disease")
    assert r.distance == pytest.approx(0.025) and r.points == [(55, "Female", 170, 240)]
    # (55, Female, 110, 150): sex Male costs 1/4; BP 160 and cholesterol 240 together cost
    # (50/70 + 90/150)/4 = 0.329: the categorical change is the nearest "Heart disease".
    z = (55, "Female", 110, 150)
    r = BoundarySearch(HEART_DISEASE, Oracle(heart_rule)).nearest_with_label(z, "Heart disease")
    assert r.distance == pytest.approx(0.25) and r.points == [(55, "Male", 110, 150)]


def test_no_point_satisfies() -> None:
    grid = GridTask("g", "q", "p", ("A", "B"), (integer_feature("x", "X", 0, 9),))
    oracle = Oracle(lambda p: "A")
    r = BoundarySearch(grid, oracle).min_counterfactual((3,), "A")
    assert r.distance is None and r.points == [] and r.evaluated == 10


def test_unparsable_labels_are_excluded_and_counted() -> None:
    # 1-D grid 0..8 (span 8). From 4 (label A): 5 is unparsable, 3 and 6 are B... 3 is nearer
    # than 6? Both 3 and 5 are at 1/8; 5 is None, so the answer is 3 alone, and the None point
    # at the same distance is reported.
    labels = {0: "A", 1: "A", 2: "A", 3: "B", 4: "A", 5: None, 6: "B", 7: None, 8: "B"}
    grid = GridTask("g", "q", "p", ("A", "B"), (integer_feature("x", "X", 0, 8),))
    search = BoundarySearch(grid, Oracle(lambda p: labels[p[0]]))
    r = search.min_counterfactual((4,), "A")
    assert r.distance == pytest.approx(1 / 8) and r.points == [(3,)] and r.unparsed_within == 1
    # want never sees None: a predicate that would accept None still skips it
    r2 = search.nearest((6,), lambda y: y != "B")  # 7 (None) is at 1/8; 5 (None) too; 4 is A at 2/8
    assert r2.points == [(4,)] and r2.unparsed_within == 2
    assert search.unparsed_points == 2
    same(r2, exhaustive_nearest(grid, {(k,): v for k, v in labels.items()}, (6,), lambda y: y != "B"))


def test_remember_avoids_oracle_calls() -> None:
    oracle = Oracle(income_rule)
    search = BoundarySearch(INCOME, oracle)
    x = (35, "Associate's degree")
    search.remember([x], [income_rule(x)])
    r = search.min_counterfactual(x, income_rule(x))
    assert x not in oracle.seen and search.label_of(x) == income_rule(x)
    assert r.evaluated == len(oracle.seen)
    with pytest.raises(KeyError):
        search.label_of((17, "1st grade only"))


def test_nearest_many_equals_separate_searches_with_fewer_batches() -> None:
    rng = random.Random(3)
    origins = [HOUSE_PRICES.point_at(rng.randrange(HOUSE_PRICES.size)) for _ in range(20)]
    rule = lambda p: "Above" if p[0] + 1000 * p[2] >= 8000 else "Below"  # noqa: E731
    seq_oracle, lock_oracle = Oracle(rule), Oracle(rule)
    seq = BoundarySearch(HOUSE_PRICES, seq_oracle)
    separate = [seq.min_counterfactual(x, rule(x)) for x in origins]
    lock = BoundarySearch(HOUSE_PRICES, lock_oracle)
    together = lock.nearest_many([(x, lambda y, fx=rule(x): y != fx) for x in origins])
    for a, b in zip(separate, together):
        same(a, b)
    assert len(lock_oracle.batches) < len(seq_oracle.batches)


def test_errors() -> None:
    huge = GridTask("huge", "q", "p", ("A", "B"), (integer_feature("a", "A", 0, 1999), integer_feature("b", "B", 0, 1000)))
    with pytest.raises(UserInputError, match="2,002,000 points.*at most 2,000,000"):
        BoundarySearch(huge, lambda pts: ["A"] * len(pts))
    with pytest.raises(BackendError, match="returned 1 labels for"):
        BoundarySearch(INCOME, lambda pts: ["A"]).min_counterfactual((30, "1st grade only"), "A")
    with pytest.raises(ValueError, match="education"):
        BoundarySearch(INCOME, lambda pts: ["A"] * len(pts)).index_of((30, "PhD"))


# --- random threshold rules, random origins, against brute force ----------------------------

SMALL = GridTask(
    "small", "q", "p", ("A", "B"),
    (
        integer_feature("n", "N", 0, 12, 3),
        Feature("o", "O", "ordinal", ("low", "mid", "high", "top")),
        Feature("c", "C", "categorical", ("red", "green", "blue")),
    ),
)


@st.composite
def rule_and_origin(draw: st.DrawFn) -> tuple[GridTask, Callable[[Point], str | None], Point, str]:
    task = draw(st.sampled_from([INCOME, HOUSE_PRICES, HEART_DISEASE, SMALL]))
    weights = [draw(st.integers(-3, 3)) for _ in task.features]
    positions = [[f.position(v) / f.span for v in f.values] for f in task.features]
    lo = sum(min(w * min(p), w * max(p)) for w, p in zip(weights, positions))
    hi = sum(max(w * min(p), w * max(p)) for w, p in zip(weights, positions))
    threshold = draw(st.floats(lo, hi, allow_nan=False)) if hi > lo else lo
    unparsed_share = draw(st.sampled_from([0.0, 0.0, 0.05, 0.3]))
    seed = draw(st.integers(0, 10**6))
    index_of = {f.name: {v: i for i, v in enumerate(f.values)} for f in task.features}

    def rule(p: Point) -> str | None:
        if unparsed_share and random.Random(f"{seed}:{p}").random() < unparsed_share:
            return None
        s = sum(w * positions[k][index_of[f.name][v]] for k, (w, f, v) in enumerate(zip(weights, task.features, p)))
        return task.options[1] if s >= threshold else task.options[0]

    origin = task.point_at(draw(st.integers(0, task.size - 1)))
    mode = draw(st.sampled_from(["flip", "label"]))
    return task, rule, origin, mode


@settings(max_examples=25, deadline=None)
@given(rule_and_origin(), st.sampled_from([1, 1, 7, 64]))
def test_ring_search_equals_exhaustive_argmin(case: tuple, min_batch: int) -> None:
    """Also with look-ahead (``min_batch`` > 1: several rings evaluated per batch)."""
    task, rule, origin, mode = case
    labels = all_labels(task, rule)
    search = BoundarySearch(task, Oracle(rule), min_batch=min_batch)
    if mode == "flip":
        fx = labels[origin]
        want = (lambda y: y != fx) if fx is not None else (lambda y: True)
    else:
        want = lambda y: y == task.options[1]  # noqa: E731
    got = search.nearest(origin, want)
    same(got, exhaustive_nearest(task, labels, origin, want))
    assert got.evaluated <= task.size
