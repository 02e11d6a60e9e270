"""The terminal report, fitted to the terminal's width (sce_checks/layout.py: `fit_table`, which
wraps cells and never cuts them). Nothing is cut: the cells the checks give are short already
(model text is cut at 60 characters, sce_checks/cells.py: `short`), and the whole text is in the
JSON report. Notes and titles are single lines, kept whole (a terminal wraps a long line by
itself, and a log stays searchable for them). Every header, cell, note and title passes through
`plain` (sce_checks/safe.py), since replies and explanations a model wrote end up in them.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from tabulate import tabulate

from sce_checks.checks import unit_of
from sce_checks.layout import fit_table
from sce_checks.report.summary import example_tables, notes, result_tables
from sce_checks.results import CheckResult
from sce_checks.safe import plain


def safe_table(rows: Sequence[Sequence[Any]], headers: Sequence[Any], tablefmt: str,
               text: Callable[[Any], str] = plain) -> str:
    """``tabulate`` over cells made inert by ``text`` (Markdown's tables, the baseline's)."""
    return tabulate([[text(c) for c in row] for row in rows], headers=[text(h) for h in headers],
                    tablefmt=tablefmt, disable_numparse=True)


def render_table(results: Sequence[CheckResult], *, examples: int = 3, skipped: Sequence[str] = (),
                 width: int | None = None) -> str:
    """The terminal report: the SCE table, the table of the other checks, notes (unparsed
    outputs, checks that could not run), then the worst examples of each result; no table wider
    than ``width`` (None: no limit), every piece inert."""
    if not results and not skipped:
        return "sce-checks: no results."

    def table(headers: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
        return fit_table([plain(h) for h in headers], [[plain(c) for c in row] for row in rows], width)

    parts = [table(headers, rows) for headers, rows in result_tables(results)]
    lines = notes(results, skipped)
    if lines:
        parts.append("\n".join(plain(line) for line in lines))
    if examples:
        for r in results:
            for title, headers, rows in example_tables(r, examples):
                parts.append(plain(f"{title}: {r.model} / {r.dataset} / {unit_of(r)}") + "\n" + table(headers, rows))
    return "\n\n".join(parts)
