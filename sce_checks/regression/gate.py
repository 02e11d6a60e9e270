"""The baseline gate: compare a run (or a saved report: sce_checks/regression/saved.py) with a
baseline (sce_checks/regression/files.py), figure by figure, and fail on real regressions.

Two modes (``--baseline-mode``, `BASELINE_MODES` in sce_checks/config.py; docs/regression.md):

* ``paired`` (the default): each figure with a per-example outcome is tested on the examples both
  runs share (exact McNemar or Wilcoxon signed-rank, one-sided towards worse:
  sce_checks/regression/paired.py); the p-values of the gated figures are Holm-corrected, and a
  figure regresses when its corrected p-value is <= ``--alpha`` AND it worsened by more than its
  tolerance (a minimum effect). A figure without a per-example outcome (cct, phi, TM), and every
  figure against a v1 baseline (no outcomes stored), falls back to the tolerance rule, said so.
* ``tolerance``: a figure regresses when it worsened by more than its tolerance.

Under ``--sequential`` (docs/sequential.md) the audit compared each gated figure that is a rate or
a mean of an outcome in [0, 1] with the baseline as it went, with an anytime-valid sequential
comparison, and stopped once it was decided; that comparison, carried in the results'
``sequential`` block, is the figure's verdict (`Comparison.sequential`), not a fixed-n test on a
prefix the data chose: regressed when its confidence sequence shows a worsening beyond the
tolerance, ok when it shows none, UNDECIDED (failing) when neither was shown at ``--limit``.

The mode and the significance level default to their settings (`sce_checks.config.default`), so
each default is written once. Rendering a comparison is report/comparison.py's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from sce_checks.cells import p_value
from sce_checks.checks.base import lower_is_better, outcome_of, primary_figures
from sce_checks.choices import BASELINE_MODES
from sce_checks.config import default
from sce_checks.errors import UserInputError
from sce_checks.regression.changes import Change, changed_examples
from sce_checks.regression.files import baseline_entry, entry_key, same_measurement
from sce_checks.regression.paired import binary_test, continuous_test, holm
from sce_checks.regression.planning import mcnemar_power, mcnemar_sample_size, smallest_detectable
from sce_checks.regression.tolerances import ROUNDING, Tolerances, check_baseline_metrics, parse_tolerances
from sce_checks.results import CheckResult, _clean


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
    test: Any = None  # sce_checks.regression.paired.PairedTest
    p_holm: float | None = None
    gated: bool = True
    how: str = "tolerance"  # "paired" | "tolerance" | "sequential" | why no paired test was possible
    undecided: str | None = None  # why the gate cannot decide a worsening (it then fails: ``regressed`` is set)
    sequential: dict[str, Any] | None = None  # the --sequential comparison that decided it (`BaselineQuestion.as_dict`)

    def decided_by(self) -> str:
        """What decided the row: "sequential" (the confidence sequence of a --sequential audit),
        the paired test ("McNemar", "Wilcoxon"), "x* bounds", "tolerance" (the aggregate against
        the tolerance), or "-" (undefined)."""
        if self.sequential is not None:
            return "sequential"
        if self.test is not None:
            return self.test.test
        if self.how.startswith("bounded"):
            return "x* bounds"
        return "-" if self.how == "undefined" else "tolerance"

    def status(self) -> str:
        """The row's verdict word, one for every report: REGRESSED, UNDECIDED (got worse by more
        than the tolerance, but the data cannot decide whether it regressed: it fails the gate),
        ok, undefined (no value on one side) or not gated (shown and tested, but it cannot fail
        the gate)."""
        if self.undecided is not None:
            return "UNDECIDED"
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
        if self.sequential is not None:
            return f"{line} ({_sequential_text(self)})"
        t = self.test
        if t is None:
            why = "" if self.how == "tolerance" else f"aggregate only: {self.how}; "
            return f"{line} ({self.delta:+.2f}, {why}tolerance {self.tolerance:g})"
        unit = "examples" if t.n != 1 else "example"
        parts = [f"{t.delta:+.2f} [{t.low:+.2f}, {t.high:+.2f}] over {t.n} shared {unit}",
                 f"{t.test} p={p_value(t.p)}" + (f", Holm {p_value(self.p_holm)}" if self.p_holm is not None else ""),
                 f"{t.worse} {'examples' if t.worse != 1 else 'example'} regressed, {t.better} improved"]
        if not self.gated:
            parts.append("not gated")
        elif self.undecided is not None:
            parts.append(f"undecided: {self.undecided}")
        elif self.p_holm is None:
            parts.append(f"cannot reach alpha with {t.worse + t.better} changed")
        return f"{line} ({', '.join(parts)})"


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}" if abs(x) >= 0.01 or x == 0 else f"{x:.2g}"


def _sequential_text(row: Comparison) -> str:
    """The sequential comparison of a row, in words: the mean change over the pairs with its last
    confidence sequence bounds, the pairs that moved, and how it ended."""
    s = row.sequential
    n, lo, hi = s["history"][-1]
    parts = [f"sequential: mean change {s['mean_change']:+.2f}, confidence sequence [{lo:+.2f}, {hi:+.2f}] over {n} "
             f"shared {'examples' if n != 1 else 'example'} at alpha {s['alpha']:.3g}",
             f"{s['worse']} regressed, {s['improved']} improved"]
    if s["state"] == "fail":
        parts.append(f"a worsening beyond the tolerance shown at n={s['decided_at']}")
    elif s["state"] == "pass":
        parts.append(f"no worsening beyond the tolerance, shown at n={s['decided_at']}")
    else:
        parts.append(f"undecided: {row.undecided}")
    return ", ".join(parts)


def sequential_comparisons(results: Sequence[CheckResult], path: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(baseline entry, figure) -> the sequential comparison a ``--sequential`` audit made of it
    against the baseline at ``path`` (sce_checks/stopping.py: `BaselineQuestion`), from the
    results' ``sequential`` blocks; empty for a fixed-n run."""
    out = {}
    for r in results:
        for c in (r.info.get("sequential") or {}).get("baseline") or []:
            if c.get("path") == str(path):
                out[(c["baseline"], c["figure"])] = {**c, "stopped_after": r.info["sequential"]["stopped_after"],
                                                     "limit": r.info["sequential"]["limit"]}
    return out


def _judge_sequentially(rows: Sequence[Comparison], sequential: dict[tuple[str, str], dict[str, Any]]) -> None:
    """The verdict of each gated row a --sequential audit compared as it went (with at least one
    pair): its sequential comparison's, at the level it ran at. Undecided at the limit fails,
    as an undecided threshold does, with the sequence shown."""
    for row in rows:
        s = sequential.get((row.key, row.metric))
        if s is None or not s["n"] or not row.gated or row.delta is None:
            continue
        row.sequential, row.how, row.tolerance = s, "sequential", s["tolerance"]
        row.regressed = s["state"] != "pass"
        if s["state"] == "undecided":
            hint = (" (with tolerance 0 only an improvement can be shown: give a tolerance)"
                    if s["tolerance"] == 0 else "")
            shown = "; ".join(f"n={n} [{lo:+.3f}, {hi:+.3f}]" for n, lo, hi in s["history"][-4:])
            row.undecided = (f"after {s['stopped_after']} of {s['limit']} examples (--sequential) the confidence "
                             f"sequence of the mean change still contains the tolerance {s['tolerance']:g}{hint} "
                             f"({shown})")


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
        """The rows that fail the gate: regressed, or undecided."""
        return [c for c in self.rows if c.regressed]

    @property
    def undecided(self) -> list[Comparison]:
        return [c for c in self.rows if c.undecided is not None]

    def status(self) -> str:
        """The headline every report shows: how many figures regressed, and how many the data
        could not decide (both fail the gate)."""
        undecided = len(self.undecided)
        regressed = len(self.regressed) - undecided
        parts = ([f"{regressed} regression(s)"] if regressed else []) + ([f"{undecided} undecided"] if undecided else [])
        return ", ".join(parts) or "no regressions"

    def findings(self) -> list[str]:
        """The lines under the headline: each failing row's verdict, then the notes."""
        return [f"{c.status()}: {c.verdict()}" for c in self.regressed] + [f"note: {n}" for n in self.notes]

    def to_dict(self) -> dict[str, Any]:
        """The comparison in the JSON report (``baseline`` key)."""
        def row(c: Comparison) -> dict[str, Any]:
            out = {"result": c.key, "metric": c.metric, "before": c.before, "after": c.after, "delta": c.delta,
                   "tolerance": c.tolerance, "regressed": c.regressed, "gated": c.gated, "compared": c.how,
                   "decided_by": c.decided_by(), "verdict": c.verdict()}
            if c.sequential is not None:
                s = c.sequential
                out["sequential"] = {k: s[k] for k in ("state", "decided_at", "n", "alpha", "mean_change", "worse",
                                                       "improved", "stopped_after", "limit", "history")}
            if c.undecided is not None:
                out["undecided"] = c.undecided
            if c.test is not None:
                t = c.test
                out.update({"test": t.test, "n_pairs": t.n, "paired_delta": t.delta, "paired_delta_ci": [t.low, t.high],
                            "p": t.p, "p_holm": c.p_holm, "n_worse": t.worse, "n_better": t.better})
            return out

        return _clean({"path": self.path, "mode": self.mode, "alpha": self.alpha,
                       "regressed": len(self.regressed), "undecided": len(self.undecided), "rows": [row(c) for c in self.rows],
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
    if row.gated and state == "undecided":
        row.undecided = "the x* search budget's bounds cannot decide it"


def compare_entries(pairs: Sequence[tuple[str, dict[str, Any], dict[str, Any]]], tolerance: float | Tolerances = 0.0,
                    mode: str = default("baseline_mode"), alpha: float = default("alpha"),
                    metrics: Sequence[str] = (), path: str = "baseline",
                    sequential: dict[tuple[str, str], dict[str, Any]] | None = None) -> ComparisonReport:
    """Compare (key, old entry, new entry) pairs (entries as `baseline_entry` makes them; an old
    one without ``examples`` is a v1 baseline). ``metrics``: the figures the gate tests; when empty,
    each check's primary figure where a paired test applies, and every figure compared on its
    aggregate alone (the tolerance rule, as for v1 baselines); the Holm family is the gated figures with a paired test that could
    reach ``alpha`` (sce_checks/regression/paired.py). ``sequential``: the comparisons a
    ``--sequential`` audit made (`sequential_comparisons`), the verdict on their figures."""
    if mode not in BASELINE_MODES:
        raise UserInputError(f"baseline mode must be one of {', '.join(BASELINE_MODES)}, not {mode!r}")
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
                    # a sampled run stores a binary outcome as its share over the samples: compared as continuous
                    binary = outcome.kind == "binary" and all(isinstance(v, bool) for pair in values for v in pair)
                    row.test = (binary_test([(bool(x), bool(y)) for x, y in values], higher) if binary
                                else continuous_test([(float(x), float(y)) for x, y in values], higher))
                    row.how = "paired"
            if row.test is not None and not metrics:
                # Paired tests gate the check's pre-specified endpoint by default: every gated
                # figure costs the others power under Holm (docs/regression.md, "What gates").
                row.gated = metric in primary_figures(check, tuple(old["figures"]))
            if row.test is None:  # the tolerance rule
                row.regressed = row.gated and _worse_by(check, metric, row.delta) > allowed + ROUNDING
        if old_ex is not None and new_ex is not None:
            changes.extend(changed_examples(key, check, old_ex, new_ex, shared, tolerances))
    power = _decide_paired(rows, alpha, sequential or {}) if mode == "paired" else []
    if mode == "paired" and v1:
        notes.append(f"{path} is a v1 baseline (figures only): compared against the tolerance alone; save a new "
                     "baseline (v2) for paired tests on the examples")
    notes.extend(power)
    changes.sort(key=lambda ch: (not ch.worse, ch.key, ch.id))
    return ComparisonReport(path, mode, alpha, rows, changes, notes)


def _decide_paired(rows: Sequence[Comparison], alpha: float,
                   sequential: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    """The paired verdicts: the --sequential comparisons' where the audit made them, else the
    paired tests under Holm with the undecided rule. Returns the power notes."""
    _judge_sequentially(rows, sequential)
    family = [c for c in rows if c.test is not None and c.gated and c.sequential is None and c.test.min_p <= alpha]
    for c, adjusted in zip(family, holm([c.test.p for c in family])):
        c.p_holm = adjusted
        c.regressed = adjusted <= alpha and _worse_by(c.check, c.metric, c.delta) > c.tolerance + ROUNDING
    _mark_undecided(rows, family, alpha)
    return _power_notes([c for c in rows if c.sequential is None], family, alpha)


def _mark_undecided(rows: Sequence[Comparison], family: Sequence[Comparison], alpha: float) -> None:
    """A gated figure that got worse by more than its tolerance, whose paired test could not
    reach ``alpha`` after Holm whatever its own outcome on these examples, is undecided, and an
    undecided gate fails (as a figure the x* budget left undecided does): a gate that cannot
    fail must not pass. "Whatever its outcome": every changed example moved for the worse (its
    ``min_p``), the other gated figures' p-values as observed."""
    for row in rows:
        t = row.test
        if t is None or not row.gated or row.regressed or row.sequential is not None:
            continue
        if _worse_by(row.check, row.metric, row.delta) <= row.tolerance + ROUNDING:
            continue
        others = [c.test.p for c in family if c is not row]
        attainable = holm([t.min_p, *others])[0] if t.min_p <= alpha else t.min_p
        if attainable <= alpha:
            continue  # the test could have failed it: a decided pass
        m = len(others) + 1
        holm_text = f" after Holm over {m} figures" if m > 1 and t.min_p <= alpha else ""
        row.undecided = (f"the smallest p-value {t.test} can give with {t.worse + t.better} changed "
                         f"{'examples' if t.worse + t.better != 1 else 'example'} is {p_value(attainable)}"
                         f"{holm_text}, above alpha {alpha:g}; {_needed(t, alpha / m)}")
        row.regressed = True


def _needed(t: Any, level: float) -> str:
    """How many examples the gate would need to decide: the changed examples an exact one-sided
    test needs at ``level`` (2^-k <= level), and the sample that gives them at this run's rate of
    change (for a rate, the exact McNemar sample size for the observed drop at power 0.8)."""
    changed = smallest_detectable(10**9, level)
    text = f"it needs at least {changed} changed examples"
    moved = t.worse + t.better
    if moved == 0:
        return text
    share, drop = moved / t.n, (t.worse - t.better) / t.n
    n = mcnemar_sample_size(drop, share, level, 0.8) if t.test == "McNemar" and 0 < drop <= share else None
    if n is None:
        n = math.ceil(changed / share)
        return text + f", about {n} examples at this run's share of changed examples ({share:.2f})"
    return text + f", {n} examples for power 0.8 at this run's drop ({drop:.2f}) and share of changed examples ({share:.2f})"


def _power_notes(rows: Sequence[Comparison], family: Sequence[Comparison], alpha: float) -> list[str]:
    """An underpowered gate, said in one line: the fewest examples that must get worse (none
    better) for a binary figure to fail at the Holm level of its first step, and the power to
    detect a drop of the tolerance where one is set."""
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
        key = entry_key(r)
        if key not in entries:
            raise UserInputError(f"{path}: has no entry for {key} (it has: {', '.join(sorted(entries)) or 'none'})")
        old = entries[key]
        s = samples.get(r.dataset, {})
        now = baseline_entry(r, s.get("ids", [e.id for e in r.examples]), s.get("task"))
        same_measurement(path, key, old, now["sample"], now["task"])
        pairs.append((key, old, now))
    return pairs


def compare_run(baseline: dict[str, Any], results: Sequence[CheckResult], environment: dict[str, Any],
                tolerance: float | Tolerances = 0.0, path: str = "baseline", mode: str = default("baseline_mode"),
                alpha: float = default("alpha"), metrics: Sequence[str] = ()) -> ComparisonReport:
    """Compare results with a baseline read by `load_baseline` (which refused another metric
    version and malformed figures). Raises `UserInputError` when the two are not comparable
    (sample, task definition); a result absent from the baseline is refused too, so nothing is
    silently left unchecked."""
    return compare_entries(_entry_pairs(baseline, results, environment, path), tolerance, mode, alpha, metrics, path,
                           sequential_comparisons(results, path))


def compare(baseline: dict[str, Any], results: Sequence[CheckResult], environment: dict[str, Any],
            tolerance: float | Tolerances = 0.0, path: str = "baseline", mode: str = default("baseline_mode"),
            alpha: float = default("alpha"), metrics: Sequence[str] = ()) -> list[Comparison]:
    """The rows of `compare_run`."""
    return compare_run(baseline, results, environment, tolerance, path, mode, alpha, metrics).rows
