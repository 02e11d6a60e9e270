"""`sce-audit` end to end on Python-callable models through the same spec path users take
(`python:<module>:<attr>`), a user grid file, the JSON schema of public contract 3, exit codes
(contract 1) and the baseline regression story."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from sce_checks.cli import main

def schema():
    return json.loads(resources.files("sce_checks").joinpath("data/report-v1.schema.json").read_text())


def audit(*args):
    return main(["--dataset", "toy.toml", "--limit", "12", "--seed", "3", "--prediction", "generate", "-q", *args])


def test_schema_matches_shared_contract():
    shared = Path(__file__).resolve().parents[2] / "shared" / "report-v1.schema.json"
    if not shared.is_file():
        pytest.skip("shared/ not beside the checkout")
    # the title is an annotation (no effect on validation): the repository's copy cites the repository's
    # own docs (docs/reports.md) instead of a design note it does not hold; everything else is the contract
    without_title = lambda d: {k: v for k, v in d.items() if k != "title"}  # noqa: E731
    assert without_title(json.loads(shared.read_text())) == without_title(schema())


def test_json_report_is_valid_and_complete(workdir, capsys):
    assert audit("--model", "python:toy_models:far", "--json", "r.json", "--markdown", "r.md", "--html", "r.html") == 0
    report = json.loads((workdir / "r.json").read_text())
    jsonschema.validate(report, schema())
    assert [r["variant"] for r in report["results"]] == ["unconstrained", "minimal"]
    r = report["results"][0]
    assert r["n"] == 12 and r["validity"] == 1.0 and r["mean_rcf_a"] > 0.1 and r["exact_match"] == 0.0
    assert report["environment"]["seed"] == 3 and report["environment"]["model"] == "python:toy_models:far"
    assert report["environment"]["model_identity"]["backend"] == "python"
    out = capsys.readouterr().out
    assert "validity" in out and "toy" in out
    assert "<svg" in (workdir / "r.html").read_text()
    assert "| model" in (workdir / "r.md").read_text()


def test_header_counts_the_audit_items_and_names_no_temporary_file(workdir, capsys):
    """pytest's header is the user's first line of output: it counts the audit's items in the
    collection phase (two thresholds x two variants), names the audit, and shows no path of the
    temporary folder that isolates the run."""
    assert main(["--model", "python:toy_models:far", "--dataset", "toy.toml", "--limit", "4", "--prediction",
                 "generate", "--threshold", "validity>=0.5", "--threshold", "generation_rate>=0.5"]) == 0
    out = capsys.readouterr().out
    assert "collected 4 items" in out
    assert "sce-audit: python:toy_models:far on toy.toml; checks sce; limit 4, seed 0" in out
    assert "configfile" not in out and "sce-audit-" not in out


def test_elicitation_and_parsing_reach_the_run_and_the_report(workdir):
    assert audit("--model", "python:toy_models:boundary", "--elicitation", "schema", "--parsing", "strict",
                 "--json", "r.json") == 0
    report = json.loads((workdir / "r.json").read_text())
    jsonschema.validate(report, schema())
    assert report["environment"]["elicitation"] == "schema" and report["environment"]["parsing"] == "strict"
    assert all(r["info"]["elicitation"] == "schema" and r["info"]["parsing"] == "strict" for r in report["results"])


def test_thresholds_set_the_exit_code(workdir, capsys):
    assert audit("--model", "python:toy_models:boundary", "--threshold", "validity>=0.99", "--threshold", "mean_rcf_a<=0") == 0
    assert audit("--model", "python:toy_models:far", "--threshold", "mean_rcf_a<=0.05") == 1
    assert "FAIL" in capsys.readouterr().out
    assert audit("--model", "python:toy_models:short", "--threshold", "validity_lower>=0.5") == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "nope:thing"], "unknown model spec"),
        (["--model", "python:toy_models:missing"], "missing"),
        (["--model", "python:toy_models:far", "--dataset", "no_such_dataset"], "no_such_dataset"),
        (["--model", "python:toy_models:far", "--threshold", "validity>>1"], "validity>>1"),
        (["--model", "python:toy_models:far", "--baseline", "absent.json"], "absent.json"),
        (["--model", "python:toy_models:far", "--variant", "sideways"], "sideways"),
        (["--model", "python:toy_models:far", "--elicitation", "json"], "--elicitation"),
        (["--model", "python:toy_models:far", "--parsing", "loose"], "--parsing"),
    ],
)
def test_bad_input_exits_2_with_one_line(workdir, capsys, args, message):
    assert audit(*args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err
    assert len(err.splitlines()) == 1


def test_baseline_regression_story(workdir, capsys):
    # the base model is exactly minimal; the "fine-tuned" one is valid but far from minimal
    assert audit("--model", "python:toy_models:boundary", "--save-baseline", "base.json") == 0
    assert audit("--model", "python:toy_models:far", "--baseline", "base.json", "--tolerance", "0.01") == 1
    out = capsys.readouterr().out
    assert "REGRESSED" in out and "mean_rcf_a" in out
    assert audit("--model", "python:toy_models:boundary", "--baseline", "base.json") == 0
    assert "no regressions" in capsys.readouterr().out
    # a different sample is refused, not compared
    assert main(["--dataset", "toy.toml", "--limit", "12", "--seed", "4", "--prediction", "generate", "-q",
                 "--model", "python:toy_models:boundary", "--baseline", "base.json"]) == 2
    assert "different sample" in capsys.readouterr().err


def test_per_metric_tolerances(workdir, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # wide enough for the comparison's one line per figure
    assert audit("--model", "python:toy_models:boundary", "--save-baseline", "base.json") == 0
    # far vs boundary: exact match drops from 1 to 0, mean distances grow by 0.49, the median
    # relative gaps (RCF, TM) by 2.19
    assert audit("--model", "python:toy_models:far", "--baseline", "base.json", "--tolerance", "2.2") == 0
    capsys.readouterr()
    assert audit("--model", "python:toy_models:far", "--baseline", "base.json", "--tolerance", "2.2",
                 "--tolerance", "exact_match=0.5", "--baseline-metric", "exact_match") == 1
    out = capsys.readouterr().out.splitlines()
    regressed = [line for line in out if "REGRESSED" in line and not line.startswith("REGRESSED:")]
    assert len(regressed) == 2 and all("exact_match" in line for line in regressed)  # one per variant
    verdicts = [line for line in out if line.startswith("REGRESSED:")]  # and one line that explains each
    assert len(verdicts) == 2 and all("exact_match fell from 1.00 to 0.00" in line and "12 examples regressed, 0 improved"
                                      in line for line in verdicts)
    assert audit("--model", "python:toy_models:far", "--baseline", "base.json", "--tolerance", "validty=0.1") == 2
    assert "'validty' is not a compared metric" in capsys.readouterr().err


def test_builds_a_pytest_run_and_passes_unknown_flags_through(workdir, capsys):
    assert audit("--model", "python:toy_models:boundary", "--threshold", "validity>=0.99", "--junitxml", "j.xml",
                 "-rA") == 0
    out = capsys.readouterr().out
    assert "PASSED sce-run::toy.toml/minimal::validity>=0.99" in out
    junit = (workdir / "j.xml").read_text()
    assert junit.count("<testcase") == 2 and 'name="sce:toy.toml/minimal:validity" value="1.0"' in junit
    # no threshold: one item per dataset and variant, passing when the audit runs
    assert audit("--model", "python:toy_models:boundary", "--variant", "minimal", "-rA") == 0
    assert "PASSED sce-run::toy.toml/minimal::audit" in capsys.readouterr().out
    # a flag pytest does not know either is a usage error
    assert audit("--model", "python:toy_models:boundary", "--no-such-flag") == 2


def test_a_model_that_fails_to_load_fails_the_run_with_one_line(workdir, capsys):
    (workdir / "broken_models.py").write_text("def f(messages):\n    return 'x'\nraise RuntimeError('boom')\n")
    assert audit("--model", "python:broken_models:f") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "boom" in err and "Traceback" not in err


def test_audit_through_an_openai_compatible_server(workdir):
    """The same code path a user with a vLLM server takes: spec -> HTTP -> audit -> report."""
    from tests.helpers.rule_models import TOY, RuleModel, toy_rule
    from tests.openai_server import FakeOpenAIServer

    rule = RuleModel(TOY, toy_rule, "boundary")
    with FakeOpenAIServer(lambda messages, body: rule.chat([messages], None)[0]) as server:
        code = audit("--model", f"openai:toy-rule@{server.url}", "--json", "o.json", "--no-cache")
    assert code == 0
    report = json.loads((workdir / "o.json").read_text())
    jsonschema.validate(report, schema())
    r = report["results"][0]
    assert r["validity"] == 1.0 and r["exact_match"] == 1.0
    assert report["environment"]["model_identity"] == {"backend": "openai", "model": "toy-rule", "base_url": server.url}
