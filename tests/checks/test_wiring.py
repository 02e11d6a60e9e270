"""The check dimension: check names and units, thresholds for one check (``phi_cct:phi>=0.2``),
audit-file sections per check, and checks that cannot run on a backend (skipped with the reason,
never a failure, never silently dropped)."""

from __future__ import annotations

import json

import pytest

from sce_checks.checks import check_names, check_names_known, check_of, units
from sce_checks.cli import main
from sce_checks.errors import UserInputError
from sce_checks.thresholds import Threshold
from tests.helpers.projects import common

pytest_plugins = ["pytester"]


def test_units_are_sce_variants_then_other_checks() -> None:
    assert units(["sce", "inv", "phi_cct"], ["unconstrained", "minimal"]) == ["unconstrained", "minimal", "inv", "phi_cct"]
    assert units(["ct", "sce"], ["minimal"]) == ["ct", "minimal"]
    assert [check_of(u) for u in ("minimal", "unconstrained", "inv")] == ["sce", "sce", "inv"]
    assert check_names(["inv", "inv", "ct"]) == ("inv", "ct")
    with pytest.raises(UserInputError, match="unknown check 'phi'.*phi_cct"):
        check_names(["phi"])
    assert set(check_names_known()) >= {"sce", "inv", "dir", "stability", "ct", "cct", "phi_cct", "self_consistency"}


def test_threshold_with_a_check_prefix() -> None:
    t = Threshold.parse("phi_cct: phi >= 0.2")
    assert (t.unit, t.metric, t.op, t.value, str(t)) == ("phi_cct", "phi", ">=", 0.2, "phi>=0.2")
    assert t.applies_to("phi_cct") and not t.applies_to("ct") and not t.applies_to("minimal")
    sce = Threshold.parse("sce:validity>=0.5")
    assert sce.applies_to("minimal") and sce.applies_to("unconstrained") and not sce.applies_to("inv")
    assert Threshold.parse("minimal:validity>=0.5").applies_to("minimal")
    assert not Threshold.parse("minimal:validity>=0.5").applies_to("unconstrained")
    plain = Threshold.parse("validity>=0.5")
    assert plain.unit is None and plain.applies_to("inv")
    with pytest.raises(UserInputError, match="unknown check 'phy'"):
        Threshold.parse("phy:phi>=0.2")


AUDIT = """
model = "python:toy_models:boundary"
datasets = ["toy.toml"]
variants = ["minimal"]
limit = 6
prediction = "generate"
checks = ["sce", "self_consistency"]
[thresholds]
validity = ">= 0.9"
[thresholds.self_consistency]
mean_spearman = ">= 0.5"
"""


def test_audit_file_gates_each_check_and_skips_what_the_backend_cannot_run(project):
    (project.path / "toy.sce.toml").write_text(AUDIT)
    result = project.runpytest("-p", "no:cacheprovider", "-rs", "-v", "toy.sce.toml", "--sce-json", "report.json")
    result.assert_outcomes(passed=1, skipped=1)
    out = result.stdout.str()
    assert "toy.sce.toml::toy.toml/minimal::validity>=0.9 PASSED" in out
    assert "toy.sce.toml::toy.toml/self_consistency::mean_spearman>=0.5 SKIPPED" in out
    assert "needs the hf backend" in out and "not applicable: toy/self_consistency" in out
    report = json.loads((project.path / "report.json").read_text())
    assert [r["check"] for r in report["results"]] == ["sce"]
    assert report["skipped"] and "self_consistency" in report["skipped"][0]


@pytest.mark.parametrize(
    "body, message",
    [
        ('checks = ["inv"]\n[thresholds]\nvalidity = ">= 0.5"\n', "thresholds.validity: top-level thresholds gate the sce check"),
        ('checks = ["sce"]\n[thresholds.phi_cct]\nphi = ">= 0.5"\n', "thresholds.phi_cct: the audit does not run 'phi_cct'"),
        ('[thresholds.phy]\nphi = ">= 0.5"\n', "thresholds.phy: not a check"),
        ('checks = ["sce", "inv"]\n[[override]]\ncheck = "ct"\nthresholds = { unfaithfulness = "<= 0.5" }\n',
         "override[0].check: 'ct' is not one of the audit's checks"),
        ('checks = ["sce", "inv"]\n[[override]]\ncheck = "inv"\nvariant = "minimal"\n', "variants belong to the sce check"),
        ('checks = ["inv"]\n[[override]]\nthresholds = { failure_rate = "<= 0.5" }\n', "name the check"),
        ('checks = ["sce", "vibes"]\n', "checks: unknown check 'vibes'"),
        ('perturbations = 0\n', "perturbations: expected a positive integer"),
        ('attribution = "lime"\n', "attribution: expected feature_ablation or shapley_sampling"),
    ],
)
def test_audit_file_check_errors_name_file_and_key(project, body, message):
    (project.path / "bad.sce.toml").write_text('model = "python:toy_models:far"\ndatasets = ["toy.toml"]\n' + body)
    result = project.runpytest("-p", "no:cacheprovider", "bad.sce.toml")
    assert result.ret != 0
    assert message in result.stdout.str(), result.stdout.str()


def test_override_adds_gates_to_one_check(project):
    (project.path / "o.sce.toml").write_text(
        'model = "python:toy_models:boundary"\ndatasets = ["toy.toml"]\nvariants = ["minimal"]\nlimit = 4\n'
        'prediction = "generate"\nchecks = ["sce", "self_consistency"]\n'
        '[[override]]\ncheck = "self_consistency"\nthresholds = { mean_l1_dot = ">= 0.1" }\n')
    result = project.runpytest("-p", "no:cacheprovider", "--collect-only", "-q", "o.sce.toml")
    out = result.stdout.str()
    assert "o.sce.toml::toy.toml/self_consistency::mean_l1_dot>=0.1" in out
    assert "o.sce.toml::toy.toml/minimal::audit" in out


def test_cli_threshold_for_a_check_the_run_does_not_have(workdir, capsys):  # noqa: F811
    code = main(["--dataset", "toy.toml", "--limit", "4", "-q", "--threshold", "phi_cct:phi>=0.2"])
    assert code == 2
    assert "this run has no 'phi_cct' results (add --check phi_cct;" in capsys.readouterr().err


def test_cli_check_not_supported_by_the_backend_is_shown_not_failed(workdir, capsys):  # noqa: F811
    code = main(["--model", "python:toy_models:boundary", "--dataset", "toy.toml", "--limit", "4", "--prediction", "generate",
                 "--check", "self_consistency", "--json", "r.json", "-rs"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "SKIPPED" in out or "skipped" in out
    assert "not applicable: toy/self_consistency: the self-consistency check needs the hf backend" in out
    assert json.loads((workdir / "r.json").read_text())["skipped"]


def test_cli_stability_on_a_grid_reports_the_paraphrase_half(workdir, capsys):  # noqa: F811
    code = main(["--model", "python:toy_models:boundary", "--dataset", "toy.toml", "--limit", "4", "--prediction", "generate",
                 "--check", "stability", "--threshold", "stability:prompt_consistency>=0.5", "--json", "r.json"])
    out = capsys.readouterr().out
    assert code == 0, out
    (r,) = json.loads((workdir / "r.json").read_text())["results"]
    assert r["check"] == "stability" and r["prompt_consistency"] == 1.0 and r["validity_agreement"] is None
    assert "grid records have no label-preserving edit" in r["info"]["undefined"]["validity_agreement"]
    assert "prompt_consistency 1.000" in out and "PASS" in out


REVIEWS = "\n".join(json.dumps({"id": f"r{i}", "text": t, "label": lab}) for i, (t, lab) in enumerate([
    ("a good film with a dull start", "positive"), ("the plot was bad and the acting worse", "negative"),
    ("great fun for the whole family", "positive"), ("not good at all", "negative"),
    ("a dull and plodding story", "negative"), ("the cast is great", "positive"),
])) + "\n"
TEXT_MODELS = "from tests.helpers.text_models import TextRuleModel\nrule = TextRuleModel('swap')\n"


@pytest.fixture
def text_project(project):  # noqa: F811
    (project.path / "reviews.jsonl").write_text(REVIEWS)
    (project.path / "text_models.py").write_text(TEXT_MODELS)
    return project


def text_args(*args):
    return ["-p", "no:cacheprovider", "--sce-model", "python:text_models:rule", "--sce-dataset", "reviews.jsonl",
            "--sce-limit", "6", "--sce-prediction", "generate", *args]


def test_fixture_gives_each_check_and_shares_the_counterfactual_family(text_project):
    text_project.makepyfile(test_checks="""
        import pytest
        from sce_checks.assertions import assert_threshold
        seen = {}

        @pytest.mark.parametrize("check", ["inv", "stability", "ct", "phi_cct", "cct"])
        def test_check(sce_audit, check):
            r = sce_audit(check=check)
            seen[check] = r
            assert r.check == check and r.dataset == "reviews" and r.n == 6
            figure = {"inv": "n_tested", "ct": "n_tested", "stability": "n_counterfactuals"}.get(check, "n_interventions")
            assert_threshold(r, figure + ">=1")

        def test_sce_too(sce_audit):
            assert sce_audit(variant="minimal").check == "sce"
    """)
    result = text_project.runpytest(*text_args("-rs", "--sce-json", "report.json"))
    # cct needs option scores; the rule model only chats: skipped with the reason, not failed
    result.assert_outcomes(passed=5, skipped=1)
    assert "CCT needs option probabilities" in result.stdout.str()
    report = json.loads((text_project.path / "report.json").read_text())
    checks = sorted((r["check"], r["variant"]) for r in report["results"])
    # the SCE variants computed together are both reported; ct's family only where asked for
    assert checks == [("ct", None), ("inv", None), ("phi_cct", None), ("sce", "minimal"), ("sce", "unconstrained"),
                      ("stability", None)]
    assert any("reviews/cct: CCT needs option probabilities" in s for s in report["skipped"])
    out = result.stdout.str()
    assert "failure_rate" in out and "unfaithfulness" in out and "n11/n10/n01/n00" in out
    assert "validity_agreement" in out and "prompt_consistency" in out


def test_one_item_per_example_of_a_check(text_project):
    text_project.makepyfile(test_each="""
        import pytest

        @pytest.mark.sce(check="inv")
        def test_each(sce_example):
            assert sce_example.extra["failed"] is not None
    """)
    result = text_project.runpytest(*text_args("-v"))
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*test_each?reviews.jsonl/inv/r0?*PASSED*"])


def test_sce_run_items_for_checks_with_prefixed_thresholds(text_project):
    result = text_project.runpytest(*text_args("--sce-run", "--sce-check", "inv", "--sce-check", "phi_cct", "-v",
                                               "--sce-threshold", "inv:failure_rate<=1", "--sce-threshold",
                                               "phi_cct:n_interventions>=1"))
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    assert "sce-run::reviews.jsonl/inv::failure_rate<=1 PASSED" in out
    assert "sce-run::reviews.jsonl/phi_cct::n_interventions>=1 PASSED" in out


def test_plain_threshold_unknown_to_a_check_names_the_known_metrics(text_project):
    """Found at collection, before any model call: exit 2, no item runs."""
    result = text_project.runpytest(*text_args("--sce-run", "--sce-check", "inv", "--sce-threshold", "validity>=0.5"))
    assert result.ret == 2
    out = result.stdout.str()
    assert "--sce-threshold 'validity>=0.5': unknown metric 'validity' for inv; known: failure_rate," in out
    assert "no tests ran" in out and "Traceback" not in out


def test_stability_follows_the_first_variant_of_its_marker(text_project):
    """The stability check requests its SCEs in the first variant listed: results for different
    variants are different results, never shared."""
    text_project.makepyfile(test_variants="""
        import pytest

        def test_default(sce_audit):
            assert sce_audit(check="stability").info["variant"] == "unconstrained"

        @pytest.mark.sce(variant="minimal")
        def test_minimal(sce_audit):
            assert sce_audit(check="stability").info["variant"] == "minimal"
    """)
    result = text_project.runpytest(*text_args())
    result.assert_outcomes(passed=2)
