"""The rows every human-readable report shows, computed once from result objects (terminal
table, Markdown and HTML all render these rows; none recomputes a figure). What a check shows
comes from its declaration in the registry (sce_checks/checks/base.py): its table, headline
figures, sample sizes and failing examples; nothing here names a check."""

from __future__ import annotations

from typing import Any, Sequence

from sce_checks.report.safe import plain
from sce_checks.results import CheckResult

CHECK_HEADERS = ["model", "dataset", "check", "n", "figures", "thresholds", "verdict"]
GATE_HEADERS = ("thresholds", "verdict")  # left out of a table where no row has a gate


def fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def short(value: Any, width: int = 60) -> str:
    """``value`` (model text, a record) as one inert line (report/safe.py: `plain`) of at most
    ``width`` characters: example tables, and the assertion messages pytest prints, show it."""
    if isinstance(value, dict):
        text = ", ".join(f"{k}={v}" for k, v in value.items())
    else:
        text = str(value)
    text = plain(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def thresholds_cell(r: CheckResult) -> str:
    """Each threshold judged on the result, failures first: ``FAIL validity>=0.8 (0.42)``."""
    verdicts = sorted(r.info.get("thresholds") or [], key=lambda v: v["passed"])
    parts = []
    for v in verdicts:
        mark = "ok" if v["passed"] else ("xfail" if v.get("expected_failure") else "FAIL")
        shown = fmt(v["actual"]) if v.get("bounds") is None else f"in [{fmt(v['bounds'][0])}, {fmt(v['bounds'][1])}]"
        parts.append(f"{mark}{' undecided' if v.get('undecided') else ''} {v['threshold']} ({shown})")
    return "; ".join(parts) or "-"


def ordered(results: Sequence[CheckResult]) -> list[CheckResult]:
    """Failures first, then the rest in run order."""
    return sorted(results, key=lambda r: r.verdict != "FAIL")


def figure_cell(r: CheckResult, name: str) -> str:
    """``phi 0.412`` or ``failure_rate 0.250 [0.089, 0.532]`` (Wilson 95% interval when there is one)."""
    value = r.get(name)
    ci = r.get(f"{name}_ci")
    text = f"{name} {fmt(value)}"
    if value is not None and ci and None not in ci:
        text += f" [{fmt(ci[0])}, {fmt(ci[1])}]"
    return text


def figures_cell(r: CheckResult) -> str:
    """The check's headline figures, its notes (phi-CCT's 2x2 counts, ...), then its sample sizes."""
    from sce_checks.checks import get_check

    check = get_check(r.check)
    parts = [figure_cell(r, f.name) for f in check.figures if f.headline and f.name in r.figures]
    parts.extend(check.figure_notes(r))
    parts.extend(f"{c} {r[c]}" for c in check.counts if r.get(c) is not None)
    return "; ".join(parts) or "-"


def summary_line(r: CheckResult) -> str:
    """The usual one-line summary of a result: unit, sample size and headline figures."""
    from sce_checks.checks import unit_of

    return f"{r.model} / {r.dataset} / {unit_of(r)}: n={r.n}; {figures_cell(r)}"


def check_row(r: CheckResult) -> list[str]:
    """The generic row of a result: model, dataset, check, n, figures, gates, verdict."""
    return [r.model, r.dataset, r.check, str(r.n), figures_cell(r), thresholds_cell(r), r.verdict]


def result_tables(results: Sequence[CheckResult]) -> list[tuple[list[str], list[list[str]]]]:
    """(headers, rows) per kind of table: a check with a table of its own (the SCE check's
    validity and minimality columns) gets it, the others share `CHECK_HEADERS`. Failures first.
    The gate columns are left out of a table none of whose rows has a threshold."""
    from sce_checks.checks import get_check

    tables: dict[tuple[str, ...], list[list[str]]] = {}
    for r in ordered(results):
        check = get_check(r.check)
        headers = tuple(check.table_headers or CHECK_HEADERS)
        tables.setdefault(headers, []).append(check.table_row(r) if check.table_headers else check_row(r))
    return [_without_empty_gates(list(h), rows) for h, rows in tables.items()]


def _without_empty_gates(headers: list[str], rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    empty = [i for i, h in enumerate(headers) if h in GATE_HEADERS and all(row[i] == "-" for row in rows)]
    keep = [i for i in range(len(headers)) if i not in empty]
    return [headers[i] for i in keep], [[row[i] for i in keep] for row in rows]


def check_rows(results: Sequence[CheckResult]) -> list[list[str]]:
    """The generic rows of the results whose check has no table of its own."""
    from sce_checks.checks import get_check

    return [check_row(r) for r in ordered(results) if not get_check(r.check).table_headers]


def unparsed_line(result: CheckResult) -> str:
    from sce_checks.checks import unit_of

    reasons = result.info.get("unparsed_reasons") or {}
    if not reasons:
        return ""
    parts = ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]))
    return f"unparsed ({result.dataset}/{unit_of(result)}): {parts}"


def reading_line(result: CheckResult) -> str:
    """What the lenient reading read and the generation fallback decided, when anything:
    ``read leniently (income/minimal): 3 SCEs (numeric_string 2, normalised_label 1); ...``."""
    from sce_checks.checks import unit_of

    info = result.info
    parts = []
    for what, key in (("SCEs", "sce_leniency"), ("predictions", "prediction_leniency")):
        rules = info.get(key) or {}
        if rules:
            count = info.get("n_sce_lenient") if what == "SCEs" else None
            head = f"{count} {what}" if count is not None else what
            parts.append(f"{head} ({', '.join(f'{k} {v}' for k, v in sorted(rules.items()))})")
    if info.get("n_prediction_fallback"):
        parts.append(f"{info['n_prediction_fallback']} predictions generated (option scores undecided)")
    if not parts:
        return ""
    return f"read leniently ({result.dataset}/{unit_of(result)}): " + "; ".join(parts)


def notes(results: Sequence[CheckResult], skipped: Sequence[str] = ()) -> list[str]:
    """Per result, a line of unparsed outputs and one of leniently read ones; then one per check
    that could not run."""
    lines = [line for r in results for line in (unparsed_line(r), reading_line(r)) if line]
    return lines + [f"not applicable: {line}" for line in skipped]


def example_tables(result: CheckResult, k: int) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows) of the examples the result's check shows: the worst SCEs, another
    check's failing examples; none when there are none."""
    from sce_checks.checks import get_check

    table = get_check(result.check).example_table(result, k)
    return [table] if table else []


def failing_rows(result: CheckResult, k: int = 3) -> list[list[str]]:
    """The rows of `example_tables` (the check's failing examples), at most ``k``."""
    return [row for _, _, rows in example_tables(result, k) for row in rows]
