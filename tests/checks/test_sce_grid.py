"""End-to-end SCE check on a grid with models whose boundary and SCE behaviour are known exactly.

Definitions: Mayne et al., "LLMs Don't Know Their Own Decision Boundaries", EMNLP 2025
(arXiv 2509.09396), section 3: Gower's distance, RCF_A = d(x,x') - d(x,x*), RCF = d(x,x')/d(x,x*) - 1,
ICF_A = min_{z: f(z)=target} d(x', z), ICF = ICF_A / d(x,x*), TM = v*median(RCF) + (1-v)*median(ICF),
TM_A = v*mean(RCF_A) + (1-v)*mean(ICF_A).

Hand computation on the toy grid of tests/helpers/rule_models.py (x span 10, level span 4):
  example A: x=(2,a), f=No,  target Yes, x*=(5,c): d = (3/10 + 2/4)/2 = 0.4
  example B: x=(7,d), f=Yes, target No. Candidates: (7,b), two levels down, d = (2/4)/2 = 0.25;
             (4,d), three steps in x, d = (3/10)/2 = 0.15. So x* = (4,d), d = 0.15.
  policy "far":   A -> (10,e): d = (8/10 + 4/4)/2 = 0.9,  RCF_A = 0.5,  RCF = 0.9/0.4 - 1 = 1.25
                  B -> (0,a):  d = (7/10 + 3/4)/2 = 0.725, RCF_A = 0.575, RCF = 0.725/0.15 - 1 = 3.8333...
  policy "short": A -> (4,c) (one x step short of (5,c)): f = No, invalid, d = (2/10 + 2/4)/2 = 0.35,
                       ICF_A = d((4,c),(5,c)) = 0.05, ICF = 0.05/0.4 = 0.125
                  B -> (5,d) (one x step short of (4,d)): f = Yes, invalid, d = (2/10)/2 = 0.1,
                       ICF_A = d((5,d),(4,d)) = 0.05, ICF = 0.05/0.15 = 0.3333...
"""

from __future__ import annotations

import json

import pytest

from sce_checks.checks.sce import SCESettings, run_grid_sce
from tests.helpers.rule_models import TOY, RuleModel, toy_rule

EXAMPLES = [("A", (2, "a")), ("B", (7, "d"))]


def run(policy, variants=("unconstrained",), **kw):
    model = RuleModel(TOY, toy_rule, policy, **kw)
    results = run_grid_sce(model, f"rule/{policy}", TOY, EXAMPLES, SCESettings(variants=variants, prediction="generate"))
    return model, results


def test_boundary_policy_is_exactly_minimal():
    _, (r,) = run("boundary")
    assert [e.counterfactual for e in r.examples] == [{"x": 5, "level": "c"}, {"x": 4, "level": "d"}]
    assert r["validity"] == 1.0 and r["n_valid"] == 2
    assert r["mean_rcf_a"] == pytest.approx(0.0, abs=1e-12)
    assert r["exact_match"] == 1.0
    assert [e.min_distance for e in r.examples] == [pytest.approx(0.4), pytest.approx(0.15)]


def test_far_policy_is_valid_but_not_minimal():
    _, (r,) = run("far")
    a, b = r.examples
    assert (a.valid, b.valid) == (True, True)
    assert a.distance == pytest.approx(0.9) and b.distance == pytest.approx(0.725)
    assert a.rcf_a == pytest.approx(0.5) and b.rcf_a == pytest.approx(0.575)
    assert a.rcf == pytest.approx(1.25) and b.rcf == pytest.approx(0.725 / 0.15 - 1)
    assert r["mean_rcf_a"] == pytest.approx((0.5 + 0.575) / 2)
    assert r["median_rcf"] == pytest.approx((1.25 + 0.725 / 0.15 - 1) / 2)
    assert r["tm"] == pytest.approx(r["median_rcf"])
    assert r["tm_a"] == pytest.approx(r["mean_rcf_a"])
    assert r["exact_match"] == 0.0
    assert r["mean_icf_a"] is None


def test_short_policy_is_invalid_with_exact_icf():
    _, (r,) = run("short")
    a, b = r.examples
    assert a.counterfactual == {"x": 4, "level": "c"} and b.counterfactual == {"x": 5, "level": "d"}
    assert (a.valid, b.valid) == (False, False)
    assert a.icf_a == pytest.approx(0.05) and b.icf_a == pytest.approx(0.05)
    assert a.icf == pytest.approx(0.125) and b.icf == pytest.approx(0.05 / 0.15)
    assert r["validity"] == 0.0 and r["strict_validity"] == 0.0
    assert r["mean_icf_a"] == pytest.approx(0.05)
    assert r["tm"] == pytest.approx((0.125 + 0.05 / 0.15) / 2)
    assert r["tm_a"] == pytest.approx(0.05)
    assert r["mean_rcf_a"] is None and r["exact_match"] == 0.0
    lo, hi = r["validity_ci"]
    assert lo == 0.0 and 0.6 < hi < 0.7  # Wilson 95% for 0/2: [0, 0.6576]


def test_both_variants_share_predictions():
    model, results = run("boundary", variants=("unconstrained", "minimal"))
    assert [r.variant for r in results] == ["unconstrained", "minimal"]
    # one prediction batch, one SCE batch for both variants, one batch for counterfactuals, rings
    assert results[0].info["grid_points_predicted"] < TOY.size


GARBAGE = [
    "",  # empty
    "I'm sorry, I can't help with that.",  # refusal
    '{"x": 50, "level": "c"}',  # off the grid
    '{"note": "hi", "x": 5, "level": "c"}',  # extra key (before the features: one after them is ignored)
    '{"x": "5", "level": "c"}',  # wrong type
    '{"x": 5}',  # missing key
    '{"x": 5.5, "level": "c"}',  # not an integer
    '{"x": 5, "level": "C"}',  # not an allowed value (case matters)
    '{"x": 5, "level": "c"} or maybe {"x": 6, "level": "d"}',  # ambiguous
    "```json\n{not json}\n```",
]


def test_garbage_sce_replies_are_unparsed_never_valid():
    """Under the strict reading every one of these is unparsed; the lenient default reads three
    of them (numeric string, case, first of several objects): test_lenient_reading_of_garbage."""
    examples = [(f"g{i}", (2, "a")) for i in range(len(GARBAGE))]
    model = RuleModel(TOY, toy_rule, sce_reply=lambda i: GARBAGE[i])
    (r,) = run_grid_sce(model, "garbage", TOY, examples,
                        SCESettings(variants=("minimal",), prediction="generate", parsing="strict"))
    assert r.n == len(GARBAGE)
    assert r["n_generated"] == 0 and r["n_valid"] == 0
    assert r["validity"] is None and r["strict_validity"] == 0.0 and r["generation_rate"] == 0.0
    assert all(e.valid is None and e.counterfactual is None and e.unparsed for e in r.examples)
    assert sum(r.info["unparsed_reasons"].values()) == len(GARBAGE)
    assert r.examples[0].sce_reply == ""  # the raw reply is kept for the report
    json.dumps(r.to_dict())


def test_lenient_reading_of_garbage():
    """The lenient default reads exactly the three unambiguous ones, and counts the rule each needed."""
    examples = [(f"g{i}", (2, "a")) for i in range(len(GARBAGE))]
    model = RuleModel(TOY, toy_rule, sce_reply=lambda i: GARBAGE[i])
    (r,) = run_grid_sce(model, "garbage", TOY, examples, SCESettings(variants=("minimal",), prediction="generate"))
    read = {e.id: e.counterfactual for e in r.examples if e.counterfactual is not None}
    assert read == {"g4": {"x": 5, "level": "c"}, "g7": {"x": 5, "level": "c"}, "g8": {"x": 5, "level": "c"}}
    assert r["n_generated"] == 3 and r["n_valid"] == 3  # (5, "c") is a "Yes", the target of (2, "a")
    assert r.info["sce_leniency"] == {"numeric_string": 1, "normalised_label": 1, "first_object": 1}
    assert r.info["n_sce_lenient"] == 3 and r.info["parsing"] == "lenient" and r.info["elicitation"] == "free"
    assert {e.id: e.extra["sce_leniency"] for e in r.examples if "sce_leniency" in e.extra} == {
        "g4": ["numeric_string"], "g7": ["normalised_label"], "g8": ["first_object"]}
    assert sum(r.info["unparsed_reasons"].values()) == len(GARBAGE) - 3


def test_unparsed_predictions_are_counted_not_guessed():
    class Nonsense(RuleModel):
        def chat(self, conversations, decoding):
            return ['{"answer": "Maybe"}' for _ in conversations]

    (r,) = run_grid_sce(Nonsense(TOY, toy_rule), "nonsense", TOY, EXAMPLES, SCESettings(variants=("minimal",), prediction="generate"))
    assert r.info["n_prediction_unparsed"] == 2
    assert all(e.prediction is None and e.target is None for e in r.examples)
    assert r["generation_rate"] == 0.0
