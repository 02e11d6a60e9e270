"""The pytest plugin, exercised with pytester: options, ini defaults, marker validation, the shared
lazy computation, assertion messages, reports, baselines and pytest-xdist."""

from __future__ import annotations

import json
import textwrap
from importlib import resources
from pathlib import Path

import jsonschema
import numpy  # noqa: F401  in-process pytester runs restore sys.modules after each run, and numpy
import pytest  # refuses a second import in one process: import it here, outside those runs

from tests.helpers.projects import common


def test_options_in_help(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*sce-checks*", "*--sce-model*", "*--sce-baseline*"])


def test_marker_rejects_unknown_arguments(project):
    project.makepyfile(test_m="""
        import pytest
        @pytest.mark.sce(modle="python:toy_models:far")
        def test_x(sce_audit):
            sce_audit()
    """)
    result = project.runpytest(*common())
    result.stdout.fnmatch_lines(["*unknown argument(s) modle*accepted: model*"])
    assert result.ret != 0


def test_one_shared_computation_and_passing_thresholds(project):
    project.makepyfile(test_shared="""
        import pytest
        from sce_checks.assertions import assert_validity, assert_minimality
        seen = []

        @pytest.mark.sce(model="python:toy_models:boundary")
        @pytest.mark.parametrize("i", range(3))
        def test_validity(sce_audit, i):
            r = sce_audit(variant="minimal")
            seen.append(r)
            assert_validity(r, at_least=0.9)
            assert_minimality(r, mean_rcf_a_at_most=0.0, exact_match_at_least=1.0)

        def test_same_object():
            assert len(seen) == 3 and seen[0] is seen[1] is seen[2]
    """)
    result = project.runpytest(*common("--sce-json", "report.json"))
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*= sce-checks =*", "*python:toy_models:boundary*toy*minimal*"])
    report = json.loads((project.path / "report.json").read_text())
    schema = json.loads(resources.files("sce_checks").joinpath("data/report-v1.schema.json").read_text())
    jsonschema.validate(report, schema)
    # both variants computed in one pass, each reported once
    assert sorted(r["variant"] for r in report["results"]) == ["minimal", "unconstrained"]


def test_failure_message_shows_figure_interval_and_worst_examples(project):
    project.makepyfile(test_fail="""
        import pytest
        from sce_checks.assertions import assert_validity
        @pytest.mark.sce(model="python:toy_models:short")
        def test_validity(sce_audit):
            assert_validity(sce_audit(), at_least=0.8)
    """)
    result = project.runpytest(*common())
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*validity = 0.0% is below the threshold 80.0%*",
        "*95% CI 0.0%, *",
        "*worst examples*",
        "*invalid*",
    ])


def test_ini_defaults_and_command_line_wins(project):
    project.makeini("""
        [pytest]
        sce_model = python:toy_models:short
        sce_dataset = toy.toml
        sce_limit = 6
    """)
    project.makepyfile(test_ini="""
        def test_model(sce_audit):
            r = sce_audit()
            print("MODEL", r.model, r.n)
    """)
    result = project.runpytest("-s", "-p", "no:cacheprovider", "--sce-prediction", "generate")
    result.stdout.fnmatch_lines(["*MODEL python:toy_models:short 6*"])
    result = project.runpytest("-s", "-p", "no:cacheprovider", "--sce-prediction", "generate", "--sce-model", "python:toy_models:far")
    result.stdout.fnmatch_lines(["*MODEL python:toy_models:far 6*"])


REGRESSION_TEST = """
    from sce_checks.assertions import assert_validity
    def test_valid(sce_audit):
        assert_validity(sce_audit(), at_least=0.5)
"""


def test_baseline_regression_story(project, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # wide enough for the comparison's one line per figure
    project.makepyfile(test_reg=REGRESSION_TEST)
    base = project.runpytest(*common("--sce-model", "python:toy_models:boundary", "--sce-save-baseline", "base.json"))
    base.assert_outcomes(passed=1)
    assert (project.path / "base.json").is_file()
    worse = project.runpytest(*common("--sce-model", "python:toy_models:far", "--sce-baseline", "base.json", "--sce-tolerance", "0.01"))
    worse.assert_outcomes(passed=1)  # the test itself passes: validity is fine ...
    assert worse.ret == 1  # ... but minimality regressed against the baseline
    worse.stdout.fnmatch_lines(["*baseline base.json: * regression(s)*", "*mean_rcf_a*REGRESSED*"])
    same = project.runpytest(*common("--sce-model", "python:toy_models:boundary", "--sce-baseline", "base.json"))
    assert same.ret == 0
    same.stdout.fnmatch_lines(["*no regressions*"])
    other = project.runpytest(*common("--sce-model", "python:toy_models:boundary", "--sce-baseline", "base.json", "--sce-seed", "9"))
    assert other.ret != 0
    other.stdout.fnmatch_lines(["*different sample*"])


def test_reports_written(project):
    project.makepyfile(test_rep=REGRESSION_TEST)
    result = project.runpytest(*common("--sce-model", "python:toy_models:far", "--sce-markdown", "r.md", "--sce-html", "r.html",
                                       "--junitxml", "junit.xml"))
    assert result.ret == 0
    assert "| model" in (project.path / "r.md").read_text()
    assert "<svg" in (project.path / "r.html").read_text()
    junit = (project.path / "junit.xml").read_text()
    assert "sce:toy/unconstrained:validity" in junit


def test_xdist_results_reach_the_controller_once(project):
    pytest.importorskip("xdist")
    for name in ("a", "b", "c", "d"):
        project.makepyfile(**{f"test_{name}": REGRESSION_TEST})
    result = project.runpytest_subprocess(*common("-n", "2", "--sce-model", "python:toy_models:far", "--sce-json", "x.json"))
    result.assert_outcomes(passed=4)
    report = json.loads((project.path / "x.json").read_text())
    keys = [(r["dataset"], r["variant"]) for r in report["results"]]
    assert sorted(keys) == [("toy", "minimal"), ("toy", "unconstrained")]
    assert result.stdout.str().count("= sce-checks =") == 1


AUDIT = """
model = "python:toy_models:{model}"
datasets = ["toy.toml"]
limit = 10
prediction = "generate"
{extra}

[thresholds]
validity = ">= 0.9"

[[override]]
variant = "minimal"
thresholds = {{ mean_rcf_a = "<= 0.0" }}
"""


def write_audit(project, model="boundary", extra="", name="toy.sce.toml"):
    (project.path / name).write_text(AUDIT.format(model=model, extra=extra))


def test_audit_file_items_one_per_threshold(project):
    write_audit(project)
    result = project.runpytest("-p", "no:cacheprovider", "-v", "toy.sce.toml")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([
        "*toy.sce.toml::toy.toml/unconstrained::validity>=0.9 PASSED*",
        "*toy.sce.toml::toy.toml/minimal::mean_rcf_a<=0 PASSED*",
    ])


def test_audit_file_and_option_set_elicitation_and_parsing(project):
    write_audit(project, extra='elicitation = "schema"\nparsing = "strict"')
    assert project.runpytest("-p", "no:cacheprovider", "toy.sce.toml", "--sce-json", "a.json").ret == 0
    env = json.loads((project.path / "a.json").read_text())["environment"]
    assert (env["elicitation"], env["parsing"]) == ("schema", "strict")
    project.makepyfile(test_opt="""
        def test_opt(sce_audit):
            r = sce_audit(variant="minimal")
            assert (r.info["elicitation"], r.info["parsing"]) == ("schema", "lenient")
    """)
    assert project.runpytest(*common("test_opt.py", "--sce-model", "python:toy_models:boundary",
                                     "--sce-elicitation", "schema")).ret == 0


def test_audit_file_datasets_are_relative_to_the_audit_file(project):
    sub = project.path / "audits"
    sub.mkdir()
    (project.path / "toy.toml").rename(sub / "toy.toml")
    (sub / "toy.sce.toml").write_text(AUDIT.format(model="boundary", extra=""))
    result = project.runpytest("-p", "no:cacheprovider", "-v", "audits/toy.sce.toml")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*audits/toy.sce.toml::toy.toml/minimal::mean_rcf_a<=0 PASSED*"])


def test_audit_file_known_failures_are_strict_xfails(project):
    write_audit(project, model="far", extra='')
    text = (project.path / "toy.sce.toml").read_text() + 'xfail = "far jumps to the corner"\n'
    (project.path / "toy.sce.toml").write_text(text)  # the xfail joins the minimal-variant override
    result = project.runpytest("-p", "no:cacheprovider", "-rxX", "toy.sce.toml")
    result.assert_outcomes(passed=2, xfailed=1)
    result.stdout.fnmatch_lines(["*XFAIL*mean_rcf_a<=0*far jumps to the corner*"])
    # strict: the model improved, so the known failure passes, and the run says to update the file
    (project.path / "toy.sce.toml").write_text(text.replace('model = "python:toy_models:far"', 'model = "python:toy_models:boundary"'))
    result = project.runpytest("-p", "no:cacheprovider", "toy.sce.toml")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*XPASS(strict)*far jumps to the corner*"])


def test_audit_file_threshold_failure(project, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # wide enough for the table's one line per result
    write_audit(project, model="far")
    result = project.runpytest("-p", "no:cacheprovider", "toy.sce.toml")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*mean_rcf_a<=0 does not hold: mean_rcf_a = 0.*", "*worst examples*"])
    assert "Traceback" not in result.stdout.str()
    # the summary table shows the gates beside the figures, failures first
    summary = result.stdout.str().split("= sce-checks =")[1].splitlines()
    rows = [line for line in summary if "python:toy_models:far" in line]
    assert "minimal" in rows[0] and "FAIL mean_rcf_a<=0 (0.467); ok validity>=0.9 (1.000)  FAIL" in rows[0]
    assert "unconstrained" in rows[1] and rows[1].split()[-4:] == ["ok", "validity>=0.9", "(1.000)", "PASS"]


@pytest.mark.parametrize(
    "text, message",
    [
        ('model = "python:toy_models:far"\ndatasets = ["toy.toml"]\nlimt = 3\n', "bad.sce.toml: limt: unknown key"),
        ('datasets = ["toy.toml"]\n', "bad.sce.toml: model: missing"),
        ('model = "python:toy_models:far"\ndatasets = ["toy.toml"]\n[thresholds]\nvalidity = "about 0.8"\n', "thresholds.validity"),
        ('model = "python:toy_models:far"\ndatasets = ["toy.toml"]\nvariants = ["sideways"]\n', "variants: unknown variant"),
        ('model = "python:toy_models:far"\ndatasets = ["toy.toml"\n', "invalid TOML"),
        ('model = "python:toy_models:far"\ndatasets = ["toy.toml"]\nelicitation = "json"\n',
         "bad.sce.toml: elicitation: expected free or schema, got 'json'"),
        ('model = "python:toy_models:far"\ndatasets = ["toy.toml"]\nparsing = 1\n', "bad.sce.toml: parsing: expected lenient or strict"),
    ],
)
def test_audit_file_errors_name_file_and_key(project, text, message):
    (project.path / "bad.sce.toml").write_text(text)
    result = project.runpytest("-p", "no:cacheprovider", "bad.sce.toml")
    assert result.ret != 0
    out = result.stdout.str()
    assert message in out, out


def test_audit_file_baseline(project):
    write_audit(project, extra='')
    assert project.runpytest("-p", "no:cacheprovider", "toy.sce.toml", "--sce-save-baseline", "base.json").ret == 0
    write_audit(project, model="far", extra='baseline = "base.json"\ntolerance = 0.01', name="far.sce.toml")
    result = project.runpytest("-p", "no:cacheprovider", "far.sce.toml")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*base.json: * regression(s)*"])


def test_one_item_per_example_from_the_shared_computation(project):
    project.makepyfile(test_each="""
        import pytest
        from sce_checks.assertions import assert_example_valid
        calls = []

        @pytest.mark.sce(model="python:toy_models:far", variant="minimal")
        def test_each(sce_example, sce_model):
            calls.append(sce_model.stats.chat_calls)
            assert_example_valid(sce_example, max_gap=0.3)
    """)
    result = project.runpytest(*common("-v", "--sce-limit", "4"))
    # the far policy jumps to the far corner: valid, but farther than x* by more than 0.3 except
    # for toy-00024, whose SCE is its own nearest flip
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines([
        "*test_each[[]toy.toml/minimal/toy-00024[]] PASSED*",
        "*test_each[[]toy.toml/minimal/toy-00026[]] FAILED*",
        # Gower on the toy grid (x in 0..10, level a..e ordinal, equal weights):
        # d((5,b), (10,e)) = (5/10 + 3/4) / 2 = 0.625; x* = (5,c): (0 + 1/4) / 2 = 0.125
        "*SCE not minimal: distance 0.625 vs reference 0.125 (gap above 0.3): toy-00026: x=5, level=b -> x=10, level=e*",
    ])
    assert "Traceback" not in result.stdout.str()
    # -k selects single examples by id; the one computation still serves them
    one = project.runpytest(*common("--sce-limit", "4", "-k", "toy-00024 or toy-00026"))
    one.assert_outcomes(passed=1, failed=1)


def test_pyproject_tool_table_sets_defaults_and_the_command_line_wins(project):
    project.makepyprojecttoml("""
        [tool.sce-checks]
        model = "python:toy_models:far"
        dataset = "toy.toml"
        limit = 5
        prediction = "generate"
    """)
    project.makepyfile(test_t="""
        def test_settings(sce_audit, sce_dataset, sce_model):
            r = sce_audit(variant="minimal")
            print("SEEN", r.model, r.n, sce_dataset.name, sce_model.identity()["backend"])
    """)
    result = project.runpytest("-s", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*SEEN python:toy_models:far 5 toy python*"])
    result = project.runpytest("-s", "-p", "no:cacheprovider", "--sce-limit", "3")
    result.stdout.fnmatch_lines(["*SEEN python:toy_models:far 3 toy python*"])
    project.makepyprojecttoml("[tool.sce-checks]\nmodle = 'x'\n")
    result = project.runpytest("-p", "no:cacheprovider")
    assert result.ret == 2  # bad input: one exit code across sce-audit, pytest and audit files
    assert "[tool.sce-checks] modle: unknown key" in result.stderr.str()
