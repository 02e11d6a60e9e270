"""Baselines v2 (per-example outcomes) and the paired comparison on result objects: what each
check compares per example, the gate's rule, Holm's family, v1 baselines and malformed files."""

from __future__ import annotations

import json

import pytest

from sce_checks.checks import Check, CheckEntry, Figure, Outcome, all_checks, register_check
from sce_checks.checks.base import compared_figures, outcome_of
from sce_checks.errors import UserInputError
from sce_checks.regression.files import load_baseline, save_baseline
from sce_checks.regression.gate import compare_run
from sce_checks.regression.paired import holm
from sce_checks.results import CheckResult, ExampleRecord


def test_every_compared_figure_has_a_per_example_outcome_but_the_correlations():
    """cct and phi-CCT are correlations and rates over interventions, not means over examples:
    they alone are compared on their aggregates; any other figure without an outcome is a bug."""
    missing = {c.name: [f for f in compared_figures(c.name) if outcome_of(c.name, f) is None] for c in all_checks()}
    assert {k: v for k, v in missing.items() if v} == {"cct": ["cct"], "phi_cct": ["phi", "tpr", "fpr"]}


def test_an_outcome_on_an_undeclared_figure_is_refused():
    import dataclasses

    class Bad(Check):
        settings = dataclasses.make_dataclass("S", [])
        outcomes = (Outcome("x", "binary", ("rates",)),)

        def run(self, *args):
            return []

    entry = CheckEntry(name="bad_outcome", description="?", implementation="nowhere:Bad", figures=(Figure("rate", "higher"),))
    with pytest.raises(UserInputError, match="outcome 'x' names 'rates'"):
        register_check(entry, Bad)


def inv_result(failed: list[bool | None]) -> CheckResult:
    """An INV result: example i failed (True), held (False) or was not scored (None)."""
    records = []
    for i, f in enumerate(failed):
        rec = ExampleRecord(f"s-{i}", "text", "pos", None, None, None, None, None, None)
        rec.extra["failed"] = f
        rec.extra["perturbations"] = [] if f is None else [{"failed": f}, {"failed": False}]
        records.append(rec)
    tested = [f for f in failed if f is not None]
    rate = sum(tested) / len(tested)
    figures = {"failure_rate": rate, "perturbation_failure_rate": sum(tested) / (2 * len(tested))}
    return CheckResult("inv", "m", "sentiment", None, len(records), figures, records)


def test_inv_failures_are_compared_per_example(tmp_path):
    before = inv_result([False] * 18 + [True, None])
    path = save_baseline(tmp_path / "b.json", [before], {})
    stored = json.loads(path.read_text())["entries"]["inv/sentiment/-"]["examples"]
    assert stored["s-18"]["outcomes"] == {"failed": True, "failed_share": 0.5}
    assert stored["s-19"]["outcomes"] == {"failed": None, "failed_share": None}
    # 9 examples start failing, one stops: McNemar P(X >= 9 | 10) = 11/1024
    after = inv_result([True] * 9 + [False] * 9 + [False, None])
    report = compare_run(load_baseline(path), [after], {}, 0.0, str(path), "paired", 0.05,
                         ("failure_rate", "perturbation_failure_rate"))
    rate = next(c for c in report.rows if c.metric == "failure_rate")
    assert (rate.test.test, rate.test.n, rate.test.worse, rate.test.better) == ("McNemar", 19, 9, 1)
    assert rate.test.p == pytest.approx(11 / 1024)
    # Holm over the two gated figures, both named: failure_rate and perturbation_failure_rate (Wilcoxon on
    # the per-example shares: +0.5 on 9 examples, -0.5 on one)
    share = next(c for c in report.rows if c.metric == "perturbation_failure_rate")
    assert share.test.test == "Wilcoxon" and (share.test.worse, share.test.better) == (9, 1)
    assert rate.p_holm == pytest.approx(holm([rate.test.p, share.test.p])[0]) and rate.p_holm <= 2 * rate.test.p
    assert rate.regressed and "failure_rate rose from 0.05 to 0.47" in rate.verdict()
    assert "9 examples regressed, 1 improved" in rate.verdict()
    assert [ch.id for ch in report.changes if ch.worse] == [f"s-{i}" for i in range(9)]
    assert [ch.id for ch in report.changes if not ch.worse] == ["s-18"]
    # by default the check's primary figure alone gates: no Holm correction to pay
    default = compare_run(load_baseline(path), [after], {}, 0.0, str(path), "paired", 0.05)
    rate = next(c for c in default.rows if c.metric == "failure_rate")
    share = next(c for c in default.rows if c.metric == "perturbation_failure_rate")
    assert rate.gated and rate.p_holm == pytest.approx(rate.test.p) and not share.gated and not share.regressed


def test_significant_but_within_the_tolerance_passes():
    before = inv_result([False] * 20)
    after = inv_result([True] * 10 + [False] * 10)
    from sce_checks.regression.files import baseline_entry
    from sce_checks.regression.gate import compare_entries

    pair = [("inv/sentiment/-", baseline_entry(before, [], None), baseline_entry(after, [], None))]
    assert compare_entries(pair, {"*": 0.6}, "paired").regressed == []
    assert {c.metric for c in compare_entries(pair, {"*": 0.4}, "paired").regressed} == {"failure_rate"}
    # gating another figure only: failure_rate is shown, not gated
    only = compare_entries(pair, 0.0, "paired", metrics=["perturbation_failure_rate"])
    assert [c.metric for c in only.regressed] == ["perturbation_failure_rate"]
    assert "not gated" in next(c for c in only.rows if c.metric == "failure_rate").verdict()


def test_every_entry_point_gates_by_the_settings_defaults(tmp_path):
    """`compare`, `compare_run`, `compare_entries` and `compare_saved` called without a mode or
    alpha use the settings' defaults (paired, 0.05): the same verdict as when they are given.
    Before the defaults were read from the settings table, `compare` alone fell back to the
    tolerance rule."""
    from sce_checks.config import BASELINE_MODES, BY_NAME, default
    from sce_checks.regression.files import baseline_entry
    from sce_checks.regression.gate import compare, compare_entries
    from sce_checks.regression.saved import compare_saved

    assert BY_NAME["baseline_mode"].choices is BASELINE_MODES and default("baseline_mode") == "paired"
    before, after = inv_result([False] * 18 + [True, None]), inv_result([True] * 9 + [False] * 9 + [False, None])
    path = save_baseline(tmp_path / "b.json", [before], {})
    other = save_baseline(tmp_path / "a.json", [after], {})
    given = compare_run(load_baseline(path), [after], {}, 0.0, str(path), "paired", 0.05)
    (saved,) = compare_saved([str(path), str(other)])
    pair = [("inv/sentiment/-", baseline_entry(before, [], None), baseline_entry(after, [], None))]
    reports = [compare_run(load_baseline(path), [after], {}, 0.0, str(path)), saved, compare_entries(pair)]
    assert all((r.mode, r.alpha) == ("paired", 0.05) for r in reports)
    rows = [compare(load_baseline(path), [after], {}, 0.0, str(path))] + [r.rows for r in reports]
    for got in rows:
        assert [(c.metric, c.how, c.regressed, c.p_holm) for c in got] == [
            (c.metric, c.how, c.regressed, c.p_holm) for c in given.rows]


def test_v1_baseline_in_paired_mode_compares_aggregates_with_a_note(tmp_path):
    before, after = inv_result([False] * 20), inv_result([True] + [False] * 19)
    path = save_baseline(tmp_path / "b.json", [before], {})
    data = json.loads(path.read_text())
    data["schema"] = "sce-checks/baseline/v1"
    del data["entries"]["inv/sentiment/-"]["examples"]
    path.write_text(json.dumps(data))
    report = compare_run(load_baseline(path), [after], {}, 0.0, str(path), "paired")
    assert [c.metric for c in report.regressed] == ["failure_rate", "perturbation_failure_rate"]
    assert all(c.test is None and c.how == "v1 baseline, no per-example outcomes" for c in report.rows)
    assert "v1 baseline" in report.notes[0] and report.changes == []


@pytest.mark.parametrize("mutate, message", [
    (lambda e: e.pop("examples"), "examples: expected an object of examples by id"),
    (lambda e: e["examples"].update({"s-0": {"prediction": "pos"}}), "examples.s-0: expected an object with outcomes"),
    (lambda e: e["examples"]["s-0"]["outcomes"].update(failed="yes"), "examples.s-0.outcomes.failed: expected true"),
])
def test_malformed_v2_examples_are_refused(tmp_path, mutate, message):
    path = save_baseline(tmp_path / "b.json", [inv_result([False, True])], {})
    data = json.loads(path.read_text())
    mutate(data["entries"]["inv/sentiment/-"])
    path.write_text(json.dumps(data))
    with pytest.raises(UserInputError, match=message):
        load_baseline(path)


def sequential_condition(state: str, n: int = 20, tolerance: float = 0.0) -> dict:
    """A --sequential comparison as `BaselineQuestion.as_dict` records it, with the stop."""
    return {"baseline": "inv/sentiment/-", "path": "b.json", "figure": "failure_rate", "kind": "binary",
            "tolerance": tolerance, "alpha": 0.05, "state": state, "final": "pass" if state == "pass" else "fail",
            "decided_at": None if state == "undecided" else n, "n": n, "worse": 10, "improved": 0,
            "mean_change": 0.5, "history": [[n, 0.2, 0.8]], "stopped_after": n, "limit": 20}


@pytest.mark.parametrize("state, status", [("fail", "REGRESSED"), ("pass", "ok"), ("undecided", "UNDECIDED")])
def test_a_sequential_comparison_is_the_verdict_where_the_audit_made_one(state, status):
    """Under --sequential the comparison the audit stopped on decides its figure, whatever the
    fixed-n test on the same pairs says (here McNemar, p = 2^-10, would regress it); the Holm
    family and the power notes leave it out; a comparison without pairs, or of a figure that is
    not gated, leaves the paired test in charge."""
    from sce_checks.regression.files import baseline_entry
    from sce_checks.regression.gate import compare_entries

    before, after = inv_result([False] * 20), inv_result([True] * 10 + [False] * 10)
    pair = [("inv/sentiment/-", baseline_entry(before, [], None), baseline_entry(after, [], None))]
    report = compare_entries(pair, 0.0, "paired", sequential={("inv/sentiment/-", "failure_rate"): sequential_condition(state)})
    row = next(c for c in report.rows if c.metric == "failure_rate")
    assert row.status() == status and row.decided_by() == "sequential" and row.p_holm is None
    assert row.regressed == (state != "pass") and (row.undecided is not None) == (state == "undecided")
    assert "sequential: mean change +0.50, confidence sequence [+0.20, +0.80] over 20 shared examples" in row.verdict()
    assert not [n for n in report.notes if "gate power" in n]
    if state == "undecided":
        assert row.undecided.startswith("after 20 of 20 examples (--sequential) the confidence sequence")
        assert "n=20 [+0.200, +0.800]" in row.undecided and "give a tolerance" in row.undecided
        assert report.status() == "1 undecided"
    data = report.to_dict()["rows"][[c.metric for c in report.rows].index("failure_rate")]
    assert data["decided_by"] == "sequential" and data["sequential"]["state"] == state
    # no pairs: the fixed-n paired test decides, as without --sequential
    empty = compare_entries(pair, 0.0, "paired", sequential={("inv/sentiment/-", "failure_rate"): sequential_condition(state, n=0)})
    row = next(c for c in empty.rows if c.metric == "failure_rate")
    assert row.decided_by() == "McNemar" and row.status() == "REGRESSED" and row.sequential is None
