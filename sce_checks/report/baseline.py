"""Baselines for regression testing after fine-tuning: save one run, compare a later run (or
saved reports: ``sce-audit --compare``) against it, fail on real regressions.

A baseline records, per (check, dataset, variant), the numeric figures, the exact example ids of
the sample, the task definition and (schema v2) every example's outcomes (the `Outcome`s its check
declares: valid, generated, distance, RCF_A, INV failure, ...) with its prediction, target and SCE.
Comparing against a baseline taken on a different sample, task definition or metric version is
refused with the reason, never silently compared.

Two gates (``--baseline-mode``; docs/regression.md):

* ``paired`` (the default): each figure with a per-example outcome is tested on the examples both
  runs share (exact McNemar or Wilcoxon signed-rank, one-sided towards worse:
  sce_checks/metrics/paired.py); the p-values of the gated figures are Holm-corrected, and a figure
  regresses when its corrected p-value is <= ``--alpha`` AND it worsened by more than its
  tolerance (a minimum effect). A figure without a per-example outcome (cct, phi, TM), and every
  figure against a v1 baseline (no outcomes stored), falls back to the tolerance rule, said so.
* ``tolerance``: a figure regresses when it worsened by more than its tolerance.
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
from sce_checks.results import CheckResult, _clean

BASELINE_SCHEMA = "sce-checks/baseline/v2"
OLD_SCHEMAS = ("sce-checks/baseline/v1",)  # aggregate figures only: compared against the tolerance alone
METRICS_VERSION = 1  # bump when a figure's definition changes
MODES = ("paired", "tolerance")
# Rounding, not a regression: figures computed from fp32 log-probabilities move when the same
# prompts are scored in other batches or chunks (padding, shared-prefix passes and the one-pass
# option segments change the order of sums: SmolLM2's log-probabilities moved by up to 3.9e-5
# between two scoring layouts); a real change moves a figure by far more (one example of 40
# moves a rate by 0.025).
ROUNDING = 1e-4
SHOWN = ("prediction", "target", "counterfactual")  # kept per example to show what changed


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


def outcome_values(r: CheckResult) -> dict[str, dict[str, Any]]:
    """Each example's outcomes (its check's declared `Outcome`s) and what to show of it."""
    return examples_of(r.check, [e.to_dict() for e in r.examples])


def examples_of(check: str, records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    from sce_checks.checks import get_check

    outcomes = get_check(check).outcomes
    out: dict[str, dict[str, Any]] = {}
    for e in records:
        entry = {k: e.get(k) for k in SHOWN}
        entry["outcomes"] = {o.name: o.value(e) for o in outcomes}
        out[str(e.get("id"))] = entry
    return out


def baseline_entry(r: CheckResult, sample_ids: Sequence[str], task_fp: Any) -> dict[str, Any]:
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
        entries[_key(r)] = baseline_entry(r, s.get("ids", [e.id for e in r.examples]), s.get("task"))
    data = {"schema": BASELINE_SCHEMA, "metrics_version": METRICS_VERSION, "environment": environment, "entries": entries}
    return write_atomic(path, json.dumps(_clean(data), indent=2, default=str))


def load_baseline(path) -> dict[str, Any]:
    """A saved baseline, checked whole before any model call: readable UTF-8 JSON of this
    schema (or v1: figures only, compared against the tolerance alone) and metric version, every
    entry with its sample and task digests, every figure a finite number or null (a string or NaN
    figure would compare as nothing, silently), every example's outcomes an object.
    `UserInputError` naming the file and the key otherwise."""
    from sce_checks.tasks.grid_file import read_json, read_user_text

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


def check_baseline_metrics(metrics: Sequence[str], where: str = "--baseline-metric") -> None:
    for m in metrics:
        if m not in all_compared():
            raise UserInputError(f"{where}: {m!r} is not a compared metric; compared: {', '.join(all_compared())}")


def describe_tolerances(tolerances: Tolerances) -> str:
    rest = [f"{m} {t:g}" for m, t in sorted(tolerances.items()) if m != "*"]
    return ", ".join([f"{tolerances.get('*', 0.0):g}"] + rest)


@dataclass
class Comparison:
    """One figure of one result compared with its baseline. ``test``: the paired test on the shared
    examples (None: compared on the aggregate alone, ``how`` says why); ``p_holm``: its p-value
    Holm-corrected over the gated figures that could reach alpha (None when it was not in that
    family); ``gated``: whether the figure can fail the gate."""

    key: str
    metric: str
    before: float | None
    after: float | None
    delta: float | None
    regressed: bool
    check: str = ""
    tolerance: float = 0.0
    test: Any = None  # sce_checks.metrics.paired.PairedTest
    p_holm: float | None = None
    gated: bool = True
    how: str = "tolerance"  # "paired" | "tolerance" | why no paired test was possible

    def status(self) -> str:
        """The row's verdict word, one for every report: REGRESSED, ok, undefined (no value on
        one side) or not gated (shown and tested, but it cannot fail the gate)."""
        if self.regressed:
            return "REGRESSED"
        if not self.gated:
            return "not gated"
        return "ok" if self.delta is not None or self.before == self.after else "undefined"

    def verdict(self) -> str:
        """One line that explains the row: the move, the paired difference with its interval, the
        test and the examples that moved."""
        what = f"{self.key} {self.metric}"
        if self.how.startswith("bounded"):
            return f"{what}: {self.how} (tolerance {self.tolerance:g})"
        if self.before is None or self.after is None:
            return f"{what}: undefined ({_fmt(self.before)} -> {_fmt(self.after)})"
        moved = "fell" if self.after < self.before else ("rose" if self.after > self.before else "stayed")
        line = f"{what} {moved} from {_fmt(self.before)} to {_fmt(self.after)}"
        if moved == "stayed":
            line = f"{what} stayed at {_fmt(self.before)}"
        t = self.test
        if t is None:
            why = "" if self.how == "tolerance" else f"aggregate only: {self.how}; "
            return f"{line} ({self.delta:+.2f}, {why}tolerance {self.tolerance:g})"
        unit = "examples" if t.n != 1 else "example"
        parts = [f"{t.delta:+.2f} [{t.low:+.2f}, {t.high:+.2f}] over {t.n} shared {unit}",
                 f"{t.test} p={_p(t.p)}" + (f", Holm {_p(self.p_holm)}" if self.p_holm is not None else ""),
                 f"{t.worse} {'examples' if t.worse != 1 else 'example'} regressed, {t.better} improved"]
        if not self.gated:
            parts.append("not gated")
        elif self.p_holm is None:
            parts.append(f"cannot reach alpha with {t.worse + t.better} changed")
        return f"{line} ({', '.join(parts)})"


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}" if abs(x) >= 0.01 or x == 0 else f"{x:.2g}"


def _p(p: float | None) -> str:
    if p is None:
        return "-"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


@dataclass
class Change:
    """An example whose outcomes moved between the two runs: ``moves`` (outcome, before, after),
    the worse ones first; ``worse``: at least one moved for the worse."""

    key: str
    id: str
    worse: bool
    moves: list[tuple[str, Any, Any]]
    before: dict[str, Any]  # prediction, target, counterfactual in the baseline
    after: dict[str, Any]


@dataclass
class ComparisonReport:
    """A whole comparison: its rows, the examples that changed, and notes (why a figure was compared
    on its aggregate only, an underpowered gate)."""

    path: str
    mode: str
    alpha: float
    rows: list[Comparison]
    changes: list[Change]
    notes: list[str]

    @property
    def regressed(self) -> list[Comparison]:
        return [c for c in self.rows if c.regressed]

    def status(self) -> str:
        """The headline every report shows: how many figures regressed."""
        n = len(self.regressed)
        return f"{n} regression(s)" if n else "no regressions"

    def findings(self) -> list[str]:
        """The lines under the headline: each regression's verdict, then the notes."""
        return [f"REGRESSED: {c.verdict()}" for c in self.regressed] + [f"note: {n}" for n in self.notes]

    def to_dict(self) -> dict[str, Any]:
        """The comparison in the JSON report (``baseline`` key)."""
        def row(c: Comparison) -> dict[str, Any]:
            out = {"result": c.key, "metric": c.metric, "before": c.before, "after": c.after, "delta": c.delta,
                   "tolerance": c.tolerance, "regressed": c.regressed, "gated": c.gated, "compared": c.how,
                   "verdict": c.verdict()}
            if c.test is not None:
                t = c.test
                out.update({"test": t.test, "n_pairs": t.n, "paired_delta": t.delta, "paired_delta_ci": [t.low, t.high],
                            "p": t.p, "p_holm": c.p_holm, "n_worse": t.worse, "n_better": t.better})
            return out

        return _clean({"path": self.path, "mode": self.mode, "alpha": self.alpha,
                       "regressed": len(self.regressed), "rows": [row(c) for c in self.rows],
                       "changed_examples": [{"result": ch.key, "id": ch.id, "worse": ch.worse,
                                             "moves": [list(m) for m in ch.moves], "before": ch.before,
                                             "after": ch.after} for ch in self.changes],
                       "notes": self.notes})


def _worse_by(check: str, metric: str, delta: float) -> float:
    return delta if lower_is_better(check, metric) else -delta


def _interval(value: float | None, bounds: Any) -> tuple[float, float] | None:
    """A figure as an interval: [value, value] when known, its x*-budget bounds when bounded
    (None ends unbounded), None when undefined."""
    if value is not None:
        return (value, value)
    if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
        return None
    lo, hi = bounds
    return (-math.inf if lo is None else lo, math.inf if hi is None else hi)


def _judge_bounds(row: Comparison, old: tuple[float, float], new: tuple[float, float]) -> None:
    """A figure the x* budget left bounded in either run (sce_checks/search/grid.py): it regressed
    when even its best case got worse by more than the tolerance, it held when even its worst case
    did not, and otherwise it is undecided, which fails a gated figure as an undecided threshold
    does (docs/scaling.md): a gate the bounds cannot decide never passes silently."""
    spread = (new[0] - old[1], new[1] - old[0])  # after - before over the two intervals
    worse = sorted(_worse_by(row.check, row.metric, d) for d in spread)
    limit = row.tolerance + ROUNDING
    shown = lambda iv: _fmt(iv[0]) if iv[0] == iv[1] else f"[{_fmt(iv[0])}, {_fmt(iv[1])}]"  # noqa: E731
    state = "regressed" if worse[0] > limit else ("held" if worse[1] <= limit else "undecided")
    row.how = f"bounded by the x* budget: {shown(old)} -> {shown(new)}, {state}"
    row.regressed = row.gated and state != "held"


def compare_entries(pairs: Sequence[tuple[str, dict[str, Any], dict[str, Any]]], tolerance: float | Tolerances = 0.0,
                    mode: str = "paired", alpha: float = 0.05, metrics: Sequence[str] = (),
                    path: str = "baseline") -> ComparisonReport:
    """Compare (key, old entry, new entry) pairs (entries as `baseline_entry` makes them; an old
    one without ``examples`` is a v1 baseline). ``metrics``: the figures the gate tests; when empty,
    each check's primary figure where a paired test applies, and every figure compared on its
    aggregate alone (the tolerance rule, as for v1 baselines); the Holm family is the gated figures with a paired test that could
    reach ``alpha`` (sce_checks/metrics/paired.py)."""
    from sce_checks.checks.base import outcome_of, primary_figures
    from sce_checks.metrics.paired import binary_test, continuous_test, holm

    if mode not in MODES:
        raise UserInputError(f"baseline mode must be one of {', '.join(MODES)}, not {mode!r}")
    tolerances = parse_tolerances(tolerance)
    check_baseline_metrics(metrics)
    rows: list[Comparison] = []
    changes: list[Change] = []
    notes: list[str] = []
    v1 = False
    for key, old, new in pairs:
        check = new.get("check") or key.split("/")[0]
        old_ex, new_ex = old.get("examples"), new.get("examples")
        v1 |= old_ex is None
        shared = [i for i in (old_ex or {}) if i in (new_ex or {})]
        for metric, before in old["figures"].items():
            after = new["figures"].get(metric)
            allowed = tolerances.get(metric, tolerances["*"])
            row = Comparison(key, metric, before, after, None, False, check, allowed,
                             gated=not metrics or metric in metrics)
            rows.append(row)
            if before is None or after is None:
                old_iv = _interval(before, (old.get("bounds") or {}).get(metric))
                new_iv = _interval(after, (new.get("bounds") or {}).get(metric))
                if old_iv is not None and new_iv is not None:  # bounded by the x* budget: judged on the bounds
                    if not metrics and mode == "paired":
                        row.gated = metric in primary_figures(check, tuple(old["figures"]))
                    _judge_bounds(row, old_iv, new_iv)
                    continue
                # A figure over a subset (ICF over invalid SCEs, say) becomes undefined when the
                # subset empties: shown, not failed; what emptied it moves figures that are compared.
                row.how = "undefined"
                continue
            row.delta = after - before
            outcome = outcome_of(check, metric) if mode == "paired" else None
            if mode == "paired" and old_ex is None:
                row.how = "v1 baseline, no per-example outcomes"
            elif mode == "paired" and outcome is None:
                row.how = "no per-example outcome"
            elif outcome is not None:
                values = [(old_ex[i]["outcomes"].get(outcome.name), new_ex[i]["outcomes"].get(outcome.name)) for i in shared]
                values = [(x, y) for x, y in values if x is not None and y is not None]
                if not values:
                    row.how = "no example measured in both runs"
                else:
                    higher = not lower_is_better(check, metric)
                    row.test = (binary_test([(bool(x), bool(y)) for x, y in values], higher) if outcome.kind == "binary"
                                else continuous_test([(float(x), float(y)) for x, y in values], higher))
                    row.how = "paired"
            if row.test is not None and not metrics:
                # Paired tests gate the check's pre-specified endpoint by default: every gated
                # figure costs the others power under Holm (docs/regression.md, "What gates").
                row.gated = metric in primary_figures(check, tuple(old["figures"]))
            if row.test is None:  # the tolerance rule
                row.regressed = row.gated and _worse_by(check, metric, row.delta) > allowed + ROUNDING
        if old_ex is not None and new_ex is not None:
            changes.extend(_changes(key, check, old_ex, new_ex, shared, tolerances))
    family = [c for c in rows if c.test is not None and c.gated and c.test.min_p <= alpha]
    for c, adjusted in zip(family, holm([c.test.p for c in family])):
        c.p_holm = adjusted
        c.regressed = adjusted <= alpha and _worse_by(c.check, c.metric, c.delta) > c.tolerance + ROUNDING
    if mode == "paired" and v1:
        notes.append(f"{path} is a v1 baseline (figures only): compared against the tolerance alone; save a new "
                     "baseline (v2) for paired tests on the examples")
    if mode == "paired":
        notes.extend(_power_notes(rows, family, alpha))
    changes.sort(key=lambda ch: (not ch.worse, ch.key, ch.id))
    return ComparisonReport(path, mode, alpha, rows, changes, notes)


def _changes(key: str, check: str, old_ex: dict, new_ex: dict, shared: Sequence[str],
             tolerances: Tolerances) -> list[Change]:
    """The shared examples whose outcomes moved: a binary one flipped, a continuous one moved by
    more than its figure's tolerance."""
    from sce_checks.checks import get_check

    outcomes = get_check(check).outcomes
    out = []
    for i in shared:
        before, after = old_ex[i]["outcomes"], new_ex[i]["outcomes"]
        moves, worse = [], False
        for o in outcomes:
            x, y = before.get(o.name), after.get(o.name)
            if x == y:
                continue
            if o.kind == "continuous" and (x is None or y is None  # follows from a binary move (valid -> invalid)
                                           or abs(y - x) <= max(ROUNDING, min(tolerances.get(f, tolerances["*"])
                                                                              for f in o.figures))):
                continue
            higher = not lower_is_better(check, o.figures[0])
            if x is not None and y is not None:
                bad = (y < x) if higher else (y > x)
            else:  # an outcome appeared or vanished (no SCE any more): worse when it vanished
                bad = y is None
            worse |= bad
            moves.append((o.name, x, y, bad))
        if moves:
            moves.sort(key=lambda m: not m[3])
            out.append(Change(key, i, worse, [(n, x, y) for n, x, y, _ in moves],
                              {k: old_ex[i].get(k) for k in SHOWN}, {k: new_ex[i].get(k) for k in SHOWN}))
    return out


def _power_notes(rows: Sequence[Comparison], family: Sequence[Comparison], alpha: float) -> list[str]:
    """An underpowered gate, said in one line: the fewest examples that must get worse (none
    better) for a binary figure to fail at the Holm level of its first step, and the power to
    detect a drop of the tolerance where one is set."""
    from sce_checks.metrics.paired import mcnemar_power, smallest_detectable

    binary = [c for c in rows if c.test is not None and c.gated and c.test.test == "McNemar"]
    if not binary:
        return []
    n = min(c.test.n for c in binary)
    m = max(1, len(family))
    level = alpha / m
    need = smallest_detectable(n, level)
    family_text = f"{m} figure{'s' if m != 1 else ''} under Holm" if m > 1 else "one figure"
    if need is None:
        head = (f"underpowered gate: with {n} shared examples and {family_text}, no binary figure can fail "
                f"(the exact test needs at least {smallest_detectable(10**9, level)} examples to get worse)")
    else:
        head = (f"gate power: with {n} shared examples and {family_text}, a binary figure fails only when at least "
                f"{need} examples get worse (a drop of {need / n:.2f}) and none improves")
    notes = [head]
    for tol in sorted({c.tolerance for c in binary if 0 < c.tolerance < 1}):
        power = mcnemar_power(n, tol, tol, level)
        if power < 0.8:
            notes.append(f"underpowered gate: a drop of {tol:g} is detected with probability {power:.2f} at most on "
                         f"{n} examples (see sce-audit --plan-sample-size p=<rate>,drop={tol:g})")
    return notes


def _entry_pairs(baseline: dict[str, Any], results: Sequence[CheckResult], environment: dict[str, Any],
                 path: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    entries = baseline.get("entries", {})
    samples = environment.get("samples", {})
    pairs = []
    for r in results:
        key = _key(r)
        if key not in entries:
            raise UserInputError(f"{path}: has no entry for {key} (it has: {', '.join(sorted(entries)) or 'none'})")
        old = entries[key]
        s = samples.get(r.dataset, {})
        now = baseline_entry(r, s.get("ids", [e.id for e in r.examples]), s.get("task"))
        _same_measurement(path, key, old, now["sample"], now["task"])
        pairs.append((key, old, now))
    return pairs


def compare_run(baseline: dict[str, Any], results: Sequence[CheckResult], environment: dict[str, Any],
                tolerance: float | Tolerances = 0.0, path: str = "baseline", mode: str = "paired",
                alpha: float = 0.05, metrics: Sequence[str] = ()) -> ComparisonReport:
    """Compare results with a baseline read by `load_baseline` (which refused another metric
    version and malformed figures). Raises `UserInputError` when the two are not comparable
    (sample, task definition); a result absent from the baseline is refused too, so nothing is
    silently left unchecked."""
    return compare_entries(_entry_pairs(baseline, results, environment, path), tolerance, mode, alpha, metrics, path)


def compare(baseline: dict[str, Any], results: Sequence[CheckResult], environment: dict[str, Any],
            tolerance: float | Tolerances = 0.0, path: str = "baseline", mode: str = "tolerance",
            alpha: float = 0.05, metrics: Sequence[str] = ()) -> list[Comparison]:
    """The rows of `compare_run` (the tolerance rule unless ``mode="paired"``)."""
    return compare_run(baseline, results, environment, tolerance, path, mode, alpha, metrics).rows


def render_comparison(rows: Sequence[Comparison], only_regressions: bool = False, width: int | None = None) -> str:
    """The comparison's terminal table, no wider than ``width`` (report/table.py: `fit_table`)."""
    from sce_checks.report.safe import plain
    from sce_checks.report.table import fit_table

    # figures undefined before and after (no SCE to measure) say nothing: left out
    shown = [c for c in rows if (c.regressed or not only_regressions) and not (c.before is None and c.after is None)]
    fmt = lambda x: "-" if x is None else f"{x:.4f}"  # noqa: E731
    table = []
    for c in shown:
        t = c.test
        paired = "-" if t is None else f"{t.delta:+.3f} [{t.low:+.3f}, {t.high:+.3f}] n={t.n}"
        test = "-" if t is None else f"{t.test} {_p(t.p)}" + (f" (Holm {_p(c.p_holm)})" if c.p_holm is not None else "")
        moved = "-" if t is None else f"{t.worse}/{t.better}"
        table.append([c.key, c.metric, fmt(c.before), fmt(c.after), ("-" if c.delta is None else f"{c.delta:+.4f}"),
                      paired, test, moved, c.status()])
    headers = ["result", "metric", "before", "after", "delta", "paired delta [95% CI]", "p (one-sided)",
               "worse/better", "verdict"]
    return fit_table(headers, [[plain(c) for c in row] for row in table], width)


def render_report(report: ComparisonReport, width: int | None = None) -> str:
    """The terminal text of a comparison: a headline, the table, the verdict lines of the
    regressions, the notes and the examples that changed; tables no wider than ``width``."""
    from sce_checks.report.changes import changes_text

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


# -- saved reports and baselines compared with each other (sce-audit --compare) -------------------------


def read_saved_report(path: str) -> tuple[list[CheckResult], dict[str, Any]] | None:
    """The results and environment of a saved JSON report, read as data: every field the
    comparison and the HTML report use has the type the report writes (`_check_saved`), else one
    `UserInputError` naming the file and the result; None when the file is a baseline instead."""
    from sce_checks.report.json_report import SCHEMA_ID
    from sce_checks.tasks.grid_file import read_json, read_user_text

    shown = str(path)
    if not Path(path).is_file():
        raise UserInputError(f"{shown}: no such file")
    data = read_json(read_user_text(Path(path), shown), shown)
    if not (isinstance(data, dict) and data.get("schema") == SCHEMA_ID):
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
    from sce_checks.checks import get_check

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
                entries[_key(r)] = baseline_entry(r, s.get("ids", [e.id for e in r.examples]), s.get("task"))
            except UserInputError as exc:  # an unknown check, a sample that does not fit
                raise UserInputError(f"{path}: results[{n}]: {exc}") from None
        return entries, env
    baseline = load_baseline(path)
    entries = {k: dict(v, check=v.get("check") or k.split("/")[0]) for k, v in baseline["entries"].items()}
    return entries, baseline.get("environment") or {}


def compare_saved(paths: Sequence[str], tolerance: float | Tolerances = 0.0, mode: str = "paired",
                  alpha: float = 0.05, metrics: Sequence[str] = ()) -> list[ComparisonReport]:
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
    is recomputed but the interval over the stored counts; other checks are not drawn there."""
    from sce_checks.metrics.stats import wilson_interval

    out = []
    for key, entry in baseline.get("entries", {}).items():
        check, dataset, variant = (key.split("/") + ["-", "-"])[:3]
        if check != "sce":
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
