"""The examples that changed between a baseline and a run, in every report format.

A user fixing a fine-tune needs these first: the examples whose SCE became invalid, went
unparsed or got much less minimal, with the prediction and SCE before and after. The rows come
from `sce_checks.regression.changes.Change` (computed there from the stored per-example
outcomes); this module only lays them out, with model text made inert (sce_checks/safe.py).
"""

from __future__ import annotations

from typing import Any, Sequence

from sce_checks.cells import short
from sce_checks.layout import fit_table
from sce_checks.report.html import _table as html_table
from sce_checks.report.markdown import _table as markdown_table
from sce_checks.safe import html_text, markdown_text, plain

HEADERS = ["result", "id", "direction", "what changed", "before: answer; SCE", "after: answer; SCE"]
SHOWN = 30  # rows shown in a report; the JSON report has them all


def _value(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _side(side: dict[str, Any]) -> str:
    sce = side.get("counterfactual")
    return f"{side.get('prediction')}; SCE {short(sce)}" if sce is not None else f"{side.get('prediction')}; no SCE"


def change_rows(changes: Sequence[Any], limit: int = SHOWN) -> tuple[list[str], list[list[str]]]:
    """(headers, rows): one row per changed example, those that got worse first."""
    rows = [[c.key, c.id, "worse" if c.worse else "better",
             "; ".join(f"{name} {_value(x)} -> {_value(y)}" for name, x, y in c.moves), _side(c.before), _side(c.after)]
            for c in changes[:limit]]
    return HEADERS, rows


def _title(changes: Sequence[Any]) -> str:
    worse = sum(1 for c in changes if c.worse)
    more = f" (first {SHOWN} shown)" if len(changes) > SHOWN else ""
    return f"examples that changed: {worse} worse, {len(changes) - worse} better{more}"


def changes_text(changes: Sequence[Any], width: int | None = None) -> str:
    """The terminal table, no wider than ``width``, or "" when nothing changed."""
    if not changes:
        return ""
    headers, rows = change_rows(changes)
    return _title(changes) + "\n" + fit_table(headers, [[plain(c) for c in row] for row in rows], width)


def changes_markdown(reports: Sequence[Any]) -> str:
    """A Markdown section per baseline comparison: the verdict, the regressions, the changed
    examples (GitHub table)."""

    parts = []
    for report in reports:
        parts.append(f"## Baseline {markdown_text(report.path)}\n\n"
                     + markdown_text(report.status()) + f" ({markdown_text(report.mode)})\n")
        parts.extend(f"- {markdown_text(line)}" for line in report.findings())
        if report.changes:
            headers, rows = change_rows(report.changes)
            parts.append("\n" + markdown_text(_title(report.changes)) + "\n")
            parts.append(markdown_table(headers, rows))
    return "\n".join(parts) + ("\n" if parts else "")


def changes_html(reports: Sequence[Any]) -> str:
    """An HTML fragment (a section per baseline comparison) for the HTML report's extra sections."""

    parts = []
    for report in reports:
        parts.append(f"<h2>Baseline {html_text(report.path)}</h2>")
        parts.append(f"<p class='{'fail' if report.regressed else 'pass'}'>{html_text(report.status())} "
                     f"({html_text(report.mode)})</p>")
        lines = report.findings()
        if lines:
            parts.append("<ul>" + "".join(f"<li>{html_text(line)}</li>" for line in lines) + "</ul>")
        if report.changes:
            headers, rows = change_rows(report.changes)
            parts.append(f"<h3>{html_text(_title(report.changes))}</h3>")
            parts.append(html_table(headers, rows))
    return "\n".join(parts)
