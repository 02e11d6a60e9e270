"""The SCE check under an x* search budget (``xstar_budget``): bounded examples, the bounds on
RCF_A, RCF, ICF, exact match and the aggregates that follow, and gates judged on those bounds.

Definitions (Mayne et al., EMNLP 2025, arXiv 2509.09396, section 3; docs/method.md):
RCF_A = d(x,x') - d(x,x*), RCF = d(x,x')/d(x,x*) - 1 for a valid SCE; ICF_A = min over z with
f(z) = target of d(x', z), ICF = ICF_A / d(x,x*) for an invalid one; exact match: valid and
d(x,x') = d(x,x*). Bounds: sce_checks/metrics/minimality.py ("Bounds").

Hand computation on the toy grid (tests/helpers/rule_models.py; d = 0.05 per x step + 0.125 per
level step; Yes iff x >= 5 and level >= c), one example A: x = (2, a), f(x) = No, target Yes,
true x* = (5, c) at d = 0.4. With a budget of 6 points the x* search predicts the rings at 0.05,
0.1, 0.125 and 0.15 (6 points, all No; tests/search/test_grid_budget.py) and stops before the
ring at 0.175: d(x, x*) >= 0.175 (radius 0.15). Its upper bound is the nearest Yes known once
every search of the stage has run:

- policy "far": x' = (10, e), valid, d = 0.9; the nearest known Yes is x' itself (0.9):
  d(x,x*) in [0.175, 0.9]; RCF_A in [0.9 - 0.9, 0.9 - 0.175] = [0, 0.725];
  RCF in [0.9/0.9 - 1, 0.9/0.175 - 1] = [0, 4.142857...]; exact match undecided: [0, 1].
- policy "boundary": x' = (5, c) = x*, valid, d = 0.4: d(x,x*) in [0.175, 0.4];
  RCF_A in [0, 0.225]; exact match undecided (it is in truth exact: the bounds cannot tell).
- policy "short": x' = (4, c), invalid (No), d = 0.35. ICF_A's search from (4, c) finds (5, c)
  at 0.05 within the budget (exact), and teaches the x* search's bound (5, c), Yes, at
  d((2,a),(5,c)) = 0.4: d(x,x*) in [0.175, 0.4]; ICF = 0.05 / d(x,x*) in [0.05/0.4, 0.05/0.175]
  = [0.125, 0.285714...]; TM = median ICF (v = 0): the same; TM_A = mean ICF_A = 0.05, exact.
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from sce_checks.assertions import SCEAssertionError, assert_example_valid, assert_minimality, assert_threshold
from sce_checks.checks.sce import SCESettings, run_grid_sce
from sce_checks.cli import main
from sce_checks.thresholds import FAIL, PASS, UNDECIDED, Threshold
from tests.helpers.rule_models import TOY, RuleModel, toy_rule
from tests.test_cli import schema

A = [("A", (2, "a"))]


def run(policy: str, budget: int = 6, examples=A):
    (result,) = run_grid_sce(RuleModel(TOY, toy_rule, policy), f"rule/{policy}", TOY, examples,
                             SCESettings(variants=("unconstrained",), prediction="generate", xstar_budget=budget))
    return result


def test_far_policy_bounds_by_hand():
    r = run("far")
    (e,) = r.examples
    assert e.valid and e.distance == pytest.approx(0.9)
    assert e.extra["xstar_bounded"] is True and e.min_distance is None and e.rcf_a is None
    assert e.extra["min_distance_bounds"] == [pytest.approx(0.175), pytest.approx(0.9)]
    assert e.extra["xstar_radius"] == pytest.approx(0.15)
    assert e.extra["rcf_a_bounds"] == [pytest.approx(0.0), pytest.approx(0.725)]
    assert e.extra["rcf_bounds"] == [pytest.approx(0.0), pytest.approx(0.9 / 0.175 - 1)]
    assert e.extra["exact_match_bounds"] == [0.0, 1.0]
    # aggregates: one valid row, so mean = median = the row's interval; the point figures are unknown
    assert r["mean_rcf_a"] is None and r["mean_rcf_a_bounds"] == [pytest.approx(0.0), pytest.approx(0.725)]
    assert r["median_rcf_bounds"] == [pytest.approx(0.0), pytest.approx(0.9 / 0.175 - 1)]
    assert r["tm_a_bounds"] == r["mean_rcf_a_bounds"] and r["tm_bounds"] == r["median_rcf_bounds"]
    assert r["exact_match"] is None and r["exact_match_bounds"] == [0.0, 1.0]
    assert r["mean_min_distance"] is None and r["mean_min_distance_bounds"] == [pytest.approx(0.175), pytest.approx(0.9)]
    assert r["validity"] == 1.0  # the budget never touches validity
    assert (r.info["n_xstar_bounded"], r.info["n_examples_bounded"], r.info["xstar_budget"]) == (1, 1, 6)
    assert r.info["boundary_search_points"] == 6


def test_short_policy_icf_bounds_use_labels_learned_after_the_stop():
    r = run("short")
    (e,) = r.examples
    assert e.valid is False and e.distance == pytest.approx(0.35) and e.icf_a == pytest.approx(0.05)
    assert e.extra["min_distance_bounds"] == [pytest.approx(0.175), pytest.approx(0.4)]
    assert e.extra["icf_bounds"] == [pytest.approx(0.125), pytest.approx(0.05 / 0.175)]
    assert e.extra["exact_match_bounds"] == [0.0, 0.0]
    assert r["mean_icf_a"] == pytest.approx(0.05) and r["tm_a"] == pytest.approx(0.05)  # exact despite the budget
    assert r["median_icf"] is None and r["median_icf_bounds"] == [pytest.approx(0.125), pytest.approx(0.05 / 0.175)]
    assert r["tm"] is None and r["tm_bounds"] == r["median_icf_bounds"]
    assert r["exact_match"] == 0.0  # decided: an invalid SCE is never an exact match


def test_mixed_rows_aggregate_their_ends():
    """Two examples, policy "far", budget 8. B = (7, d), f = Yes, x' = (0, a), d = 0.35 + 0.375 =
    0.725; its x* search predicts the rings at 0.05 (6,d) (8,d), 0.1 (5,d) (9,d), 0.125 (7,c) (7,e)
    and 0.15 (4,d) (10,d): 8 points, and (4,d) says No: x* = (4,d), exact, RCF_A = 0.725 - 0.15 = 0.575.
    A = (2, a): B's SCE (0, a) is already known (No), so A's rings cost 0.05: 2, 0.1: 1 (4,a),
    0.125: 1, 0.15: 1, 0.175: 2, 0.2: 1 (6,a) = 8 points, all No; the ring at 0.225, (0,b) (4,b),
    would make 10: d(x,x*) >= 0.225 (radius 0.2). The nearest Yes known after both searches is
    (7,c), predicted by B's search, at 0.25 + 0.25 = 0.5. So A's RCF_A in [0.9 - 0.5, 0.9 - 0.225]
    = [0.4, 0.675], mean RCF_A in [(0.4 + 0.575)/2, (0.675 + 0.575)/2] = [0.4875, 0.625], and
    exact match is decided, 0: A's x* is at most 0.5 away, nearer than its SCE (0.9)."""
    r = run("far", budget=8, examples=A + [("B", (7, "d"))])
    a, b = r.examples
    assert "xstar_bounded" not in b.extra and b.rcf_a == pytest.approx(0.575)
    assert a.extra["min_distance_bounds"] == [pytest.approx(0.225), pytest.approx(0.5)]
    assert a.extra["xstar_radius"] == pytest.approx(0.2)
    assert a.extra["rcf_a_bounds"] == [pytest.approx(0.4), pytest.approx(0.675)]
    assert r["mean_rcf_a"] is None and r["mean_rcf_a_bounds"] == [pytest.approx(0.4875), pytest.approx(0.625)]
    assert r["exact_match"] == 0.0 and r["exact_match_bounds"] == [0.0, 0.0]
    assert r.info["n_examples_bounded"] == 1
    assert Threshold.parse("mean_rcf_a<=0.7").decide(r) == PASS
    assert Threshold.parse("mean_rcf_a<=0.45").decide(r) == FAIL


def test_a_budget_below_the_first_ring_bounds_both_searches_from_below_only():
    """Policy "short", budget 1. From x = (2, a) the first ring (d = 0.05: (1,a), (3,a)) needs 2
    points: the x* search predicts nothing and certifies only d(x, x*) >= 0.05 (radius 0, x
    itself). ICF_A's search from x' = (4, c) for a Yes likewise: its first ring (3,c), (5,c) needs
    2: ICF_A >= 0.05. No Yes is known anywhere, so neither has an upper bound: ICF = ICF_A / d(x,x*)
    lies in [0.05 / infinity, 0.05... / 0.05] = [0, unbounded), TM_A = mean ICF_A in [0.05, unbounded)."""
    r = run("short", budget=1)
    (e,) = r.examples
    assert e.valid is False and e.icf_a is None
    assert e.extra["min_distance_bounds"] == [pytest.approx(0.05), None] and e.extra["xstar_radius"] == 0.0
    assert e.extra["icf_a_bounds"] == [pytest.approx(0.05), None]  # None: unbounded
    assert e.to_dict()["icf_a_bounds"] == [pytest.approx(0.05), None] and e.to_dict()["icf_bounds"] == [0.0, None]
    assert e.extra["icf_a_search_radius"] == 0.0
    assert r.info["boundary_search_points"] == 0 and r.info["n_icf_a_bounded"] == 1
    assert r["tm_a_bounds"] == [pytest.approx(0.05), None] and r["mean_icf_bounds"] == [0.0, None]
    assert Threshold.parse("tm_a>=0.01").decide(r) == PASS
    assert Threshold.parse("tm_a<=1").decide(r) == UNDECIDED  # unbounded above: nothing rules 1 out
    assert Threshold.parse("tm_a<0.05").decide(r) == FAIL


def test_no_budget_and_a_sufficient_budget_give_the_exact_figures():
    exact = run("far", budget=0)
    assert exact["mean_rcf_a"] == pytest.approx(0.5) and "mean_rcf_a_bounds" not in exact.figures
    assert "xstar_bounded" not in exact.examples[0].extra
    enough = run("far", budget=1000)
    assert enough.figures == exact.figures


@pytest.mark.parametrize("rule, expected", [
    ("mean_rcf_a<=0.8", PASS),       # the whole of [0, 0.725] is below 0.8
    ("mean_rcf_a<=0.05", UNDECIDED),  # 0.05 cuts [0, 0.725]
    ("mean_rcf_a>=0.8", FAIL),        # none of [0, 0.725] reaches 0.8
    ("mean_rcf_a<0", FAIL),
    ("exact_match>=0.5", UNDECIDED),
    ("tm_a<=0.73", PASS) ,
    ("validity>=1", PASS),            # never bounded
])
def test_thresholds_judged_on_bounds(rule, expected):
    assert Threshold.parse(rule).decide(run("far")) == expected


def test_an_undecided_gate_fails_saying_undecided():
    r = run("far")
    with pytest.raises(SCEAssertionError, match=r"mean_rcf_a<=0.05 is undecided: mean_rcf_a lies in \[0.0000, 0.7250\]"):
        assert_threshold(r, "mean_rcf_a<=0.05")
    assert_threshold(r, "mean_rcf_a<=0.8")
    with pytest.raises(SCEAssertionError, match="undecided"):
        assert_minimality(r, exact_match_at_least=0.5)
    verdicts = {v["threshold"]: v for v in r.info["thresholds"]}
    assert verdicts["mean_rcf_a<=0.05"]["undecided"] is True and verdicts["mean_rcf_a<=0.05"]["passed"] is False
    assert verdicts["mean_rcf_a<=0.8"]["passed"] is True and "undecided" not in verdicts["mean_rcf_a<=0.8"]
    assert r.verdict == "FAIL"


def test_cli_budget_report_is_valid_and_undecided_exits_1(workdir, capsys):
    """Through sce-audit: the JSON report (schema v1) marks bounded examples and carries the
    bounds; a gate inside the bounds exits 1 as undecided, one above them exits 0."""
    args = ["--model", "python:toy_models:far", "--dataset", "toy.toml", "--limit", "6", "--prediction", "generate",
            "--variant", "unconstrained", "-q"]
    assert main([*args, "--xstar-budget", "2", "--json", "r.json"]) == 0
    report = json.loads((workdir / "r.json").read_text())
    jsonschema.validate(report, schema())
    (r,) = report["results"]
    lo, hi = r["mean_rcf_a_bounds"]
    assert r["mean_rcf_a"] is None and hi is not None and lo < hi
    assert r["info"]["n_xstar_bounded"] >= 1 and r["info"]["xstar_budget"] == 2
    assert report["environment"]["xstar_budget"] == 2
    bounded = [e for e in r["examples"] if e.get("xstar_bounded")]
    assert bounded and all(e["min_distance"] is None and e["min_distance_bounds"][0] > 0 for e in bounded)
    capsys.readouterr()
    assert main([*args, "--xstar-budget", "2", "--threshold", f"mean_rcf_a<={(lo + hi) / 2}"]) == 1
    assert "undecided" in capsys.readouterr().out
    assert main([*args, "--xstar-budget", "2", "--threshold", f"mean_rcf_a<={hi + 0.01}"]) == 0
    # with no budget the same audit is exact, and inside the bounds
    assert main([*args, "--json", "exact.json"]) == 0
    exact = json.loads((workdir / "exact.json").read_text())["results"][0]
    assert "mean_rcf_a_bounds" not in exact and lo - 1e-12 <= exact["mean_rcf_a"] <= hi + 1e-12


def test_one_bounded_example_against_a_gap():
    """assert_example_valid(max_gap=...) on "far"'s bounded example A: RCF_A in [0, 0.725]."""
    (e,) = run("far").examples
    assert_example_valid(e, max_gap=0.8)
    with pytest.raises(SCEAssertionError, match=r"SCE undecided: .* lies in \[0.000, 0.725\]"):
        assert_example_valid(e, max_gap=0.1)
    (m,) = run("far", budget=8, examples=A + [("B", (7, "d"))]).examples[:1]  # RCF_A in [0.4, 0.675]
    with pytest.raises(SCEAssertionError, match="SCE not minimal"):
        assert_example_valid(m, max_gap=0.3)


def _rcf_a_row(report):
    return next(c for c in report.rows if c.metric == "mean_rcf_a")


def test_a_baseline_judges_a_bounded_figure_on_its_bounds(tmp_path):
    """A baseline of the unbudgeted boundary policy (mean RCF_A exactly 0) against a budgeted far
    run (mean RCF_A in [0, 0.725], above): the change is in [0, 0.725], so with tolerance 0 it is
    undecided and fails the gate (mean_rcf_a is the primary minimality figure on a grid); with
    tolerance 0.8 even the worst case holds; a run that is itself exact is tested as before."""
    from sce_checks.regression.files import load_baseline, save_baseline
    from sce_checks.regression.gate import compare_run

    path = save_baseline(tmp_path / "b.json", [run("boundary", budget=0)], {})
    baseline = load_baseline(path)
    undecided = _rcf_a_row(compare_run(baseline, [run("far")], {}, 0.0, str(path), "paired"))
    assert undecided.regressed and undecided.gated
    assert "bounded by the x* budget: 0.00 -> [0.00, 0.73], undecided" in undecided.verdict()
    held = _rcf_a_row(compare_run(baseline, [run("far")], {}, 0.8, str(path), "paired"))
    assert not held.regressed and held.how.endswith("held")
    exact = _rcf_a_row(compare_run(baseline, [run("far", budget=0)], {}, 0.0, str(path), "paired"))
    # exact in both runs: the paired test, which one example cannot make significant (p = 1/2):
    # it got worse and the test cannot decide it, so it fails as undecided
    assert exact.how == "paired" and exact.delta == pytest.approx(0.5) and exact.regressed
    assert exact.status() == "UNDECIDED" and "Wilcoxon can give with 1 changed example is 0.500" in exact.verdict()


def test_bounds_decide_a_regression_by_hand():
    """Tolerance rule on intervals (regression/gate.py: `_judge_bounds`): before 0.1 exact, after
    in [0.3, 0.5] (lower is better): the change is in [0.2, 0.4] -> regressed beyond 0.1, held
    within 0.4, undecided at 0.3; malformed bounds are refused when the baseline is read."""
    from sce_checks.regression.gate import compare_entries

    def row(tolerance):
        old = {"check": "sce", "figures": {"mean_rcf_a": 0.1}}
        new = {"check": "sce", "figures": {"mean_rcf_a": None}, "bounds": {"mean_rcf_a": [0.3, 0.5]}}
        return compare_entries([("sce/toy/-", old, new)], tolerance, mode="tolerance").rows[0]

    assert row(0.1).regressed and row(0.1).how.endswith("regressed")
    assert not row(0.4).regressed and row(0.4).how.endswith("held")
    assert row(0.3).regressed and row(0.3).how.endswith("undecided")


def test_malformed_bounds_in_a_baseline_are_refused(tmp_path):
    from sce_checks.errors import UserInputError
    from sce_checks.regression.files import load_baseline, save_baseline

    path = save_baseline(tmp_path / "b.json", [run("far")], {})
    data = json.loads(path.read_text())
    (entry,) = data["entries"].values()
    assert entry["bounds"]["mean_rcf_a"] == [pytest.approx(0.0), pytest.approx(0.725)]
    entry["bounds"]["mean_rcf_a"] = ["0", 1]
    path.write_text(json.dumps(data))
    with pytest.raises(UserInputError, match=r"bounds\.mean_rcf_a: expected \[lower, upper\]"):
        load_baseline(path)
