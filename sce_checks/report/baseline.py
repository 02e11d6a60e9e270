"""Baselines for regression testing after fine-tuning: save the figures of one run, compare a
later run against them, fail on regressions beyond a tolerance.

A baseline records, per (check, dataset, variant), the numeric figures, the exact example ids of
the sample and the task definition. Comparing against a baseline taken on a different sample,
task definition or metric version is refused with the reason, never silently compared.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from sce_checks.checks.base import lower_is_better
from sce_checks.errors import UserInputError
from sce_checks.report.json_report import write_atomic
from sce_checks.results import CheckResult

BASELINE_SCHEMA = "sce-checks/baseline/v1"
METRICS_VERSION = 1  # bump when a figure's definition changes
# Rounding, not a regression: figures computed from fp32 log-probabilities move by ~1e-7 when the
# same prompts are scored in other batches (padding and shared-prefix passes change the order of
# sums); a real change moves a figure by far more (one example of 40 moves a rate by 0.025).
ROUNDING = 1e-6


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
    """A saved baseline, checked whole before any model call: readable UTF-8 JSON of this
    schema and metric version, every entry with its sample and task digests, every figure a
    finite number or null (a string or NaN figure would compare as nothing, silently).
    `UserInputError` naming the file and the key otherwise."""
    from sce_checks.tasks.grid_file import read_json, read_user_text

    p = Path(path)
    shown = f"baseline {p}"
    if not p.exists():
        raise UserInputError(f"{shown}: no such file (create one with --save-baseline {p})")
    data = read_json(read_user_text(p, shown), shown)
    if not isinstance(data, dict) or data.get("schema") != BASELINE_SCHEMA:
        raise UserInputError(f"{shown}: not an sce-checks baseline (expected schema {BASELINE_SCHEMA!r})")
    if data.get("metrics_version") != METRICS_VERSION:
        raise UserInputError(f"{shown}: metric definitions changed (baseline v{data.get('metrics_version')}, "
                             f"now v{METRICS_VERSION}); save a new baseline")
    entries = data.get("entries")
    if not isinstance(entries, dict):
        raise UserInputError(f"{shown}: entries: expected an object of results, got {_short(entries)}")
    for key, entry in entries.items():
        where = f"{shown}: entries.{key}"
        if not isinstance(entry, dict) or not isinstance(entry.get("figures"), dict):
            raise UserInputError(f"{where}: expected an object with figures, n, sample and task, got {_short(entry)}")
        for digest in ("sample", "task"):
            if not isinstance(entry.get(digest), str):
                raise UserInputError(f"{where}.{digest}: expected the digest string, got {_short(entry.get(digest))}")
        for metric, value in entry["figures"].items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value)):
                raise UserInputError(f"{where}.figures.{metric}: expected a finite number or null, got {_short(value)}")
    return data


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _same_measurement(path: str, key: str, old: dict[str, Any], sample: str, task: str) -> None:
    """Refuse a baseline entry measured on another task definition or sample."""
    if old.get("task") != task:
        raise UserInputError(f"{path}: {key} was measured on a different task definition; save a new baseline")
    if old.get("sample") != sample:
        raise UserInputError(f"{path}: {key} was measured on a different sample of examples (check --limit and "
                             "--seed); save a new baseline")


def check_comparable(baseline: dict[str, Any], spec: Any, path: str = "baseline") -> None:
    """Before any model call: the entries of ``baseline`` that results of ``spec`` will be
    compared with were measured on the same task definitions and samples (both are known
    without the model: the sample is drawn from the limit and seed alone)."""
    from sce_checks.checks import check_of, units
    from sce_checks.tasks import load_task, task_examples

    entries = baseline.get("entries", {})
    for dataset in spec.datasets:
        task = load_task(dataset)
        ids = [i for i, _ in task_examples(task, spec.limit or None, spec.seed)]
        sample, task_digest = _digest(ids), _digest(task.fingerprint())
        for unit in units(spec.checks, spec.variants):
            check = check_of(unit)
            key = f"{check}/{task.name}/{unit if unit != check else '-'}"
            if key in entries:
                _same_measurement(path, key, entries[key], sample, task_digest)


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
        except (TypeError, ValueError, OverflowError):
            number = -1.0
        if isinstance(tol, bool) or not 0 <= number < math.inf:
            raise UserInputError(f"{where}: {metric if metric != '*' else 'tolerance'} must be a finite non-negative number, "
                                 f"got {tol!r}")
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
    """Compare results with a baseline read by `load_baseline` (which refused another metric
    version and malformed figures). A metric regresses when it got worse by more than its
    tolerance (a number for all metrics, or per metric: see `parse_tolerances`). Raises
    `UserInputError` when the two are not comparable (sample, task definition); a result absent
    from the baseline is refused too, so nothing is silently left unchecked."""
    tolerances = parse_tolerances(tolerance)
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
        _same_measurement(path, key, old, now["sample"], now["task"])
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
            out.append(Comparison(key, metric, before, after, delta, worse > allowed + ROUNDING))
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
