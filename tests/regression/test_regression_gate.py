"""The paired baseline gate end to end through `sce-audit` on Python models that differ from the
baseline's model on known examples (tests/helpers/regression_models.py): 6 of 20 regressed, 1 of
20 regressed, none. The exit code, the verdict lines, the JSON / Markdown / HTML reports and
``sce-audit --compare`` follow one rule; old (v1) baselines are compared on their aggregates.

The numbers, by hand (exact one-sided McNemar, sce_checks/regression/paired.py): 6 examples valid
-> invalid and none the other way give p = 2^-6 = 0.0156 for validity in each of the two
variants. Gating validity alone (the SCE check's primary figure, gated by default), Holm over the
two variants compares the smaller p with 0.05 / 2 and the other with 0.05: both regress. Gating
every compared figure (each named with --baseline-metric), the family also holds
strict validity, exact match, mean distance, TM and TM_A of each variant (each moved on the same
six examples, so each could reach alpha): twelve figures, 0.0156 > 0.05 / 12: no figure can fail
whatever its own outcome on these six changed examples, so each that got worse is undecided and
the gate fails (issue: a gate that cannot fail must not pass); the gate would need 8 examples to get
worse (2^-8 <= 0.05 / 12 < 2^-7). One example of twenty worse: McNemar's smallest p is 1/2, undecided
unless the tolerance allows the drop. Four examples of twenty less minimal (valid, but further than
the boundary): Wilcoxon's smallest p with 4 moved pairs is 2^-4 = 0.0625 > 0.05, undecided.
with a note that it needs 8 examples to get worse (2^-8 <= 0.05 / 12 < 2^-7)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jsonschema
import pytest

from sce_checks.cli import main
from sce_checks.regression.files import load_baseline
from tests.helpers.projects import REPO

ARGS = ["--dataset", "toy.toml", "--limit", "20", "--seed", "3", "--prediction", "generate", "-q"]


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    """Tables with one line per row (at 80 columns they become blocks: tests/report/test_table.py)."""
    monkeypatch.setenv("COLUMNS", "250")


def audit(*args: str) -> int:
    return main([*ARGS, *args])


@pytest.fixture
def models(workdir):
    """``python:partial:six`` / ``one`` / ``same``: the boundary model, short of the boundary on 6,
    1 and 0 examples of the sample; returns the ids of those examples."""
    from sce_checks.tasks import load_task, task_examples

    sample = task_examples(load_task("toy.toml"), 20, 3)
    six, one, four = sample[2:8], sample[10:11], sample[12:16]
    (workdir / "partial.py").write_text(textwrap.dedent(f"""
        from tests.helpers.regression_models import PartlyFar, PartlyShort
        six = PartlyShort({[p for _, p in six]!r})
        one = PartlyShort({[p for _, p in one]!r})
        same = PartlyShort([])
        far4 = PartlyFar({[p for _, p in four]!r})
    """))
    assert audit("--model", "python:toy_models:boundary", "--save-baseline", "base.json", "--json", "base-report.json") == 0
    return {"six": [i for i, _ in six], "one": [i for i, _ in one]}


def changed_ids(out: str) -> set[str]:
    return {line.split()[1] for line in out.splitlines() if line.startswith("sce/toy/") and " worse " in line}


EVERY_FIGURE = [a for m in ("validity", "strict_validity", "generation_rate", "exact_match", "mean_distance",
                             "mean_rcf_a", "median_rcf", "mean_icf_a", "median_icf", "tm", "tm_a")
                for a in ("--baseline-metric", m)]


def test_six_of_twenty_regressed_fails_the_default_gate_and_lists_them(workdir, models, capsys):
    code = audit("--model", "python:partial:six", "--baseline", "base.json",
                 "--json", "r.json", "--markdown", "r.md", "--html", "r.html")
    out = capsys.readouterr().out
    assert code == 1
    verdicts = [line for line in out.splitlines() if line.startswith("REGRESSED:")]
    assert len(verdicts) == 2  # one per variant
    # Newcombe's interval by hand: Wilson 95% of 20/20 is [0.839, 1], of 14/20 [0.481, 0.855]; phi = 0 (an
    # empty margin); -0.3 - sqrt((0.7 - 0.481)^2) = -0.519, -0.3 + sqrt((0.855 - 0.7)^2 + (1 - 0.839)^2) = -0.077
    assert ("REGRESSED: sce/toy/minimal validity fell from 1.00 to 0.70 (-0.30 [-0.52, -0.08] over 20 shared examples, "
            "McNemar p=0.016, Holm 0.031, 6 examples regressed, 0 improved)") in verdicts
    assert changed_ids(out) == set(models["six"])
    assert "examples that changed: 12 worse, 0 better" in out  # 6 per variant
    report = json.loads((workdir / "r.json").read_text())
    jsonschema.validate(report, json.loads((REPO / "sce_checks/data/report-v1.schema.json").read_text()))
    (comparison,) = report["baseline"]
    assert comparison["regressed"] == 2 and comparison["mode"] == "paired"
    assert {c["id"] for c in comparison["changed_examples"] if c["worse"]} == set(models["six"])
    row = next(r for r in comparison["rows"] if r["result"] == "sce/toy/minimal" and r["metric"] == "validity")
    assert (row["n_worse"], row["n_better"], row["p"], row["p_holm"]) == (6, 0, 2 ** -6, 2 ** -5)
    for name in ("r.md", "r.html"):
        text = (workdir / name).read_text()
        assert all(i in text for i in models["six"]) and "validity fell from 1.00 to 0.70" in text
    # the baseline's points beside the run's on the validity-minimality plot (its legend)
    assert "baseline base.json / toy / minimal" in (workdir / "r.html").read_text()


def test_six_of_twenty_over_every_figure_is_undecided_and_says_why(workdir, models, capsys):
    assert audit("--model", "python:partial:six", "--baseline", "base.json", *EVERY_FIGURE, "--json", "r.json") == 1
    out = capsys.readouterr().out
    assert "regression(s)" not in out and "undecided" in out
    undecided = [line for line in out.splitlines() if line.startswith("UNDECIDED:")]
    assert undecided and all("0.19 after Holm over 12 figures" in line or "after Holm" in line for line in undecided)
    # validity of the minimal variant: p = 2^-6 with the eleven other figures' p-values as observed (2^-6 each)
    line = next(line for line in undecided if line.startswith("UNDECIDED: sce/toy/minimal validity fell"))
    assert ("the smallest p-value McNemar can give with 6 changed examples is 0.188 after Holm over 12 figures, above "
            "alpha 0.05; it needs at least 8 changed examples") in line
    comparison = json.loads((workdir / "r.json").read_text())["baseline"][0]
    assert comparison["undecided"] == len(undecided) and comparison["regressed"] == len(undecided)
    assert ("gate power: with 20 shared examples and 12 figures under Holm, a binary figure fails only when at least 8 "
            "examples get worse") in out
    assert changed_ids(out) == set(models["six"])  # still listed: what a user fixing the fine-tune needs first


def test_the_tolerance_is_a_minimum_effect_and_the_plain_mode_remains(workdir, models, capsys):
    # significant, but a drop of 0.30 is within a tolerance of 0.35
    assert audit("--model", "python:partial:six", "--baseline", "base.json", "--baseline-metric", "validity",
                 "--tolerance", "validity=0.35") == 0
    # the plain tolerance mode: any worsening beyond the tolerance (0) fails, significant or not
    assert audit("--model", "python:partial:one", "--baseline", "base.json", "--baseline-mode", "tolerance") == 1
    capsys.readouterr()


def test_one_of_twenty_is_undecided_unless_the_tolerance_allows_it(workdir, models, capsys):
    assert audit("--model", "python:partial:one", "--baseline", "base.json", "--baseline-metric", "validity") == 1
    out = capsys.readouterr().out
    assert "2 undecided" in out and "McNemar 0.500" in out  # one per variant; P(X >= 1 | 1) = 1/2: one pair cannot fail
    assert "the smallest p-value McNemar can give with 1 changed example is 0.500, above alpha 0.05" in out
    assert changed_ids(out) == set(models["one"])
    # a drop of 0.05 within a tolerance of 0.05 passes, decided or not
    assert audit("--model", "python:partial:one", "--baseline", "base.json", "--baseline-metric", "validity",
                 "--tolerance", "validity=0.05") == 0
    assert "no regressions" in capsys.readouterr().out


def test_four_of_twenty_less_minimal_is_undecided_and_fails(workdir, models, capsys):
    """The case that motivated the rule: valid SCEs that got less minimal on 4 of 20 examples;
    mean RCF_A rose from 0 while Wilcoxon's smallest p with 4 moved pairs is 2^-4 = 0.0625."""
    assert audit("--model", "python:partial:far4", "--baseline", "base.json", "--json", "r.json") == 1
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("UNDECIDED:")]
    assert lines and all("mean_rcf_a rose from 0.00" in line for line in lines)
    assert all("Wilcoxon can give with 4 changed examples is 0.062, above alpha 0.05; it needs at least 5 changed "
               "examples, about 25 examples at this run's share of changed examples (0.20)" in line for line in lines)
    rows = [r for r in json.loads((workdir / "r.json").read_text())["baseline"][0]["rows"] if "undecided" in r]
    assert {r["metric"] for r in rows} == {"mean_rcf_a"} and all(r["regressed"] and r["n_worse"] == 4 for r in rows)
    # named with a tolerance the rise stays within, it passes
    rise = max(r["delta"] for r in rows)
    assert audit("--model", "python:partial:far4", "--baseline", "base.json", "--tolerance", f"mean_rcf_a={rise + 0.01:.3f}") == 0


def test_the_same_model_changes_nothing(workdir, models, capsys):
    assert audit("--model", "python:partial:same", "--baseline", "base.json") == 0
    out = capsys.readouterr().out
    assert "no regressions" in out and "examples that changed" not in out


def test_compare_saved_reports_without_a_model(workdir, models, capsys):
    assert audit("--model", "python:partial:six", "--json", "six.json") == 0
    capsys.readouterr()
    # the first file is the reference; a baseline and a report compare alike
    assert main(["--compare", "base-report.json", "six.json", "--baseline-metric", "validity", "--html", "c.html"]) == 1
    out = capsys.readouterr().out
    assert "validity fell from 1.00 to 0.70" in out and changed_ids(out) == set(models["six"])
    assert "gate power: with 20 shared examples and 2 figures under Holm" in out and "not gated" in out
    html = (workdir / "c.html").read_text()
    assert "<svg" in html and "six.json" in html and all(i in html for i in models["six"])
    assert main(["--compare", "base.json", "six.json"]) == 1  # validity is gated by default
    assert main(["--compare", "base.json", "six.json", *EVERY_FIGURE]) == 1  # every figure: 12 under Holm, undecided
    assert main(["--compare", "base.json", "base-report.json"]) == 0
    assert "no regressions" in capsys.readouterr().out
    assert main(["--compare", "base.json"]) == 2
    assert main(["--compare", "base.json", "six.json", "--model", "smollm2"]) == 2
    assert "--compare: --model does not apply (no model is run)" in capsys.readouterr().err
    assert main(["--compare", "base.json", "missing.json"]) == 2
    assert "missing.json: no such file" in capsys.readouterr().err


def test_compare_names_the_result_and_the_field_it_cannot_read(workdir, models, capsys):
    report = json.loads((workdir / "base-report.json").read_text())
    del report["results"][0]["model"]
    (workdir / "no-model.json").write_text(json.dumps(report))
    assert main(["--compare", "base.json", "no-model.json"]) == 2
    assert "no-model.json: results[0]: the field 'model' is missing" in capsys.readouterr().err
    report["results"] = [None]
    (workdir / "null-result.json").write_text(json.dumps(report))
    assert main(["--compare", "base.json", "null-result.json"]) == 2
    assert "null-result.json: results[0]: expected an object, got NoneType" in capsys.readouterr().err
    report = json.loads((workdir / "base-report.json").read_text())
    report["results"][0]["check"] = "no_such_check"
    (workdir / "unknown-check.json").write_text(json.dumps(report))
    assert main(["--compare", "base.json", "unknown-check.json"]) == 2
    assert "unknown-check.json: results[0]: unknown check 'no_such_check'" in capsys.readouterr().err


@pytest.mark.parametrize("where, value, message", [
    ("check", 5, "check: expected str, got 5"),
    ("validity", "abc", "the figure validity: expected a number or null, got 'abc'"),
    ("validity_ci", [None, "x", 3], "the figure validity_ci: expected two numbers"),
    ("info", {"task_kind": ["grid"]}, "info.task_kind: expected a string"),
    ("examples.valid", "maybe", "examples[0].valid: expected bool or null, got 'maybe'"),
    ("examples.distance", "far", "examples[0].distance: expected float or null, got 'far'"),
])
def test_compare_refuses_a_saved_result_of_the_wrong_types(workdir, models, capsys, where, value, message):
    """A saved report is data: a figure or an example field of another type than the report
    writes is one line naming the file and the result, for the comparison and its HTML alike."""
    report = json.loads((workdir / "base-report.json").read_text())
    result = report["results"][0]
    if where.startswith("examples."):
        result["examples"][0][where.split(".")[1]] = value
    else:
        result[where] = value
    (workdir / "odd.json").write_text(json.dumps(report))
    for args in (["--compare", "base-report.json", "odd.json"], ["--compare", "odd.json", "base.json", "--html", "o.html"]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert f"odd.json: results[0]: {message}" in err and "Traceback" not in err


def test_compare_imports_no_model_library(workdir, models):
    import subprocess
    import sys

    code = ("import sys\nfrom sce_checks.cli import main\ncode = main(['--compare', 'base.json', 'base-report.json'])\n"
            "heavy = [m for m in ('torch', 'transformers', 'captum') if m in sys.modules]\n"
            "assert code == 0 and not heavy, (code, heavy)\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr


def test_a_v1_baseline_is_compared_on_its_aggregates(workdir, models, capsys):
    data = json.loads((workdir / "base.json").read_text())
    data["schema"] = "sce-checks/baseline/v1"
    for entry in data["entries"].values():
        del entry["examples"], entry["check"]
    (workdir / "v1.json").write_text(json.dumps(data))
    assert audit("--model", "python:partial:same", "--baseline", "v1.json") == 0
    assert audit("--model", "python:partial:one", "--baseline", "v1.json") == 1  # tolerance 0: one example is a move
    out = capsys.readouterr().out
    assert "v1 baseline (figures only): compared against the tolerance alone" in out
    assert "examples that changed" not in out


@pytest.mark.parametrize("name", ["smollm2.json", "smollm2-checks.json", "smollm2-schema.json"])
def test_the_repository_baselines_hold_every_example(name):
    """The audits of audits/ are compared per example (v2): every entry lists its examples."""
    data = load_baseline(REPO / "baselines" / name)
    assert data["schema"] == "sce-checks/baseline/v2" and data["entries"]
    assert all(entry["examples"] for entry in data["entries"].values())


def test_a_baseline_saved_before_v2_still_loads():
    """The repository's baseline of audits/smollm2.sce.toml as saved in v1 (figures only)."""
    data = load_baseline(Path(__file__).parent / "data" / "smollm2.v1.json")
    assert data["schema"] == "sce-checks/baseline/v1" and len(data["entries"]) == 4


def test_plan_sample_size_from_the_command_line(capsys):
    assert main(["--plan-sample-size", "p=0.8,drop=0.1"]) == 0
    assert "at least 66 examples" in capsys.readouterr().out
    assert main(["--plan-sample-size", "p=0.8,drop=0.1,changed=0.05"]) == 2
    assert main(["--plan-sample-size", "p=0.8,drop=0.1", "--limit", "5"]) == 2
    assert main(["--plan-sample-size", "p=0.8"]) == 2
    assert "drop= is required" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--alpha", "0"], "--alpha"),
    (["--alpha", "1.5"], "--alpha"),
    (["--baseline-mode", "bayes"], "--baseline-mode"),
    (["--baseline-metric", "validty"], "'validty' is not a compared metric"),
])
def test_bad_gate_settings_exit_2(workdir, capsys, args, message):
    assert audit("--model", "python:toy_models:boundary", *args) == 2
    assert message in capsys.readouterr().err


def test_an_audit_file_baseline_follows_the_same_rule(project):
    """An audit file's ``baseline`` key is compared by the same rule as ``--baseline``: the run's
    mode, alpha and gated figures, and the exit status follows it."""
    from sce_checks.tasks import load_task, task_examples

    sample = task_examples(load_task(str(project.path / "toy.toml")), 20, 3)
    project.makepyfile(partial=f"from tests.helpers.regression_models import PartlyShort\n"
                               f"six = PartlyShort({[p for _, p in sample[2:8]]!r})\n")
    audit_file = 'model = "python:{}"\ndatasets = ["toy.toml"]\nlimit = 20\nseed = 3\nprediction = "generate"\n{}'
    (project.path / "base.sce.toml").write_text(audit_file.format("toy_models:boundary", ""))
    assert project.runpytest("-p", "no:cacheprovider", "base.sce.toml", "--sce-save-baseline", "base.json").ret == 0
    (project.path / "six.sce.toml").write_text(audit_file.format("partial:six", 'baseline = "base.json"'))
    gated = project.runpytest("-p", "no:cacheprovider", "six.sce.toml", "--sce-baseline-metric", "validity")
    assert gated.ret == 1
    gated.stdout.fnmatch_lines(["*base.json: 2 regression(s) (paired, alpha 0.05)*",
                                "REGRESSED: sce/toy/unconstrained validity fell from 1.00 to 0.70*McNemar p=0.016*"])
    assert project.runpytest("-p", "no:cacheprovider", "six.sce.toml").ret == 1  # validity is gated by default
    every = project.runpytest("-p", "no:cacheprovider", "six.sce.toml", *(f"--sce-{a[2:]}" if a.startswith("--") else a
                                                                         for a in EVERY_FIGURE))
    assert every.ret == 1  # 12 figures under Holm: none can fail on six changed examples, so each is undecided
    every.stdout.fnmatch_lines(["*base.json: * undecided*", "UNDECIDED: sce/toy/* after Holm over 12 figures*"])
    # the file's own gate settings, as its tolerance, win over the run's
    (project.path / "own.sce.toml").write_text(audit_file.format(
        "partial:six", 'baseline = "base.json"\nbaseline_metrics = ["validity"]\nalpha = 0.05'))
    assert project.runpytest("-p", "no:cacheprovider", "own.sce.toml").ret == 1
    (project.path / "plain.sce.toml").write_text(audit_file.format(
        "partial:six", 'baseline = "base.json"\nbaseline_mode = "tolerance"\ntolerance = 0.35'))
    assert project.runpytest("-p", "no:cacheprovider", "plain.sce.toml", "--sce-baseline-metric", "validity").ret == 0
    (project.path / "bad.sce.toml").write_text(audit_file.format(
        "partial:six", 'baseline = "base.json"\nbaseline_metrics = ["validty"]'))
    bad = project.runpytest("-p", "no:cacheprovider", "bad.sce.toml")
    assert bad.ret == 2
    bad.stdout.fnmatch_lines(["*bad.sce.toml: baseline_metrics: 'validty' is not a compared metric*"])


@pytest.mark.parametrize("width", [80, 200])
def test_comparison_tables_fit_the_terminal(workdir, models, width):
    from sce_checks.regression.saved import compare_saved
    from sce_checks.report.changes import changes_text
    from sce_checks.report.comparison import render_comparison

    assert audit("--model", "python:partial:six", "--json", "six.json") == 0
    (report,) = compare_saved(["base.json", "six.json"])
    for text in (render_comparison(report.rows, width=width), changes_text(report.changes, width)):
        lines = text.splitlines()
        assert lines and max(len(line) for line in lines) <= width
        assert all(i in text for i in models["six"]) or "validity" in text


def test_reference_points_of_a_baseline_by_hand(workdir, models):
    """The baseline's SCE results as plot points: validity 20/20 with its Wilson 95% interval
    from the stored outcomes, [0.839, 1] (n = 20, z = 1.96: centre (20 + 1.92) / 23.84 = 0.9195,
    half-width 1.96 * sqrt(0 + 0.9604) / 23.84 = 0.0806)."""
    from sce_checks.regression.saved import reference_results

    refs = reference_results(load_baseline(workdir / "base.json"), "base.json")
    assert {(r.model, r.variant) for r in refs} == {("baseline base.json", "unconstrained"), ("baseline base.json", "minimal")}
    for r in refs:
        assert r.figures["validity"] == 1.0 and r.figures["validity_ci"] == [pytest.approx(0.8389, abs=1e-4), 1.0]
