"""Warnings a user should read reach them as one line each, ``sce-checks: warning: <message>``, in
the audit's own summary and in the JSON report's environment, never as pytest's "warnings
summary" entry of a source path and a line of code (sce_checks/notices.py)."""

from __future__ import annotations

import json
import sys

import pytest

from sce_checks.cli import main
from tests.helpers.projects import common
from tests.openai_server import FakeOpenAIServer

PREFIX = "sce-checks: warning: "
UNMAKEABLE = "/proc/sce-checks-no-such-folder"  # a folder no one can make, root included
needs_linux_proc = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")


def said_once(output: str, report, *texts: str) -> str:
    """The one warning line holding every text of ``texts``, checked to be the only one, without
    a source path, and the line the report records."""
    lines = [line for line in output.splitlines() if line.startswith(PREFIX)]
    assert len(lines) == 1 and all(t in lines[0] for t in texts), output
    assert ".py:" not in output and "warnings summary" not in output and "Warning" not in output, output
    environment = json.loads(report.read_text())["environment"]
    assert environment["warnings"] == [lines[0].removeprefix(PREFIX)]
    return lines[0]


def test_sce_audit_on_xdist_workers_says_a_server_without_logprobs_once(workdir, capsys):
    """Both workers meet the server's missing logprobs; the controller prints it once."""
    from tests.helpers.rule_models import TOY, RuleModel, toy_rule

    rule = RuleModel(TOY, toy_rule, "boundary")
    with FakeOpenAIServer(lambda messages, body: rule.chat([messages], None)[0]) as server:
        code = main(["--model", f"openai:toy-rule@{server.url}", "--dataset", "toy.toml", "--limit", "4",
                     "--json", "r.json", "--max-retries", "1", "-n", "2"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    said_once(out + err, workdir / "r.json", f"{server.url} (model 'toy-rule')", "no option scoring")


@needs_linux_proc
def test_sce_audit_with_an_unusable_cache_says_so_once_and_runs(workdir, capsys):
    code = main(["--model", "python:toy_models:boundary", "--dataset", "toy.toml", "--limit", "4", "--prediction",
                 "generate", "--cache-dir", UNMAKEABLE, "--json", "r.json"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    said_once(out + err, workdir / "r.json", f"response cache {UNMAKEABLE}/responses.sqlite cannot be used")


@needs_linux_proc
def test_a_pytest_run_with_sce_checks_items_says_it_in_its_summary(project):
    project.makepyfile(test_audit="""
        def test_validity(sce_audit, sce_model):
            assert sce_model.identity()["backend"] == "python"
            assert sce_audit(variant="minimal")["validity"] >= 0
    """)
    result = project.runpytest(*common("--sce-model", "python:toy_models:boundary", "--sce-cache-dir", UNMAKEABLE,
                                       "--sce-json", "r.json"))
    result.assert_outcomes(passed=1)
    said_once(result.stdout.str(), project.path / "r.json", "cannot be used")
