"""The Markdown report and $GITHUB_STEP_SUMMARY (sce_checks/report/markdown.py): the verdict and
every gate with PASS/FAIL, hostile model text inert in the new sections, and GitHub's 1 MiB per
step kept on a huge hostile audit (examples left out first, with a line saying how many)."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

from sce_checks.cli import main
from sce_checks.regression.gate import Comparison
from sce_checks.report.markdown import STEP_SUMMARY_LIMIT, render_markdown, write_markdown
from sce_checks.results import CheckResult, ExampleRecord

ENV = {"model": "python:m", "seed": 0, "limit": 3, "libraries": {}}
HOSTILE = "<img src=x onerror=alert(1)> | [a](javascript:alert(1)) `c` *b* \x1b[32mPASS\x1b[0m\n| x |"


def github(text: str) -> str:
    """Markdown rendered as GitHub does what matters here: CommonMark, raw HTML kept, pipe tables."""
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(text)


def result(i: int, text: str = "a short review", model: str = "python:m", dataset: str | None = None) -> CheckResult:
    examples = [ExampleRecord(f"e{j}", f"{text} {j}", "negative", "positive", f"{text} but great", "negative",
                              False, 0.5, 0.1) for j in range(3)]
    return CheckResult("sce", model, dataset or f"data{i}", "minimal", 3,
                       {"validity": 0.0, "generation_rate": 1.0}, examples, {"distance": "levenshtein"})


def tables(html: str) -> list[list[list[str]]]:
    """Each table of rendered HTML as rows of cell texts (header row first)."""
    out = []
    for table in re.findall(r"<table>(.*?)</table>", html, re.S):
        out.append([re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S) for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)])
    return out


def test_every_gate_is_shown_with_pass_or_fail_and_the_verdict_comes_first():
    a, b = result(1), result(2)
    a.record_verdict("validity>=0.8", 0.0, passed=False)
    a.record_verdict("generation_rate>=0.5", 1.0, passed=True)
    b.record_verdict("validity>=0.5", 0.0, passed=False, expected_failure=True)
    compared = [Comparison("sce/python:m/data1/minimal", "validity", 0.6, 0.0, -0.6, True),
                Comparison("sce/python:m/data1/minimal", "mean_rcf_a", 0.2, 0.2, 0.0, False),
                Comparison("sce/python:m/data1/minimal", "mean_icf_a", None, None, None, False),  # undefined: left out
                Comparison("sce/python:m/data1/minimal", "mean_distance", 0.1, 0.3, 0.2, False, gated=False)]
    text = render_markdown([a, b], ENV, baselines=[("base.json", compared)])
    # the expected failure is not a gate that failed; a figure that is not gated is no gate
    assert text.splitlines()[2] == "**FAIL**: 2 of 4 gates failed"
    gates = tables(github(text.split("## Gates")[1].split("## Worst")[0]))
    assert gates[0][1:] == [["python:m / data1 / minimal", "validity&gt;=0.8", "0.000", "FAIL"],
                            ["python:m / data1 / minimal", "generation_rate&gt;=0.5", "1.000", "PASS"],
                            ["python:m / data2 / minimal", "validity&gt;=0.5", "0.000", "XFAIL"]]
    assert gates[1][0] == ["result", "figure", "before", "after", "change", "decided by", "verdict"]
    assert [row[1:] for row in gates[1][1:]] == [["validity", "0.6000", "0.0000", "-0.6000", "tolerance", "FAIL"],
                                                ["mean_rcf_a", "0.2000", "0.2000", "+0.0000", "tolerance", "PASS"],
                                                ["mean_distance", "0.1000", "0.3000", "+0.2000", "tolerance",
                                                 "not gated"]]
    assert "Baseline base.json:" in text

    passing = result(3)
    passing.record_verdict("generation_rate>=0.5", 1.0, passed=True)
    assert render_markdown([passing], ENV).splitlines()[2] == "**PASS**: all 1 gates hold"
    plain = render_markdown([result(4)], ENV)
    assert plain.splitlines()[2] == "**No gates**" and "No gate was set" in plain


def test_model_text_in_names_thresholds_and_paths_is_inert():
    r = result(1, text=HOSTILE, model=f"python:{HOSTILE}", dataset=HOSTILE)
    r.record_verdict(f"validity>=0.8 {HOSTILE}", 0.0, passed=False)
    compared = [Comparison(HOSTILE, "validity", 0.6, 0.0, -0.6, True)]
    text = render_markdown([r], ENV, baselines=[(f"base{HOSTILE}.json", compared)])
    assert "<" not in text and "\x1b" not in text
    html = github(text)
    assert html.count("<strong>") == 1  # the verdict's own
    assert not re.search(r"<(img|a|code|em|script)\b", html)  # no element came from the text
    for table in tables(html):  # no cell break came from the text: every row as wide as its header
        assert len({len(row) for row in table}) == 1
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # shown, as text


def huge_hostile_audit(n: int) -> list[CheckResult]:
    out = []
    for i in range(n):
        r = result(i, text="<" * 80 + HOSTILE)  # "<" takes 4 bytes escaped: the worst case per character
        r.record_verdict("validity>=0.8", 0.0, passed=False)
        out.append(r)
    return out


def test_a_huge_hostile_audit_stays_within_githubs_step_summary_limit(tmp_path, monkeypatch):
    results = huge_hostile_audit(1200)
    full = render_markdown(results, ENV)
    assert len(full.encode()) > 2 * STEP_SUMMARY_LIMIT and full.count("\n### ") == 1200  # the --markdown file: all

    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier output of this step\n" * 4000, encoding="utf-8")  # 112 KB already there
    before = summary.stat().st_size
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    write_markdown(tmp_path / "full.md", results, ENV)
    assert (tmp_path / "full.md").read_text(encoding="utf-8") == full
    assert STEP_SUMMARY_LIMIT - 4096 < summary.stat().st_size <= STEP_SUMMARY_LIMIT
    added = summary.read_text(encoding="utf-8")[before:]
    kept = added.count("\n### ")
    assert 0 < kept < 1200
    assert f"*{1200 - kept} of 1200 example tables left out: GitHub keeps at most 1 MiB of summary per step" in added
    assert added.rstrip().endswith("(--markdown and --json write them all).*")
    # the summary and the gates came whole: a row per result in each
    assert len(re.findall(r"^\| python:m +\| data\d+ ", added, re.M)) == 1200
    assert len(re.findall(r"^\| python:m / data\d+ / minimal +\| validity&gt;=0\.8 ", added, re.M)) == 1200
    assert "**FAIL**: 1200 of 1200 gates failed" in added

    # a step whose summary is full gets nothing more (GitHub would drop the whole step's summary)
    summary.write_text("x" * (STEP_SUMMARY_LIMIT - 100), encoding="utf-8")
    write_markdown(None, results, ENV)
    assert summary.stat().st_size == STEP_SUMMARY_LIMIT - 100


def test_when_even_the_summary_does_not_fit_it_is_cut_at_a_line_with_a_note():
    results = huge_hostile_audit(200)
    text = render_markdown(results, ENV, max_bytes=20_000)
    assert len(text.encode()) <= 20_000 and "\n### " not in text
    assert text.endswith("*The report was cut here: GitHub keeps at most 1 MiB of summary per step "
                         "(--markdown and --json write it all).*\n")
    body = text.rsplit("\n\n", 1)[0]
    assert all(line.startswith("|") or not line.startswith(" ") for line in body.splitlines())  # whole lines
    assert render_markdown(results, ENV, max_bytes=50) == ""  # no room even for the note


def test_sce_audit_appends_its_gates_and_baseline_to_the_step_summary(workdir, monkeypatch):
    def audit(*args):
        return main(["--dataset", "toy.toml", "--limit", "6", "--prediction", "generate", "-q", *args])

    assert audit("--model", "python:toy_models:boundary", "--save-baseline", "base.json") == 0
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(workdir / "summary.md"))
    assert audit("--model", "python:toy_models:far", "--baseline", "base.json", "--tolerance", "0.01",
                 "--threshold", "validity>=0.5", "--markdown", "r.md") == 1
    text = (workdir / "summary.md").read_text(encoding="utf-8")
    assert text == (workdir / "r.md").read_text(encoding="utf-8") + "\n"
    assert re.search(r"^\*\*FAIL\*\*: \d+ of \d+ gates failed$", text, re.M)
    gates = text.split("## Gates")[1]
    assert re.search(r"\| validity&gt;=0\.5 +\| 1\.000 +\| PASS", gates)  # the threshold held
    assert re.search(r"\| mean\\_rcf\\_a +\|.*\| FAIL", gates)  # the baseline's figure regressed
    assert "Baseline" in gates and "base.json" in gates
