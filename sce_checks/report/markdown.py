"""Markdown report, also appended to $GITHUB_STEP_SUMMARY in GitHub Actions, where it is read on a
pull request's checks page: the verdict first, the summary table, every gate (thresholds and
baseline comparisons) with PASS/FAIL, notes, then the worst examples of each result.

Every piece of text is escaped (sce_checks/safe.py: markdown_text): GitHub renders HTML and Markdown
syntax, and model replies end up in the tables. GitHub takes at most 1 MiB of step summary per
step and drops a larger one whole ("Step isolation and limits", GitHub Docs: Workflow commands
for GitHub Actions), so what goes there is kept within what the step has left: the example
sections go first, with a line saying how many; the full report is in ``--markdown`` and JSON.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from sce_checks.cells import fmt
from sce_checks.checks import unit_of
from sce_checks.errors import UserInputError
from sce_checks.paths import write_atomic
from sce_checks.report.summary import decoding_words, example_tables, notes, result_tables
from sce_checks.report.table import safe_table
from sce_checks.results import CheckResult
from sce_checks.safe import markdown_text

STEP_SUMMARY_LIMIT = 1024 * 1024  # bytes a step's summary may take (GitHub Docs, see above)


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _table(headers: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    return safe_table(rows, headers, "github", markdown_text)


def _where(r: CheckResult) -> str:
    return f"{r.model} / {r.dataset} / {unit_of(r)}"


def threshold_rows(results: Sequence[CheckResult]) -> list[list[str]]:
    """One row per threshold judged on a result: where, gate, value, PASS / FAIL / XFAIL."""
    rows = []
    for r in results:
        for v in r.info.get("thresholds") or []:
            verdict = "PASS" if v["passed"] else ("XFAIL" if v.get("expected_failure") else "FAIL")
            rows.append([_where(r), v["threshold"], fmt(v["actual"]), verdict])
    return rows


WORST_EXAMPLES = 3  # rows of each worst-examples table

_GATE_WORDS = {"REGRESSED": "FAIL", "UNDECIDED": "FAIL (undecided)", "ok": "PASS", "undefined": "-"}  # `Comparison.status` as a gate verdict


def baseline_rows(comparisons: Sequence[Any]) -> list[list[str]]:
    """One row per figure compared with a baseline (sce_checks/regression/gate.py: `Comparison`), its
    verdict the terminal's (`Comparison.status`) in gate words: FAIL, PASS, "-" (undefined) or
    "not gated" (a figure that cannot fail the gate is no gate), beside what decided it
    (`Comparison.decided_by`: "sequential" under --sequential, else the paired test); figures
    undefined before and after are left out."""
    four = lambda x: "-" if x is None else f"{x:.4f}"  # noqa: E731
    return [[c.key, c.metric, four(c.before), four(c.after), "-" if c.delta is None else f"{c.delta:+.4f}",
             c.decided_by(), _GATE_WORDS.get(c.status(), c.status())]
            for c in comparisons if not (c.before is None and c.after is None)]


def gates_section(results: Sequence[CheckResult], baselines: Sequence[tuple[str, Sequence[Any]]]) -> tuple[str, str]:
    """(the verdict line, the gates section)."""
    thresholds = threshold_rows(results)
    parts = ["## Gates"]
    if thresholds:
        parts.append(_table(["result", "threshold", "value", "verdict"], thresholds))
    verdicts = [row[-1] for row in thresholds]
    for path, comparisons in baselines:
        rows = baseline_rows(comparisons)
        verdicts += [row[-1] for row in rows]
        parts.append(markdown_text(f"Baseline {path}:") + "\n\n"
                     + (_table(["result", "figure", "before", "after", "change", "decided by", "verdict"], rows) if rows
                        else "no figure compared"))
    judged = [v for v in verdicts if v in ("PASS", "FAIL")]
    failed = judged.count("FAIL")
    if not judged:
        parts.append("No gate was set (no threshold, no baseline): the figures above are not judged.")
        return "**No gates**", "\n\n".join(parts)
    line = (f"**FAIL**: {failed} of {len(judged)} gates failed" if failed
            else f"**PASS**: all {len(judged)} gates hold")
    return line, "\n\n".join(parts)


def render_markdown(results: Sequence[CheckResult], environment: dict[str, Any], skipped: Sequence[str] = (),
                    baselines: Sequence[tuple[str, Sequence[Any]]] = (), examples: int = WORST_EXAMPLES,
                    max_bytes: int | None = None, extra: str = "") -> str:
    """The report as GitHub-flavoured Markdown; ``baselines`` are (path, comparisons) pairs. With
    ``max_bytes``, at most that many UTF-8 bytes: example sections are left out from the last
    (a line says how many), then, should that not be enough, the rest is cut at a line. ``extra``:
    Markdown made inert by its writer (report/changes.py: the examples that changed), after the gates."""
    return _within(*_report_parts(results, environment, skipped, baselines, examples, extra), max_bytes)


def _report_parts(results: Sequence[CheckResult], environment: dict[str, Any], skipped: Sequence[str],
                  baselines: Sequence[tuple[str, Sequence[Any]]], examples: int, extra: str) -> tuple[str, list[str]]:
    """(the report but its example tables, the example tables): what `_within` fits in a size."""
    libs = environment.get("libraries", {})
    env_line = ", ".join(f"{k} {v}" for k, v in libs.items() if v)
    head = markdown_text(
        f"model {environment.get('model')}, seed {environment.get('seed')}, limit {environment.get('limit')}, "
        f"prediction {environment.get('prediction')}, elicitation {environment.get('elicitation')}, "
        f"parsing {environment.get('parsing')}{', ' + decoding_words(environment) if decoding_words(environment) else ''}; "
        f"sce-checks {environment.get('sce_checks_version')}, "
        f"Python {environment.get('python')}; {env_line}"
    )
    verdict, gates = gates_section(results, baselines)
    fixed = ["# sce-checks report", verdict, head]
    if results:
        fixed.append("## Summary\n\n" + "\n\n".join(_table(h, rows) for h, rows in result_tables(results)))
    else:
        fixed.append("## Summary\n\nsce-checks: no results.")
    fixed.append(gates)
    if extra:
        fixed.append(extra.strip())
    lines = notes(results, skipped)
    if lines:
        fixed.append("## Notes\n\n" + "\n".join(f"- {markdown_text(line)}" for line in lines))
    sections = [f"### {markdown_text(f'{title}: {_where(r)}')}\n\n{_table(headers, rows)}"
                for r in results for title, headers, rows in example_tables(r, examples)]
    if sections:
        fixed.append("## Worst examples")
    return "\n\n".join(fixed), sections


def _joined(parts: Sequence[str]) -> str:
    return "\n\n".join(parts) + "\n"


def _left_out(left: int, total: int) -> str:
    return (f"*{left} of {total} example tables left out: GitHub keeps at most 1 MiB of summary per step "
            f"(--markdown and --json write them all).*")


_CUT = "*The report was cut here: GitHub keeps at most 1 MiB of summary per step (--markdown and --json write it all).*"


def _within(fixed: str, sections: list[str], max_bytes: int | None) -> str:
    """``fixed`` then as many ``sections`` as fit in ``max_bytes`` bytes (all when None), and a
    line saying how many were left out; ``fixed`` itself cut at a line when even it does not fit."""
    whole = _joined([fixed, *sections])
    if max_bytes is None or _size(whole) <= max_bytes:
        return whole
    total = len(sections)
    kept: list[str] = []
    used = _size(fixed) + 1  # the parts so far, joined, with the final newline
    for section in sections:
        used += 2 + _size(section)
        if used + 2 + _size(_left_out(total - len(kept) - 1, total)) > max_bytes:
            break
        kept.append(section)
    while True:
        text = _joined([fixed, *kept, _left_out(total - len(kept), total)])
        if _size(text) <= max_bytes or not kept:
            break
        kept.pop()
    if _size(text) <= max_bytes:
        return text
    room = max_bytes - _size(_CUT) - 2
    if room <= 0:
        return ""
    head = fixed.encode("utf-8")[:room].decode("utf-8", "ignore")
    return head[: head.rfind("\n") + 1] + "\n" + _CUT + "\n"


def write_markdown(path, results: Sequence[CheckResult], environment: dict[str, Any], skipped: Sequence[str] = (),
                   baselines: Sequence[tuple[str, Sequence[Any]]] = (), extra: str = "") -> None:
    """The report to ``path`` (when given) and appended to ``$GITHUB_STEP_SUMMARY`` (when set),
    there within what is left of the step's 1 MiB."""

    parts = _report_parts(results, environment, skipped, baselines, WORST_EXAMPLES, extra)  # rendered once for both
    if path:
        write_atomic(path, _within(*parts, None))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        try:
            used = os.path.getsize(summary) if os.path.isfile(summary) else 0
            text = _within(*parts, STEP_SUMMARY_LIMIT - used - 1)
            if text:
                with open(summary, "a", encoding="utf-8") as fh:
                    fh.write(text + "\n")
        except OSError as exc:
            raise UserInputError(f"cannot append the report to $GITHUB_STEP_SUMMARY ({summary}): "
                                 f"{exc.strerror or exc}") from None
