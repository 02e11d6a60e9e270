"""The examples that changed (report/changes.py), and the per-example outcomes the SCE and
stability checks declare (what a paired baseline compares), read from JSON records as the
reports write them."""

from __future__ import annotations

import pytest

from sce_checks.checks import get_check
from sce_checks.regression.changes import Change
from sce_checks.regression.gate import ComparisonReport
from sce_checks.report.changes import change_rows, changes_html, changes_markdown, changes_text


def outcomes(check: str, record: dict) -> dict:
    return {o.name: o.value(record) for o in get_check(check).outcomes}


def test_sce_outcomes_of_a_valid_an_invalid_and_a_missing_sce():
    valid = {"counterfactual": {"x": 5}, "valid": True, "distance": 0.3, "rcf_a": 0.1, "rcf": 0.5, "icf_a": None,
             "icf": None, "prediction": "No"}
    got = outcomes("sce", valid)
    assert got["generated"] and got["valid"] and got["strict_valid"] and not got["exact"]  # RCF 0.5: not minimal
    assert (got["tm_a_term"], got["tm_term"]) == (0.1, 0.5)  # a valid SCE's term of TM_A / TM is its RCF_A / RCF
    exact = outcomes("sce", dict(valid, rcf_a=0.0, rcf=0.0))
    assert exact["exact"] is True
    invalid = outcomes("sce", dict(valid, valid=False, rcf_a=None, rcf=None, icf_a=0.05, icf=0.2))
    assert (invalid["valid"], invalid["strict_valid"], invalid["exact"]) == (False, False, False)
    assert (invalid["tm_a_term"], invalid["tm_term"]) == (0.05, 0.2)
    # no SCE: not counted for validity or minimality (None), counted as not generated and not valid
    missing = outcomes("sce", {"counterfactual": None, "valid": None, "prediction": "No"})
    assert missing["generated"] is False and missing["strict_valid"] is False
    assert missing["valid"] is None and missing["exact"] is None and missing["tm_a_term"] is None
    # text tasks: accuracy against the gold label where there is one
    assert outcomes("sce", {"prediction": "pos", "gold": "neg"})["correct"] is False
    assert outcomes("sce", {"prediction": "pos"})["correct"] is None


def test_stability_outcomes_count_pairs_and_generated_sces_only():
    record = {"counterfactual": "text", "valid": True, "validity_agrees": False, "perturbed": {"valid": False},
              "prompt_predictions": {"a": "pos", "b": "neg"}, "valid_under_all_prompts": False}
    got = outcomes("stability", record)
    assert got == {"validity_agrees": False, "perturbed_valid": False, "prompt_consistent": False,
                   "valid_under_all_prompts": False, "valid": True}
    unpaired = outcomes("stability", {"counterfactual": None, "valid": None, "perturbed": None})
    assert set(unpaired.values()) == {None}


def hostile_report() -> ComparisonReport:
    evil = "<script>alert(1)</script> | **bold** \x1b[31mFAKE PASS\x1b[0m"
    change = Change("sce/toy/minimal", "toy-1", True, [("valid", True, False), ("distance", 0.1, 0.25)],
                    {"prediction": "No", "target": "Yes", "counterfactual": {"x": 5}},
                    {"prediction": "No", "target": "Yes", "counterfactual": evil})
    return ComparisonReport("base.json", "paired", 0.05, [], [change], ["note: " + evil])


def test_changed_examples_in_every_format_with_model_text_inert():
    report = hostile_report()
    headers, (row,) = change_rows(report.changes)
    assert row[:4] == ["sce/toy/minimal", "toy-1", "worse", "valid yes -> no; distance 0.100 -> 0.250"]
    assert row[4] == "No; SCE x=5"
    text = changes_text(report.changes)
    assert "examples that changed: 1 worse, 0 better" in text and "\x1b" not in text
    html = changes_html([report])
    assert "<script>" not in html and "&lt;script&gt;" in html and "toy-1" in html
    markdown = changes_markdown([report])
    assert "<script>" not in markdown and "\\*\\*bold\\*\\*" in markdown and "\\|" in markdown
    assert changes_text([]) == "" and changes_markdown([]) == ""


@pytest.mark.parametrize("n, shown", [(3, 3), (45, 30)])
def test_long_lists_are_cut_in_reports(n, shown):
    changes = [Change("k", f"id-{i}", True, [("valid", True, False)], {}, {}) for i in range(n)]
    assert len(change_rows(changes)[1]) == shown
