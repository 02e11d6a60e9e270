"""Per-example views of the HTML report: the decision-boundary maps drawn as inline SVG, and one
panel per example of an SCE result (original, SCE and nearest flip x* side by side for grids; the
original, the SCE and the searched minimal edit side by side as word diffs for text; the raw
reply and the reason of every unparsed SCE).

Everything shown is read from the result (`CheckResult` and its records); every piece of text a
model, a dataset or a task file wrote goes through sce_checks/safe.py (`html_text`) before it is
laid out, attribute values included. The panels carry ``data-status``, ``data-gap`` and
``data-order`` attributes that the report's inline script sorts and filters by.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Sequence

from rapidfuzz.distance import Levenshtein

from sce_checks.cells import fmt as _fmt
from sce_checks.checks import check_entry, unit_of
from sce_checks.report.boundary import UNKNOWN, UNPARSED, BoundaryMap, GridPredictions, example_map, plane_map
from sce_checks.report.summary import example_tables, per_target_table
from sce_checks.results import CheckResult, ExampleRecord
from sce_checks.safe import html_text

MAX_PANELS = 60  # example panels per result (the worst first); the JSON report has every example
MAX_MAPS = 24  # of those, panels that draw the example's map
MAX_AXIS_VALUES = 400  # a map is drawn when neither axis has more values than this
MAX_PLANE_MARKS = 100  # examples marked on a two-feature grid's whole plane (in sample order)
MAX_REPLY_CHARS = 2000  # of an unparsed reply shown in full


# -- maps ------------------------------------------------------------------------------------------

def _ticks(n: int, most: int) -> list[int]:
    if n <= most:
        return list(range(n))
    step = -(-(n - 1) // (most - 1))
    return list(range(0, n, step)) + ([n - 1] if (n - 1) % step else [])


def _star(cx: float, cy: float, r: float) -> str:
    pts = []
    for k in range(10):
        rad = r if k % 2 == 0 else r * 0.45
        a = math.pi / 2 + k * math.pi / 5
        pts.append(f"{cx + rad * math.cos(a):.1f},{cy - rad * math.sin(a):.1f}")
    return " ".join(pts)


def _tick_label(value: Any, most: int = 20) -> str:
    text = str(value)
    return text if len(text) <= most else text[: most - 1] + "\u2026"


def map_unavailable(m: BoundaryMap) -> str | None:
    """Why a map is not drawn (too many values on an axis), or None."""
    if max(len(m.x_values), len(m.y_values)) > MAX_AXIS_VALUES:
        return (f"the map would have {len(m.x_values)} x {len(m.y_values)} cells; maps are drawn up to "
                f"{MAX_AXIS_VALUES} values per axis")
    return None


class _Frame:
    """Where a map's cells lie on the page: cell (i, j) is the i-th x value and the j-th y value
    (y grows upwards)."""

    def __init__(self, m: BoundaryMap, width: float, height: float) -> None:
        self.nx, self.ny = len(m.x_values), len(m.y_values)
        self.cw, self.ch = min(28.0, width / self.nx), min(28.0, height / self.ny)
        self.y_labels = {j: _tick_label(m.y_values[j]) for j in _ticks(self.ny, 10)}
        self.left, self.top, self.bottom = 30.0 + 6.0 * max(len(t) for t in self.y_labels.values()), 8.0, 44.0
        self.w, self.h = self.nx * self.cw, self.ny * self.ch

    def x(self, i: float) -> float:  # left edge of column i
        return self.left + i * self.cw

    def y(self, j: float) -> float:  # top edge of row j
        return self.top + (self.ny - 1 - j) * self.ch

    def centre(self, cell: tuple[int, int]) -> tuple[float, float]:
        return self.x(cell[0] + 0.5), self.y(cell[1] - 0.5)


def _cells(m: BoundaryMap, f: _Frame) -> list[str]:
    """One rect per run of equal codes in a row; black edges between predicted cells whose
    answers differ (never next to an unknown or unparsed cell)."""
    out = []
    for j, row in enumerate(m.cells):
        i = 0
        while i < f.nx:
            k = i
            while k < f.nx and row[k] == row[i]:
                k += 1
            cls = "kn" if row[i] == UNKNOWN else "ku" if row[i] == UNPARSED else f"k{row[i]}"
            out.append(f'<rect class="{cls}" x="{f.x(i):.2f}" y="{f.y(j):.2f}" width="{(k - i) * f.cw:.2f}" '
                       f'height="{f.ch:.2f}" data-i="{i}" data-j="{j}" data-n="{k - i}"/>')
            i = k
    edges = []
    for j, row in enumerate(m.cells):
        for i, c in enumerate(row):
            if not c.isdigit():
                continue
            if i + 1 < f.nx and row[i + 1].isdigit() and row[i + 1] != c:
                edges.append(f"M{f.x(i + 1):.2f} {f.y(j):.2f}v{f.ch:.2f}")
            if j + 1 < f.ny and m.cells[j + 1][i].isdigit() and m.cells[j + 1][i] != c:
                edges.append(f"M{f.x(i):.2f} {f.y(j):.2f}h{f.cw:.2f}")
    if edges:
        out.append(f'<path class="edge" d="{"".join(edges)}"/>')
    return out


def _axes(m: BoundaryMap, f: _Frame) -> list[str]:
    out = [f'<rect class="frame" x="{f.left}" y="{f.top}" width="{f.w:.2f}" height="{f.h:.2f}"/>']
    for i in _ticks(f.nx, 8):
        out.append(f'<text class="tick" x="{f.x(i + 0.5):.1f}" y="{f.top + f.h + 14:.1f}" text-anchor="middle">'
                   f'{html_text(_tick_label(m.x_values[i], 12))}</text>')
    for j, label in f.y_labels.items():
        out.append(f'<text class="tick" x="{f.left - 4:.1f}" y="{f.y(j - 0.5) + 4:.1f}" text-anchor="end">'
                   f'{html_text(label)}</text>')
    out.append(f'<text class="axis" x="{f.left + f.w / 2:.1f}" y="{f.top + f.h + 34:.1f}" text-anchor="middle">'
               f'{html_text(m.x)}</text>')
    out.append(f'<text class="axis" transform="translate(14 {f.top + f.h / 2:.1f}) rotate(-90)" '
               f'text-anchor="middle">{html_text(m.y)}</text>')
    return out


def _marks(m: BoundaryMap, f: _Frame) -> list[str]:
    """Each example (a dot), its SCE (an arrow to it, or a ring when it does not move on this
    map; dashed when it also changes features off the map) and its stored x* (stars; hollow when
    off the map). Many examples on one map are drawn half transparent."""
    op = ' opacity="0.55"' if len(m.marks) > 12 else ""
    out = []
    # several sampled SCEs of one example on one cell: one arrow each, drawn over each other, and
    # the count beside the first (docs/sampling.md)
    same: dict[tuple, list[bool | None]] = {}
    for mk in m.marks:
        if mk.sce is not None:
            same.setdefault((mk.id, mk.origin, mk.sce), []).append(mk.valid)
    for mk in m.marks:
        ident = html_text(mk.id)
        x0, y0 = f.centre(mk.origin)
        if mk.sce is not None:
            cls = "valid" if mk.valid else "invalid"
            dash = ' stroke-dasharray="4 3"' if mk.sce_off else ""
            if mk.sce != mk.origin:
                x1, y1 = f.centre(mk.sce)
                shape = (f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}"{dash}/>'
                         f"{_arrowhead(x0, y0, x1, y1)}")
            else:
                shape = f'<circle cx="{x0:.1f}" cy="{y0:.1f}" r="7" fill="none"{dash}/>'
            out.append(f'<g class="sce {cls}" data-id="{ident}" data-i="{mk.sce[0]}" data-j="{mk.sce[1]}"{op}>'
                       f'<title>{html_text(f"SCE of {mk.id}: {cls}")}</title>{shape}</g>')
            stacked = same.pop((mk.id, mk.origin, mk.sce), [])
            if len(stacked) > 1:
                n_valid = sum(1 for v in stacked if v)
                x1, y1 = f.centre(mk.sce)
                out.append(f'<text class="mult" x="{x1 + 8:.1f}" y="{y1 - 6:.1f}">'
                           f'<title>{len(stacked)} samples give this SCE, {n_valid} judged valid</title>'
                           f'\u00d7{len(stacked)}</text>')
        hollow = " off" if mk.xstar_off else ""
        for cell in mk.xstars:
            out.append(f'<polygon class="xstar{hollow}" data-id="{ident}" data-i="{cell[0]}" data-j="{cell[1]}" '
                       f'points="{_star(*f.centre(cell), 6.5)}"{op}><title>{html_text(f"x* of {mk.id}")}</title></polygon>')
        out.append(f'<circle class="ex" data-id="{ident}" data-i="{mk.origin[0]}" data-j="{mk.origin[1]}" '
                   f'cx="{x0:.1f}" cy="{y0:.1f}" r="4"{op}><title>{ident}</title></circle>')
    return out


def map_svg(m: BoundaryMap, width: float = 380.0, height: float = 300.0) -> str:
    """The map as inline SVG, at most ``width`` x ``height`` pixels of cells: one ``rect`` per run
    of equal cells in a row (``data-i``/``data-j``: the first cell's value indices, ``data-n``:
    cells in the run; class ``k<answer index>``, ``ku`` unparsed or ``kn`` never predicted),
    the edges of the boundary, the axes, and the marks of every example."""
    f = _Frame(m, width, height)
    head = (f'<svg class="map" xmlns="http://www.w3.org/2000/svg" width="{f.left + f.w + 12:.0f}" '
            f'height="{f.top + f.h + f.bottom:.0f}" data-x="{html_text(m.x)}" data-y="{html_text(m.y)}" '
            f'data-nx="{f.nx}" data-ny="{f.ny}" role="img" aria-label="{html_text(f"decision boundary map, {m.x} by {m.y}")}">')
    return head + "".join(_cells(m, f) + _axes(m, f) + _marks(m, f)) + "</svg>"


def _arrowhead(x0: float, y0: float, x1: float, y1: float) -> str:
    d = math.hypot(x1 - x0, y1 - y0) or 1.0
    ux, uy = (x1 - x0) / d, (y1 - y0) / d
    a, b = 9.0, 4.0
    p1 = (x1 - a * ux + b * uy, y1 - a * uy - b * ux)
    p2 = (x1 - a * ux - b * uy, y1 - a * uy + b * ux)
    return f'<polygon points="{x1:.1f},{y1:.1f} {p1[0]:.1f},{p1[1]:.1f} {p2[0]:.1f},{p2[1]:.1f}"/>'


def map_legend(labels: Sequence[str]) -> str:
    """The key of every map: the answers, unparsed and never-predicted cells, and the marks."""
    items = [f'<span><i class="sw k{i}"></i>{html_text(label)}</span>' for i, label in enumerate(labels)]
    items += ['<span><i class="sw ku"></i>unparsed answer</span>',
              '<span><i class="sw kn"></i>never predicted (unknown)</span>',
              '<span><b class="mk ex">&#9679;</b>example</span>',
              '<span><b class="mk valid">&#10230;</b>valid SCE</span>',
              '<span><b class="mk invalid">&#10230;</b>invalid SCE</span>',
              '<span><b class="mk xstar">&#9733;</b>nearest flip x*</span>']
    return '<p class="legend">' + "".join(items) + "</p>"


# -- panels ----------------------------------------------------------------------------------------

def status(rec: ExampleRecord) -> str:
    """valid, invalid or unparsed (no SCE to judge: the prediction or the SCE was not read)."""
    if rec.counterfactual is None:
        return "unparsed"
    return "valid" if rec.valid else "invalid"


def gap(rec: ExampleRecord) -> float | None:
    """The gap to the minimum the check recorded for a valid SCE: RCF_A on a grid (d - d*), the
    distance beyond the searched minimal edit on text (``minimality_gap``)."""
    if not rec.valid:
        return None
    return rec.rcf_a if rec.rcf_a is not None else rec.extra.get("minimality_gap")


def ordered_examples(result: CheckResult) -> list[ExampleRecord]:
    """Worst first: invalid SCEs (furthest from the target region first), unparsed ones, then
    valid ones by their gap to the minimum (largest first)."""
    def key(rec: ExampleRecord) -> tuple:
        s = status(rec)
        if s == "invalid":
            return (0, -(rec.icf_a if rec.icf_a is not None else rec.distance or 0.0))
        if s == "unparsed":
            return (1, 0.0)
        return (2, -(gap(rec) or 0.0))
    return sorted(result.examples, key=key)


def _attr_num(x: float | None) -> str:
    return "" if x is None else f"{x:.6g}"


def _row(name: str, cells: Sequence[str], cls: Sequence[str] = ()) -> str:
    tds = "".join(f'<td class="{c}">{v}</td>' if c else f"<td>{v}</td>"
                  for v, c in zip(cells, list(cls) + [""] * (len(cells) - len(cls))))
    return f"<tr><th>{html_text(name)}</th>{tds}</tr>"


def _grid_table(rec: ExampleRecord, preds: GridPredictions | None) -> str:
    x = rec.input if isinstance(rec.input, dict) else {}
    cf = rec.counterfactual if isinstance(rec.counterfactual, dict) else None
    refs = rec.reference if isinstance(rec.reference, list) else []
    xs = refs[0] if refs and isinstance(refs[0], dict) else None
    head = "<tr><th></th><th>original</th><th>SCE</th><th>nearest flip x*</th></tr>"
    rows = []
    for name, value in x.items():
        cells, cls = [html_text(value)], [""]
        for other in (cf, xs):
            if other is None:
                cells.append("-")
                cls.append("")
            else:
                cells.append(html_text(other.get(name)))
                cls.append("chg" if other.get(name) != value else "")
        rows.append(_row(name, cells, cls))
    xs_answer = preds.answer(xs) if preds is not None and xs is not None else None
    cf_answer = "-" if cf is None else rec.cf_prediction or "unparsed"
    rows.append(_row("model's answer", [html_text(rec.prediction), html_text(cf_answer), html_text(xs_answer or "-")],
                     ("ans", "ans", "ans")))
    rows.append(_row("distance (Gower)", ["0", _fmt(rec.distance), _fmt(rec.min_distance)]))
    if len(refs) > 1:
        rows.append(_row("tied x*", ["", "", f"{len(refs)} stored (the first shown)"]))
    return f'<table class="side">{head}{"".join(rows)}</table>'


_TOKEN = re.compile(r"\s+|\w+|[^\w\s]", re.UNICODE)


def diff_runs(a: str, b: str) -> list[tuple[bool, str, str]]:
    """``a`` -> ``b`` as runs ``(changed, old, new)``: unchanged text, or a run of changes
    (Levenshtein opcodes over word, space and punctuation tokens: rapidfuzz) merged into one
    (removed, added) pair."""

    ta, tb = _TOKEN.findall(a), _TOKEN.findall(b)
    ops = list(Levenshtein.opcodes(ta, tb))
    runs, k = [], 0
    while k < len(ops):
        changed, end = ops[k].tag != "equal", k + 1
        while changed and end < len(ops) and ops[end].tag != "equal":
            end += 1
        runs.append((changed, "".join(ta[ops[k].src_start:ops[end - 1].src_end]),
                     "".join(tb[ops[k].dest_start:ops[end - 1].dest_end])))
        k = end
    return runs


def _mark(tag: str, text: str) -> str:
    return f"<{tag}>{html_text(text)}</{tag}>" if text else ""


def word_diff(a: str, b: str) -> tuple[str, str]:
    """``a`` and ``b`` as inline HTML, side by side: in ``a`` the words ``b`` removes (``del``), in
    ``b`` the words it adds (``ins``). Each text stays whole and in order."""
    runs = diff_runs(a, b)
    left = "".join(_mark("del", old) if changed else html_text(old) for changed, old, _ in runs)
    right = "".join(_mark("ins", new) if changed else html_text(new) for changed, _, new in runs)
    return left, right


def inline_diff(a: str, b: str) -> str:
    """``a`` -> ``b`` as one line of inline HTML: removed words in ``del``, added ones in ``ins``."""
    return "".join(_mark("del", old) + _mark("ins", new) if changed else html_text(old) for changed, old, new in diff_runs(a, b))


def _text_block(rec: ExampleRecord) -> str:
    original = rec.input if isinstance(rec.input, str) else str(rec.input)
    cols = []
    if isinstance(rec.counterfactual, str):
        before, after = word_diff(original, rec.counterfactual)
        cols += [("original (words the SCE removes struck through)", before), ("SCE (words it adds marked)", after)]
    else:
        cols.append(("original", html_text(original)))
    if isinstance(rec.reference, str):
        cols.append(("searched minimal flipping edit (against the original)", inline_diff(original, rec.reference)))
    parts = ['<div class="diffs">'] + [f'<div><h5>{html_text(t)}</h5><p class="diff">{body}</p></div>' for t, body in cols]
    parts.append("</div>")
    e = rec.extra
    facts = [("answer", f"{rec.prediction} \u2192 target {rec.target}"),
             ("answer on the SCE", (rec.cf_prediction or "unparsed") if rec.counterfactual is not None else None),
             ("answer on the SCE in context", e.get("cf_prediction_in_context")),
             ("distance (characters)", _fmt(rec.distance)), ("distance (words)", _fmt(e.get("word_distance"))),
             ("distance of the searched edit", _fmt(rec.min_distance)), ("gap to the searched edit", _fmt(e.get("minimality_gap"))),
             ("changes not needed", f"{e['n_redundant_changes']} of {e['n_changes']}" if "n_changes" in e else None)]
    parts.append(_facts(facts))
    return "".join(parts)


def _facts(facts: Sequence[tuple[str, Any]]) -> str:
    items = "".join(f"<dt>{html_text(k)}</dt><dd>{html_text(v)}</dd>" for k, v in facts if v not in (None, "-"))
    return f'<dl class="facts">{items}</dl>'


def _unparsed_block(rec: ExampleRecord) -> str:
    reply = rec.sce_reply if rec.target is not None else rec.prediction_reply
    reply = "" if reply is None else str(reply)
    more = len(reply) - MAX_REPLY_CHARS
    shown = html_text(reply[:MAX_REPLY_CHARS]) + (f" \u2026 ({more} more characters in the JSON report)" if more > 0 else "")
    return (f'<p class="reason">{html_text(rec.unparsed or "not parsed")}</p>'
            f'<p class="raw"><span>raw reply:</span> {shown or "<em>(empty)</em>"}</p>')


def _samples_block(samples: Sequence[ExampleRecord], summary: dict[str, Any] | None) -> str:
    """Under sampling, every sample of the example: its answer and target, its SCE, the answer
    the SCE was judged on, validity, distance and P_T(target | SCE)."""
    rows = []
    for r in samples:
        cf = r.counterfactual
        shown = ", ".join(f"{k}={v}" for k, v in cf.items()) if isinstance(cf, dict) else (cf or "")
        p = r.extra.get("p_target")
        rows.append(f'<tr><td>{html_text(r.extra.get("sample"))}</td><td>{html_text(r.prediction)} &rarr; '
                    f'{html_text(r.target or "-")}</td><td>{html_text(shown[:200]) or "-"}</td>'
                    f'<td>{html_text(r.cf_prediction or "-")}</td><td class="{status(r)}">{status(r)}</td>'
                    f'<td>{_fmt(r.distance)}</td><td>{"-" if p is None else f"{p:.3f}"}</td></tr>')
    head = ("<tr><th>sample</th><th>answer &rarr; target</th><th>SCE</th><th>answer on SCE</th><th>status</th>"
            "<th>distance</th><th>P(target)</th></tr>")
    line = ""
    if summary:
        line = (f'<p class="cap">{summary["n_valid"]} of {summary["n_generated"]} generated samples valid; '
                f'{summary["distinct_sces"]} distinct SCEs; distances {_fmt(summary.get("distance_min"))} to '
                f'{_fmt(summary.get("distance_max"))}.</p>')
    return f'{line}<table class="samples">{head}{"".join(rows)}</table>'


def example_panel(result: CheckResult, rec: ExampleRecord, order: int, preds: GridPredictions | None,
                  with_map: bool, samples: Sequence[ExampleRecord] = ()) -> str:
    """One example: its status, the side-by-side (grid) or diff (text) view, the numbers, the raw
    reply when unparsed, and (grid, ``with_map``) the map of the slice through it. Under sampling
    (``samples``: all the example's records, ``rec`` its worst) a table of the samples, and the map
    draws every sample's SCE."""
    s = status(rec)
    g = gap(rec)
    which = f" <small>sample {html_text(rec.extra['sample'])} of {len(samples)}</small>" if len(samples) > 1 else ""
    head = (f"<h4><span class=\"badge {s}\">{s}</span> {html_text(rec.id)} "
            f"<small>{html_text(rec.prediction)} &rarr; {html_text(rec.target or '-')}</small>{which}</h4>")
    body = []
    if len(samples) > 1:
        body.append(_samples_block(samples, next((e for e in result.per_example if e["id"] == rec.id), None)))
    grid = result.info.get("task_kind") == "grid" or isinstance(rec.input, dict)
    if s == "unparsed":
        body.append(_unparsed_block(rec))
    if grid:
        if rec.target is not None:
            body.append(_grid_table(rec, preds))
        if s == "valid":
            body.append(_facts([("gap to the minimum (RCF_A)", _fmt(rec.rcf_a)), ("RCF", _fmt(rec.rcf))]))
        elif s == "invalid":
            body.append(_facts([("distance to the target region (ICF_A)", _fmt(rec.icf_a)),
                                ("why invalid", rec.extra.get("cf_prediction_unparsed"))]))
        if with_map and preds is not None:
            body.append(_example_map(preds, rec, [r for r in samples if r is not rec]))
    elif s != "unparsed":
        body.append(_text_block(rec))
    return (f'<article class="panel" data-status="{s}" data-gap="{_attr_num(g)}" '
            f'data-dist="{_attr_num(rec.distance)}" data-order="{order}" data-id="{html_text(rec.id)}">'
            f'{head}{"".join(body)}</article>')


def _example_map(preds: GridPredictions, rec: ExampleRecord, others: Sequence[ExampleRecord] = ()) -> str:
    m = example_map(preds, rec.to_dict(), [r.to_dict() for r in others])
    if isinstance(m, str):
        return f'<p class="omitted">No map: {html_text(m)}.</p>'
    why = map_unavailable(m)
    if why:
        return f'<p class="omitted">No map: {html_text(why)}.</p>'
    fixed = ", ".join(f"{k} = {v}" for k, v in m.fixed.items())
    caption = f"{m.x} \u00d7 {m.y}" + (f"; slice at {fixed}" if fixed else "; the whole plane")
    if others:
        caption += f"; the SCEs of all {len(others) + 1} samples"
    notes = "".join(f"<br>{html_text(n)}" for n in m.notes)
    return f'<figure class="mapbox">{map_svg(m)}<figcaption>{html_text(caption)}{notes}</figcaption></figure>'


def result_panels(result: CheckResult) -> str:
    """The controls and the panels of one SCE result (capped at `MAX_PANELS`, maps at `MAX_MAPS`),
    and a table of the raw replies of unparsed SCEs beyond the cap."""
    preds = GridPredictions.from_info(result.info)
    examples = ordered_examples(result)
    groups: dict[str, list[ExampleRecord]] = {}
    for rec in result.examples:  # under sampling, one panel per example (its worst sample shown first)
        groups.setdefault(rec.id, []).append(rec)
    if result.per_example:
        worst: dict[str, ExampleRecord] = {}
        for rec in examples:
            worst.setdefault(rec.id, rec)
        examples = list(worst.values())
    shown, rest = examples[:MAX_PANELS], examples[MAX_PANELS:]
    panels = [example_panel(result, rec, k, preds, k < MAX_MAPS, groups[rec.id] if result.per_example else ())
              for k, rec in enumerate(shown)]
    counts = {s: sum(1 for r in examples if status(r) == s) for s in ("valid", "invalid", "unparsed")}
    options = "".join(f'<option value="{s}">{s} ({counts[s]})</option>' for s in counts)
    controls = ('<p class="controls"><label>show <select class="filter"><option value="all">all</option>'
                f'{options}</select></label> <label>sort by <select class="sort"><option value="order">worst first'
                '</option><option value="gap">gap to the minimum</option><option value="dist">distance</option>'
                '</select></label> <span class="shown"></span></p>')
    notes = []
    if rest:
        notes.append(f"Showing the {len(shown)} worst of {len(examples)} examples; the JSON report has all of them.")
    if preds is not None and len(shown) > MAX_MAPS:
        notes.append(f"Maps are drawn for the first {MAX_MAPS} panels (the worst first) to keep the page small.")
    if result.info.get("task_kind") == "grid" and preds is None:
        notes.append("No maps: this result stores no grid predictions (a report written before they were stored).")
    out = [controls] + [f'<p class="cap">{html_text(n)}</p>' for n in notes]
    out.append('<div class="panels">' + "".join(panels) + "</div>")
    late = [r for r in rest if status(r) == "unparsed"]
    if late:
        rows = "".join(f"<tr><td>{html_text(r.id)}</td><td>{html_text(r.unparsed)}</td>"
                       f"<td>{html_text(((r.sce_reply if r.target is not None else r.prediction_reply) or '')[:600])}</td></tr>"
                       for r in late)
        out.append(f"<h4>Unparsed beyond the panels ({len(late)})</h4><table><thead><tr><th>id</th><th>reason</th>"
                   f"<th>raw reply (first 600 characters)</th></tr></thead><tbody>{rows}</tbody></table>")
    return "".join(out)


# -- the report's sections ------------------------------------------------------------------------

def boundary_section(results: Sequence[CheckResult]) -> str:
    """The whole plane of each two-feature grid result, every example on it (for more features,
    each example's panel draws the slice through it)."""

    planes, notes, legend = [], [], None
    for r in results:
        preds = GridPredictions.from_info(r.info) if _panels(r) else None
        if preds is None:
            continue
        legend = legend or map_legend(preds.labels)
        title = f"{r.model} / {r.dataset} / {unit_of(r)}"
        shown = r.examples[:MAX_PLANE_MARKS]
        m = plane_map(preds, [e.to_dict() for e in shown])
        counts = _coverage(preds.codes)
        if m is None:
            notes.append(f"{title}: {len(preds.features)} features; each example's panel below draws the 2-D slice "
                         f"through it along the two features its SCE or x* changes. {counts}")
            continue
        why = map_unavailable(m)
        if why:
            notes.append(f"{title}: not drawn, {why}.")
            continue
        more = f" (the first {len(shown)} of {len(r.examples)} examples)" if len(shown) < len(r.examples) else ""
        planes.append(f'<figure class="mapbox plane">{map_svg(m, width=520.0, height=400.0)}<figcaption><b>{html_text(title)}</b>: '
                      f"{html_text(m.x)} \u00d7 {html_text(m.y)}, the whole grid{more}. {counts}</figcaption></figure>")
    if legend is None:
        return ""
    return ('<h2 id="boundary">Decision boundary</h2>' + legend
            + ('<div class="plots">' + "".join(planes) + "</div>" if planes else "")
            + "".join(f'<p class="cap">{html_text(n)}</p>' for n in notes))


def _panels(r: CheckResult) -> bool:
    """Whether ``r``'s check declares its records SCE records (`CheckEntry.panels`: original, SCE
    and nearest flip drawn per example)."""

    return check_entry(r.check).panels


def _coverage(codes: str) -> str:
    known = sum(1 for c in codes if c != ".")
    text = f"The audit predicted {known} of {len(codes)} grid points ({100 * known / len(codes):.1f}%)"
    return text + ("; the others are unknown (hatched)." if known < len(codes) else ".")


def examples_section(results: Sequence[CheckResult], table: Callable[[Sequence[str], Sequence[Sequence[str]]], str]) -> str:
    """One section per result: panels for SCE results, the check's table of failing examples
    (laid out by ``table``) for the others."""

    parts = []
    for r in results:
        title = html_text(f"{r.model} / {r.dataset} / {unit_of(r)}")
        if _panels(r):
            per = per_target_table(r)  # a task with more than two options: its figures per target first
            head = f"<h4>{html_text(per[0])}</h4>{table(per[1], per[2])}" if per else ""
            parts.append(f'<section class="examples"><h3>{title}</h3>{head}{result_panels(r)}</section>')
            continue
        for name, headers, rows in example_tables(r, 5):
            parts.append(f"<h3>{title}: {html_text(name)}</h3>")
            parts.append(table(headers, rows))
    return '<h2 id="examples">Examples</h2>' + "".join(parts) if parts else ""
