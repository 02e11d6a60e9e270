"""A model backend and a plot from other packages: the worked examples of docs/writing-backends.md
(read from the page), installed from a temporary package as pip would, run through ``sce-audit``
(which runs pytest) and the pytest options; a broken, clashing or contradicting plugin is one line
where it is used and leaves every other backend, check and plot working. Each run is a fresh
process (the registries read the installed metadata once per process)."""

from __future__ import annotations

import json

import pytest

from tests.checks.test_user_check import RULES, one_line_error
from tests.helpers.plugin_packages import Runner, install, install_doc_examples

KEYWORDS = ("sce_checks.cli", "--model", "keywords:good,great", "--dataset", "sentiment", "--limit", "6", "--check", "inv",
            "--prediction", "generate", "-q")
RULES_RUN = ("sce_checks.cli", "--model", "python:rules:classify", "--dataset", "sentiment", "--limit", "4", "--check",
             "inv", "--prediction", "generate", "-q")


@pytest.fixture
def installed(tmp_path):
    site = tmp_path / "site"
    install_doc_examples(site)
    work = tmp_path / "work"
    work.mkdir()
    (work / "rules.py").write_text(RULES)
    return work, site, Runner(work, [site], tmp_path / "cache")


def test_a_user_backend_runs_from_the_command_line_with_its_own_setting(installed):
    work, site, run = installed
    done = run(*KEYWORDS, "--keywords-case-sensitive", "--json", "r.json", "--threshold", "inv:failure_rate<=1")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((work / "r.json").read_text())
    identity = report["environment"]["model_identity"]
    assert identity == {"backend": "keywords", "model": "keywords:good,great", "case_sensitive": True}
    (r,) = report["results"]
    assert r["check"] == "inv" and r["model"] == "keywords:good,great" and r["n"] == 6
    lowered = run(*KEYWORDS, "--json", "r2.json")  # the setting's default: case-insensitive
    assert lowered.returncode == 0, lowered.stdout + lowered.stderr
    assert json.loads((work / "r2.json").read_text())["environment"]["model_identity"]["case_sensitive"] is False
    help_text = run("sce_checks.cli", "--help").stdout
    assert "keywords:<word>,<word>,..." in help_text and "--keywords-case-sensitive" in help_text


def test_a_user_backend_in_pytest_options_and_markers(installed):
    work, site, run = installed
    (work / "test_kw.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.sce(model='keywords:good', dataset='sentiment', limit=4, prediction='generate')\n"
        "def test_inv(sce_audit, sce_model):\n"
        "    assert sce_audit(check='inv').n == 4\n"
        "    assert sce_model.identity()['case_sensitive'] is True\n"
    )
    done = run("pytest", "-p", "no:cacheprovider", "-q", "test_kw.py", "--sce-keywords-case-sensitive")
    assert done.returncode == 0, done.stdout + done.stderr
    bad = run("pytest", "-p", "no:cacheprovider", "-q", "test_kw.py", "--sce-model", "keywords:good,,bad", "--sce-run",
              "--sce-dataset", "sentiment")
    assert bad.returncode == 2 and "malformed model spec 'keywords:good,,bad'" in bad.stdout + bad.stderr


def test_a_malformed_spec_is_one_line_before_anything_loads(installed):
    work, site, run = installed
    err = one_line_error(run(*KEYWORDS[:2], "keywords:good,,great", *KEYWORDS[3:]))
    assert "malformed model spec 'keywords:good,,great': expected 'keywords:<word>,<word>,...'" in err


def test_a_broken_backend_is_one_line_and_other_backends_keep_working(installed):
    work, site, run = installed
    (site / "my_backends" / "keywords.py").write_text("raise RuntimeError('no GPU driver')\n")
    err = one_line_error(run(*KEYWORDS))
    assert err.endswith("model backend 'keywords' (implementation my_backends.keywords:load, entry point "
                        "my_backends.catalog:KEYWORDS, distribution my-backends) could not be loaded: RuntimeError: no GPU "
                        "driver")
    (site / "my_backends" / "catalog.py").write_text("import no_such_module\n")
    err = one_line_error(run(*KEYWORDS))
    assert err.endswith("model backend 'keywords' (entry point my_backends.catalog:KEYWORDS, distribution my-backends) "
                        "could not be loaded: ModuleNotFoundError: No module named 'no_such_module'")
    done = run(*RULES_RUN)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_backend_registered_twice_or_contradicting_a_setting_is_one_line(installed, tmp_path):
    work, site, run = installed
    other = tmp_path / "other"
    install(other, "py-twin", {"py_twin.py": "from sce_checks.models.catalog import PYTHON\n"},
            {"sce_checks.backends": {"python": "py_twin:PYTHON"}})
    install(other, "bad-rows", {"bad_rows.py": (
        "from sce_checks.config import Setting\nfrom sce_checks.models import BackendEntry\n"
        "LIMITED = BackendEntry(name='limited', description='?', syntax='limited:<x>', implementation='x:y',\n"
        "                       settings=(Setting('limit', 'int', 5, 'another limit'),))\n")},
        {"sce_checks.backends": {"limited": "bad_rows:LIMITED"}})
    run.env["PYTHONPATH"] = f"{other}:{run.env['PYTHONPATH']}"
    err = one_line_error(run(*RULES_RUN))
    assert ("model backend 'python' is registered twice, by sce-checks (sce_checks.models.catalog:PYTHON) and by py-twin "
            "(py_twin:PYTHON)") in err
    err = one_line_error(run(*KEYWORDS[:2], "limited:x", *KEYWORDS[3:]))
    assert ("model backend 'limited' (entry point bad_rows:LIMITED, distribution bad-rows) declares the setting 'limit', "
            "which is already a different setting") in err
    done = run(*KEYWORDS, "--limit", "3")  # the core row stands; the other backends are untouched
    assert done.returncode == 0, done.stdout + done.stderr


def test_an_unknown_broken_or_failing_plot_is_one_line_in_the_report(installed, tmp_path):
    work, site, run = installed
    odd = tmp_path / "odd"
    declarations = (
        "from dataclasses import replace\nfrom my_checks.catalog import ACCURACY\nfrom sce_checks.report import PlotEntry\n"
        "ODD = replace(ACCURACY, name='odd', plots=('nope', 'broken', 'failing', 'accuracy_by_label'))\n"
        "BROKEN = PlotEntry(name='broken', description='?', implementation='odd_plots:missing')\n"
        "FAILING = PlotEntry(name='failing', description='?', implementation='odd_plots:failing')\n")
    install(odd, "odd-checks", {"odd_checks.py": declarations, "odd_plots.py": "def failing(results):\n    1 / 0\n"},
            {"sce_checks.checks": {"odd": "odd_checks:ODD"},
             "sce_checks.plots": {"broken": "odd_checks:BROKEN", "failing": "odd_checks:FAILING"}})
    run.env["PYTHONPATH"] = f"{odd}:{run.env['PYTHONPATH']}"
    done = run(*RULES_RUN[:7], "--check", "odd", "--prediction", "generate", "-q", "--html", "r.html")
    assert done.returncode == 0, done.stdout + done.stderr
    page = (work / "r.html").read_text()
    assert '<figure class="plot" data-plot="accuracy_by_label">' in page  # the others are still drawn
    assert "Plot &#x27;nope&#x27; of odd: not drawn, unknown plot &#x27;nope&#x27;; expected one of:" in page
    assert ("not drawn, plot &#x27;broken&#x27; (implementation odd_plots:missing, entry point odd_checks:BROKEN, "
            "distribution odd-checks) could not be loaded: AttributeError:") in page
    assert "not drawn, it failed: ZeroDivisionError: division by zero." in page
