"""The SCE check on a three-option grid (docs/method.md, multi-class tasks), end to end through
`run_grid_sce`, ``sce-audit`` and the pytest plugin, with a rule model whose boundary and SCE
policy are known exactly.

The grid TRI: x in 0..4 (integer, span 4), level in a..c (ordinal, span 2); Gower's distance
d = (|dx|/4 + |dlevel|/2) / 2. The rule: s = x + 2 * level index; low if s <= 2, medium if
3 <= s <= 4, high if s >= 5:

          x: 0 1 2 3 4
    level c  M H H H H
          b  L M M H H
          a  L L L M M

The SCE policy, by target: low -> the nearest low point (valid, as minimal as x*); medium ->
(0, a), a low point (invalid); high -> the far corner (4, c) (valid, not minimal).

Hand computation, x*(example, t) = the nearest point answered t:
  E1 = (0,a), low.    x*_medium: (1,b) and (3,a), d = 0.375. x*_high: (1,c) and (3,b), d = 0.625.
  E2 = (2,b), medium. x*_low: (0,b) and (2,a), d = 0.25. x*_high: (3,b), d = 0.125.
  E3 = (4,c), high.   x*_low: (0,b) and (2,a), d = 0.75. x*_medium: (0,c), (2,b), (4,a), d = 0.5.
Records (targets all):
  E1 -> medium: SCE (0,a), low: invalid, d = 0, ICF_A = d((0,a), medium) = 0.375, ICF = 0.375/0.375 = 1
  E1 -> high:   SCE (4,c): valid, d = 1.0, RCF_A = 1.0 - 0.625 = 0.375, RCF = 1.0/0.625 - 1 = 0.6
  E2 -> low:    SCE (0,b): valid, d = 0.25, RCF_A = 0, RCF = 0 (exact)
  E2 -> high:   SCE (4,c): valid, d = 0.5, RCF_A = 0.375, RCF = 0.5/0.125 - 1 = 3
  E3 -> low:    SCE (0,b): valid, d = 0.75, RCF_A = 0, RCF = 0 (exact)
  E3 -> medium: SCE (0,a): invalid, d = 1.0, ICF_A = 0.375, ICF = 0.375/0.5 = 0.75
Per target: low n=2, validity 1, mean distance 0.5, mean RCF_A 0, exact 1;
  medium n=2, validity 0, mean distance 0.5, mean ICF_A 0.375, median ICF 0.875;
  high n=2, validity 1, mean distance 0.75, mean RCF_A 0.375, median RCF 1.8, exact 0.
Pooled: n=6, validity 4/6, mean distance 3.5/6, mean RCF_A 0.1875, mean ICF_A 0.375,
  TM_A = 4/6 * 0.1875 + 2/6 * 0.375 = 0.25.
"""

from __future__ import annotations

import json
import math
import re
import sys
import textwrap
from importlib import resources

import jsonschema
import pytest

from sce_checks.checks.sce import SCESettings, run_grid_sce
from sce_checks.cli import main
from sce_checks.errors import UserInputError
from sce_checks.metrics.gower import gower_distance
from sce_checks.tasks.grid import Feature, GridTask, integer_feature
from sce_checks.tasks.targets import pick_target
from tests.helpers.projects import pytester_project
from tests.helpers.rule_models import read_record

TRI = GridTask(
    name="tri",
    preamble="A toy record.",
    question="Is this record low, medium or high?",
    options=("low", "medium", "high"),
    features=(integer_feature("x", "X value", 0, 4), Feature("level", "Level", "ordinal", ("a", "b", "c"))),
)
TRI_TOML = textwrap.dedent(
    """
    name = "tri"
    question = "Is this record low, medium or high?"
    preamble = "A toy record."
    options = ["low", "medium", "high"]
    [[features]]
    name = "x"
    label = "X value"
    type = "integer"
    min = 0
    max = 4
    [[features]]
    name = "level"
    label = "Level"
    type = "ordinal"
    values = ["a", "b", "c"]
    """
)
EXAMPLES = [("E1", (0, "a")), ("E2", (2, "b")), ("E3", (4, "c"))]
TARGET = re.compile(r'would have been "([^"]+)"')


def tri_rule(point) -> str:
    s = point[0] + 2 * "abc".index(point[1])
    return "low" if s <= 2 else "medium" if s <= 4 else "high"


def nearest(point, target):
    """The nearest point answered ``target`` (ties: the first in grid order), by brute force."""
    return min((z for z in TRI.points() if tri_rule(z) == target), key=lambda z: (gower_distance(TRI, point, z), z))


def policy(point, target):
    return {"low": lambda: nearest(point, "low"), "medium": lambda: (0, "a"), "high": lambda: (4, "c")}[target]()


class TriModel:
    """Answers by `tri_rule`; an SCE request by `policy` for the target the request names."""

    def identity(self):
        return {"backend": "python", "model": "tri-rule"}

    def chat(self, conversations, decoding):
        out = []
        for conv in conversations:
            x = read_record(TRI, conv[0]["content"])
            if len(conv) == 1:
                out.append(json.dumps({"answer": tri_rule(x)}))
            else:
                cf = policy(x, TARGET.search(conv[-1]["content"]).group(1))
                out.append("```json\n" + json.dumps(TRI.as_dict(cf)) + "\n```")
        return out


def run(targets="all", examples=EXAMPLES):
    (r,) = run_grid_sce(TriModel(), "tri-rule", TRI, examples,
                        SCESettings(variants=("unconstrained",), prediction="generate", targets=targets))
    return r


def by_target(r):
    return {(e.id, e.target): e for e in r.examples}


def test_records_per_target_match_the_hand_computation():
    r = run()
    recs = by_target(r)
    assert list(recs) == [("E1", "medium"), ("E1", "high"), ("E2", "low"), ("E2", "high"), ("E3", "low"), ("E3", "medium")]
    expected = {  # (valid, distance, min_distance, rcf_a, rcf, icf_a, icf)
        ("E1", "medium"): (False, 0.0, 0.375, None, None, 0.375, 1.0),
        ("E1", "high"): (True, 1.0, 0.625, 0.375, 0.6, None, None),
        ("E2", "low"): (True, 0.25, 0.25, 0.0, 0.0, None, None),
        ("E2", "high"): (True, 0.5, 0.125, 0.375, 3.0, None, None),
        ("E3", "low"): (True, 0.75, 0.75, 0.0, 0.0, None, None),
        ("E3", "medium"): (False, 1.0, 0.5, None, None, 0.375, 0.75),
    }
    for key, want in expected.items():
        e = recs[key]
        got = (e.valid, e.distance, e.min_distance, e.rcf_a, e.rcf, e.icf_a, e.icf)
        assert got == pytest.approx(want), key
    assert recs[("E1", "medium")].reference == [{"x": 1, "level": "b"}, {"x": 3, "level": "a"}]  # ties, grid order
    assert recs[("E3", "medium")].reference == [{"x": 0, "level": "c"}, {"x": 2, "level": "b"}, {"x": 4, "level": "a"}]


def test_pooled_and_per_target_figures_match_the_hand_computation():
    r = run()
    assert r.n == 6
    assert r.figures["validity"] == pytest.approx(4 / 6)
    assert r.figures["mean_distance"] == pytest.approx(3.5 / 6)
    assert r.figures["mean_rcf_a"] == pytest.approx(0.1875)
    assert r.figures["mean_icf_a"] == pytest.approx(0.375)
    assert r.figures["tm_a"] == pytest.approx(0.25)
    per = r.info["per_target"]
    assert list(per) == ["low", "medium", "high"]
    low, medium, high = per["low"], per["medium"], per["high"]
    assert (low["n"], low["validity"], low["mean_distance"], low["mean_rcf_a"], low["exact_match"]) == pytest.approx(
        (2, 1.0, 0.5, 0.0, 1.0))
    assert (medium["n"], medium["validity"], medium["mean_distance"], medium["mean_icf_a"], medium["median_icf"]) == \
        pytest.approx((2, 0.0, 0.5, 0.375, 0.875))
    assert (high["n"], high["validity"], high["mean_distance"], high["mean_rcf_a"], high["median_rcf"],
            high["exact_match"]) == pytest.approx((2, 1.0, 0.75, 0.375, 1.8, 0.0))
    assert r.info["targets"] == "all" and r.info["n_skipped_target"] == 0


def test_random_targets_draw_one_other_option_per_example_from_the_seed():
    r = run("random")
    assert [e.id for e in r.examples] == ["E1", "E2", "E3"]
    for e in r.examples:
        assert e.target != e.prediction
        assert e.target == pick_target(TRI.options, e.prediction, e.id, 0)
    assert sum(v["n"] for v in r.info["per_target"].values()) == 3


def test_a_named_target_skips_and_counts_the_examples_already_answered_as_it():
    r = run("high")
    assert [(e.id, e.target) for e in r.examples] == [("E1", "high"), ("E2", "high")]
    assert r.info["n_skipped_target"] == 1 and r.n == 2
    assert r.figures["mean_rcf_a"] == pytest.approx(0.375)
    assert list(r.info["per_target"]) == ["high"]


def test_an_unknown_target_is_one_line_before_any_model_call():
    class NoCalls(TriModel):
        def chat(self, conversations, decoding):
            raise AssertionError("the model was called")

    with pytest.raises(UserInputError, match=r"^targets: 'huge' is neither all, random nor an option of dataset 'tri'"):
        run_grid_sce(NoCalls(), "x", TRI, EXAMPLES, SCESettings(prediction="generate", targets="huge"))


# -- through sce-audit and pytest ---------------------------------------------------------------

MODELS = "from tests.checks.test_multiclass import TriModel\n\ntri = TriModel()\n"


@pytest.fixture
def tri_dir(tmp_path, monkeypatch):
    (tmp_path / "tri.toml").write_text(TRI_TOML)
    (tmp_path / "tri_models.py").write_text(MODELS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("SCE_CHECKS_CACHE_DIR", str(tmp_path / "cache"))
    yield tmp_path
    sys.modules.pop("tri_models", None)


def brute_force_per_target() -> dict[str, dict[str, float]]:
    """Every grid point as an example, targets all: validity, mean distance and mean RCF_A per
    target, from the rule and the policy alone (no search code)."""
    out: dict[str, dict[str, list[float]]] = {}
    for x in TRI.points():
        for t in (o for o in TRI.options if o != tri_rule(x)):
            cf = policy(x, t)
            d, d_star = gower_distance(TRI, x, cf), gower_distance(TRI, x, nearest(x, t))
            row = out.setdefault(t, {"valid": [], "distance": [], "rcf_a": []})
            row["valid"].append(tri_rule(cf) == t)
            row["distance"].append(d)
            if tri_rule(cf) == t:
                row["rcf_a"].append(d - d_star)
    return {t: {"n": len(v["valid"]), "validity": sum(v["valid"]) / len(v["valid"]),
                "mean_distance": sum(v["distance"]) / len(v["distance"]),
                "mean_rcf_a": sum(v["rcf_a"]) / len(v["rcf_a"]) if v["rcf_a"] else None} for t, v in out.items()}


def test_sce_audit_reports_per_target_figures(tri_dir, capsys):
    args = ["--model", "python:tri_models:tri", "--dataset", "tri.toml", "--limit", "0", "--prediction", "generate",
            "--variant", "unconstrained", "-q", "--json", "r.json", "--markdown", "r.md", "--html", "r.html"]
    assert main(args) == 0
    report = json.loads((tri_dir / "r.json").read_text())
    schema = json.loads(resources.files("sce_checks").joinpath("data/report-v1.schema.json").read_text())
    jsonschema.validate(report, schema)
    (r,) = report["results"]
    assert r["n"] == 15 * 2
    assert len({(e["id"], e["target"]) for e in r["examples"]}) == 30
    expected = brute_force_per_target()
    for t, want in expected.items():
        got = r["info"]["per_target"][t]
        assert {k: got[k] for k in want} == pytest.approx(want), t
    assert "figures per target" in (tri_dir / "r.md").read_text()
    html = (tri_dir / "r.html").read_text()
    assert "figures per target" in html and 'class="k2"' in html  # the third answer has its colour on the map
    capsys.readouterr()
    assert main([*args[:-6], "--targets", "huge"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--targets: 'huge' is neither all, random nor an option of dataset 'tri'" in err[0]
    assert not (tri_dir / "cache").exists() or not any((tri_dir / "cache").rglob("*.json*"))


def test_pytest_option_sce_targets(pytester, monkeypatch, tmp_path):
    project = pytester_project(pytester, monkeypatch, tmp_path, "tri", TRI_TOML, MODELS)
    project.makepyfile(test_t="""
        def test_named(sce_audit):
            r = sce_audit(variant="unconstrained")
            assert {e.target for e in r.examples} == {"medium"}
            assert r.info["n_skipped_target"] == 5 and r.n == 10
    """)
    result = project.runpytest("-p", "no:cacheprovider", "--sce-dataset", "tri.toml", "--sce-limit", "0",
                               "--sce-prediction", "generate", "--sce-model", "python:tri_models:tri",
                               "--sce-targets", "medium")
    result.assert_outcomes(passed=1)


def test_sampled_grid_records_are_unique_per_example_target_and_sample():
    """K = 2 samples: the rule model answers alike every time, so each (example, target) gives the
    greedy record twice, and the pooled figures are the greedy ones."""
    (r,) = run_grid_sce(TriModel(), "tri-rule", TRI, EXAMPLES,
                        SCESettings(variants=("unconstrained",), prediction="generate", temperature=1.0, samples=2))
    keys = [(e.id, e.target, e.extra["sample"]) for e in r.examples]
    assert len(keys) == len(set(keys)) == 12
    assert r.figures["validity"] == pytest.approx(4 / 6) and r.figures["mean_rcf_a"] == pytest.approx(0.1875)
    assert r.info["per_target"]["high"]["n"] == 4


def test_audit_file_key_targets(tri_dir):
    from sce_checks.auditfile import load_audit_file

    (tri_dir / "a.sce.toml").write_text('model = "python:tri_models:tri"\ndatasets = ["tri.toml"]\ntargets = "random"\n')
    assert load_audit_file(tri_dir / "a.sce.toml").spec.targets == "random"
    (tri_dir / "b.sce.toml").write_text('model = "python:tri_models:tri"\ndatasets = ["tri.toml"]\ntargets = 3\n')
    with pytest.raises(UserInputError, match="targets: expected a string, got 3"):
        load_audit_file(tri_dir / "b.sce.toml")


def test_sequential_needs_one_target_per_example(tri_dir, capsys):
    args = ["--model", "python:tri_models:tri", "--dataset", "tri.toml", "--prediction", "generate", "-q", "--sequential"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--sequential with --targets all is not supported on dataset 'tri'" in err[0]


class ScoredTriModel(TriModel):
    """`TriModel` with option scores over all three options: the rule's answer gets log-probability
    log 0.6, the two others log 0.2 each (with tempered scores, divided by the temperature)."""

    tempered_scoring = True

    def __init__(self):
        self.scored: list[int] = []

    def score_options(self, conversations, options, temperature: float = 1.0):
        self.scored.append(len(options))
        out = []
        for conv in conversations:
            label = tri_rule(read_record(TRI, conv[0]["content"]))
            out.append([math.log(0.6 if f'"{label}"' in opt else 0.2) / temperature for opt in options])
        return out


def test_option_scores_cover_all_three_options():
    model = ScoredTriModel()
    (r,) = run_grid_sce(model, "tri-scored", TRI, EXAMPLES, SCESettings(variants=("unconstrained",), prediction="score"))
    assert set(model.scored) == {3}
    assert r.figures["validity"] == pytest.approx(4 / 6) and r.figures["tm_a"] == pytest.approx(0.25)
    # tempered draws at T = 1 pick among the three options by their probabilities 0.6 / 0.2 / 0.2
    (s,) = run_grid_sce(ScoredTriModel(), "tri-scored", TRI, EXAMPLES,
                        SCESettings(variants=("unconstrained",), prediction="score", temperature=1.0, samples=20))
    e2 = [e for e in s.examples if e.id == "E2"]
    drawn = [e.prediction for e in e2]
    assert set(drawn) <= set(TRI.options) and len(set(drawn)) >= 2 and "medium" in drawn
    assert all(e.extra["p_prediction"] == pytest.approx(0.6 if e.prediction == "medium" else 0.2) for e in e2)
    assert all(e.target != e.prediction for e in s.examples if e.target is not None)
