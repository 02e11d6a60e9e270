"""The terminal report (tabulate). The Markdown report is the same layout with another cell
escaping: every header, cell, note and title passes through ``text`` (report/safe.py), since
replies and explanations a model wrote end up in them."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from tabulate import tabulate

from sce_checks.report.safe import plain
from sce_checks.report.summary import example_tables, notes, result_tables
from sce_checks.results import CheckResult


def safe_table(rows: Sequence[Sequence[Any]], headers: Sequence[Any], tablefmt: str,
               text: Callable[[Any], str] = plain) -> str:
    """``tabulate`` over cells made inert by ``text``."""
    return tabulate([[text(c) for c in row] for row in rows], headers=[text(h) for h in headers],
                    tablefmt=tablefmt, disable_numparse=True)


def render_table(results: Sequence[CheckResult], *, examples: int = 3, tablefmt: str = "simple",
                 skipped: Sequence[str] = (), text: Callable[[Any], str] = plain) -> str:
    """The SCE table, the table of the other checks, notes (unparsed outputs, checks that could
    not run), then the worst examples of each result; every piece made inert by ``text``."""
    if not results and not skipped:
        return "sce-checks: no results."
    from sce_checks.checks import unit_of

    parts = [safe_table(rows, headers, tablefmt, text) for headers, rows in result_tables(results)]
    lines = notes(results, skipped)
    if lines:
        parts.append("\n".join(text(line) for line in lines))
    if examples:
        for r in results:
            for title, headers, rows in example_tables(r, examples):
                parts.append(text(f"{title}: {r.model} / {r.dataset} / {unit_of(r)}") + "\n"
                             + safe_table(rows, headers, tablefmt, text))
    return "\n\n".join(parts)
