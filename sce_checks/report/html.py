"""A single self-contained HTML file (docs/reports.md): the summary table, the figures (validity
against minimality with Wilson intervals, the distribution of RCF_A, the features SCEs change
against those the model's nearest flips change, phi-CCT's table, TVD against mention), the
decision boundary of two-feature grids, and one panel per example of every SCE result (the
worst first, sortable and filterable by a small inline script). Plots are matplotlib SVG, maps
hand-written SVG, all inline: no external script, font or request, viewable offline; a Content
Security Policy lets only the report's own script run. Every piece of text is made inert
(sce_checks/safe.py: html_text), model replies included."""

from __future__ import annotations

import base64
import hashlib
import io
from typing import Any, Sequence

from sce_checks.checks import check_entry
from sce_checks.errors import UserInputError
from sce_checks.paths import write_atomic
from sce_checks.registry import PLOTS, one_line
from sce_checks.report.plot_catalog import Plot
from sce_checks.report.summary import decoding_words, notes, result_tables
from sce_checks.report.views import boundary_section, examples_section
from sce_checks.results import CheckResult
from sce_checks.safe import html_text

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#222;max-width:1200px}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}.fail{color:#b00020;font-weight:600}.pass{color:#1b7f3b;font-weight:600}
.env{font-size:.8rem;color:#555}.plots{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}
figure{margin:0}figcaption{font-size:.8rem;color:#444;max-width:560px}.omitted,.cap{font-size:.85rem;color:#666}
.panels{display:flex;flex-direction:column;gap:.75rem}
.panel{border:1px solid #ddd;border-radius:6px;padding:.5rem .75rem;display:flex;flex-wrap:wrap;gap:.5rem 1.5rem}
.panel h4{flex-basis:100%;margin:.2rem 0;font-size:.95rem}.panel small{color:#555;font-weight:400}
.badge{display:inline-block;padding:0 .4rem;border-radius:3px;color:#fff;font-size:.8rem}
.badge.valid{background:#1b7f3b}.badge.invalid{background:#b00020}.badge.unparsed{background:#777}
td.chg{background:#ffe9a8;font-weight:600}td.ans{font-style:italic}
.facts{display:grid;grid-template-columns:auto auto;gap:.1rem .6rem;font-size:.85rem;margin:0;align-content:start}
.facts dt{color:#555}.facts dd{margin:0}.diffs{flex-basis:100%;display:flex;flex-wrap:wrap;gap:1rem}
.diffs>div{flex:1 1 380px}.diffs h5{margin:.2rem 0;font-size:.8rem;color:#555}
.diff{font-family:ui-monospace,monospace;font-size:.85rem;white-space:pre-wrap;margin:0}
del{background:#fbd0d4;color:#8a0012}ins{background:#cdefd4;color:#0b5d1e;text-decoration:none}
.reason{flex-basis:100%;margin:0;color:#8a0012}.raw{flex-basis:100%;margin:0;font-family:ui-monospace,monospace;
font-size:.8rem;white-space:pre-wrap;word-break:break-word;background:#f6f6f6;padding:.3rem}.raw span{color:#777}
.controls{font-size:.85rem}.shown{color:#555}
svg.map rect.k0,.sw.k0{fill:#f4c9a0;background:#f4c9a0}svg.map rect.k1,.sw.k1{fill:#b9d3ee;background:#b9d3ee}
svg.map rect.k2,.sw.k2{fill:#c5e3bf;background:#c5e3bf}svg.map rect.k3,.sw.k3{fill:#e3c5ea;background:#e3c5ea}svg.map rect.k4,.sw.k4{fill:#f3e6a2;background:#f3e6a2}svg.map rect.k5,.sw.k5{fill:#a9dbd6;background:#a9dbd6}svg.map rect.k6,.sw.k6{fill:#e9b3b3;background:#e9b3b3}svg.map rect.k7,.sw.k7{fill:#d2c3a8;background:#d2c3a8}svg.map rect.k8,.sw.k8{fill:#c9cbe8;background:#c9cbe8}svg.map rect.k9,.sw.k9{fill:#dcdcdc;background:#dcdcdc}
svg.map rect.ku,.sw.ku{fill:#9a9a9a;background:#9a9a9a}svg.map rect.kn{fill:url(#unknown)}
.sw.kn{background:repeating-linear-gradient(45deg,#fff 0 3px,#ccc 3px 4px)}
svg.map rect.frame{fill:none;stroke:#555}svg.map path.edge{stroke:#000;stroke-width:1.3;fill:none}
svg.map text{font-size:10px;fill:#333;font-family:system-ui,sans-serif}svg.map text.axis{font-size:11px}
svg.map circle.ex{fill:#111;stroke:#fff;stroke-width:1.2}svg.map .valid line{stroke:#1b7f3b}
svg.map .invalid line{stroke:#b00020}svg.map g.sce line{stroke-width:2.2}svg.map .valid polygon{fill:#1b7f3b}
svg.map .invalid polygon{fill:#b00020}svg.map text.mult{font-size:12px;font-weight:bold;fill:#111}svg.map g.sce circle{stroke-width:2}svg.map .valid circle{stroke:#1b7f3b}
svg.map .invalid circle{stroke:#b00020}svg.map polygon.xstar{fill:#6a1b9a;stroke:#fff;stroke-width:.8}
svg.map polygon.xstar.off{fill:none;stroke:#6a1b9a;stroke-width:1.2}
.legend{font-size:.8rem;display:flex;flex-wrap:wrap;gap:.3rem 1rem}.sw{display:inline-block;width:.9rem;height:.9rem;
border:1px solid #999;vertical-align:middle;margin-right:.3rem}.mk{margin-right:.3rem}.mk.ex{color:#111}
.mk.valid{color:#1b7f3b}.mk.invalid{color:#b00020}.mk.xstar{color:#6a1b9a}
"""

# The report's only script: sorts and filters the example panels of each SCE result (also from the
# page address: r.html#filter=invalid&sort=gap). It reads data-* attributes, never model text.
_SCRIPT = """(function(){
function num(p,k){var v=parseFloat(p.getAttribute('data-'+k));return isNaN(v)?-Infinity:v;}
function has(sel,v){for(var i=0;i<sel.options.length;i++){if(sel.options[i].value===v)return true;}return false;}
var hash=new URLSearchParams(location.hash.slice(1));
document.querySelectorAll('section.examples').forEach(function(sec){
var f=sec.querySelector('select.filter'),s=sec.querySelector('select.sort'),box=sec.querySelector('.panels');
if(!f||!s||!box)return;
if(hash.get('filter')&&has(f,hash.get('filter')))f.value=hash.get('filter');
if(hash.get('sort')&&has(s,hash.get('sort')))s.value=hash.get('sort');
function apply(){var ps=Array.prototype.slice.call(box.children),n=0;
ps.sort(function(a,b){if(s.value!=='order'){var d=num(b,s.value)-num(a,s.value);if(d)return d>0?1:-1;}
return num(a,'order')-num(b,'order');});
ps.forEach(function(p){box.appendChild(p);p.hidden=f.value!=='all'&&p.getAttribute('data-status')!==f.value;n+=p.hidden?0:1;});
var out=sec.querySelector('.shown');if(out)out.textContent=n+' of '+ps.length+' panels shown';}
f.addEventListener('change',apply);s.addEventListener('change',apply);apply();});
})();"""
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
_CSP = (f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{_SCRIPT_HASH}'; "
        "base-uri 'none'; form-action 'none'")
# the hatch of never-predicted map cells, defined once for every map of the page
_DEFS = ('<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs><pattern id="unknown" '
         'width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" '
         'fill="#fff"/><line x1="0" y1="0" x2="0" y2="6" stroke="#c8c8c8" stroke-width="1.5"/></pattern></defs></svg>')



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


def _plots(results: Sequence[CheckResult], references: Sequence[CheckResult] = ()) -> str:
    """The plots each result's check declares (`CheckEntry.plots`), drawn over that check's
    results; a plot with no data is one line saying why, and so is a plot that is not
    registered, cannot be loaded or fails while drawing: the report is written all the same.
    ``references``: a compared baseline's results, drawn beside the run's by the plots that
    declare ``references``."""

    by_check: dict[str, list[CheckResult]] = {}
    for r in results:
        by_check.setdefault(r.check, []).append(r)
    every_check = tuple(e.name for e in PLOTS.usable() if e.every_check)
    drawn, omitted = [], []
    for check, rs in by_check.items():
        for name in dict.fromkeys([*check_entry(check).plots, *every_check]):
            for plot in _draw(name, rs, [r for r in references if r.check == check]):
                if plot.figure is None:
                    omitted.append(f'<p class="omitted" data-plot="{html_text(plot.name)}">{html_text(plot.title)}: '
                                   f'not drawn, {html_text(plot.omitted)}.</p>')
                else:
                    drawn.append(_figure_html(plot))
    return ('<div class="plots">' + "".join(drawn) + "</div>" if drawn else "") + "".join(omitted)


def _figure_html(plot: Any) -> str:
    return (f'<figure class="plot" data-plot="{html_text(plot.name)}">{_svg(plot.figure)}'
            f"<figcaption>{html_text(plot.title)}</figcaption></figure>")


def _draw(name: str, results: list[CheckResult], references: list[CheckResult]) -> list[Any]:
    """The `Plot`s of the registered plot ``name`` over ``results`` (and ``references`` where it
    draws them), or one `Plot` saying why it could not be drawn."""

    try:
        entry = PLOTS.declaration(name)
        draw = PLOTS.implementation(name)
    except UserInputError as exc:
        return [Plot(name, f"Plot {name!r} of {results[0].check}", omitted=str(exc))]
    try:
        plots = list(draw([*results, *references] if entry.references else results))
        if not all(isinstance(p, Plot) for p in plots):
            raise TypeError("it returned something other than a list of Plot objects")
        return plots
    except Exception as exc:  # a plot's own bug: one line in the report, the report is still written
        return [Plot(name, f"Plot {name!r} of {results[0].check}", omitted=f"it failed: {one_line(exc)}")]


def render_html(results: Sequence[CheckResult], environment: dict[str, Any], extra_sections: Sequence[str] = (),
                skipped: Sequence[str] = (), references: Sequence[CheckResult] = ()) -> str:
    """The page; ``references``: a compared baseline's results (sce_checks/regression/saved.py:
    `reference_results`), points beside the run's on the validity-minimality plot."""
    env = html_text(
        f"model {environment.get('model')} | seed {environment.get('seed')} | limit {environment.get('limit')} | "
        f"prediction {environment.get('prediction')} | elicitation {environment.get('elicitation')} | "
        f"parsing {environment.get('parsing')} | "
        + (f"{decoding_words(environment)} | " if decoding_words(environment) else "")
        + f"sce-checks {environment.get('sce_checks_version')} | Python {environment.get('python')} | "
        + ", ".join(f"{k} {v}" for k, v in (environment.get("libraries") or {}).items() if v)
    )
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        "<title>sce-checks report</title>",
        f"<style>{_CSS}</style></head><body>",
        _DEFS,
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
    parts.append(boundary_section(results))
    plots = _plots(results, references)
    if plots:
        parts.append("<h2>Figures</h2>")
        parts.append(plots)
    parts.append(examples_section(results, _table))
    parts.append(f"<script>{_SCRIPT}</script>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(path, results: Sequence[CheckResult], environment: dict[str, Any], extra_sections: Sequence[str] = (),
               skipped: Sequence[str] = (), references: Sequence[CheckResult] = ()) -> None:
    write_atomic(path, render_html(results, environment, extra_sections, skipped, references))
