"""Sequential audits (``--sequential``): each dataset's examples in a seeded random order, a batch
at a time, every gate of the run updated after each batch with an anytime-valid confidence
sequence (sce_checks/metrics/sequential.py), and the audit of the dataset stopped as soon as
every gate is decided, or at ``--limit`` (docs/sequential.md, "Sequential audits").

A gate on figure F of a check is a sequential question only when F is the mean of a per-example
outcome the check declares (`Outcome`, sce_checks/checks/base.py): the rate of a binary outcome
(validity), or a figure of a continuous outcome declared ``unit_mean`` (its plain mean, of values
in [0, 1]: mean RCF_A).
``F_lower>=t``, ``F_upper<=t`` and ``F>=t`` ask the same sequential question (is the mean above
t?): the confidence sequence already is the interval a Wilson bound stands in for at a fixed n.
Medians, correlations and figures without an outcome are refused before any model call.

The audit runs each check on each new batch alone; once stopped, every check runs once more on
the whole audited prefix, so the reported figures are the check's own, computed on the examples
audited. Every model call of that last pass is answered by the response cache (with
``--no-cache``, by a cache of the run's own in a temporary folder), so it costs no model call.

Under ``--samples K`` above 1 the unit of every sequence stays the example, never the sample
(an example's K samples are not independent): a gate becomes a `ClusteredGate` on each example's
(sum, count) over its samples, which gates the pooled figure the report shows; a baseline
comparison pairs each example's mean over its samples, as the baseline stores it
(docs/sequential.md, "Sampled audits").

Every confidence sequence runs at the run's ``--alpha``. With a paired baseline, the sequential
comparisons (`BaselineQuestion`) are the baseline gate's verdict on their figures
(sce_checks/regression/gate.py reads them from the results' ``sequential`` block).
"""

from __future__ import annotations

import math
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from sce_checks.checks import check_of, get_check
from sce_checks.checks.base import figure_of, outcome_of, primary_figures
from sce_checks.config import default
from sce_checks.errors import UserInputError
from sce_checks.metrics.sequential import FAIL, PASS, UNDECIDED, ClusteredGate, SequentialComparison, SequentialGate
from sce_checks.models.cache import CachedModel, ResponseCache
from sce_checks.regression.files import entry_key, examples_of, load_baseline
from sce_checks.regression.tolerances import parse_tolerances
from sce_checks.thresholds import Threshold

ROUNDING = 1e-9  # float noise around [0, 1] (a Gower gap of -1e-17) is clipped, never more


@dataclass
class SequentialQuestion:
    """One sequential gate on one unit: the figure's outcome, and the thresholds as written
    (``str(Threshold)``) that ask it (``validity>=0.5`` and ``validity_lower>=0.5`` share one)."""

    unit: str
    figure: str
    outcome: Any  # sce_checks.checks.base.Outcome
    gate: SequentialGate | ClusteredGate  # a ClusteredGate once a batch shows K > 1 samples per example
    thresholds: list[str] = field(default_factory=list)
    decided_at: int | None = None  # examples audited when the gate was decided

    def state(self) -> str:
        return self.gate.state()

    def feed(self, result: Any, audited: int) -> None:
        """The new examples of ``result`` (a batch's `CheckResult` of this unit): their outcomes,
        or under K > 1 samples per example each example's (sum, count) over its samples."""
        samples = samples_of(result)
        if samples > 1 and isinstance(self.gate, SequentialGate):  # the run's K: known from its first batch
            g = self.gate
            self.gate = ClusteredGate(g.kind, g.op, g.threshold, samples, g.alpha, g.horizon, g.fail_alpha)
        if isinstance(self.gate, ClusteredGate):
            sums, counts = example_sums(self, result)
            state = self.gate.update(sums, counts) if counts else UNDECIDED
        else:
            values = outcome_values(self, result)
            state = self.gate.update(values) if values else UNDECIDED
        if state != UNDECIDED and self.decided_at is None:
            self.decided_at = audited  # a decided gate stands; its interval still narrows

    def told(self) -> str:
        return f"{self.unit}: {self.thresholds[0]} {'passed' if self.state() == PASS else 'failed'} at n={self.decided_at}"

    def as_dict(self, threshold: str) -> dict[str, Any]:
        return {"threshold": threshold, "figure": self.figure, "alpha": self.gate.alpha, "state": self.gate.state(),
                "final": self.gate.final(), "decided_at": self.decided_at, "n": self.gate.n,
                "history": [[n, lo, hi] for n, lo, hi in self.gate.history],
                **({"samples": self.gate.samples} if isinstance(self.gate, ClusteredGate) else {})}


@dataclass
class BaselineQuestion:
    """A figure a paired baseline comparison gates: a `SequentialComparison` of the new examples'
    outcomes with the baseline's outcomes of the same examples. The audit waits until it is
    decided (a regression beyond the tolerance shown, or its absence), and it is the baseline
    gate's verdict on the figure (sce_checks/regression/gate.py): undecided at the limit fails."""

    unit: str
    path: str  # the baseline file, as the run names it
    key: str  # the baseline entry: check/dataset/variant
    figure: str
    outcome: Any
    before: dict[str, Any]  # example id -> the baseline's outcome
    comparison: SequentialComparison
    decided_at: int | None = None

    def state(self) -> str:
        return self.comparison.state()

    def feed(self, result: Any, audited: int) -> None:
        """The new examples of ``result``, paired by id with the baseline. An example's outcome is
        the one the baseline stores (`examples_of`): under K > 1 samples, its mean over them."""
        pairs = []
        for ex_id, entry in examples_of(result.check, [r.to_dict() for r in result.examples]).items():
            old, new = self.before.get(ex_id), entry["outcomes"].get(self.outcome.name)
            if old is not None and new is not None:
                pairs.append((float(old), float(new)))
        if not pairs:
            return
        olds, news = zip(*pairs)
        if self.comparison.update(_unit(olds), _unit(news)) != UNDECIDED and self.decided_at is None:
            self.decided_at = audited

    def told(self) -> str:
        shown = "a regression shown" if self.state() == FAIL else "no regression beyond the tolerance"
        return f"baseline {self.figure}: {shown} at n={self.decided_at}"

    def as_dict(self) -> dict[str, Any]:
        c = self.comparison
        return {"baseline": self.key, "path": self.path, "figure": self.figure, "kind": c.kind,
                "tolerance": c.tolerance, "alpha": c.alpha, "state": self.state(), "final": c.final(),
                "decided_at": self.decided_at, "n": c.n, "worse": c.worse, "improved": c.improved,
                "mean_change": c.mean_change, "history": [[n, lo, hi] for n, lo, hi in c.history]}


def _unit(values: Sequence[float]) -> list[float]:
    return [min(1.0, max(0.0, v)) if -ROUNDING <= v <= 1.0 + ROUNDING else v for v in values]


def baseline_questions(spec: Any, results: Sequence[Any], unit_of: Callable[[Any], str], horizon: int) -> list[BaselineQuestion]:
    """The sequential comparisons ``spec.baseline`` asks of ``results`` (a first batch): per result,
    the figures its paired comparison gates (``--baseline-metric``, else the check's primary
    figures) that are a rate or a mean of an outcome in [0, 1]. A binary outcome is compared on
    its discordant pairs (McNemar); once either run has K > 1 samples per example, its outcome is
    an example's share over the samples, compared as a bounded difference. Each runs at ``spec.alpha``
    divided by their number (Bonferroni: the fixed-n gate's Holm correction has no sequential
    step-down). None without a paired baseline."""
    if not spec.baseline or spec.baseline_mode != "paired":
        return []

    entries = load_baseline(spec.baseline).get("entries", {})
    tolerances = parse_tolerances(list(spec.tolerances))
    asked = []
    for result in results:
        key = entry_key(result)
        old = entries.get(key)
        if not old or old.get("examples") is None:
            continue
        for name in spec.baseline_metrics or primary_figures(result.check, tuple(old["figures"])):
            figure = figure_of(result.check, name)
            if figure is None or figure.better is None or name not in old["figures"]:
                continue
            try:
                _, outcome, kind = gated_figure(Threshold(name, ">=", 0.5), result.check)
            except UserInputError:
                continue  # not a mean of an outcome: the fixed-n paired gate decides it
            before = {i: e["outcomes"].get(outcome.name) for i, e in old["examples"].items()}
            several = samples_of(result) > 1 or len({r.id for r in result.examples}) < len(result.examples)
            if kind == "binary" and (several or not all(v is None or isinstance(v, bool) for v in before.values())):
                kind = "mean"  # shares over an example's records, on either side: paired differences in [-1, 1]
            asked.append((result, key, name, figure.better, outcome, kind, before,
                          min(tolerances.get(name, tolerances["*"]), 0.99)))
    alpha = spec.alpha / max(1, len(asked))
    return [BaselineQuestion(unit_of(result), str(spec.baseline), key, name, outcome, before,
                             SequentialComparison("binary" if kind == "binary" else "continuous", better, tolerance,
                                                  alpha, horizon))
            for result, key, name, better, outcome, kind, before, tolerance in asked]


def gated_figure(threshold: Any, check: str) -> tuple[str, Any, str]:
    """(figure, outcome, gate kind) of ``threshold`` on ``check`` under ``--sequential``, or
    `UserInputError` in one line saying why it cannot be gated sequentially."""

    metric = threshold.metric
    declared = {f.name: f for f in get_check(check).figures}
    name = metric
    for suffix in ("_lower", "_upper"):
        base = metric[: -len(suffix)]
        if metric.endswith(suffix) and base in declared and declared[base].interval:
            name = base
    outcome = outcome_of(check, name) if name in declared else None

    def refuse(why: str) -> UserInputError:
        return UserInputError(f"--sequential cannot gate {threshold} on {check}: {why}; a sequential gate needs the "
                              "mean of a per-example outcome in [0, 1] (a rate such as validity, or a mean_ figure)")

    if outcome is None:
        raise refuse(f"{name} has no per-example outcome")
    if outcome.kind == "binary":
        return name, outcome, "binary"
    if not outcome.unit_mean:
        raise refuse(f"{name} is not declared as the plain mean of per-example values in [0, 1] "
                     f"(its outcome {outcome.name} is not unit_mean)")
    return name, outcome, "mean"


def questions(thresholds: Sequence[Any], run_units: Sequence[str], alpha: float, horizon: int | None) -> list[SequentialQuestion]:
    """The sequential gates of a run: one per (unit, figure, direction, value), each listing the
    thresholds that ask it. Refuses (`UserInputError`) a threshold no sequential gate can answer."""

    out: dict[tuple, SequentialQuestion] = {}
    for threshold in thresholds:
        for unit in run_units:
            if not threshold.applies_to(unit):
                continue
            figure, outcome, kind = gated_figure(threshold, check_of(unit))
            key = (unit, figure, threshold.op in (">=", ">"), threshold.value)
            if key not in out:
                gate = SequentialGate(kind, threshold.op, threshold.value, alpha, horizon)
                out[key] = SequentialQuestion(unit, figure, outcome, gate)
            if str(threshold) not in out[key].thresholds:
                out[key].thresholds.append(str(threshold))
    return list(out.values())


def parsed_thresholds(texts: Sequence[str], where: str = "--threshold") -> list[Any]:
    return [Threshold.parse(t, where) for t in texts]


def check_sequential(texts: Sequence[str], run_units: Sequence[str], where: str = "--threshold",
                     alpha: float = default("alpha")) -> None:
    """Refuse, before any model call, a threshold ``--sequential`` cannot gate."""
    questions(parsed_thresholds(texts, where), run_units, alpha, None)


def check_sequential_tolerances(tolerances: Any, metrics: Sequence[str], where: str) -> None:
    """Refuse, before any model call, a --sequential paired baseline comparison with tolerance 0:
    its confidence sequence can show a regression or an improvement, never "not worse", so an
    unchanged model would run to --limit and fail undecided (docs/sequential.md). ``tolerances``:
    as `parse_tolerances` reads them; ``metrics``: the --baseline-metric figures (none: every
    figure compared, which the "*" tolerance covers)."""
    zero = [m for m in metrics if tolerances.get(m, tolerances["*"]) <= 0]
    if zero or (not metrics and tolerances["*"] <= 0):
        named = f" for {', '.join(zero)}" if zero else ""
        raise UserInputError(
            f"{where}: a --sequential comparison with a baseline needs a tolerance above 0{named}: with tolerance 0 "
            "only an improvement can be shown, so an unchanged model would fail undecided at --limit; give the "
            "worsening you accept, e.g. --tolerance 0.05 (docs/sequential.md)")


def samples_of(result: Any) -> int:
    """K, the sampled records per example of ``result`` (1 unless a sampled audit's)."""
    return int(((getattr(result, "info", None) or {}).get("sampling") or {}).get("samples") or 1)


def _unit_value(question: SequentialQuestion, result: Any, record: Any) -> float | None:
    """A record's outcome in [0, 1], None where it does not count; out of range refused in one line."""
    value = question.outcome.value(record.to_dict())
    if value is None:
        return None
    value = float(value)
    if not (-ROUNDING <= value <= 1.0 + ROUNDING) or math.isnan(value):
        raise UserInputError(f"--sequential cannot gate {question.figure} on {result.dataset}: example "
                             f"{record.id} has {question.outcome.name} = {value}, outside [0, 1]")
    return min(1.0, max(0.0, value))


def outcome_values(question: SequentialQuestion, result: Any) -> list[float]:
    """The new examples' outcome values of ``result`` (a batch's `CheckResult`), Nones skipped."""
    values = [_unit_value(question, result, record) for record in result.examples]
    return [v for v in values if v is not None]


def example_sums(question: SequentialQuestion, result: Any) -> tuple[list[float], list[int]]:
    """Per new example of ``result`` (K sampled records each) with at least one counted sample:
    the sum of its samples' outcome values and how many count (`ClusteredGate`'s input)."""
    by_id: dict[str, list[float]] = {}
    for record in result.examples:
        value = _unit_value(question, result, record)
        kept = by_id.setdefault(record.id, [])
        if value is not None:
            kept.append(value)
    counted = [v for v in by_id.values() if v]
    return [math.fsum(v) for v in counted], [len(v) for v in counted]


@contextmanager
def answered_twice(model: Any) -> Iterator[Any]:
    """``model`` with a response cache behind it for the block, so the final pass over the
    audited prefix is answered without a model call: the model's own cache, else (``--no-cache``,
    or a model handed over without one) a cache of the run's own in a temporary folder."""
    if isinstance(model, CachedModel) and model.cache is not None:
        yield model
        return
    with tempfile.TemporaryDirectory(prefix="sce-sequential-") as folder:
        cache = ResponseCache(f"{folder}/responses.sqlite")
        try:
            if isinstance(model, CachedModel):
                model.cache = cache
                try:
                    yield model
                finally:
                    model.cache = None
            else:
                yield CachedModel(model, cache)
        finally:
            cache.close()


def audit_sequentially(examples: Sequence[tuple[str, Any]], batch_size: int, gates: list[SequentialQuestion],
                       run_checks: Callable[[Sequence[tuple[str, Any]]], tuple[list, list]],
                       unit_of: Callable[[Any], str],
                       more: Callable[[list], list] = lambda results: []) -> tuple[list, list, dict[str, Any]]:
    """Feed ``gates`` batch by batch (``run_checks(batch)`` -> (results, skipped)) until every
    gate is decided or ``examples`` run out; then ``run_checks`` once more on the audited prefix.
    ``more(first results)``: further conditions to decide before stopping (`BaselineQuestion`).
    Returns (results, skipped, the ``sequential`` block of each result, its gates aside)."""
    audited = 0
    reported: set[str] = set()
    waiting: list[Any] = list(gates)
    baseline: list[BaselineQuestion] = []
    for start in range(0, len(examples), batch_size):
        batch = examples[start:start + batch_size]
        results, _ = run_checks(batch)
        audited = start + len(batch)
        if not reported:
            baseline = more(results)
        reported |= {unit_of(r) for r in results}
        # a check that cannot run here has no gate to wait for
        waiting = [q for q in [*gates, *baseline] if q.unit in reported]
        if not waiting:  # nothing to decide: the rest in one pass, not batch by batch
            audited = len(examples)
            break
        for question in waiting:
            for result in results:
                if unit_of(result) == question.unit:
                    question.feed(result, audited)
        if waiting and not any(_pending(q) for q in waiting):
            break
    results, skipped = run_checks(examples[:audited])
    block = {"stopped_after": audited, "limit": len(examples),
             "decided": bool(waiting) and not any(_pending(q) for q in waiting),
             "reason": stop_reason(waiting, audited, len(examples))}
    if baseline:
        block["baseline"] = [q.as_dict() for q in baseline]
    return results, skipped, block


def _pending(question: Any) -> bool:
    """The audit waits for this one: an undecided gate, or an undecided baseline comparison that
    has pairs (a figure no audited example measured in both runs, such as mean RCF_A without a
    valid SCE, does not hold the audit up; the paired gate reports it)."""
    if question.state() != UNDECIDED:
        return False
    return not isinstance(question, BaselineQuestion) or question.comparison.n > 0


def stop_reason(gates: list[SequentialQuestion], audited: int, limit: int) -> str:
    """Why the audit stopped where it did, one clause (the reports' line)."""
    if not gates:
        return "no gate to decide: every example audited"
    open_ = [q for q in gates if _pending(q)]
    if not open_:
        return f"every gate decided ({', '.join(q.told() for q in gates if q.state() != UNDECIDED)})"
    thresholds = [q.thresholds[0] for q in open_ if isinstance(q, SequentialQuestion)]
    figures = [q.figure for q in open_ if isinstance(q, BaselineQuestion)]
    parts = [f"{len(thresholds)} gate(s) undecided ({', '.join(thresholds)}), which fail"] if thresholds else []
    if figures:
        parts.append(f"the baseline comparison of {', '.join(figures)} undecided, which fails")
    return "limit reached with " + "; ".join(parts)


def attach(results: list, block: dict[str, Any], gates: list[SequentialQuestion], unit_of: Callable[[Any], str]) -> None:
    """Every result of the dataset carries the ``sequential`` block, with its own unit's gates."""
    for result in results:
        mine = [q.as_dict(t) for q in gates if q.unit == unit_of(result) for t in q.thresholds]
        result.info["sequential"] = {**block, "gates": mine}


def sequential_verdict(result: Any, threshold: Any) -> dict[str, Any] | None:
    """The sequential gate of ``result`` that answers ``threshold``, or None (not a sequential run)."""
    block = result.info.get("sequential") or {}
    return next((g for g in block.get("gates") or [] if g["threshold"] == str(threshold)), None)


def explain_gate(gate: dict[str, Any], block: dict[str, Any]) -> str:
    """One line: how a sequential gate ended, with its confidence sequence."""
    history = gate["history"]
    shown = "; ".join(f"n={n} [{lo:.3f}, {hi:.3f}]" for n, lo, hi in history[-6:])
    more = f"... {len(history) - 6} earlier looks; " if len(history) > 6 else ""
    if gate["state"] == UNDECIDED:
        return (f"{gate['threshold']} is undecided after {block['stopped_after']} of {block['limit']} examples "
                f"(--sequential): the confidence sequence of {gate['figure']} still contains the threshold "
                f"({more}{shown})")
    word = "does not hold" if gate["state"] == FAIL else "holds"
    return (f"{gate['threshold']} {word} (--sequential, decided at n={gate['decided_at']}): the confidence sequence "
            f"of {gate['figure']} lies wholly on the {'failing' if gate['state'] == FAIL else 'passing'} side "
            f"({more}{shown})")


def summary_lines(results: Sequence[Any]) -> list[str]:
    """One line per sequentially audited dataset: when and why its audit stopped."""
    seen: dict[str, str] = {}
    for result in results:
        block = result.info.get("sequential")
        if block and result.dataset not in seen:
            seen[result.dataset] = (f"sequential: {result.dataset} stopped after {block['stopped_after']} of "
                                    f"{block['limit']} examples: {block['reason']}")
    return list(seen.values())
