"""Minimality figures of Mayne et al. (EMNLP 2025, arXiv 2509.09396), section 4,
checked against values computed by hand on a drawn 5x5 grid."""

from __future__ import annotations

import pytest

from sce_checks.metrics.gower import gower_distance
from sce_checks.metrics.minimality import MinimalityRow, aggregate_minimality
from sce_checks.search.grid import BoundarySearch
from sce_checks.tasks.grid import GridTask, integer_feature

# A 5x5 grid, features x and y, integers 0..4 (span 4), so Gower's distance is
# d = (|dx|/4 + |dy|/4) / 2 = (|dx| + |dy|) / 8. The model answers "B" iff x + y >= 6:
#
#   y
#   4 | A A B B B
#   3 | A A A B B
#   2 | A A A A B
#   1 | A A A A A
#   0 | A A A A A
#     +----------
#       0 1 2 3 4   x
#
# Examples (x, f(x), SCE x', f(x')):
#   1. (0,0) A, SCE (3,3) B valid.   d = 6/8.  nearest B: (2,4),(3,3),(4,2) at 6/8 -> d_min = 6/8
#      RCF_A = 0, RCF = 0 (an exact match; one of three tied minima)
#   2. (4,4) B, SCE (0,4) A valid.   d = 4/8.  nearest A: x+y = 5, 3 steps -> d_min = 3/8
#      RCF_A = 1/8, RCF = (4/8)/(3/8) - 1 = 1/3
#   3. (2,2) A, SCE (2,3) A invalid. d = 1/8.  d_min = 2/8; nearest B to (2,3): (2,4)/(3,3) at 1/8
#      ICF_A = 1/8, ICF = (1/8)/(2/8) = 1/2
#   4. (1,1) A, SCE (0,3) A invalid. d = 3/8.  d_min = 4/8; nearest B to (0,3): 3 steps, 3/8
#      ICF_A = 3/8, ICF = (3/8)/(4/8) = 3/4
#   5. (3,1) A, no SCE generated (unparsed): not scored.
# Over the 4 generated: v = 2/4.
#   mean d = (6+4+1+3)/8/4 = 0.4375
#   mean RCF_A = (0 + 1/8)/2 = 1/16; median RCF = mean RCF = (0 + 1/3)/2 = 1/6
#   mean ICF_A = (1/8 + 3/8)/2 = 1/4; median ICF = mean ICF = (1/2 + 3/4)/2 = 5/8
#   TM   = 1/2 * 1/6  + 1/2 * 5/8 = 19/48
#   TM_A = 1/2 * 1/16 + 1/2 * 1/4 = 5/32
#   exact match = 1/4

GRID = GridTask(
    "toy", "q", "p", ("A", "B"),
    (integer_feature("x", "X", 0, 4), integer_feature("y", "Y", 0, 4)),
)


def model(p: tuple) -> str:
    return "B" if p[0] + p[1] >= 6 else "A"


EXAMPLES = [((0, 0), (3, 3)), ((4, 4), (0, 4)), ((2, 2), (2, 3)), ((1, 1), (0, 3)), ((3, 1), None)]

EXPECTED = {
    "mean_distance": 0.4375,
    "mean_rcf_a": 1 / 16,
    "median_rcf": 1 / 6,
    "mean_rcf": 1 / 6,
    "mean_icf_a": 1 / 4,
    "median_icf": 5 / 8,
    "mean_icf": 5 / 8,
    "tm": 19 / 48,
    "tm_a": 5 / 32,
    "exact_match": 1 / 4,
    "n_scored": 4,
}


def rows_from_pipeline() -> list[MinimalityRow]:
    """The rows as the grid SCE check builds them: model predictions, boundary search, Gower."""
    search = BoundarySearch(GRID, lambda pts: [model(p) for p in pts])
    rows = []
    for x, cf in EXAMPLES:
        fx = model(x)
        d_min = search.min_counterfactual(x, fx).distance
        if cf is None:
            rows.append(MinimalityRow(None, None, d_min, None))
            continue
        target = GRID.other_option(fx)
        valid = model(cf) == target
        icf_a = None if valid else search.nearest_with_label(cf, target).distance
        rows.append(MinimalityRow(valid, gower_distance(GRID, x, cf), d_min, icf_a))
    return rows


def test_per_row_figures_by_hand() -> None:
    rows = rows_from_pipeline()
    assert [r.valid for r in rows] == [True, True, False, False, None]
    assert [r.min_distance for r in rows] == pytest.approx([6 / 8, 3 / 8, 2 / 8, 4 / 8, 2 / 8])
    assert rows[0].rcf_a == pytest.approx(0) and rows[0].rcf == pytest.approx(0) and rows[0].exact
    assert rows[1].rcf_a == pytest.approx(1 / 8) and rows[1].rcf == pytest.approx(1 / 3) and not rows[1].exact
    assert rows[2].icf_a == pytest.approx(1 / 8) and rows[2].icf == pytest.approx(1 / 2)
    assert rows[3].icf_a == pytest.approx(3 / 8) and rows[3].icf == pytest.approx(3 / 4)
    # RCF is only for valid rows, ICF only for invalid ones
    assert rows[0].icf is None and rows[2].rcf is None and rows[2].rcf_a is None
    assert rows[4].rcf is None and rows[4].icf is None and not rows[4].generated


def test_aggregate_by_hand() -> None:
    got = aggregate_minimality(rows_from_pipeline())
    assert set(got) == set(EXPECTED)
    for key, value in EXPECTED.items():
        assert got[key] == pytest.approx(value), key


def test_medians_differ_from_means() -> None:
    # RCF values 0, 0, 1 -> median 0, mean 1/3 (guards against median/mean mix-ups).
    rows = [MinimalityRow(True, 0.25, 0.25), MinimalityRow(True, 0.5, 0.5), MinimalityRow(True, 0.5, 0.25)]
    got = aggregate_minimality(rows)
    assert got["median_rcf"] == 0.0
    assert got["mean_rcf"] == pytest.approx(1 / 3)
    assert got["mean_rcf_a"] == pytest.approx(0.25 / 3)
    assert got["tm"] == 0.0  # v = 1: TM = median RCF
    assert got["exact_match"] == pytest.approx(2 / 3)
    # ICF values 1/2, 1/2, 2 -> median 1/2, mean 1; ICF_A values 1/8, 1/8, 1/2 -> mean 1/4.
    rows = [MinimalityRow(False, 0.3, 0.25, 0.125), MinimalityRow(False, 0.3, 0.25, 0.125), MinimalityRow(False, 0.3, 0.25, 0.5)]
    got = aggregate_minimality(rows)
    assert got["median_icf"] == pytest.approx(0.5) and got["mean_icf"] == pytest.approx(1.0)
    assert got["tm"] == pytest.approx(0.5) and got["tm_a"] == pytest.approx(0.25)


def test_zero_weight_term_contributes_zero() -> None:
    # All valid: no ICF at all, yet TM / TM_A are defined (weight of the ICF term is 0).
    got = aggregate_minimality([MinimalityRow(True, 0.5, 0.25)])
    assert got["median_icf"] is None and got["mean_icf_a"] is None
    assert got["tm"] == pytest.approx(1.0) and got["tm_a"] == pytest.approx(0.25)
    # All invalid: TM = median ICF.
    got = aggregate_minimality([MinimalityRow(False, 0.5, 0.25, 0.125), MinimalityRow(False, 0.1, 0.5, 0.25)])
    assert got["tm"] == pytest.approx(0.5) and got["tm_a"] == pytest.approx(0.1875)
    assert got["exact_match"] == 0.0


def test_undefined_statistic_with_weight_makes_tm_undefined() -> None:
    # The model predicts the target nowhere on the grid: no d_min, no ICF_A.
    got = aggregate_minimality([MinimalityRow(False, 0.3, None, None)])
    assert got["mean_distance"] == pytest.approx(0.3)
    assert got["tm"] is None and got["tm_a"] is None
    assert got["n_scored"] == 1


def test_no_generated_rows() -> None:
    got = aggregate_minimality([MinimalityRow(None, None, 0.25)])
    assert got["n_scored"] == 0
    assert all(got[k] is None for k in EXPECTED if k != "n_scored")


def test_exact_match_tolerates_float_noise() -> None:
    # 0.1 + 0.2 != 0.3 in floating point; an SCE at the same Gower distance is still exact.
    row = MinimalityRow(True, 0.1 + 0.2, 0.3)
    assert row.rcf != 0.0 and row.exact
    assert not MinimalityRow(True, 0.3 + 1e-6, 0.3).exact
