"""Plots of the HTML report, by name. A check names the plots drawn for its results
(`Check.plots`); each function takes those results and returns matplotlib figures (drawn
headless, inlined as SVG by report/html.py)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from sce_checks.results import CheckResult


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(5.5, 4))


def validity_minimality(results: Sequence[CheckResult]) -> list[Any]:
    """Validity against minimality, one point per model/dataset/variant (like Mayne et al.'s
    figure), and generation rate and validity per dataset and variant."""
    fig = _figure()
    ax = fig.add_subplot()
    for r in results:
        x = r.get("mean_rcf_a") if r.get("mean_rcf_a") is not None else r.get("mean_distance")
        y = r.get("validity")
        if x is None or y is None:
            continue
        marker = "o" if r.variant == "unconstrained" else "s"
        ax.scatter([x], [100 * y], marker=marker, s=50)
        ax.annotate(f"{r.dataset}/{r.variant}", (x, 100 * y), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("mean RCF_A (grid) / mean edit distance (text) - lower is more minimal")
    ax.set_ylabel("validity (%)")
    ax.set_ylim(-5, 105)
    ax.set_title("Validity vs minimality")
    ax.grid(alpha=0.3)
    scatter = fig

    fig = _figure()
    ax = fig.add_subplot()
    labels = [f"{r.dataset}\n{r.variant}" for r in results]
    vals = [100 * (r.get("validity") or 0.0) for r in results]
    gen = [100 * (r.get("generation_rate") or 0.0) for r in results]
    xs = range(len(results))
    ax.bar([x - 0.2 for x in xs], gen, width=0.4, label="generation rate")
    ax.bar([x + 0.2 for x in xs], vals, width=0.4, label="validity")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylim(0, 105)
    ax.set_ylabel("%")
    ax.legend(fontsize=7)
    ax.set_title("Per dataset and variant")
    return [scatter, fig]


PLOTS: dict[str, Callable[[Sequence[CheckResult]], list[Any]]] = {
    "validity_minimality": validity_minimality,
}
