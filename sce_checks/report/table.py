"""The terminal report (tabulate)."""

from __future__ import annotations

from typing import Sequence

from tabulate import tabulate

from sce_checks.report.summary import example_tables, notes, result_tables
from sce_checks.results import CheckResult


def render_table(results: Sequence[CheckResult], *, examples: int = 3, tablefmt: str = "simple",
                 skipped: Sequence[str] = ()) -> str:
    """The SCE table, the table of the other checks, notes (unparsed outputs, checks that could
    not run), then the worst examples of each result."""
    if not results and not skipped:
        return "sce-checks: no results."
    from sce_checks.checks import unit_of

    parts = [tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True)
             for headers, rows in result_tables(results)]
    lines = notes(results, skipped)
    if lines:
        parts.append("\n".join(lines))
    if examples:
        for r in results:
            for title, headers, rows in example_tables(r, examples):
                parts.append(f"{title}: {r.model} / {r.dataset} / {unit_of(r)}\n"
                             + tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True))
    return "\n\n".join(parts)
