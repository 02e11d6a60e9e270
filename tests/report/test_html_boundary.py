"""The decision-boundary map data (sce_checks/report/boundary.py) on hand-computed grids, the grid
predictions the SCE check stores for it (info["grid_predictions"]), and the per-example views'
pieces that need no browser (word diffs, ordering, caps, plots left out with a reason)."""

from __future__ import annotations

import json
import re

import pytest

from sce_checks.checks.sce import SCESettings, run_grid_sce
from sce_checks.report import views
from sce_checks.report.boundary import GridPredictions, example_map, plane_map, slice_features
from sce_checks.report.html import render_html
from sce_checks.report.plots import feature_change_shares, minimality_distribution, validity_minimality
from sce_checks.results import CheckResult
from tests.helpers.report_models import PLANE, plane_rule
from tests.helpers.rule_models import TOY, RuleModel, toy_rule

# A 3 x 2 x 2 grid: a in 0..2, b in x/y, c in 0..1; one code per point, c fastest:
#   (a,b,c): 000 001 0y0 0y1 100 101 1y0 1y1 200 201 2y0 2y1
CODES = "01?." "0110" ".1?0"
INFO = {"grid_predictions": {"features": [{"name": "a", "values": [0, 1, 2]}, {"name": "b", "values": ["x", "y"]},
                                          {"name": "c", "values": [0, 1]}],
                             "labels": ["No", "Yes"], "codes": CODES}}
PREDS = GridPredictions.from_info(INFO)


def test_grid_predictions_decode_and_answer():
    assert PREDS.features == ("a", "b", "c") and PREDS.labels == ("No", "Yes")
    assert PREDS.answer({"a": 0, "b": "x", "c": 1}) == "Yes"  # code 1
    assert PREDS.answer({"a": 0, "b": "y", "c": 0}) == "unparsed"  # ?
    assert PREDS.answer({"a": 0, "b": "y", "c": 1}) == "not predicted"  # .
    assert PREDS.answer({"a": 2, "b": "y", "c": 1}) == "No"  # last point
    assert PREDS.answer({"a": 3, "b": "y", "c": 1}) is None  # off the grid
    assert GridPredictions.from_info({}) is None
    bad = json.loads(json.dumps(INFO))
    bad["grid_predictions"]["codes"] = CODES[:-1]  # does not cover the grid: refused, not misread
    assert GridPredictions.from_info(bad) is None


def test_the_slice_follows_the_features_the_sce_and_x_star_change():
    x = {"a": 0, "b": "x", "c": 0}
    # SCE changes a (by 1/2 of its range) and c; x* changes a: a (changed by both) first, then c
    rec = {"id": "e", "input": x, "counterfactual": {"a": 1, "b": "x", "c": 1}, "reference": [{"a": 2, "b": "x", "c": 0}]}
    assert slice_features(PREDS, rec) == (0, 2)
    # every feature changed once by the same share of its range: grid order decides
    rec2 = {"id": "e", "input": x, "counterfactual": {"a": 2, "b": "x", "c": 1}, "reference": [{"a": 0, "b": "y", "c": 0}]}
    assert slice_features(PREDS, rec2) == (0, 1)
    # one changed feature (no SCE parsed): paired with the first other feature
    assert slice_features(PREDS, {"id": "e", "input": x, "counterfactual": None,
                                  "reference": [{"a": 0, "b": "x", "c": 1}]}) == (0, 2)
    nothing = {"id": "e", "input": x, "counterfactual": x, "reference": []}
    assert slice_features(PREDS, nothing) is None
    assert "no slice" in example_map(PREDS, nothing)


def test_an_example_map_holds_the_cells_of_its_slice_and_its_marks():
    rec = {"id": "e", "input": {"a": 0, "b": "x", "c": 0}, "counterfactual": {"a": 2, "b": "x", "c": 1},
           "valid": False, "reference": [{"a": 0, "b": "y", "c": 0}]}
    m = example_map(PREDS, rec)
    assert (m.x, m.y, m.fixed) == ("a", "b", {"c": 0})
    # row b=x: (0,x,0) '0', (1,x,0) '0', (2,x,0) '.'; row b=y: (0,y,0) '?', (1,y,0) '1', (2,y,0) '?'
    assert m.cells == ("00.", "?1?")
    assert m.counts() == {"0": 2, ".": 1, "?": 2, "1": 1}
    (mk,) = m.marks
    assert (mk.origin, mk.sce, mk.valid, mk.sce_off, mk.xstars, mk.xstar_off) == ((0, 0), (2, 0), False, ("c",), ((0, 1),), ())
    assert m.notes == ("the SCE also changes c: its mark is projected onto this slice",)
    assert plane_map(PREDS, [rec]) is None  # three features: no whole plane


def test_a_two_feature_plane_is_drawn_whole_with_every_example():
    info = {"grid_predictions": {"features": [{"name": "x", "values": [0, 1]}, {"name": "y", "values": [0, 1, 2]}],
                                 "labels": ["No", "Yes"], "codes": "0.1" "1?0"}}
    preds = GridPredictions.from_info(info)
    recs = [{"id": "p", "input": {"x": 0, "y": 2}, "counterfactual": {"x": 1, "y": 0}, "valid": True, "reference": []},
            {"id": "q", "input": {"x": 1, "y": 1}, "counterfactual": None, "reference": [{"x": 1, "y": 0}]}]
    m = plane_map(preds, recs)
    # cells[j][i]: point (x=i, y=j) -> flat index i * 3 + j
    assert m.cells == ("01", ".?", "10")
    assert [(k.id, k.origin, k.sce, k.xstars) for k in m.marks] == [("p", (0, 2), (1, 0), ()), ("q", (1, 1), None, ((1, 0),))]


def test_the_sce_check_stores_exactly_the_grid_points_it_predicted():
    model = RuleModel(TOY, toy_rule, "far")
    examples = [(f"e{k}", p) for k, p in enumerate([(0, "a"), (7, "d"), (4, "c"), (10, "b")])]
    (r,) = run_grid_sce(model, "far", TOY, examples, SCESettings(variants=("minimal",), prediction="generate"))
    preds = GridPredictions.from_info(r.info)
    assert preds.values == tuple(tuple(f.values) for f in TOY.features) and preds.labels == TOY.options
    for point, code in zip(TOY.points(), preds.codes):
        if code != ".":
            assert preds.labels[int(code)] == toy_rule(point)  # the model's real answer, never a guess
    assert sum(c != "." for c in preds.codes) == r.info["grid_points_predicted"]
    for e in r.examples:
        assert preds.answer(e.input) == e.prediction and preds.answer(e.counterfactual) == e.cf_prediction
    assert json.loads(json.dumps(r.to_dict()))["info"]["grid_predictions"]["codes"] == preds.codes


def test_points_never_predicted_stay_unknown():
    model = RuleModel(PLANE, plane_rule, "boundary")
    (r,) = run_grid_sce(model, "b", PLANE, [("e0", (2, 1)), ("e1", (29, 18))],
                        SCESettings(variants=("minimal",), prediction="generate"))
    codes = r.info["grid_predictions"]["codes"]
    assert "." in codes and 0 < sum(c != "." for c in codes) < PLANE.size
    m = plane_map(GridPredictions.from_info(r.info), [e.to_dict() for e in r.examples])
    assert sum(row.count(".") for row in m.cells) == codes.count(".")


def test_word_diff_marks_what_changed_and_keeps_each_text_whole():
    before, after = views.word_diff("a bad film, badly shot", "a good film, badly shot!")
    assert before == "a <del>bad</del> film, badly shot"
    assert after == "a <ins>good</ins> film, badly shot<ins>!</ins>"
    assert views.inline_diff("dull scenes and a bad end", "fun scenes and a end") == \
        "<del>dull</del><ins>fun</ins> scenes and a<del> bad</del> end"
    before, after = views.word_diff("<b>x</b>", "<i>x</i>")  # model text stays inert inside the marks
    unmarked = [re.sub(r"</?(?:del|ins)>", "", side) for side in (before, after)]
    assert unmarked == ["&lt;b&gt;x&lt;/b&gt;", "&lt;i&gt;x&lt;/i&gt;"]


def test_panels_are_capped_and_the_page_says_so(monkeypatch):
    model = RuleModel(PLANE, plane_rule, "short")
    points = [(i, j) for i in range(0, 31, 6) for j in range(0, 21, 5)][:12]
    (r,) = run_grid_sce(model, "s", PLANE, [(f"e{k:02d}", p) for k, p in enumerate(points)],
                        SCESettings(variants=("minimal",), prediction="generate"))
    monkeypatch.setattr(views, "MAX_PANELS", 5)
    monkeypatch.setattr(views, "MAX_MAPS", 3)
    page = render_html([r], {})
    assert page.count('<article class="panel"') == 5
    assert page.count('<figure class="mapbox">') == 3  # maps in the first 3 panels only
    assert "Showing the 5 worst of 12 examples" in page and "Maps are drawn for the first 3 panels" in page


def test_a_plot_with_no_data_is_one_line_saying_why():
    model = RuleModel(TOY, toy_rule, "short")  # every SCE one step short: none valid, no RCF_A
    (r,) = run_grid_sce(model, "short", TOY, [("e0", (0, "a")), ("e1", (7, "d"))],
                        SCESettings(variants=("minimal",), prediction="generate"))
    assert r["validity"] == 0.0 and r.get("mean_rcf_a") is None
    (vm,) = validity_minimality([r])
    (dist,) = minimality_distribution([r])
    assert vm.figure is None and vm.omitted == "no result has both a validity and a mean RCF_A (no valid SCE)"
    assert dist.figure is None and dist.omitted == "no valid SCE has an RCF_A"
    page = render_html([r], {})
    assert "Validity against minimality (grid tasks): not drawn, no result has both a validity" in page


def test_validity_minimality_draws_wilson_intervals_as_error_bars():
    r = CheckResult("sce", "m", "d", "minimal", 10, {"validity": 0.5, "validity_ci": [0.2366, 0.7634], "mean_rcf_a": 0.1},
                    [], {"task_kind": "grid"})
    (plot,) = validity_minimality([r])
    ax = plot.figure.axes[0]
    (bars,) = [c for c in ax.collections]  # the error bar's line collection: from 23.66% to 76.34%
    (seg,) = bars.get_segments()
    assert seg[0][1] == pytest.approx(23.66) and seg[1][1] == pytest.approx(76.34) and seg[0][0] == pytest.approx(0.1)


def test_feature_change_shares_by_hand():
    r = run_grid_sce(RuleModel(TOY, toy_rule, "far"), "far", TOY, [("e0", (0, "a")), ("e1", (7, "d"))],
                     SCESettings(variants=("minimal",), prediction="generate"))[0]
    # far: (0,a) -> (10,e) changes x and level; (7,d) -> (0,a) changes both. x*: (0,a) -> (5,c), Gower
    # (5/10 + 2/4) / 2 = 0.5, changes both; (7,d) -> (4,d), Gower (3/10) / 2 = 0.15 (nearer than (7,b):
    # (2/4) / 2 = 0.25), changes x only
    features, sce, ref, n_sce, n_ref = feature_change_shares(r)
    assert (features, sce, ref, n_sce, n_ref) == (["x", "level"], [1.0, 1.0], [1.0, 0.5], 2, 2)


def test_phi_cct_table_and_tvd_against_mention_are_drawn_from_the_results():
    from sce_checks.report.plots import phi_table, tvd_mention
    from sce_checks.results import ExampleRecord

    phi = CheckResult("phi_cct", "m", "d", None, 5, {"phi": 0.25, "n11": 3, "n10": 1, "n01": 2, "n00": 4}, [])
    (plot,) = phi_table([phi])
    ax = plot.figure.axes[0]
    # rows: prediction changed / unchanged; columns: mentioned / not mentioned
    assert [(t.get_position(), t.get_text()) for t in ax.texts] == [((0, 0), "3"), ((1, 0), "1"), ((0, 1), "2"), ((1, 1), "4")]
    assert "phi 0.250" in plot.title
    empty = CheckResult("phi_cct", "m", "d", None, 0, {"phi": None, "n11": 0, "n10": 0, "n01": 0, "n00": 0}, [])
    assert phi_table([empty])[0].omitted == "no intervention with a parsed prediction"

    def rec(i, rows):
        return ExampleRecord(f"e{i}", "t", "a", None, None, None, None, None, None,
                             extra={"interventions": [{"tvd": t, "mentioned": m} for t, m in rows]})

    cct = CheckResult("cct", "m", "d", None, 2, {"cct": 0.5},
                      [rec(0, [(0.4, True), (0.1, False)]), rec(1, [(0.2, True), (None, False), (0.3, None)])])
    (plot,) = tvd_mention([cct])
    ax = plot.figure.axes[0]
    groups = [sorted(c.get_offsets()[:, 1].tolist()) for c in ax.collections]
    assert groups == [[0.2, 0.4], [0.1]]  # mentioned, not mentioned; no TVD or no reading: left out
    assert [t.get_text() for t in ax.get_xticklabels()] == ["mentioned (n=2)", "not mentioned (n=1)"]
    means = sorted(line.get_ydata()[0] for line in ax.lines)
    assert means == pytest.approx([0.1, 0.3])


def test_unparsed_sces_beyond_the_panels_are_listed_with_their_replies(monkeypatch):
    from tests.helpers.report_models import MixedRuleModel, mixed_policy

    points = [(i, j) for i in range(0, 31, 5) for j in range(0, 21, 5)]
    (r,) = run_grid_sce(MixedRuleModel(PLANE, plane_rule), "mixed", PLANE, [(f"e{k:02d}", p) for k, p in enumerate(points)],
                        SCESettings(variants=("minimal",), prediction="generate"))
    unparsed = [e for e in r.examples if e.counterfactual is None]
    assert len(unparsed) == sum(mixed_policy(p) == "garbage" for p in points) >= 2
    monkeypatch.setattr(views, "MAX_PANELS", 1)  # the worst: an invalid SCE; every unparsed one is beyond
    page = render_html([r], {})
    assert f"Unparsed beyond the panels ({len(unparsed)})" in page
    assert page.count("I would rather not change this record.") == len(unparsed)


def test_the_gap_distribution_is_the_ecdf_of_the_recorded_gaps():
    from sce_checks.report.plots import valid_gaps
    from sce_checks.results import ExampleRecord

    def rec(valid, rcf_a):
        return ExampleRecord("e", {}, "a", "b", {}, "b" if valid else "a", valid, 0.5, 0.25, rcf_a=rcf_a)

    r = CheckResult("sce", "m", "d", "minimal", 4, {}, [rec(True, 0.25), rec(True, 0.0), rec(False, None), rec(True, 0.5)],
                    {"task_kind": "grid"})
    assert valid_gaps(r) == [0.25, 0.0, 0.5]
    (plot,) = minimality_distribution([r])
    (line,) = plot.figure.axes[0].lines
    # the ECDF steps up by 1/3 at each gap: 0 -> 1/3, 0.25 -> 2/3, 0.5 -> 1
    assert list(line.get_xdata()) == [0.0, 0.0, 0.25, 0.5] and list(line.get_ydata()) == pytest.approx([0, 1 / 3, 2 / 3, 1])


def test_a_validity_interval_that_does_not_hold_its_validity_draws_no_error_bar():
    """A saved report's figures are drawn as they are, but an interval that does not contain
    its own validity (an edited file) is not an interval: the point is drawn without one, and
    the plot does not fail on a negative error bar."""
    from sce_checks.report.plots import validity_minimality_figure, validity_minimality_points
    from sce_checks.results import CheckResult

    def result(variant, ci):
        return CheckResult("sce", "m", "d", variant, 5, {"validity": 0.2, "validity_ci": ci, "mean_distance": 0.3},
                           [], {"task_kind": "text"})

    points = validity_minimality_points([result("unconstrained", [0.5, 0.9]), result("minimal", [0.05, 0.6])])["text"]
    assert [(p.low, p.high) for p in points] == [(None, None), (0.05, 0.6)]
    assert validity_minimality_figure(points, "text") is not None
