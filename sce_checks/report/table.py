"""The terminal report (tabulate)."""

from __future__ import annotations

from typing import Sequence

from tabulate import tabulate

from sce_checks.report.summary import (
    CHECK_HEADERS,
    EXAMPLE_HEADERS,
    FAILING_HEADERS,
    HEADERS,
    check_rows,
    example_rows,
    failing_rows,
    summary_rows,
    unparsed_line,
)
from sce_checks.results import CheckResult


def render_table(results: Sequence[CheckResult], *, examples: int = 3, tablefmt: str = "simple",
                 skipped: Sequence[str] = ()) -> str:
    """The SCE table, the table of the other checks, notes (unparsed outputs, checks that could
    not run), then the worst examples of each result."""
    if not results and not skipped:
        return "sce-checks: no results."
    from sce_checks.checks import unit_of

    parts = []
    for headers, rows in ((HEADERS, summary_rows(results)), (CHECK_HEADERS, check_rows(results))):
        if rows:
            parts.append(tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True))
    notes = [line for line in (unparsed_line(r) for r in results) if line]
    notes += [f"not applicable: {line}" for line in skipped]
    if notes:
        parts.append("\n".join(notes))
    if examples:
        for r in results:
            for title, headers, rows in (("worst examples", EXAMPLE_HEADERS, example_rows(r, examples)),
                                         ("failing examples", FAILING_HEADERS, failing_rows(r, examples))):
                if rows:
                    parts.append(f"{title}: {r.model} / {r.dataset} / {unit_of(r)}\n"
                                 + tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True))
    return "\n\n".join(parts)
