"""Assertion helpers for pytest: thresholds on a result's figures with readable failures.

    def test_income(sce_audit):
        result = sce_audit("income", variant="minimal")
        assert_validity(result, at_least=0.8, use_lower_bound=True)
        assert_minimality(result, mean_rcf_a_at_most=0.05)

    def test_faithfulness(sce_audit):
        assert_threshold(sce_audit("sentiment", check="phi_cct"), "phi>=0.2")
        assert_failure_rate(sce_audit("sentiment", check="inv"), at_most=0.1, use_upper_bound=True)

A failure names the figure, the threshold, the Wilson interval and the three worst examples
(original -> counterfactual, labels, distance), or for the other checks their headline figures
and failing examples (shrunk INV/DIR edits, unmentioned CT insertions).
"""

from __future__ import annotations

from typing import Any

from sce_checks.cells import fmt, pct, short, summary_line
from sce_checks.checks import get_check
from sce_checks.layout import fit_table, terminal_width
from sce_checks.results import CheckResult
from sce_checks.safe import plain
from sce_checks.stopping import explain_gate, sequential_verdict
from sce_checks.thresholds import PASS, Threshold, UNDECIDED, figure_bounds


class SCEAssertionError(AssertionError):
    """A threshold on a figure failed; the message is the whole explanation."""


def _explain(result: CheckResult, headline: str) -> str:
    """The failure, the result's one-line summary and the examples its check shows (the worst
    SCEs, another check's failing examples)."""

    check = get_check(result.check)
    width = terminal_width()  # pytest prints the message in its failures section, as wide as its lines
    lines = [headline, "  " + plain(check.summary_line(result) or summary_line(result, check))]
    shown = check.example_table(result, 3)
    if shown:
        title, headers, rows = shown
        lines.append(f"  {plain(title)}:")
        table = fit_table([plain(h) for h in headers], [[plain(c) for c in row] for row in rows], width - 4)
        lines.extend(("    " + line).rstrip() for line in table.splitlines())
    return "\n".join(lines)


def assert_validity(result: CheckResult, at_least: float, *, use_lower_bound: bool = False, strict: bool = False) -> None:
    """Validity (over generated SCEs, or over all examples with ``strict``) must reach
    ``at_least``; with ``use_lower_bound`` its Wilson 95% lower bound must."""
    name = "strict_validity" if strict else "validity"
    value = result.get(name)
    gate = f"{name}_lower>={at_least:g}" if use_lower_bound else f"{name}>={at_least:g}"
    if use_lower_bound:
        value = (result.get(f"{name}_ci") or [None, None])[0]
        name += " (Wilson lower bound)"
    result.record_verdict(gate, value, value is not None and value >= at_least)
    if value is None or value < at_least:
        raise SCEAssertionError(_explain(result, f"{name} = {pct(value)} is below the threshold {pct(at_least)}"))


def assert_minimality(
    result: CheckResult,
    *,
    mean_rcf_a_at_most: float | None = None,
    mean_distance_at_most: float | None = None,
    exact_match_at_least: float | None = None,
    tm_a_at_most: float | None = None,
) -> None:
    """Minimality figures must be within their bounds (undefined figures fail; a figure known only
    within bounds, under an x* search budget, fails as undecided unless they decide it:
    sce_checks/thresholds.py)."""
    checks = [
        ("mean_rcf_a", mean_rcf_a_at_most, "at_most"),
        ("mean_distance", mean_distance_at_most, "at_most"),
        ("tm_a", tm_a_at_most, "at_most"),
        ("exact_match", exact_match_at_least, "at_least"),
    ]

    for name, bound, kind in checks:
        if bound is None:
            continue
        threshold = Threshold(name, "<=" if kind == "at_most" else ">=", bound)
        value, failure = judge(result, threshold)
        if failure is None:
            continue
        if value is None and failure.startswith(f"{threshold} is undecided"):
            raise SCEAssertionError(failure)
        word = "above" if kind == "at_most" else "below"
        shown = "undefined" if value is None else f"{value:.4f}"
        raise SCEAssertionError(_explain(result, f"{name} = {shown} is {word} the threshold {bound:g}"))


def assert_example_valid(record, *, max_gap: float | None = None) -> None:
    """One example (from the ``sce_example`` fixture): its SCE was generated and is valid, and,
    with ``max_gap``, no farther than ``max_gap`` beyond the reference minimal counterfactual."""
    __tracebackhide__ = True
    where = (f"{record.id}: {short(record.input)} -> {short(record.counterfactual)}; "
             f"answer {record.prediction}, target {record.target}, answer on the SCE {record.cf_prediction}")
    if record.counterfactual is None:
        raise SCEAssertionError(f"{record.id}: no SCE could be parsed ({record.unparsed or 'no reply'}); "
                                f"reply: {short(record.sce_reply)}")
    if not record.valid:
        raise SCEAssertionError(f"SCE not valid: {where}")
    if max_gap is not None:
        bounds = record.extra.get("rcf_a_bounds")
        if record.min_distance is None and bounds:  # x* search stopped at its budget: judge the bounds
            if bounds[1] is not None and bounds[1] <= max_gap + 1e-12:
                return
            word = "not minimal" if bounds[0] > max_gap + 1e-12 else "undecided"
            raise SCEAssertionError(f"SCE {word}: the gap to the reference minimal counterfactual lies in "
                                    f"[{fmt(bounds[0])}, {fmt(bounds[1])}] (x* search stopped at its budget), "
                                    f"threshold {max_gap:g}: {where}")
        gap = None if record.distance is None or record.min_distance is None else record.distance - record.min_distance
        if gap is None or gap > max_gap + 1e-12:
            raise SCEAssertionError(f"SCE not minimal: distance {fmt(record.distance)} vs reference {fmt(record.min_distance)} "
                                    f"(gap above {max_gap:g}): {where}")


def judge(result: CheckResult, threshold, *, expected_failure: bool = False) -> tuple[Any, str | None]:
    """Judge a `Threshold` on ``result`` and note the verdict on it (every report shows it):
    (the figure, None when it holds or else the failure's explanation)."""

    actual = threshold.actual(result)
    gate = sequential_verdict(result, threshold)
    if gate is not None:  # --sequential: the confidence sequence decides, not the figure at the stop
        passed = gate["final"] == PASS
        result.record_verdict(str(threshold), actual, passed, expected_failure=expected_failure,
                              undecided=gate["state"] == UNDECIDED)
        return actual, None if passed else _explain(result, explain_gate(gate, result.info["sequential"]))
    decision = threshold.decide(result)
    bounds = figure_bounds(result, threshold.metric) if actual is None else None
    result.record_verdict(str(threshold), actual, decision == PASS, expected_failure=expected_failure,
                          bounds=bounds, undecided=decision == UNDECIDED)
    if decision == PASS:
        return actual, None
    if bounds is not None:
        shown = f"[{bounds[0]:.4f}, {'unbounded' if bounds[1] is None else f'{bounds[1]:.4f}'}]"
        why = result.info.get("n_examples_bounded")
        because = (f" ({why} example(s) bounded by --xstar-budget {result.info.get('xstar_budget')}; raise it to "
                   "decide the gate, cached predictions are reused)") if why else ""
        if decision == UNDECIDED:
            return actual, _explain(result, f"{threshold} is undecided: {threshold.metric} lies in {shown}, which the "
                                            f"threshold cuts{because}")
        return actual, _explain(result, f"{threshold} does not hold: {threshold.metric} lies in {shown}{because}")
    shown = "undefined" if actual is None else f"{actual:.4f}"
    return actual, _explain(result, f"{threshold} does not hold: {threshold.metric} = {shown}")


def assert_threshold(result: CheckResult, threshold: str) -> None:
    """Any figure of any check against a rule such as ``"phi>=0.2"``, ``"failure_rate_upper<=0.2"``
    (``_lower`` / ``_upper``: the ends of the figure's Wilson interval). An undefined figure fails."""

    __tracebackhide__ = True
    _, failure = judge(result, Threshold.parse(threshold, "assert_threshold"))
    if failure:
        raise SCEAssertionError(failure)


def assert_failure_rate(result: CheckResult, at_most: float, *, use_upper_bound: bool = False) -> None:
    """INV / DIR: the share of examples whose prediction moved the wrong way must be at most
    ``at_most``; with ``use_upper_bound`` its Wilson 95% upper bound must."""
    __tracebackhide__ = True
    assert_threshold(result, f"failure_rate{'_upper' if use_upper_bound else ''}<={at_most!r}")


def assert_unfaithfulness(result: CheckResult, at_most: float, *, use_upper_bound: bool = False) -> None:
    """CT: among examples with a prediction-flipping insertion, the share whose explanation does
    not mention the inserted word must be at most ``at_most`` (Wilson upper bound with
    ``use_upper_bound``)."""
    __tracebackhide__ = True
    assert_threshold(result, f"unfaithfulness{'_upper' if use_upper_bound else ''}<={at_most!r}")
