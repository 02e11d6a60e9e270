"""Baseline comparison at tolerance 0: rounding of fp32 scores is not a regression, a real move is."""

from __future__ import annotations

from sce_checks.regression.files import load_baseline, save_baseline
from sce_checks.regression.gate import compare
from sce_checks.regression.tolerances import ROUNDING
from sce_checks.results import CheckResult


def result(cct: float) -> CheckResult:
    return CheckResult("cct", "m", "sentiment", None, 40, {"cct": cct}, [])


def test_rounding_is_not_a_regression_but_one_example_is(tmp_path):
    before = 0.06327287146488825  # measured: the same audit scored in other batches gave 6e-9 less
    path = save_baseline(tmp_path / "b.json", [result(before)], {})
    baseline = load_baseline(path)
    (same,) = compare(baseline, [result(before - 6e-9)], {}, tolerance=0.0, mode="tolerance")
    assert not same.regressed and ROUNDING < 1 / 40
    # log-probabilities moved by up to 3.9e-5 between two scoring layouts of the hf backend
    (layout,) = compare(baseline, [result(before - 3.9e-5)], {}, tolerance=0.0, mode="tolerance")
    assert not layout.regressed
    (worse,) = compare(baseline, [result(before - 1 / 40)], {}, tolerance=0.0, mode="tolerance")
    assert worse.regressed
