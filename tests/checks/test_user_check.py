"""A check from another package: the worked example of docs/writing-checks.md (its declaration,
implementation, plot and ``pyproject.toml`` entry points, read from the page), installed from a
temporary package as pip would, runs end to end everywhere a built-in check does: ``sce-audit
--check``, thresholds, the JSON and HTML reports, baselines, audit files and the ``sce_audit``
fixture. A broken or clashing plugin is one line where it is used and leaves other checks working.
Each run is a fresh process, as a user's would be (the registry reads entry points once per
process)."""

from __future__ import annotations

import json
import re
from importlib import resources

import jsonschema
import pytest

from sce_checks.tasks import load_task, task_examples
from tests.helpers.plugin_packages import Runner, install, install_doc_examples

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


@pytest.fixture
def installed(tmp_path):
    """The docs' example packages on a site folder of their own, a model module, and a runner
    of ``python -m <args>`` whose Python finds both."""
    site = tmp_path / "site"
    install_doc_examples(site)
    work = tmp_path / "work"
    work.mkdir()
    (work / "rules.py").write_text(RULES)
    return work, Runner(work, [site], tmp_path / "cache")


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
    done = run(*cli, "--threshold", "accuracy:accuracy>=0", "--json", "r.json", "--save-baseline", "b.json",
               "--html", "r.html")
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
    page = (work / "r.html").read_text()  # the check's own plot, a registered entry of the plugin
    assert '<figure class="plot" data-plot="accuracy_by_label">' in page and "Accuracy by gold label" in page

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


def test_looking_the_check_up_imports_its_declaration_and_nothing_of_other_checks(installed):
    work, run = installed
    done = run.python(
        "import sys\n"
        "from sce_checks.checks import check_entry, check_of, get_check, units\n"
        "from sce_checks.config import SETTINGS\n"
        "assert check_entry('accuracy').plots == ('accuracy_by_label',)\n"
        "assert units(['sce', 'accuracy'], ['minimal']) == ['minimal', 'accuracy'] and check_of('minimal') == 'sce'\n"
        "print(sorted(m for m in sys.modules if m.startswith(('my_checks', 'sce_checks.checks.'))))\n"
        "get_check('accuracy')\n"
        "print(sorted(m for m in sys.modules if m.startswith(('my_checks', 'sce_checks.checks.'))))\n")
    assert done.returncode == 0, done.stderr
    declared, used = (eval(line) for line in done.stdout.splitlines())
    assert declared == ["my_checks", "my_checks.catalog", "sce_checks.checks.base", "sce_checks.checks.catalog"]
    assert set(used) - set(declared) == {"my_checks.accuracy", "sce_checks.checks.predict"}  # no other check module


def one_line_error(done) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    err = done.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


AUDIT_ARGS = ("sce_checks.cli", "--model", "python:rules:classify", "--dataset", "sentiment", "--limit", "4", "--prediction",
              "generate", "-q")


def test_a_broken_declaration_or_implementation_is_one_line_and_breaks_nothing_else(installed, tmp_path):
    work, run = installed
    accuracy = tmp_path / "site" / "my_checks" / "accuracy.py"
    accuracy.write_text("raise ImportError('missing dependency: foo')\n")
    err = one_line_error(run(*AUDIT_ARGS, "--check", "accuracy"))
    assert err.endswith("check 'accuracy' (implementation my_checks.accuracy:AccuracyCheck, entry point "
                        "my_checks.catalog:ACCURACY, distribution my-checks) could not be loaded: ImportError: missing "
                        "dependency: foo")
    (tmp_path / "site" / "my_checks" / "catalog.py").write_text("import no_such_module\n")
    err = one_line_error(run(*AUDIT_ARGS, "--check", "accuracy"))
    assert err.endswith("check 'accuracy' (entry point my_checks.catalog:ACCURACY, distribution my-checks) could not be "
                        "loaded: ModuleNotFoundError: No module named 'no_such_module'")
    other = run(*AUDIT_ARGS, "--check", "inv", "--check", "sce", "--threshold", "inv:failure_rate<=1", "--html", "r.html")
    assert other.returncode == 0, other.stdout + other.stderr  # a run that does not use it does not notice it


def test_a_check_registered_twice_is_one_line_naming_both_distributions(installed, tmp_path):
    work, run = installed
    twin = tmp_path / "twin"
    install(twin, "twin-checks", {"twin_checks.py": "from my_checks.catalog import ACCURACY\n"},
            {"sce_checks.checks": {"accuracy": "twin_checks:ACCURACY"}})
    install(twin, "shadow", {"shadow.py": "from sce_checks.checks.catalog import INV\n"},
            {"sce_checks.checks": {"inv": "shadow:INV"}})
    run.env["PYTHONPATH"] = str(twin) + ":" + run.env["PYTHONPATH"]
    err = one_line_error(run(*AUDIT_ARGS, "--check", "accuracy"))
    assert "check 'accuracy' is registered twice, by " in err
    assert "my-checks (my_checks.catalog:ACCURACY)" in err and "twin-checks (twin_checks:ACCURACY)" in err
    err = one_line_error(run(*AUDIT_ARGS, "--check", "inv"))  # a plugin named like a built-in: not silently dropped
    assert "check 'inv' is registered twice, by sce-checks (sce_checks.checks.catalog:INV) and by shadow (shadow:INV)" in err
    done = run(*AUDIT_ARGS, "--check", "sce", "--check", "dir")
    assert done.returncode == 0, done.stdout + done.stderr
