"""Baseline files: what a baseline holds, writing and reading one, and refusing a comparison that
would compare different things.

A baseline records, per (check, dataset, variant), the numeric figures, the exact example ids of
the sample (as a digest), the task definition (a digest) and (schema v2) every example's outcomes
(the `Outcome`s its check declares: valid, generated, distance, RCF_A, INV failure, ...) with its
prediction, target and SCE. A baseline is read whole and checked before any model call; comparing
against one taken on a different sample, task definition or metric version is refused with the
reason, never silently compared (docs/regression.md).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Sequence

from sce_checks.checks import check_of, get_check, units
from sce_checks.checks.base import compared_figures
from sce_checks.errors import UserInputError
from sce_checks.paths import write_atomic
from sce_checks.registry import CHECKS
from sce_checks.results import CheckResult, _clean
from sce_checks.tasks import load_task, task_examples
from sce_checks.userfiles import read_json, read_user_text

BASELINE_SCHEMA = "sce-checks/baseline/v2"
OLD_SCHEMAS = ("sce-checks/baseline/v1",)  # aggregate figures only: compared against the tolerance alone
METRICS_VERSION = 1  # bump when a figure's definition changes
SHOWN = ("prediction", "target", "counterfactual")  # kept per example to show what changed


def compared(check: str) -> tuple[str, ...]:
    """The figures of ``check`` a baseline stores and compares: those its declaration gives a
    direction (sce_checks/checks/base.py, `Figure`)."""

    return compared_figures(check)


def all_compared() -> tuple[str, ...]:
    """Every figure a baseline can compare, from the usable checks' declarations (a broken or
    clashing plugin is left out here and fails, one line, only where a run uses it)."""

    return tuple(dict.fromkeys(name for e in CHECKS.usable() for name in compared(e.name)))


def entry_key(r: CheckResult) -> str:
    """The key of a result's entry: ``check/dataset/variant`` (``-`` for no variant)."""
    return f"{r.check}/{r.dataset}/{r.variant or '-'}"


def _digest(value: Any) -> str:
    """A short stable digest of a JSON-able value (a sample's ids, a task's fingerprint)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def outcome_values(r: CheckResult) -> dict[str, dict[str, Any]]:
    """Each example's outcomes (its check's declared `Outcome`s) and what to show of it."""
    return examples_of(r.check, [e.to_dict() for e in r.examples])


def examples_of(check: str, records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each example's outcomes by id. A sampled audit has several records per example (one per
    sample, docs/sampling.md): its outcome is then the mean over the samples that have one (a
    binary outcome becomes the share of samples where it holds), and ``samples`` says how many."""
    outcomes = get_check(check).outcomes
    grouped: dict[str, list[dict[str, Any]]] = {}
    for e in records:
        grouped.setdefault(str(e.get("id")), []).append(e)
    out: dict[str, dict[str, Any]] = {}
    for ex_id, recs in grouped.items():
        entry = {k: recs[0].get(k) for k in SHOWN}
        if len(recs) == 1:
            entry["outcomes"] = {o.name: o.value(recs[0]) for o in outcomes}
        else:
            entry["samples"] = len(recs)
            entry["outcomes"] = {o.name: _mean_of([o.value(r) for r in recs]) for o in outcomes}
        out[ex_id] = entry
    return out


def _mean_of(values: Sequence[Any]) -> float | None:
    """The mean of the values that are not None (True counts 1, False 0); None when none is."""
    kept = [float(v) for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def baseline_entry(r: CheckResult, sample_ids: Sequence[str], task_fp: Any) -> dict[str, Any]:
    """A result as a baseline stores it (and as a comparison reads either side)."""
    return {
        "check": r.check,
        "figures": {k: r.figures.get(k) for k in compared(r.check) if k in r.figures},
        "n": r.n,
        "sample": _digest(list(sample_ids)),
        "task": _digest(task_fp),
        "examples": outcome_values(r),
        # figures the x* budget left bounded (null above): [lower, upper], None for unbounded
        "bounds": {k: r.figures[f"{k}_bounds"] for k in compared(r.check) if r.figures.get(f"{k}_bounds") is not None},
    }


def save_baseline(path, results: Sequence[CheckResult], environment: dict[str, Any]) -> Path:
    samples = environment.get("samples", {})
    entries = {}
    for r in results:
        s = samples.get(r.dataset, {})
        entries[entry_key(r)] = baseline_entry(r, s.get("ids", [e.id for e in r.examples]), s.get("task"))
    data = {"schema": BASELINE_SCHEMA, "metrics_version": METRICS_VERSION, "environment": environment, "entries": entries}
    return write_atomic(path, json.dumps(_clean(data), indent=2, default=str))


def load_baseline(path) -> dict[str, Any]:
    """A saved baseline, checked whole before any model call: readable UTF-8 JSON of this
    schema (or v1: figures only, compared against the tolerance alone) and metric version, every
    entry with its sample and task digests, every figure a finite number or null (a string or NaN
    figure would compare as nothing, silently), every example's outcomes an object.
    `UserInputError` naming the file and the key otherwise."""

    p = Path(path)
    shown = f"baseline {p}"
    if not p.exists():
        raise UserInputError(f"{shown}: no such file (create one with --save-baseline {p})")
    data = read_json(read_user_text(p, shown), shown)
    schemas = (BASELINE_SCHEMA, *OLD_SCHEMAS)
    if not isinstance(data, dict) or data.get("schema") not in schemas:
        raise UserInputError(f"{shown}: not an sce-checks baseline (expected schema {BASELINE_SCHEMA!r} or "
                             f"{', '.join(repr(s) for s in OLD_SCHEMAS)})")
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
        bounds = entry.get("bounds", {})
        if not isinstance(bounds, dict):
            raise UserInputError(f"{where}.bounds: expected an object of [lower, upper] pairs, got {_short(bounds)}")
        for metric, pair in bounds.items():
            if not (isinstance(pair, list) and len(pair) == 2 and all(
                    x is None or (isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x))
                    for x in pair)):
                raise UserInputError(f"{where}.bounds.{metric}: expected [lower, upper] (numbers or null), "
                                     f"got {_short(pair)}")
        if data["schema"] == BASELINE_SCHEMA:
            _check_examples(where, entry.get("examples"))
    return data


def _check_examples(where: str, examples: Any) -> None:
    if not isinstance(examples, dict):
        raise UserInputError(f"{where}.examples: expected an object of examples by id, got {_short(examples)}")
    for ex_id, e in examples.items():
        if not isinstance(e, dict) or not isinstance(e.get("outcomes"), dict):
            raise UserInputError(f"{where}.examples.{ex_id}: expected an object with outcomes, got {_short(e)}")
        for name, value in e["outcomes"].items():
            if value is not None and not isinstance(value, (bool, int, float)) or (
                    isinstance(value, float) and not math.isfinite(value)):
                raise UserInputError(f"{where}.examples.{ex_id}.outcomes.{name}: expected true, false, a finite "
                                     f"number or null, got {_short(value)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def same_measurement(path: str, key: str, old: dict[str, Any], sample: str, task: str) -> None:
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

    entries = baseline.get("entries", {})
    for dataset in spec.datasets:
        task = load_task(dataset)
        ids = [i for i, _ in task_examples(task, spec.limit or None, spec.seed)]
        sample, task_digest = _digest(ids), _digest(task.fingerprint())
        for unit in units(spec.checks, spec.variants):
            check = check_of(unit)
            key = f"{check}/{task.name}/{unit if unit != check else '-'}"
            if key in entries:
                same_measurement(path, key, entries[key], sample, task_digest)
