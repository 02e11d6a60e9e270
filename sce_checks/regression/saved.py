"""Saved JSON reports and baselines compared with each other (``sce-audit --compare``), without
a model: a saved report is read as data (every field the comparison and the HTML report use must
have the type the report writes), turned into entries as a baseline holds them, and compared by
the same gate (sce_checks/regression/gate.py). Also the SCE entries of a baseline as results the
validity-minimality plot draws beside the run's.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from sce_checks.checks import get_check
from sce_checks.config import default
from sce_checks.errors import UserInputError
from sce_checks.metrics.stats import wilson_interval
from sce_checks.registry import CHECKS
from sce_checks.regression.files import baseline_entry, entry_key, load_baseline
from sce_checks.regression.gate import ComparisonReport, compare_entries
from sce_checks.regression.tolerances import Tolerances
from sce_checks.results import REPORT_SCHEMA, CheckResult
from sce_checks.userfiles import read_json, read_user_text


def read_saved_report(path: str) -> tuple[list[CheckResult], dict[str, Any]] | None:
    """The results and environment of a saved JSON report, read as data: every field the
    comparison and the HTML report use has the type the report writes (`_check_saved`), else one
    `UserInputError` naming the file and the result; None when the file is a baseline instead."""

    shown = str(path)
    if not Path(path).is_file():
        raise UserInputError(f"{shown}: no such file")
    data = read_json(read_user_text(Path(path), shown), shown)
    if not (isinstance(data, dict) and data.get("schema") == REPORT_SCHEMA):
        return None
    if not isinstance(data.get("results"), list):
        raise UserInputError(f"{shown}: results: expected a list")
    env = data.get("environment")
    if not isinstance(env, (dict, type(None))):
        raise UserInputError(f"{shown}: environment: expected an object, got {type(env).__name__}")
    results = []
    for n, raw in enumerate(data["results"]):
        if not isinstance(raw, dict):
            raise UserInputError(f"{shown}: results[{n}]: expected an object, got {type(raw).__name__}")
        try:
            _check_saved(raw)
            results.append(CheckResult.from_dict(raw))
        except KeyError as exc:
            raise UserInputError(f"{shown}: results[{n}]: the field {exc.args[0]!r} is missing") from None
        except (TypeError, ValueError, AttributeError, UserInputError) as exc:
            raise UserInputError(f"{shown}: results[{n}]: {exc}") from None
    return results, env or {}


_SAVED_HEAD = {"check": str, "model": str, "dataset": str, "variant": str, "n": int}
_SAVED_EXAMPLE = {"id": str, "prediction": str, "target": str, "cf_prediction": str, "valid": bool, "distance": float,
                  "min_distance": float, "prediction_reply": str, "sce_reply": str, "unparsed": str, "rcf_a": float,
                  "rcf": float, "icf_a": float, "icf": float}  # ExampleRecord's typed fields (None allowed)


def _check_saved(raw: dict[str, Any]) -> None:
    """A saved result's fields have the types the JSON report writes: the head's, the figures
    its check declares numbers (an interval two), the examples' typed fields, ``info`` an
    object. TypeError (ValueError: an unknown check) names the first that does not."""
    for name, kind in _SAVED_HEAD.items():
        value = raw[name]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise TypeError(f"{name}: expected {kind.__name__}, got {value!r:.40}")
    if not isinstance(raw.get("info", {}), dict) or not isinstance(raw.get("examples", []), list):
        raise TypeError("info must be an object and examples a list")
    task_kind = raw.get("info", {}).get("task_kind")
    if task_kind is not None and not isinstance(task_kind, str):
        raise TypeError(f"info.task_kind: expected a string, got {task_kind!r:.40}")

    for figure in get_check(raw["check"]).figures:  # the figures the check declares
        value = raw.get(figure.name)
        if value is not None and not _is_number(value):
            raise TypeError(f"the figure {figure.name}: expected a number or null, got {value!r:.40}")
        interval = raw.get(f"{figure.name}_ci")
        if figure.interval and interval is not None and not (
                isinstance(interval, list) and len(interval) == 2 and all(v is None or _is_number(v) for v in interval)):
            raise TypeError(f"the figure {figure.name}_ci: expected two numbers, got {interval!r:.40}")
    for k, example in enumerate(raw.get("examples", [])):
        if not isinstance(example, dict):
            raise TypeError(f"examples[{k}]: expected an object, got {type(example).__name__}")
        for name, kind in _SAVED_EXAMPLE.items():
            value = example.get(name)
            ok = value is None or (_is_number(value) if kind is float else isinstance(value, kind))
            if not ok or (kind is not bool and isinstance(value, bool)):
                raise TypeError(f"examples[{k}].{name}: expected {kind.__name__} or null, got {value!r:.40}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_saved(path: str) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The entries (as in a baseline) of a saved JSON report or baseline, and its environment;
    `UserInputError` for anything else."""
    saved = read_saved_report(path)
    if saved is not None:
        results, env = saved
        samples = env.get("samples") or {}
        entries = {}
        for n, r in enumerate(results):
            s = samples.get(r.dataset) if isinstance(samples.get(r.dataset), dict) else {}
            try:
                entries[entry_key(r)] = baseline_entry(r, s.get("ids", [e.id for e in r.examples]), s.get("task"))
            except UserInputError as exc:  # an unknown check, a sample that does not fit
                raise UserInputError(f"{path}: results[{n}]: {exc}") from None
        return entries, env
    baseline = load_baseline(path)
    entries = {k: dict(v, check=v.get("check") or k.split("/")[0]) for k, v in baseline["entries"].items()}
    return entries, baseline.get("environment") or {}


def compare_saved(paths: Sequence[str], tolerance: float | Tolerances = 0.0, mode: str = default("baseline_mode"),
                  alpha: float = default("alpha"), metrics: Sequence[str] = ()) -> list[ComparisonReport]:
    """The first saved report or baseline against each of the others, on the results both hold
    and the examples both share (no model call). Results measured on another task definition are
    refused; on another sample they are paired on the shared ids, with a note."""
    first, _ = read_saved(paths[0])
    out = []
    for path in paths[1:]:
        other, _ = read_saved(path)
        keys = [k for k in first if k in other]
        if not keys:
            raise UserInputError(f"{path}: no result in common with {paths[0]} (it has: {', '.join(sorted(other)) or 'none'})")
        notes = []
        for k in keys:
            if first[k].get("task") != other[k].get("task"):
                raise UserInputError(f"{path}: {k} was measured on a different task definition than in {paths[0]}")
            if first[k].get("sample") != other[k].get("sample"):
                notes.append(f"{k}: other samples of examples; paired on the ids both share")
        report = compare_entries([(k, first[k], other[k]) for k in keys], tolerance, mode, alpha, metrics,
                                 f"{paths[0]} -> {path}")
        report.notes[:0] = notes
        left = sorted(set(first) ^ set(other))
        if left:
            report.notes.append(f"results in only one of the two, not compared: {', '.join(left)}")
        out.append(report)
    return out


def reference_results(baseline: dict[str, Any], path: str) -> list[CheckResult]:
    """The SCE entries of a loaded baseline as results the validity-minimality plot can draw
    beside the run's (report/plots.py): validity, its Wilson interval from the stored per-example
    outcomes (none for a v1 baseline, which has no counts), and the minimality figures. Nothing
    is recomputed but the interval over the stored counts; the entries of checks whose
    declaration does not draw that plot are left out."""

    drawn = {e.name for e in CHECKS.usable() if "validity_minimality" in e.plots}
    out = []
    for key, entry in baseline.get("entries", {}).items():
        check, dataset, variant = (key.split("/") + ["-", "-"])[:3]
        if check not in drawn:
            continue
        figures = dict(entry["figures"])
        examples = entry.get("examples")
        if examples:
            outcomes = [e.get("outcomes", {}) for e in examples.values()]
            generated = sum(1 for o in outcomes if o.get("generated") is True)
            figures["validity_ci"] = list(wilson_interval(sum(1 for o in outcomes if o.get("valid") is True), generated))
        out.append(CheckResult(check, f"baseline {Path(path).name}", dataset, None if variant == "-" else variant,
                               entry.get("n", 0), figures, []))
    return out
