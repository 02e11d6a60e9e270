"""The terminal report (tabulate)."""

from __future__ import annotations

from typing import Sequence

from tabulate import tabulate

from sce_checks.report.summary import EXAMPLE_HEADERS, HEADERS, example_rows, summary_rows, unparsed_line
from sce_checks.results import CheckResult


def render_table(results: Sequence[CheckResult], *, examples: int = 3, tablefmt: str = "simple") -> str:
    if not results:
        return "sce-checks: no results."
    parts = [tabulate(summary_rows(results), headers=HEADERS, tablefmt=tablefmt, disable_numparse=True)]
    notes = [line for line in (unparsed_line(r) for r in results) if line]
    if notes:
        parts.append("\n".join(notes))
    if examples:
        for r in results:
            rows = example_rows(r, examples)
            if rows:
                parts.append(f"worst examples: {r.model} / {r.dataset} / {r.variant}\n"
                             + tabulate(rows, headers=EXAMPLE_HEADERS, tablefmt=tablefmt, disable_numparse=True))
    return "\n\n".join(parts)
