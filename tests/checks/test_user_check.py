"""A check from another package: the worked example of docs/writing-checks.md, installed from a
temporary package (a module and its .dist-info with the ``sce_checks.checks`` entry point, what
pip writes), runs end to end everywhere a built-in check does: ``sce-audit --check``, thresholds,
the JSON report, baselines, audit files and the ``sce_audit`` fixture. Each run is a fresh
process, as a user's would be (the registry reads entry points once per process)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from sce_checks.tasks import load_task, task_examples

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads(resources.files("sce_checks").joinpath("data/report-v1.schema.json").read_text())

RULES = '''
import json, re

GOOD = ("good", "great", "best", "fun", "beautiful", "funny", "moving", "wonderful")

def classify(messages):
    """positive when the quoted text holds one of a few good words: a model with a known rule."""
    text = json.loads(re.findall(r'Text: ("(?:[^"\\\\]|\\\\.)*")', messages[0]["content"])[-1]).lower()
    return json.dumps({"answer": "positive" if any(w in text for w in GOOD) else "negative"})
'''
GOOD = ("good", "great", "best", "fun", "beautiful", "funny", "moving", "wonderful")


def example_module() -> str:
    """The check module of docs/writing-checks.md, as written there."""
    text = (REPO / "docs" / "writing-checks.md").read_text(encoding="utf-8")
    (code,) = [block for block in re.findall(r"```python\n(.*?)```", text, re.DOTALL) if "# my_checks.py" in block]
    return code


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """The example package on a site folder of its own, a model module, and an environment whose
    Python finds both; returns a function running ``python -m <args>`` there."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "my_checks.py").write_text(example_module())
    info = site / "my_checks-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-checks\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[sce_checks.checks]\naccuracy = my_checks:AccuracyCheck\n")
    work = tmp_path / "work"
    work.mkdir()
    (work / "rules.py").write_text(RULES)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(work), str(REPO)]),
               SCE_CHECKS_CACHE_DIR=str(tmp_path / "cache"))

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", *args], cwd=work, env=env, capture_output=True, text=True, timeout=300)

    return work, run


def expected_accuracy(limit: int) -> float:
    task = load_task("sentiment")
    gold = {e.id: e.gold for e in task.examples}
    sample = task_examples(task, limit, 0)
    right = sum(1 for i, text in sample if ("positive" if any(w in text.lower() for w in GOOD) else "negative") == gold[i])
    return right / len(sample)


def test_a_user_check_runs_from_the_command_line_with_thresholds_reports_and_baselines(installed):
    work, run = installed
    cli = ["sce_checks.cli", "--model", "python:rules:classify", "--dataset", "sentiment", "--limit", "8",
           "--check", "accuracy", "--prediction", "generate", "-q"]
    done = run(*cli, "--threshold", "accuracy:accuracy>=0", "--json", "r.json", "--save-baseline", "b.json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((work / "r.json").read_text())
    jsonschema.validate(report, SCHEMA)
    (r,) = report["results"]
    assert r["check"] == "accuracy" and r["n"] == 8 and r["n_labelled"] == 8
    assert r["accuracy"] == pytest.approx(expected_accuracy(8))
    assert r["accuracy_ci"][0] <= r["accuracy"] <= r["accuracy_ci"][1]
    assert report["environment"]["checks"] == ["accuracy"]
    assert "accuracy" in done.stdout and "n_labelled 8" in done.stdout  # the terminal table, headline and counts
    baseline = json.loads((work / "b.json").read_text())
    assert baseline["entries"]["accuracy/sentiment/-"]["figures"] == {"accuracy": r["accuracy"]}  # compared: has a direction

    again = run(*cli, "--baseline", "b.json")
    assert again.returncode == 0 and "no regressions" in again.stdout
    failing = run(*cli, "--threshold", "accuracy:accuracy>=1.01")
    assert failing.returncode == 1 and "accuracy>=1.01 does not hold" in failing.stdout
    # not applicable on a grid task: listed, never passed or failed, and no model call is made
    grid = run("sce_checks.cli", "--model", "python:rules:classify", "--dataset", "income", "--limit", "2",
               "--check", "accuracy", "--json", "g.json", "-q")
    assert grid.returncode == 0, grid.stdout + grid.stderr
    assert "not applicable: income/accuracy: grid tasks have no gold labels" in grid.stdout
    assert json.loads((work / "g.json").read_text())["environment"]["model_calls"]["chat_calls"] == 0


def test_a_user_check_in_audit_files_and_the_fixture(installed):
    work, run = installed
    (work / "acc.sce.toml").write_text(
        'model = "python:rules:classify"\ndatasets = ["sentiment"]\nlimit = 8\nprediction = "generate"\n'
        'checks = ["accuracy"]\n\n[thresholds.accuracy]\naccuracy = ">= 0"\nn_labelled = ">= 9"\n'
    )
    (work / "test_acc.py").write_text(
        "import pytest\n"
        "from sce_checks.assertions import assert_threshold\n\n"
        "@pytest.mark.sce(model='python:rules:classify', dataset='sentiment', limit=8, prediction='generate')\n"
        "def test_accuracy(sce_audit):\n"
        "    assert_threshold(sce_audit(check='accuracy'), 'accuracy>=0')\n"
    )
    done = run("pytest", "-p", "no:cacheprovider", "-v", "acc.sce.toml", "test_acc.py")
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert re.search(r"acc\.sce\.toml::sentiment/accuracy::accuracy>=0 PASSED", out), out
    assert "n_labelled>=9 does not hold" in out and "wrong answers" in out  # the check's own example table
    assert re.search(r"test_acc\.py::test_accuracy PASSED", out), out


def test_a_broken_entry_point_is_one_line(installed, tmp_path):
    work, run = installed
    (tmp_path / "site" / "my_checks.py").write_text("raise ImportError('missing dependency: foo')\n")
    done = run("sce_checks.cli", "--model", "python:rules:classify", "--dataset", "sentiment", "--check", "accuracy", "-q")
    assert done.returncode == 2
    err = done.stderr.strip()
    assert "check 'accuracy' (entry point my_checks:AccuracyCheck) could not be loaded: ImportError: missing dependency: foo" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
