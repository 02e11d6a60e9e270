"""The terminal report fitted to the terminal (sce_checks/report/table.py): widths computed by
hand, wrapping, the block layout of a narrow terminal, and `sce-audit` at 80 and 200 columns."""

from __future__ import annotations

import json

from sce_checks.layout import MIN_COLUMN, column_widths, display_width, fit_table, wrap
from sce_checks.report.table import render_table
from sce_checks.results import CheckResult, ExampleRecord
from tests.helpers.audit_process import run_sce_audit

HEADERS = ["model", "dataset", "variant", "validity [95% CI]", "verdict"]
ROWS = [["python:toy_models:boundary", "toy", "unconstrained", "100.0% [67.6%, 100.0%]", "PASS"],
        ["python:toy_models:boundary", "toy", "minimal", "50.0% [21.5%, 78.5%]", "FAIL"]]


def test_a_table_that_fits_is_one_line_per_row():
    expected = [
        "model                       dataset  variant        validity [95% CI]       verdict",
        "--------------------------  -------  -------------  ----------------------  -------",
        "python:toy_models:boundary  toy      unconstrained  100.0% [67.6%, 100.0%]  PASS",
        "python:toy_models:boundary  toy      minimal        50.0% [21.5%, 78.5%]    FAIL",
    ]
    assert fit_table(HEADERS, ROWS, None).splitlines() == expected
    assert fit_table(HEADERS, ROWS, 84).splitlines() == expected  # 84 columns wide: fits in 84
    assert max(len(line) for line in fit_table(HEADERS, ROWS, 83).splitlines()) <= 83


def test_column_widths_by_hand():
    least = [9, 8, 5, 5]  # each column's longest word
    assert column_widths([9, 30, 12, 5], least, 60) == [9, 30, 12, 5]  # 56 fits
    # 9 + c + 12 + 5 <= 40: the cap is 14, and the 30-wide column alone is narrowed
    assert column_widths([9, 30, 12, 5], least, 40) == [9, 14, 12, 5]
    # 9 + 2c + 5 <= 41: cap 13 (40 columns), the one spare column goes to the first narrowed column
    assert column_widths([9, 30, 25, 5], [9, 8, 8, 5], 41) == [9, 14, 13, 5]
    # a column is never narrower than its longest word (20): 9 + 20 + c + 5 <= 45, cap 11
    assert column_widths([9, 30, 25, 5], [9, 20, 8, 5], 45) == [9, 20, 11, 5]
    assert column_widths([9, 30, 25, 5], [9, 20, 8, 5], 41) is None  # 42 columns of words: no table


def test_wrap_breaks_between_figures_then_at_spaces_and_cuts_only_long_words():
    assert wrap("validity [95% CI]", 10) == ["validity", "[95% CI]"]
    assert wrap("abcdefghijkl", 5) == ["abcde", "fghij", "kl"]
    assert wrap("ok", 5) == ["ok"] and wrap("", 5) == [""]
    figures = "validity_agreement -; prompt_consistency 1.000 [0.610, 1.000]; n_pairs 6"
    assert wrap(figures, 45) == ["validity_agreement -;", "prompt_consistency 1.000 [0.610, 1.000];", "n_pairs 6"]
    # a figure wider than the column: its words, then the next figure on the same line
    assert wrap(figures, 30) == ["validity_agreement -;", "prompt_consistency 1.000", "[0.610, 1.000]; n_pairs 6"]
    assert display_width("日本語テキスト") == 14 and display_width("e\u0301") == 1  # wide; a combining accent
    assert wrap("日本語テキスト", 6) == ["日本語", "テキス", "ト"]


def test_a_wide_table_wraps_its_widest_columns_and_a_narrow_terminal_shows_blocks():
    # 80 columns: validity (22 wide) narrowed to 19 = 80 - 4 separators - 26 - 7 - 13 - 7
    assert fit_table(HEADERS, ROWS, 80).splitlines() == [
        "model                       dataset  variant        validity [95% CI]    verdict",
        "--------------------------  -------  -------------  -------------------  -------",
        "python:toy_models:boundary  toy      unconstrained  100.0% [67.6%,       PASS",
        "                                                    100.0%]",
        "",  # wrapped rows apart by a blank line
        "python:toy_models:boundary  toy      minimal        50.0% [21.5%,        FAIL",
        "                                                    78.5%]",
    ]
    # 76 columns: the words (26 + 7 + 13 + 16 + 7 and 8 of separators = 77) do not fit: blocks
    assert fit_table(HEADERS, ROWS, 76).splitlines()[:6] == [
        "model              python:toy_models:boundary", "dataset            toy", "variant            unconstrained",
        "validity [95% CI]  100.0% [67.6%, 100.0%]", "verdict            PASS", ""]
    assert MIN_COLUMN == 16  # the 16 above: validity's floor, its longest word being 8

    blocks = fit_table(HEADERS, ROWS, 30).splitlines()
    assert max(display_width(line) for line in blocks) <= 30
    # headers 10 wide (a third of 30), values 18; a word longer than 18 is cut
    assert blocks[:2] == ["model       python:toy_models:", "            boundary"]
    assert blocks[4:6] == ["validity    100.0% [67.6%,", "[95% CI]    100.0%]"]
    assert "verdict     FAIL" in blocks
    assert blocks.count("") == 1  # two rows, one blank line between


def sce_result(variant: str, text: str) -> CheckResult:
    record = ExampleRecord("review-1", text, "negative", "positive", text + " but great", "negative", False, 0.4, 0.1)
    r = CheckResult("sce", "python:models:a-model-with-a-long-name", "reviews", variant, 1,
                    {"validity": 0.0, "generation_rate": 1.0, "validity_ci": [0.0, 0.79]}, [record],
                    {"distance": "levenshtein"})
    r.record_verdict("validity>=0.8", 0.0, passed=False)
    return r


def test_render_table_stays_within_80_and_200_columns_and_the_json_keeps_the_whole_text():
    text = "a very long review " * 20
    results = [sce_result("unconstrained", text), sce_result("minimal", text)]
    for width in (80, 200):
        out = render_table(results, width=width)
        assert max(display_width(line) for line in out.splitlines()) <= width, width
        squeezed = " ".join(out.split())
        assert "FAIL validity>=0.8 (0.000)" in squeezed and "a very long review" in squeezed
        assert text.strip() not in squeezed  # the cell is cut (60 characters) ...
    full = json.dumps(results[0].to_dict())
    assert json.dumps(text)[1:-1] in full  # ... the JSON has all of it
    assert render_table(results, width=200).splitlines()[0].startswith("model")  # a table at 200
    assert "verdict            FAIL" in render_table(results, width=80).splitlines()  # blocks at 80


def summary_of(output: str) -> list[str]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if " sce-checks " in line and line.startswith("="))
    return lines[start:]


def test_sce_audit_output_at_80_and_200_columns(workdir):
    """pytest's lines and the sce-checks summary fit the terminal at both widths; no column is
    empty; every figure and gate of the run is shown whole."""
    args = ["--model", "python:toy_models:far", "--dataset", "toy.toml", "--limit", "6", "--prediction", "generate",
            "--threshold", "validity>=0.5"]
    for width in (80, 200):
        run = run_sce_audit(args, env={"COLUMNS": str(width)}, timeout=300)
        assert run.returncode == 0, run.output
        summary = summary_of(run.output)
        assert summary[0] == "=" * ((width - len(" sce-checks ")) // 2) + " sce-checks " + "=" * (
            (width - len(" sce-checks ") + 1) // 2)  # pytest's separator: the width pytest saw
        assert max(display_width(line) for line in summary) <= width
        squeezed = " ".join(" ".join(summary).split())
        assert "ok validity>=0.5 (1.000)" in squeezed and "PASS" in squeezed
        if width == 200:  # one line per result, a header above them, no empty header
            header = next(line for line in summary if line.startswith("model"))
            assert header.split("  ")[-1].strip() == "verdict"
            assert [line.split()[2] for line in summary if line.startswith("python:toy_models:far")][:2] == [
                "unconstrained", "minimal"]
        else:  # a block per result
            assert summary.count("verdict            PASS") == 2


def test_an_assertion_message_fits_the_terminal_pytest_prints_it_on(monkeypatch):
    """The helpers' failures are printed in pytest's failures section: the worst examples in
    them as wide as the terminal at the time, COLUMNS when set."""
    import pytest

    from sce_checks.assertions import SCEAssertionError, assert_validity

    for width in (80, 200):
        monkeypatch.setenv("COLUMNS", str(width))
        with pytest.raises(SCEAssertionError) as failed:
            assert_validity(sce_result("minimal", "a very long review " * 20), at_least=0.8)
        message = str(failed.value)
        examples = message.split("worst examples:\n")[1].splitlines()  # the summary line above is kept whole
        assert len(examples) >= 2 and max(display_width(line) for line in examples) <= width
        assert "a very long review" in message and "invalid" in message
        header = [line for line in message.splitlines() if line.startswith("    id") and "counterfactual" in line]
        assert bool(header) == (width == 200)  # a table at 200; at 80 the text columns would be under 16: blocks
