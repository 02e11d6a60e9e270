"""The built-in plots of the HTML report. Each is an entry of the ``sce_checks.plots`` entry point
group, declared in sce_checks/report/plot_catalog.py; a check names the plots drawn for its
results (`CheckEntry.plots`). Each function takes those results and returns `Plot` objects: a
matplotlib figure (drawn headless, inlined as SVG by report/html.py), or the one line saying why
there is nothing to draw (a plot with no data is left out, never drawn empty). Figures are read
from the results; nothing is recomputed but the counting a picture needs (shares, an ECDF)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from sce_checks import optional
from sce_checks.report.plot_catalog import Plot
from sce_checks.results import CheckResult
from sce_checks.thresholds import Threshold

VALID, INVALID = "#1b7f3b", "#b00020"
MAX_RESULT_PLOTS = 8  # per-result plots (feature changes, TVD, phi tables) drawn per check


def _figure(w: float = 5.5, h: float = 4.0) -> Any:
    return optional.matplotlib_figure().Figure(figsize=(w, h))


def _label(r: CheckResult) -> str:
    return " / ".join(x for x in (r.model, r.dataset, r.variant) if x)


def _kind(r: CheckResult) -> str:
    return r.info.get("task_kind") or ("grid" if r.get("mean_rcf_a") is not None else "text")


# -- validity against minimality ---------------------------------------------------------------------

@dataclass(frozen=True)
class VMPoint:
    """One point of the validity-minimality plot: validity (y) with its Wilson interval, and the
    minimality figure (x: mean RCF_A on grids, mean edit distance on text)."""

    label: str
    x: float
    y: float
    low: float | None
    high: float | None
    marker: str = "o"


def validity_minimality_points(results: Sequence[CheckResult]) -> dict[str, list[VMPoint]]:
    """The points of SCE results by task kind (grid: RCF_A against validity, text: the mean
    normalised edit distance); a result without both values has no point."""
    out: dict[str, list[VMPoint]] = {}
    for r in results:
        kind = _kind(r)
        x = r.get("mean_rcf_a") if kind == "grid" else r.get("mean_distance")
        y = r.get("validity")
        if not (_number(x) and _number(y)):
            continue
        low, high = (r.get("validity_ci") or [None, None])[:2]
        if not (_number(low) and _number(high) and low <= y <= high):  # an edited file's interval is not one
            low = high = None
        out.setdefault(kind, []).append(VMPoint(_label(r), x, y, low, high, "o" if r.variant != "minimal" else "s"))
    return out


def validity_minimality_figure(points: Sequence[VMPoint], kind: str) -> Any:
    """Validity (its 95% interval as error bars: Wilson, or clustered under sampling) against minimality, one point per entry."""
    fig = _figure(6.2, 4.2)
    ax = fig.add_subplot()
    for k, p in enumerate(points):
        yerr = [[100 * (p.y - p.low)], [100 * (p.high - p.y)]] if p.low is not None and p.high is not None else None
        ax.errorbar([p.x], [100 * p.y], yerr=yerr, fmt=p.marker, capsize=4, color=f"C{k % 10}", label=p.label)
    ax.set_xlabel("mean RCF_A (Gower; lower is more minimal)" if kind == "grid"
                  else "mean normalised edit distance (lower is more minimal)")
    ax.set_ylabel("validity (%), 95% interval")  # Wilson; the cluster bootstrap under sampling (docs/sampling.md)
    ax.set_ylim(-5, 105)
    ax.set_xlim(left=min(0.0, min(p.x for p in points)) - 0.01)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return fig


def validity_minimality(results: Sequence[CheckResult]) -> list[Plot]:
    by_kind = validity_minimality_points(results)
    plots = []
    for kind in ("grid", "text"):
        title = f"Validity against minimality ({kind} tasks)"
        if by_kind.get(kind):
            left_out = [_label(r) for r in results if _kind(r) == kind and r.get("mean_rcf_a" if kind == "grid" else
                                                                                   "mean_distance") is None]
            if left_out:
                title += f"; not shown, no valid SCE to measure: {', '.join(left_out)}"
            plots.append(Plot("validity_minimality", title, validity_minimality_figure(by_kind[kind], kind)))
        elif any(_kind(r) == kind for r in results):
            what = "mean RCF_A (no valid SCE)" if kind == "grid" else "mean distance"
            plots.append(Plot("validity_minimality", title, omitted=f"no result has both a validity and a {what}"))
    return plots


# -- how minimal: the distribution ------------------------------------------------------------------

def _ecdf(ax: Any, values: Sequence[float], label: str, color: str) -> None:
    xs = sorted(values)
    ys = [(k + 1) / len(xs) for k in range(len(xs))]
    ax.step([xs[0]] + xs, [0.0] + ys, where="post", label=f"{label} (n={len(xs)})", color=color)


def valid_gaps(r: CheckResult) -> list[float]:
    """Each valid SCE's recorded gap to the minimum: RCF_A on grids, the gap to the searched
    minimal edit on text (``minimality_gap``, present when the search found one)."""
    if _kind(r) == "grid":
        return [e.rcf_a for e in r.examples if e.valid and _number(e.rcf_a)]
    return [e.extra["minimality_gap"] for e in r.examples if e.valid and _number(e.extra.get("minimality_gap"))]


def minimality_distribution(results: Sequence[CheckResult]) -> list[Plot]:
    """ECDF of each valid SCE's gap to the minimum (`valid_gaps`), one line per result."""
    plots = []
    for kind, xlabel in (("grid", "RCF_A = d(x, x') - d(x, x*) (Gower)"),
                         ("text", "distance beyond the searched minimal edit")):
        mine = [r for r in results if _kind(r) == kind]
        if not mine:
            continue
        title = f"Distribution of {'RCF_A' if kind == 'grid' else 'the minimality gap'} ({kind} tasks)"
        series = [(_label(r), gaps) for r in mine if (gaps := valid_gaps(r))]
        if not series:
            why = ("no valid SCE has an RCF_A" if kind == "grid" else
                   "no valid SCE has a gap to a searched minimal edit (the search is off unless --text-search-budget > 0)")
            plots.append(Plot("minimality_distribution", title, omitted=why))
            continue
        fig = _figure()
        ax = fig.add_subplot()
        for k, (label, vals) in enumerate(series):
            _ecdf(ax, vals, label, f"C{k % 10}")
        ax.set_xlabel(xlabel + "; 0 = as minimal as possible")
        ax.set_ylabel("share of valid SCEs with a gap <= x")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        plots.append(Plot("minimality_distribution", title, fig))
    return plots


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# -- which features move the decision ---------------------------------------------------------------

def feature_change_shares(r: CheckResult) -> tuple[list[str], list[float], list[float], int, int]:
    """(features, share of generated SCEs changing each, share of examples whose first stored x*
    changes each, SCEs counted, x* counted)."""
    features: list[str] = []
    sce, ref = {}, {}
    n_sce = n_ref = 0
    for e in r.examples:
        if not isinstance(e.input, dict):
            continue
        for f in e.input:
            if f not in features:
                features.append(f)
        if isinstance(e.counterfactual, dict):
            n_sce += 1
            for f, v in e.input.items():
                sce[f] = sce.get(f, 0) + (e.counterfactual.get(f) != v)
        refs = e.reference if isinstance(e.reference, list) else []
        if refs and isinstance(refs[0], dict):
            n_ref += 1
            for f, v in e.input.items():
                ref[f] = ref.get(f, 0) + (refs[0].get(f) != v)
    return (features, [sce.get(f, 0) / n_sce if n_sce else 0.0 for f in features],
            [ref.get(f, 0) / n_ref if n_ref else 0.0 for f in features], n_sce, n_ref)


def feature_changes(results: Sequence[CheckResult]) -> list[Plot]:
    """Per grid result: how often each feature is changed by the SCEs (what the model says
    matters) and by the exact nearest flips x* (what moves its decision)."""
    plots = []
    grid = [r for r in results if _kind(r) == "grid"]
    for r in grid[:MAX_RESULT_PLOTS]:
        title = f"Features changed: SCE vs nearest flip x* ({_label(r)})"
        features, s, x, n_sce, n_ref = feature_change_shares(r)
        if not n_sce and not n_ref:
            plots.append(Plot("feature_changes", title, omitted="no SCE was generated and no x* was found"))
            continue
        fig = _figure(max(5.0, 1.0 + 0.9 * len(features)), 3.6)
        ax = fig.add_subplot()
        pos = range(len(features))
        ax.bar([p - 0.2 for p in pos], [100 * v for v in s], width=0.4, label=f"SCEs (n={n_sce})", color="#4c72b0")
        ax.bar([p + 0.2 for p in pos], [100 * v for v in x], width=0.4, label=f"x*, first of ties (n={n_ref})",
               color="#dd8452")
        ax.set_xticks(list(pos))
        ax.set_xticklabels(features, fontsize=8, rotation=20 if len(features) > 5 else 0)
        ax.set_ylabel("% changing the feature")
        ax.set_ylim(0, 105)
        ax.legend(fontsize=7)
        ax.grid(axis="y", alpha=0.3)
        plots.append(Plot("feature_changes", title, fig))
    if len(grid) > MAX_RESULT_PLOTS:
        plots.append(Plot("feature_changes", "Features changed", omitted=f"drawn for the first {MAX_RESULT_PLOTS} of "
                                                                        f"{len(grid)} grid results"))
    return plots


# -- faithfulness: CCT and phi-CCT --------------------------------------------------------------------

def tvd_mention(results: Sequence[CheckResult]) -> list[Plot]:
    """CCT: each intervention's TVD, split by whether the explanation mentions the inserted word."""
    plots = []
    for r in results[:MAX_RESULT_PLOTS]:
        title = f"TVD against mention, CCT {r.get('cct'):.3f} ({_label(r)})" if r.get("cct") is not None \
            else f"TVD against mention ({_label(r)})"
        rows = [iv for e in r.examples for iv in (e.extra.get("interventions") or [])
                if _number(iv.get("tvd")) and iv.get("mentioned") is not None]
        groups = [[iv["tvd"] for iv in rows if iv["mentioned"]], [iv["tvd"] for iv in rows if not iv["mentioned"]]]
        if not rows:
            plots.append(Plot("tvd_mention", title, omitted="no intervention has a TVD (option scores) and a reading"))
            continue
        fig = _figure(5.0, 3.6)
        ax = fig.add_subplot()
        for k, vals in enumerate(groups):
            jitter = [k + 0.25 * (((i * 7919) % 100) / 100 - 0.5) for i in range(len(vals))]
            ax.scatter(jitter, vals, s=14, alpha=0.6, color=("#4c72b0", "#dd8452")[k])
            if vals:
                mean = sum(vals) / len(vals)
                ax.plot([k - 0.3, k + 0.3], [mean, mean], color="black", lw=2)
        ax.set_xticks([0, 1])
        ax.set_xticklabels([f"mentioned (n={len(groups[0])})", f"not mentioned (n={len(groups[1])})"])
        ax.set_ylabel("TVD of the option distribution")
        ax.set_xlim(-0.6, 1.6)
        ax.grid(axis="y", alpha=0.3)
        plots.append(Plot("tvd_mention", title, fig))
    return plots


def phi_table(results: Sequence[CheckResult]) -> list[Plot]:
    """phi-CCT's 2x2 table (prediction changed x explanation mentions the word), drawn."""
    plots = []
    for r in results[:MAX_RESULT_PLOTS]:
        cells = [r.get(k) for k in ("n11", "n10", "n01", "n00")]
        phi = r.get("phi")
        title = f"phi-CCT 2x2 table, phi {phi:.3f} ({_label(r)})" if phi is not None else f"phi-CCT 2x2 table ({_label(r)})"
        if None in cells or not sum(cells):
            plots.append(Plot("phi_table", title, omitted="no intervention with a parsed prediction"))
            continue
        n11, n10, n01, n00 = cells
        table = [[n11, n10], [n01, n00]]
        fig = _figure(4.2, 3.4)
        ax = fig.add_subplot()
        ax.imshow(table, cmap="Blues", vmin=0, vmax=max(cells) * 1.3)
        for i in range(2):
            for j in range(2):
                ax.text(j, i, str(table[i][j]), ha="center", va="center", fontsize=14)
        ax.set_xticks([0, 1])
        ax.set_xticklabels(["mentioned", "not mentioned"])
        ax.set_yticks([0, 1])
        ax.set_yticklabels(["prediction\nchanged", "prediction\nunchanged"])
        ax.set_xlabel("explanation and the inserted word")
        plots.append(Plot("phi_table", title, fig))
    return plots


# -- sequential audits: each gate's confidence sequence against its threshold ------------------------

def sequential_gates(results: Sequence[CheckResult]) -> list[Plot]:
    """Per result of a ``--sequential`` audit (sce_checks/stopping.py), the confidence sequence of
    each gated figure over the examples audited (the band between its bounds after each batch)
    against the threshold, with where the gate was decided. Nothing for other results."""
    plots = []
    for r in [r for r in results if (r.info.get("sequential") or {}).get("gates")][:MAX_RESULT_PLOTS]:
        block = r.info["sequential"]
        fig = _figure(5.5, 3.4)
        ax = fig.add_subplot()
        for i, gate in enumerate(block["gates"]):
            history = gate["history"]
            if not history:
                continue
            n = [h[0] for h in history]
            color = {"pass": VALID, "fail": INVALID}.get(gate["state"], "#555555")
            ax.fill_between(n, [h[1] for h in history], [h[2] for h in history], step="post", alpha=0.25, color=color,
                            label=f"{gate['threshold']}: {gate['state']}")
            ax.step(n, [h[1] for h in history], where="post", color=color, lw=1)
            ax.step(n, [h[2] for h in history], where="post", color=color, lw=1)
            ax.axhline(_threshold_value(gate["threshold"]), color=color, ls="--", lw=1)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("examples with a value (per gate)")
        ax.set_ylabel("confidence sequence of the figure")
        ax.legend(fontsize=7, loc="best")
        title = (f"Sequential gates: {_label(r)}, stopped after {block['stopped_after']} of {block['limit']} "
                 f"examples ({block['reason']})")
        plots.append(Plot("sequential_gates", title, fig))
    return plots


def _threshold_value(text: str) -> float:
    """The number of a threshold as written (``validity>=0.5`` -> 0.5)."""

    return Threshold.parse(text, "sequential gate").value

