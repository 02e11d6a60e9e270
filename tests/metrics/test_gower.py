"""Gower's distance as defined by Mayne et al. (EMNLP 2025, arXiv 2509.09396), section 3;
section 1: per feature |pos(a) - pos(b)| / span (ordinal position = index in the value list),
0/1 for categorical features, unweighted mean over features."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sce_checks.metrics.gower import distances_from, gower_distance
from sce_checks.tasks.builtin_grids import EDUCATION_LEVELS, HEART_DISEASE, HOUSE_PRICES, INCOME
from sce_checks.tasks.grid import Feature, GridTask, integer_feature

BUILTINS = (INCOME, HOUSE_PRICES, HEART_DISEASE)


def test_income_hand_computed() -> None:
    # age 30 -> 40: |30-40| / (96-17) = 10/79; education "Regular high school diploma" (index 15)
    # -> "Bachelor's degree" (index 20): 5 / 23. Mean of the two terms.
    assert EDUCATION_LEVELS.index("Regular high school diploma") == 15
    assert EDUCATION_LEVELS.index("Bachelor's degree") == 20
    d = gower_distance(INCOME, (30, "Regular high school diploma"), (40, "Bachelor's degree"))
    assert d == pytest.approx((10 / 79 + 5 / 23) / 2)
    assert d == pytest.approx(0.1719868, abs=1e-7)  # (0.1265823 + 0.2173913) / 2


def test_house_prices_hand_computed() -> None:
    # area 500 -> 1000: 500/9500; bedrooms 1 -> 2: 1/4; bathrooms and floors equal: 0.
    d = gower_distance(HOUSE_PRICES, (500, 1, 1, 1), (1000, 2, 1, 1))
    assert d == pytest.approx((500 / 9500 + 1 / 4) / 4)
    assert d == pytest.approx(0.0756579, abs=1e-7)


def test_heart_disease_categorical_counts_zero_or_one() -> None:
    # age 30 -> 35: 5/50; sex Female -> Male: 1 (categorical); bp, cholesterol equal: 0.
    assert gower_distance(HEART_DISEASE, (30, "Female", 110, 150), (35, "Male", 110, 150)) == pytest.approx(0.275)
    # opposite corners, every term 1
    assert gower_distance(HEART_DISEASE, (30, "Female", 110, 150), (80, "Male", 180, 300)) == 1.0
    assert gower_distance(HEART_DISEASE, (30, "Male", 110, 150), (30, "Male", 110, 150)) == 0.0


def test_categorical_ignores_value_order() -> None:
    # Unlike an ordinal, a categorical value's position in the list does not matter: a->c is 1,
    # not 2/2 by index and not 1/2.
    task = GridTask("t", "q", "p", ("A", "B"), (Feature("c", "C", "categorical", ("a", "b", "c")),))
    assert gower_distance(task, ("a",), ("c",)) == 1.0
    ordinal = GridTask("t", "q", "p", ("A", "B"), (Feature("o", "O", "ordinal", ("a", "b", "c")),))
    assert gower_distance(ordinal, ("a",), ("b",)) == 0.5


def test_unweighted_mean_not_sum() -> None:
    # Three features each at distance 1/2 -> 1/2 (a sum would give 3/2).
    task = GridTask("t", "q", "p", ("A", "B"), tuple(integer_feature(n, n, 0, 2) for n in "xyz"))
    assert gower_distance(task, (0, 0, 0), (1, 1, 1)) == pytest.approx(0.5)


def test_rejects_off_grid_values_and_wrong_length() -> None:
    with pytest.raises(ValueError, match="education"):
        gower_distance(INCOME, (30, "PhD"), (30, "1st grade only"))
    with pytest.raises(ValueError, match="age"):
        gower_distance(INCOME, (200, "1st grade only"), (30, "1st grade only"))
    with pytest.raises(ValueError, match="2 features"):
        gower_distance(INCOME, (30,), (30, "1st grade only"))
    with pytest.raises(ValueError, match="sex"):
        distances_from(HEART_DISEASE, (30, "Other", 110, 150))


@pytest.mark.parametrize("task", BUILTINS, ids=lambda t: t.name)
def test_distances_from_matches_scalar_bit_for_bit(task: GridTask) -> None:
    for index in (0, 7, task.size // 2, task.size - 1):
        origin = task.point_at(index)
        expected = np.array([gower_distance(task, origin, p) for p in task.points()])
        got = distances_from(task, origin)
        assert got.shape == (task.size,)
        assert np.array_equal(got, expected)  # same order as task.points(), same float ops
        assert got[index] == 0.0


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(BUILTINS), st.data())
def test_metric_properties(task: GridTask, data: st.DataObject) -> None:
    idx = st.integers(0, task.size - 1)
    a, b, c = (task.point_at(data.draw(idx)) for _ in range(3))
    dab = gower_distance(task, a, b)
    assert 0.0 <= dab <= 1.0
    assert dab == gower_distance(task, b, a)
    assert (dab == 0.0) == (a == b)
    assert dab <= gower_distance(task, a, c) + gower_distance(task, c, b) + 1e-12  # triangle


def test_distances_from_is_fast_on_a_million_points() -> None:
    task = GridTask("big", "q", "p", ("A", "B"), (
        integer_feature("x", "X", 0, 99),
        integer_feature("y", "Y", 0, 990, 10),
        Feature("o", "O", "ordinal", tuple("abcdefghij")),
        Feature("c", "C", "categorical", tuple("ABCDEFGHIJ")),
    ))
    assert task.size == 1_000_000
    origin = (50, 500, "c", "D")
    start = time.perf_counter()
    d = distances_from(task, origin)
    assert time.perf_counter() - start < 1.0
    for index in (0, 123_456, 999_999):
        assert d[index] == gower_distance(task, origin, task.point_at(index))
