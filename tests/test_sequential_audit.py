"""``--sequential`` end to end on rule models with a chosen validity (tests/helpers/sequential_models.py,
a 200-point grid): clear passes and fails stop early with fewer model calls than the fixed run,
a borderline model runs to the limit and fails undecided, a figure no confidence sequence can
gate is refused before any model call, and the JSON report, the pytest option and the audit-file
key carry it (docs/sequential.md, "Sequential audits")."""

from __future__ import annotations

import json
import random
import sys
from importlib import resources

import jsonschema
import pytest

from sce_checks.cli import main
from sce_checks.errors import UserInputError
from sce_checks.stopping import check_sequential, gated_figure
from sce_checks.tasks import sample_indices
from sce_checks.thresholds import Threshold
from tests.helpers.projects import model_project, pytester_project
from tests.helpers.sequential_models import BIG_TOML, MODELS

LIMIT = 160


@pytest.fixture
def bigdir(tmp_path, monkeypatch):
    with model_project(tmp_path, monkeypatch, {"big.toml": BIG_TOML, "big_models.py": MODELS}, "big_models") as d:
        yield d


def audit(model: str, *args: str, report: str = "r.json") -> tuple[int, dict]:
    code = main(["--model", f"python:big_models:{model}", "--dataset", "big.toml", "--limit", str(LIMIT),
                 "--batch-size", "8", "--variant", "minimal", "--prediction", "generate", "--threshold", "validity>=0.5",
                 "--json", report, "-q", *args])
    return code, json.loads(open(report).read())


def block(report: dict) -> dict:
    (result,) = report["results"]
    return result["sequential"]


def conversations(report: dict) -> int:
    return report["environment"]["model_calls"]["chat_conversations"]


@pytest.mark.parametrize("model, code, state", [("sure", 0, "pass"), ("never", 1, "fail")])
def test_a_clear_gate_stops_in_the_first_half_with_fewer_model_calls(bigdir, model, code, state):
    fixed_code, fixed = audit(model, "--no-cache", report="fixed.json")
    got, report = audit(model, "--sequential", "--no-cache")
    assert (fixed_code, got) == (code, code)
    seq = block(report)
    assert seq["decided"] and seq["stopped_after"] <= LIMIT // 2 and seq["limit"] == LIMIT
    (gate,) = seq["gates"]
    assert gate["threshold"] == "validity>=0.5" and gate["state"] == state and gate["decided_at"] == seq["stopped_after"]
    assert [n for n, _, _ in gate["history"]] == list(range(8, seq["stopped_after"] + 1, 8))
    assert report["results"][0]["n"] == seq["stopped_after"] < fixed["results"][0]["n"] == LIMIT
    assert conversations(report) < conversations(fixed)
    assert report["environment"]["sequential"] is True
    assert report["environment"]["samples"] == fixed["environment"]["samples"]  # the sample a baseline is measured on
    schema = json.loads(resources.files("sce_checks").joinpath("data/report-v1.schema.json").read_text())
    jsonschema.validate(report, schema)


def test_the_last_pass_over_the_prefix_costs_no_model_call(bigdir):
    """The figures come from the checks run once more on the audited prefix: answered by the
    response cache, or under --no-cache by the run's own, so both runs send the same requests."""
    _, cached = audit("sure", "--sequential")
    _, uncached = audit("sure", "--sequential", "--no-cache", report="u.json")
    assert conversations(cached) == conversations(uncached) > 0
    assert cached["results"][0]["validity"] == 1.0 and cached["results"][0]["n_generated"] == block(cached)["stopped_after"]


def test_a_borderline_model_runs_to_the_limit_and_fails_undecided(bigdir, capsys):
    code, report = audit("half", "--sequential")
    assert code == 1
    seq = block(report)
    assert seq["stopped_after"] == LIMIT and not seq["decided"]
    assert seq["gates"][0]["state"] == "undecided" and seq["gates"][0]["final"] == "fail"
    assert "undecided" in seq["reason"]
    out = capsys.readouterr().out
    assert f"validity>=0.5 is undecided after {LIMIT} of {LIMIT} examples (--sequential)" in out
    assert f"sequential: big stopped after {LIMIT} of {LIMIT} examples: limit reached with 1 gate(s) undecided" in out
    verdict = report["results"][0]["info"]["thresholds"][0]
    assert verdict["passed"] is False and verdict["undecided"] is True


def test_the_stop_line_is_in_the_terminal_and_markdown_and_the_html_plots_the_sequence(bigdir, capsys):
    code, report = audit("sure", "--sequential", "--markdown", "r.md", "--html", "r.html")
    n = block(report)["stopped_after"]
    line = f"sequential: big stopped after {n} of {LIMIT} examples: every gate decided (minimal: validity>=0.5 passed at n={n})"
    assert code == 0 and line in capsys.readouterr().out
    assert line.replace(">", "&gt;") in (bigdir / "r.md").read_text()
    html = (bigdir / "r.html").read_text()
    assert 'data-plot="sequential_gates"' in html and f"stopped after {n} of {LIMIT} examples" in html
    _, fixed = audit("sure", "--html", "fixed.html", report="fixed.json")
    assert 'data-plot="sequential_gates"' not in (bigdir / "fixed.html").read_text()


def test_a_rerun_from_the_cache_stops_at_the_same_example_without_a_model_call(bigdir):
    _, first = audit("never", "--sequential")
    _, again = audit("never", "--sequential", report="again.json")
    assert block(again)["stopped_after"] == block(first)["stopped_after"]
    assert block(again)["gates"] == block(first)["gates"]
    assert conversations(again) == 0


@pytest.mark.parametrize("threshold", ["median_rcf<=0.1", "tm<=0.1", "perturbation_failure_rate<=0.1"])
def test_a_figure_no_sequence_can_gate_is_refused_before_any_model_call(bigdir, capsys, threshold):
    check = "inv" if threshold.startswith("perturbation") else "sce"
    extra = ["--check", check] if check != "sce" else []
    code = main(["--model", "python:big_models:sure", "--dataset", "big.toml", "--sequential", "--threshold", threshold,
                 "--prediction", "generate", "-q", *extra])
    assert code == 2
    err = capsys.readouterr()
    lines = [line for line in (err.out + err.err).splitlines() if "--sequential cannot gate" in line]
    assert len(lines) == 1 and threshold in lines[0]
    model = sys.modules.get("big_models")
    assert model is None or model.sure.calls == 0 or not (bigdir / "cache").exists()


def test_which_figures_a_sequence_can_gate():
    assert gated_figure(Threshold.parse("validity_lower>=0.5"), "sce")[::2] == ("validity", "binary")
    assert gated_figure(Threshold.parse("validity>=0.5"), "sce")[::2] == ("validity", "binary")
    assert gated_figure(Threshold.parse("mean_rcf_a<=0.1"), "sce")[::2] == ("mean_rcf_a", "mean")
    assert gated_figure(Threshold.parse("failure_rate_upper<=0.2"), "inv")[::2] == ("failure_rate", "binary")
    for text, check in [("median_rcf<=0.1", "sce"), ("phi>=0.2", "phi_cct"), ("mean_spearman>=0.2", "self_consistency")]:
        with pytest.raises(UserInputError, match="--sequential cannot gate"):
            gated_figure(Threshold.parse(text), check)
    check_sequential(["validity>=0.5", "minimal:validity_lower>=0.5"], ["unconstrained", "minimal"])


def test_the_sequential_order_is_the_same_sample_in_seeded_random_order():
    shuffled = sample_indices(200, 160, 3, shuffled=True)
    assert sorted(shuffled) == sample_indices(200, 160, 3) and shuffled != sorted(shuffled)
    assert sample_indices(200, 160, 3, shuffled=True) == shuffled
    whole = sample_indices(50, None, 1, shuffled=True)
    assert sorted(whole) == list(range(50)) and whole != list(range(50))
    assert shuffled[:8] == random.Random(3).sample(range(200), 160)[:8]


@pytest.fixture
def bigproject(pytester, monkeypatch, tmp_path):
    return pytester_project(pytester, monkeypatch, tmp_path, "big", BIG_TOML, MODELS)


def test_the_pytest_option_and_the_audit_file_key(bigproject):
    common = ["-p", "no:cacheprovider", "--sce-dataset", "big.toml", "--sce-limit", str(LIMIT), "--sce-prediction",
              "generate", "--sce-variant", "minimal", "--sce-model", "python:big_models:never"]
    run = bigproject.runpytest(*common, "--sce-run", "--sce-sequential", "--sce-threshold", "validity_lower>=0.5",
                               "--sce-json", "opt.json")
    assert run.ret == 1
    seq = json.loads((bigproject.path / "opt.json").read_text())["results"][0]["sequential"]
    assert seq["gates"][0]["threshold"] == "validity_lower>=0.5" and seq["stopped_after"] <= LIMIT // 2
    (bigproject.path / "big.sce.toml").write_text(
        'model = "python:big_models:sure"\ndatasets = ["big.toml"]\nvariants = ["minimal"]\nlimit = 160\n'
        'prediction = "generate"\nsequential = true\n[thresholds]\nvalidity = ">= 0.5"\n')
    run = bigproject.runpytest("-p", "no:cacheprovider", "big.sce.toml", "--sce-json", "file.json")
    assert run.ret == 0
    seq = json.loads((bigproject.path / "file.json").read_text())["results"][0]["sequential"]
    assert seq["decided"] and seq["gates"][0]["state"] == "pass" and seq["stopped_after"] <= LIMIT // 2
    base = bigproject.runpytest(*common, "--sce-run", "--sce-model", "python:big_models:sure", "--sce-save-baseline", "b.json")
    assert base.ret == 0
    (bigproject.path / "big.sce.toml").write_text(
        'model = "python:big_models:never"\ndatasets = ["big.toml"]\nvariants = ["minimal"]\nlimit = 160\n'
        'prediction = "generate"\nsequential = true\nbaseline = "b.json"\ntolerance = 0.1\n'
        '[thresholds]\ngeneration_rate = ">= 0.5"\n')
    run = bigproject.runpytest("-p", "no:cacheprovider", "big.sce.toml", "--sce-json", "fb.json")
    assert run.ret == 1  # the threshold holds; the baseline's validity regressed
    written = json.loads((bigproject.path / "fb.json").read_text())
    seq = written["results"][0]["sequential"]
    assert seq["stopped_after"] <= LIMIT // 2 and {c["figure"]: c["state"] for c in seq["baseline"]}["validity"] == "fail"
    row = {r["metric"]: r for r in written["baseline"][0]["rows"]}["validity"]  # the audit file's own baseline
    assert row["regressed"] and row["decided_by"] == "sequential" and row["tolerance"] == 0.1
    (bigproject.path / "big.sce.toml").write_text(
        'model = "python:big_models:sure"\ndatasets = ["big.toml"]\nsequential = true\n[thresholds]\nmedian_rcf = "<= 0.1"\n')
    run = bigproject.runpytest("-p", "no:cacheprovider", "big.sce.toml")
    assert run.ret == 2
    run.stdout.fnmatch_lines(["*big.sce.toml: sequential: --sequential cannot gate median_rcf<=0.1*"])


def against_baseline(model: str, *args: str, report: str = "b.json") -> tuple[int, dict]:
    """``model`` compared with the baseline ``base.json`` (the ``sure`` model) on validity, with no
    threshold: the comparison alone decides when the audit stops."""
    code = main(["--model", f"python:big_models:{model}", "--dataset", "big.toml", "--limit", str(LIMIT),
                 "--batch-size", "8", "--variant", "minimal", "--prediction", "generate", "--baseline", "base.json",
                 "--baseline-metric", "validity", "--json", report, "-q", *args])
    return code, json.loads(open(report).read())


def validity_row(report: dict) -> dict:
    return {row["metric"]: row for row in report["baseline"][0]["rows"]}["validity"]


@pytest.fixture
def based(bigdir):
    assert audit("sure", "--save-baseline", "base.json")[0] == 0
    return bigdir


def test_a_clear_regression_is_decided_early_by_the_sequential_comparison(based, capsys):
    code, report = against_baseline("never", "--sequential", "--tolerance", "0.1")
    assert code == 1
    seq, row = block(report), validity_row(report)
    (condition,) = seq["baseline"]
    assert condition["state"] == "fail" and condition["path"].endswith("base.json") and seq["decided"]
    assert seq["stopped_after"] <= LIMIT // 2 and condition["decided_at"] == seq["stopped_after"]
    assert row["regressed"] and row["decided_by"] == "sequential" and row["compared"] == "sequential"
    assert row["sequential"]["state"] == "fail" and row["sequential"]["decided_at"] == seq["stopped_after"]
    assert row["sequential"]["mean_change"] == -1.0 and "undecided" not in row and row.get("p_holm") is None
    assert report["baseline"][0]["regressed"] == 1 and report["baseline"][0]["undecided"] == 0
    out = capsys.readouterr().out
    assert f"REGRESSED: sce/big/minimal validity fell from 1.00 to 0.00 (sequential: mean change -1.00" in out
    assert f"a worsening beyond the tolerance shown at n={seq['stopped_after']}" in out
    # without --sequential the fixed-n paired test decides, on every example
    code, fixed = against_baseline("never", report="fixed.json")
    assert code == 1 and validity_row(fixed)["decided_by"] == "McNemar" and "sequential" not in validity_row(fixed)
    assert validity_row(fixed)["n_pairs"] == LIMIT


def test_a_clear_non_regression_is_decided_early(based):
    code, report = against_baseline("sure", "--sequential", "--tolerance", "0.2", "--markdown", "b.md")
    assert code == 0
    seq, row = block(report), validity_row(report)
    assert seq["decided"] and seq["stopped_after"] <= LIMIT // 2 and seq["baseline"][0]["state"] == "pass"
    assert not row["regressed"] and row["decided_by"] == "sequential" and row["sequential"]["state"] == "pass"
    assert report["baseline"][0]["regressed"] == 0
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in (based / "b.md").read_text().splitlines()
             if line.startswith("| sce/big/minimal | validity ")]
    assert cells == [["sce/big/minimal", "validity", "1.0000", "1.0000", "+0.0000", "sequential", "PASS"]]


def test_a_borderline_comparison_is_undecided_at_the_limit_and_fails(based, capsys):
    """Validity 1.0 -> 0.5 against a tolerance of 0.5: the change is the tolerance itself, so no
    sequence can put it on either side; at the limit the comparison fails as UNDECIDED, with its
    sequence. An unchanged model against tolerance 0 would be the same case (only an improvement
    can be shown): that is refused before any model call."""
    code, report = against_baseline("half", "--sequential", "--tolerance", "0.5")
    assert code == 1
    seq, row = block(report), validity_row(report)
    assert seq["stopped_after"] == LIMIT and not seq["decided"] and seq["baseline"][0]["state"] == "undecided"
    assert "the baseline comparison of validity undecided, which fails" in seq["reason"]
    assert row["regressed"] and row["decided_by"] == "sequential" and row["sequential"]["state"] == "undecided"
    assert row["undecided"].startswith(f"after {LIMIT} of {LIMIT} examples (--sequential) the confidence sequence")
    assert report["baseline"][0]["undecided"] == 1
    out = capsys.readouterr().out
    assert "1 undecided" in out and "UNDECIDED: sce/big/minimal validity fell from 1.00 to 0." in out
    assert f"n={LIMIT} [" in out
    capsys.readouterr()
    code = main(["--model", "python:big_models:sure", "--dataset", "big.toml", "--limit", str(LIMIT), "--variant",
                 "minimal", "--baseline", "base.json", "--baseline-metric", "validity", "--sequential", "--json",
                 "same.json", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and not (based / "same.json").exists() and len(err.strip().splitlines()) == 1
    assert "--tolerance: a --sequential comparison with a baseline needs a tolerance above 0 for validity" in err


def test_the_runs_alpha_sets_every_sequence(bigdir):
    """--alpha is each confidence sequence's level: a smaller alpha needs more examples to decide,
    and the comparisons share it (Bonferroni)."""
    _, loose = audit("sure", "--sequential", "--threshold", "validity>=0.8")
    _, strict = audit("sure", "--sequential", "--threshold", "validity>=0.8", "--alpha", "0.001", report="strict.json")
    assert {g["alpha"] for g in block(loose)["gates"]} == {0.05} and {g["alpha"] for g in block(strict)["gates"]} == {0.001}
    assert block(loose)["stopped_after"] < block(strict)["stopped_after"] < LIMIT
    assert audit("sure", "--save-baseline", "base.json")[0] == 0
    _, both = audit("sure", "--sequential", "--baseline", "base.json", "--tolerance", "0.2", "--alpha", "0.02",
                    report="both.json")
    assert sorted(c["figure"] for c in block(both)["baseline"]) == ["mean_rcf_a", "validity"]  # the primary figures
    assert {c["alpha"] for c in block(both)["baseline"]} == {0.01}


class _Record:
    def __init__(self, id: str, valid: bool) -> None:
        self.id, self.valid = id, valid

    def to_dict(self) -> dict:
        return {"id": self.id, "valid": self.valid}


class _Result:
    def __init__(self, unit: str, batch) -> None:
        self.unit, self.dataset, self.info = unit, "d", {}
        self.examples = [_Record(i, v) for i, v in batch]


def test_the_loop_stops_when_its_gates_are_decided_and_ignores_a_check_that_cannot_run():
    """`audit_sequentially` on a stand-in for the checks: a gate on a unit with no result (its
    check cannot run here) is not waited for; the last pass runs on the audited prefix."""
    from sce_checks.stopping import audit_sequentially, parsed_thresholds, questions

    examples = [(f"e{i}", True) for i in range(160)]
    calls = []

    def run_checks(batch):
        calls.append(len(batch))
        return [_Result("minimal", batch)], [{"check": "inv"}]

    gates = questions(parsed_thresholds(["minimal:validity>=0.5", "inv:failure_rate<=0.5"]), ["minimal", "inv"], 0.05, 160)
    results, _, block = audit_sequentially(examples, 8, gates, run_checks, lambda r: r.unit)
    assert block["decided"] and block["stopped_after"] == calls[-1] == len(results[0].examples) < 160
    assert calls[:-1] == [8] * (len(calls) - 1)
    assert "validity>=0.5 passed" in block["reason"] and "failure_rate" not in block["reason"]


def test_sce_example_items_beyond_the_audited_prefix_are_skipped(bigproject):
    bigproject.makepyfile(test_each="""
        def test_each(sce_example):
            assert sce_example.valid
    """)
    run = bigproject.runpytest("-p", "no:cacheprovider", "--sce-dataset", "big.toml", "--sce-limit", "40",
                               "--sce-prediction", "generate", "--sce-variant", "minimal", "--sce-model",
                               "python:big_models:sure", "--sce-sequential", "--sce-threshold", "validity>=0.5")
    outcomes = run.parseoutcomes()
    assert outcomes["passed"] + outcomes["skipped"] == 40 and 0 < outcomes["passed"] < 40


def test_with_no_gate_the_rest_is_audited_in_one_pass_after_the_first_batch(bigdir):
    """Nothing to decide: --sequential audits every example, the first batch and then the rest in
    one pass. Batch by batch (20 batches of 8) the rule model got 49 batched calls; the first
    batch's x* search rings and one pass over the rest take 13 (the fixed run: 4)."""
    args = ["--model", "python:big_models:sure", "--dataset", "big.toml", "--limit", str(LIMIT), "--batch-size", "8",
            "--variant", "minimal", "--prediction", "generate", "--no-cache", "-q"]
    assert main([*args, "--json", "fixed.json"]) == 0
    assert main([*args, "--sequential", "--json", "r.json"]) == 0
    fixed, report = (json.loads((bigdir / name).read_text()) for name in ("fixed.json", "r.json"))
    seq = block(report)
    assert seq["stopped_after"] == LIMIT and seq["reason"] == "no gate to decide: every example audited"
    assert [report["results"][0][k] for k in ("n", "validity", "mean_rcf_a")] == \
        [fixed["results"][0][k] for k in ("n", "validity", "mean_rcf_a")]
    assert report["environment"]["model_calls"]["chat_calls"] <= 13
