"""Sampled audits end to end (docs/sampling.md): ``sce-audit`` and the pytest options
(``--sce-temperature``, ``--sce-samples``) with a Python model that samples with the seeds it is
handed. A rerun with the same seed is the same report from the response cache (no model call);
another seed draws other SCEs; the report is valid against the public schema and carries each
record's sample and seed and each example's aggregates."""

from __future__ import annotations

import json
import sys
import textwrap
from importlib import resources

import jsonschema
import pytest

from sce_checks.cli import main
from tests.helpers.projects import TOY_TOML, model_project, pytester_project

MODELS = textwrap.dedent(
    """
    from tests.helpers.rule_models import TOY, RuleModel, toy_rule
    from tests.helpers.sampling_models import SampledToyModel, TemperedToyModel

    sampled = SampledToyModel(flip=0.2)
    tempered = TemperedToyModel(confidence=0.8)
    boundary = RuleModel(TOY, toy_rule, "boundary")
    """
)


@pytest.fixture
def sampled_dir(tmp_path, monkeypatch):
    with model_project(tmp_path, monkeypatch, {"toy.toml": TOY_TOML, "sampled_models.py": MODELS}, "sampled_models") as d:
        yield d


def audit(*args):
    return main(["--dataset", "toy.toml", "--limit", "0", "--prediction", "generate", "-q", *args])


def report(path):
    return json.loads(path.read_text())


def test_a_sampled_audit_reruns_from_the_cache_and_another_seed_draws_anew(sampled_dir):
    args = ("--model", "python:sampled_models:sampled", "--temperature", "1", "--samples", "3", "--variant", "minimal")
    assert audit(*args, "--json", "a.json", "--html", "a.html") == 0
    a = report(sampled_dir / "a.json")
    schema = json.loads(resources.files("sce_checks").joinpath("data/report-v1.schema.json").read_text())
    jsonschema.validate(a, schema)
    assert a["environment"]["sampling"] == {"temperature": 1.0, "top_p": 1.0, "samples": 3, "prediction_samples": 1}
    (r,) = a["results"]
    assert r["n"] == 3 * 55 and len(r["per_example"]) == 55
    assert {e["sample"] for e in r["examples"]} == {0, 1, 2} and all(isinstance(e["seed"], int) for e in r["examples"]
                                                                       if e["target"] is not None)
    assert r["info"]["sampling"]["intervals"] == "cluster bootstrap over examples"
    assert a["environment"]["model_calls"]["chat_calls"] > 0
    assert audit(*args, "--json", "b.json") == 0
    b = report(sampled_dir / "b.json")
    assert b["environment"]["model_calls"]["chat_calls"] == 0  # every sampled reply from the cache
    assert b["results"] == a["results"]
    assert audit(*args, "--seed", "5", "--json", "c.json") == 0
    c = report(sampled_dir / "c.json")
    assert c["environment"]["model_calls"]["chat_calls"] > 0
    assert [e["counterfactual"] for e in c["results"][0]["examples"]] != [e["counterfactual"] for e in r["examples"]]
    html = (sampled_dir / "a.html").read_text()
    assert "the SCEs of all 3 samples" in html and '<table class="samples">' in html


def test_tempered_scores_through_the_backend_and_the_cache(sampled_dir):
    args = ("--model", "python:sampled_models:tempered", "--prediction", "auto", "--temperature", "0.7", "--samples",
            "3", "--variant", "minimal", "--limit", "12")
    assert audit(*args, "--json", "a.json") == 0
    assert audit(*args, "--json", "b.json") == 0
    a, b = report(sampled_dir / "a.json"), report(sampled_dir / "b.json")
    (r,) = a["results"]
    assert r["info"]["sampling"]["answers_drawn_by"] == "scores"
    assert a["environment"]["model_calls"]["score_calls"] > 0
    assert b["environment"]["model_calls"]["score_calls"] == b["environment"]["model_calls"]["chat_calls"] == 0
    assert b["results"] == a["results"]
    generated = [e for e in r["examples"] if e["counterfactual"] is not None]
    assert r["expected_validity"] == pytest.approx(sum(e["p_target"] for e in generated) / len(generated))
    assert all(e["p_prediction"] is not None for e in r["examples"])


def test_greedy_with_one_sample_writes_the_report_of_before(sampled_dir):
    assert audit("--model", "python:sampled_models:boundary", "--json", "plain.json") == 0
    assert audit("--model", "python:sampled_models:boundary", "--temperature", "0", "--samples", "1", "--json",
                 "explicit.json") == 0
    plain, explicit = report(sampled_dir / "plain.json"), report(sampled_dir / "explicit.json")
    assert plain["results"] == explicit["results"]
    assert explicit["environment"]["model_calls"]["chat_calls"] == 0  # the same requests: the same cache keys
    assert all("per_example" not in r and "expected_validity" not in r for r in plain["results"])


def test_samples_without_temperature_exit_2_before_any_model_call(sampled_dir, capsys):
    assert audit("--model", "python:sampled_models:sampled", "--samples", "4") == 2
    err = capsys.readouterr().err.strip()
    assert err == ("sce-audit: error: --samples 4 needs --temperature above 0: greedy decoding gives the same reply "
                   "every time (docs/sampling.md)")
    assert "sampled_models" not in sys.modules or sys.modules["sampled_models"].sampled.calls == 0


def test_thresholds_gate_the_sampled_figures_and_their_clustered_bounds(sampled_dir):
    args = ("--model", "python:sampled_models:sampled", "--temperature", "1", "--samples", "3", "--variant", "minimal",
            "--limit", "20", "--json", "r.json")
    assert audit(*args, "--threshold", "validity_lower>=0.05", "--threshold", "expected_validity_upper>=0.05") == 0
    (r,) = report(sampled_dir / "r.json")["results"]
    gates = {v["threshold"]: v["actual"] for v in r["info"]["thresholds"]}
    assert gates["validity_lower>=0.05"] == r["validity_ci"][0]
    assert gates["expected_validity_upper>=0.05"] == r["expected_validity_ci"][1]
    assert audit(*args, "--threshold", f"validity_upper<={r['validity_ci'][1] - 0.01}") == 1


def test_expected_validity_gates_need_a_temperature(sampled_dir, capsys):
    assert audit("--model", "python:sampled_models:boundary", "--threshold", "expected_validity>=0.5") == 2
    assert "expected_validity is measured under sampling only" in capsys.readouterr().err


def test_sequential_with_several_samples_counts_examples(sampled_dir):
    """No longer refused: its sequences count examples (tests/test_sequential_sampled.py)."""
    assert audit("--model", "python:sampled_models:sampled", "--temperature", "1", "--samples", "2", "--sequential",
                 "--variant", "minimal", "--threshold", "generation_rate>=0.5", "--json", "r.json") == 0
    (gate,) = report(sampled_dir / "r.json")["results"][0]["sequential"]["gates"]
    assert gate["state"] == "pass" and gate["samples"] == 2 and gate["n"] == gate["decided_at"]


def test_terminal_shows_each_examples_consistency(sampled_dir, capsys):
    assert audit("--model", "python:sampled_models:sampled", "--temperature", "1", "--samples", "4", "--variant",
                 "unconstrained", "--limit", "6") == 0
    out = capsys.readouterr().out
    assert "sampled (toy/unconstrained): T=1, K=4 per example" in out
    assert "per-example consistency across samples" in out and "distinct SCEs" in out


def test_a_sampled_baseline_compares_examples_by_their_mean(sampled_dir, capsys):
    args = ("--model", "python:sampled_models:sampled", "--temperature", "1", "--samples", "3", "--variant", "minimal")
    assert audit(*args, "--save-baseline", "base.json") == 0
    saved = report(sampled_dir / "base.json")
    (entry,) = saved["entries"].values()
    shares = {e["outcomes"]["valid"] for e in entry["examples"].values()}
    assert shares <= {0.0, 1 / 3, 2 / 3, 1.0} and len(shares) > 1
    assert audit(*args, "--baseline", "base.json") == 0
    assert "no regressions" in capsys.readouterr().out


@pytest.fixture
def project(pytester, monkeypatch, tmp_path):
    # its own module name: in-process pytester runs of other tests import a toy_models of their own
    return pytester_project(pytester, monkeypatch, tmp_path, "stoy", TOY_TOML, MODELS)


def test_pytest_options_sample_reproducibly(project):
    project.makepyfile(test_s="""
        def test_sampled(sce_audit):
            r = sce_audit(variant="minimal")
            assert r.info["sampling"]["samples"] == 3 and r.n == 30
    """)
    opts = ("-p", "no:cacheprovider", "--sce-dataset", "stoy.toml", "--sce-limit", "10", "--sce-prediction", "generate",
            "--sce-model", "python:stoy_models:sampled", "--sce-temperature", "1", "--sce-samples", "3")
    for name, extra in (("a", ()), ("b", ()), ("c", ("--sce-seed", "8"))):
        result = project.runpytest(*opts, *extra, "--sce-json", f"{name}.json")
        result.assert_outcomes(passed=1)
    a, b, c = (report(project.path / f"{n}.json") for n in "abc")
    assert a["results"] == b["results"] and b["environment"]["model_calls"]["chat_calls"] == 0
    assert c["results"] != a["results"]
    refused = project.runpytest(*opts[:-4], "--sce-samples", "3")
    assert refused.ret == 2  # bad input: the exit code of sce-audit
    assert "--sce-samples 3 needs --sce-temperature above 0" in refused.stdout.str() + refused.stderr.str()
