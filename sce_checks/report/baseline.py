"""Baselines for regression testing after fine-tuning: save the figures of one run, compare a
later run against them, fail on regressions beyond a tolerance.

A baseline records, per (check, dataset, variant), the numeric figures, the exact example ids of
the sample and the task definition. Comparing against a baseline taken on a different sample,
task definition or metric version is refused with the reason, never silently compared.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from sce_checks.checks.base import lower_is_better
from sce_checks.errors import UserInputError
from sce_checks.report.json_report import write_atomic
from sce_checks.results import CheckResult

BASELINE_SCHEMA = "sce-checks/baseline/v1"
METRICS_VERSION = 1  # bump when a figure's definition changes


def compared(check: str) -> tuple[str, ...]:
    """The figures of ``check`` a baseline stores and compares: those its declaration gives a
    direction (sce_checks/checks/base.py, `Figure`)."""
    from sce_checks.checks.base import compared_figures

    return compared_figures(check)


def all_compared() -> tuple[str, ...]:
    from sce_checks.checks import all_checks

    return tuple(dict.fromkeys(name for c in all_checks() for name in compared(c.name)))


def _key(r: CheckResult) -> str:
    return f"{r.check}/{r.dataset}/{r.variant or '-'}"


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def baseline_entry(r: CheckResult, sample_ids: Sequence[str], task_fp: Any) -> dict[str, Any]:
    return {
        "figures": {k: r.figures.get(k) for k in compared(r.check) if k in r.figures},
        "n": r.n,
        "sample": _digest(list(sample_ids)),
        "task": _digest(task_fp),
    }


def save_baseline(path, results: Sequence[CheckResult], environment: dict[str, Any]) -> Path:
    samples = environment.get("samples", {})
    entries = {}
    for r in results:
        s = samples.get(r.dataset, {})
        entries[_key(r)] = baseline_entry(r, s.get("ids", [e.id for e in r.examples]), s.get("task"))
    data = {"schema": BASELINE_SCHEMA, "metrics_version": METRICS_VERSION, "environment": environment, "entries": entries}
    return write_atomic(path, json.dumps(data, indent=2, default=str))


def load_baseline(path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise UserInputError(f"baseline {p}: no such file (create one with --save-baseline {p})")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserInputError(f"baseline {p}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict) or data.get("schema") != BASELINE_SCHEMA:
        raise UserInputError(f"baseline {p}: not an sce-checks baseline (expected schema {BASELINE_SCHEMA!r})")
    return data


Tolerances = dict  # metric -> allowed worsening; the key "*" is the default for the others


def parse_tolerances(value: Any, where: str = "tolerance") -> Tolerances:
    """Tolerances from a number (every metric), a mapping {metric: number} (``"*"`` for the rest),
    or command-line strings such as ``["0.01", "validity=0.05"]``. Errors name ``where``."""
    if value is None:
        return {"*": 0.0}
    if isinstance(value, (list, tuple)):
        out: Tolerances = {}
        for item in value:
            name, sep, number = str(item).rpartition("=")
            out[name.strip() if sep else "*"] = number
        value = out
    if not isinstance(value, dict):
        value = {"*": value}
    out = {}
    for metric, tol in value.items():
        try:
            number = float(tol)
        except (TypeError, ValueError):
            number = -1.0
        if isinstance(tol, bool) or not number >= 0:
            raise UserInputError(f"{where}: {metric if metric != '*' else 'tolerance'} must be a non-negative number, got {tol!r}")
        if metric != "*" and metric not in all_compared():
            raise UserInputError(f"{where}: {metric!r} is not a compared metric; compared: {', '.join(all_compared())}")
        out[metric] = number
    out.setdefault("*", 0.0)
    return out


def describe_tolerances(tolerances: Tolerances) -> str:
    rest = [f"{m} {t:g}" for m, t in sorted(tolerances.items()) if m != "*"]
    return ", ".join([f"{tolerances.get('*', 0.0):g}"] + rest)


@dataclass
class Comparison:
    key: str
    metric: str
    before: float | None
    after: float | None
    delta: float | None
    regressed: bool


def compare(baseline: dict[str, Any], results: Sequence[CheckResult], environment: dict[str, Any],
            tolerance: float | Tolerances = 0.0, path: str = "baseline") -> list[Comparison]:
    """Compare results with a loaded baseline. A metric regresses when it got worse by more than
    its tolerance (a number for all metrics, or per metric: see `parse_tolerances`). Raises
    `UserInputError` when the two are not comparable (metric version, sample, task definition);
    a result absent from the baseline is refused too, so nothing is silently left unchecked."""
    tolerances = parse_tolerances(tolerance)
    if baseline.get("metrics_version") != METRICS_VERSION:
        raise UserInputError(f"{path}: metric definitions changed (baseline v{baseline.get('metrics_version')}, now v{METRICS_VERSION}); save a new baseline")
    entries = baseline.get("entries", {})
    samples = environment.get("samples", {})
    out: list[Comparison] = []
    for r in results:
        key = _key(r)
        if key not in entries:
            raise UserInputError(f"{path}: has no entry for {key} (it has: {', '.join(sorted(entries)) or 'none'})")
        old = entries[key]
        s = samples.get(r.dataset, {})
        now = baseline_entry(r, s.get("ids", [e.id for e in r.examples]), s.get("task"))
        if old.get("task") != now["task"]:
            raise UserInputError(f"{path}: {key} was measured on a different task definition; save a new baseline")
        if old.get("sample") != now["sample"]:
            raise UserInputError(f"{path}: {key} was measured on a different sample of examples (check --limit and --seed); save a new baseline")
        for metric, before in old["figures"].items():
            after = r.figures.get(metric)
            if before is None or after is None:
                # A figure over a subset (ICF over invalid SCEs, say) becomes undefined when the
                # subset empties: shown, not failed; what emptied it moves figures that are compared.
                out.append(Comparison(key, metric, before, after, None, False))
                continue
            delta = after - before
            worse = delta if lower_is_better(r.check, metric) else -delta
            allowed = tolerances.get(metric, tolerances["*"])
            out.append(Comparison(key, metric, before, after, delta, worse > allowed + 1e-12))
    return out


def render_comparison(rows: Sequence[Comparison], only_regressions: bool = False) -> str:
    from sce_checks.report.table import safe_table

    # figures undefined before and after (no SCE to measure) say nothing: left out
    shown = [c for c in rows if (c.regressed or not only_regressions) and not (c.before is None and c.after is None)]
    fmt = lambda x: "-" if x is None else f"{x:.4f}"  # noqa: E731
    table = [[c.key, c.metric, fmt(c.before), fmt(c.after), ("-" if c.delta is None else f"{c.delta:+.4f}"),
              "REGRESSED" if c.regressed else ("ok" if c.delta is not None or c.before == c.after else "undefined")]
             for c in shown]
    return safe_table(table, ["result", "metric", "before", "after", "delta", ""], "simple")
