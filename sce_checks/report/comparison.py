"""A baseline comparison in the terminal: its table and the text under it. The comparison itself
(rows, verdicts, changed examples) is computed by sce_checks/regression/gate.py; this module only
lays it out, every cell made inert (sce_checks/safe.py)."""

from __future__ import annotations

from typing import Sequence

from sce_checks.cells import p_value
from sce_checks.layout import fit_table
from sce_checks.regression.gate import Comparison, ComparisonReport
from sce_checks.report.changes import changes_text
from sce_checks.safe import plain


def render_comparison(rows: Sequence[Comparison], only_regressions: bool = False, width: int | None = None) -> str:
    """The comparison's terminal table, no wider than ``width`` (sce_checks/layout.py: `fit_table`)."""
    # figures undefined before and after (no SCE to measure) say nothing: left out
    shown = [c for c in rows if (c.regressed or not only_regressions) and not (c.before is None and c.after is None)]
    fmt = lambda x: "-" if x is None else f"{x:.4f}"  # noqa: E731
    table = []
    for c in shown:
        t, s = c.test, c.sequential
        paired = "-" if t is None else f"{t.delta:+.3f} [{t.low:+.3f}, {t.high:+.3f}] n={t.n}"
        test = "-" if t is None else f"{t.test} {p_value(t.p)}" + (f" (Holm {p_value(c.p_holm)})" if c.p_holm is not None else "")
        moved = "-" if t is None else f"{t.worse}/{t.better}"
        if s is not None:  # decided by the --sequential comparison: its confidence sequence, not a fixed-n test
            n, lo, hi = s["history"][-1]
            paired = f"{s['mean_change']:+.3f} [{lo:+.3f}, {hi:+.3f}] n={n} (CS)"
            test = f"sequential, alpha {s['alpha']:.3g}"
            moved = f"{s['worse']}/{s['improved']}"
        table.append([c.key, c.metric, fmt(c.before), fmt(c.after), ("-" if c.delta is None else f"{c.delta:+.4f}"),
                      paired, test, moved, c.status()])
    headers = ["result", "metric", "before", "after", "delta", "paired delta [95% CI]", "test: p (one-sided)",
               "worse/better", "verdict"]
    return fit_table(headers, [[plain(c) for c in row] for row in table], width)


def render_report(report: ComparisonReport, width: int | None = None) -> str:
    """The terminal text of a comparison: a headline, the table, the verdict lines of the
    regressions, the notes and the examples that changed; tables no wider than ``width``."""
    head = f"baseline {report.path}: {report.status()} ({report.mode}"
    head += (f", alpha {report.alpha:g}" if report.mode == "paired" else "") + ")"
    parts = [head, render_comparison(report.rows, width=width)]
    findings = report.findings()
    if findings:
        parts.append("\n".join(findings))
    text = changes_text(report.changes, width)
    if text:
        parts.append(text)
    return "\n\n".join(parts)
