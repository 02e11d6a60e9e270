"""A single self-contained HTML file: summary table, the validity-vs-minimality scatter (one
point per model/dataset/variant, like Mayne et al.'s figure), per-dataset validity bars, and the
worst examples. Plots are matplotlib SVG inlined in the page: no scripts, no network, viewable
offline. Every piece of text is made inert (report/safe.py: html_text), model replies included."""

from __future__ import annotations

import io
from typing import Any, Sequence

from sce_checks.report.safe import html_text
from sce_checks.report.summary import example_tables, notes, result_tables
from sce_checks.results import CheckResult

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#222;max-width:1200px}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}.fail{color:#b00020;font-weight:600}.pass{color:#1b7f3b;font-weight:600}
.env{font-size:.8rem;color:#555}.plots{display:flex;flex-wrap:wrap;gap:1rem}
"""


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], cls_col: int | None = None) -> str:
    head = "".join(f"<th>{html_text(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            text = html_text(cell)
            if cls_col is not None and i == cls_col and text in ("PASS", "FAIL"):
                cells.append(f'<td class="{text.lower()}">{text}</td>')
            else:
                cells.append(f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _plots(results: Sequence[CheckResult]) -> str:
    """The plots each result's check asks for (`Check.plots`), drawn over that check's results."""
    from sce_checks.checks import get_check
    from sce_checks.report.plots import PLOTS

    by_check: dict[str, list[CheckResult]] = {}
    for r in results:
        by_check.setdefault(r.check, []).append(r)
    out = [_svg(fig) for check, rs in by_check.items() for name in get_check(check).plots for fig in PLOTS[name](rs)]
    return '<div class="plots">' + "".join(out) + "</div>" if out else ""


def render_html(results: Sequence[CheckResult], environment: dict[str, Any], extra_sections: Sequence[str] = (),
                skipped: Sequence[str] = ()) -> str:
    from sce_checks.checks import unit_of

    env = html_text(
        f"model {environment.get('model')} | seed {environment.get('seed')} | limit {environment.get('limit')} | "
        f"prediction {environment.get('prediction')} | elicitation {environment.get('elicitation')} | "
        f"parsing {environment.get('parsing')} | "
        f"sce-checks {environment.get('sce_checks_version')} | Python {environment.get('python')} | "
        + ", ".join(f"{k} {v}" for k, v in (environment.get("libraries") or {}).items() if v)
    )
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>sce-checks report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>sce-checks report</h1>",
        f"<p class='env'>{env}</p>",
        "<h2>Summary</h2>",
    ]
    for headers, rows in result_tables(results):
        parts.append(_table(headers, rows, cls_col=len(headers) - 1))
    if not results:
        parts.append("<p>No results.</p>")
    lines = notes(results, skipped)
    if lines:
        parts.append("<ul>" + "".join(f"<li>{html_text(n)}</li>" for n in lines) + "</ul>")
    parts.extend(extra_sections)
    plots = _plots(results)
    if plots:
        parts.append("<h2>Figures</h2>")
        parts.append(plots)
    parts.append("<h2>Worst examples</h2>")
    for r in results:
        for _, headers, rows in example_tables(r, 5):
            parts.append(f"<h3>{html_text(f'{r.model} / {r.dataset} / {unit_of(r)}')}</h3>")
            parts.append(_table(headers, rows))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(path, results: Sequence[CheckResult], environment: dict[str, Any], extra_sections: Sequence[str] = (),
               skipped: Sequence[str] = ()) -> None:
    from sce_checks.report.json_report import write_atomic

    write_atomic(path, render_html(results, environment, extra_sections, skipped))
