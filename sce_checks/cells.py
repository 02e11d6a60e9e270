"""The cells every layer writes: numbers, shares, model text cut to one inert line, a result's
gates and figures. Pure formatters over values and result objects, below the checks (which fill
their own table rows and example tables with them), the assertions (whose failure messages use
them) and the reports (sce_checks/report/summary.py lays out the rows built from them)."""

from __future__ import annotations

from typing import Any

from sce_checks.safe import plain


def fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def p_value(p: float | None) -> str:
    """A p-value in three decimals, or in scientific notation under 0.001 (where three decimals say 0)."""
    if p is None:
        return "-"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def short(value: Any, width: int = 60) -> str:
    """``value`` (model text, a record) as one inert line (sce_checks/safe.py: `plain`) of at most
    ``width`` characters: example tables, and the assertion messages pytest prints, show it."""
    if isinstance(value, dict):
        text = ", ".join(f"{k}={v}" for k, v in value.items())
    else:
        text = str(value)
    text = plain(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def thresholds_cell(r: Any) -> str:
    """Each threshold judged on the result (a `CheckResult`), failures first:
    ``FAIL validity>=0.8 (0.42)``."""
    verdicts = sorted(r.info.get("thresholds") or [], key=lambda v: v["passed"])
    parts = []
    for v in verdicts:
        mark = "ok" if v["passed"] else ("xfail" if v.get("expected_failure") else "FAIL")
        shown = fmt(v["actual"]) if v.get("bounds") is None else f"in [{fmt(v['bounds'][0])}, {fmt(v['bounds'][1])}]"
        parts.append(f"{mark}{' undecided' if v.get('undecided') else ''} {v['threshold']} ({shown})")
    return "; ".join(parts) or "-"


def figure_cell(r: Any, name: str) -> str:
    """``phi 0.412`` or ``failure_rate 0.250 [0.089, 0.532]`` (Wilson 95% interval when there is one)."""
    value = r.get(name)
    ci = r.get(f"{name}_ci")
    text = f"{name} {fmt(value)}"
    if value is not None and ci and None not in ci:
        text += f" [{fmt(ci[0])}, {fmt(ci[1])}]"
    return text


def figures_cell(r: Any, check: Any) -> str:
    """The headline figures ``check`` (the result's declaration, sce_checks/checks/base.py)
    declares, its notes (phi-CCT's 2x2 counts, ...), then its sample sizes."""
    parts = [figure_cell(r, f.name) for f in check.figures if f.headline and f.name in r.figures]
    parts.extend(check.figure_notes(r))
    parts.extend(f"{c} {r[c]}" for c in check.counts if r.get(c) is not None)
    return "; ".join(parts) or "-"


def summary_line(r: Any, check: Any) -> str:
    """The usual one-line summary of a result of ``check``: unit, sample size and headline figures."""
    return f"{r.model} / {r.dataset} / {check.unit_of(r)}: n={r.n}; {figures_cell(r, check)}"
