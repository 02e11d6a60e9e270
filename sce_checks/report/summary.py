"""The rows every human-readable report shows, computed once from result objects (terminal
table, Markdown and HTML all render these rows; none recomputes a figure)."""

from __future__ import annotations

from typing import Any, Sequence

from sce_checks.results import CheckResult

HEADERS = ["model", "dataset", "variant", "n", "generated", "validity [95% CI]", "strict", "mean dist", "RCF_A", "ICF_A",
           "TM_A", "exact", "thresholds", ""]


def fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def validity_cell(r: CheckResult) -> str:
    lo, hi = r.get("validity_ci") or (None, None)
    if r.get("validity") is None:
        return "-"
    return f"{pct(r['validity'])} [{pct(lo)}, {pct(hi)}]"


def thresholds_cell(r: CheckResult) -> str:
    """Each threshold judged on the result, failures first: ``FAIL validity>=0.8 (0.42)``."""
    verdicts = sorted(r.info.get("thresholds") or [], key=lambda v: v["passed"])
    parts = []
    for v in verdicts:
        mark = "ok" if v["passed"] else ("xfail" if v.get("expected_failure") else "FAIL")
        parts.append(f"{mark} {v['threshold']} ({fmt(v['actual'])})")
    return "; ".join(parts) or "-"


def ordered(results: Sequence[CheckResult]) -> list[CheckResult]:
    """Failures first, then the rest in run order."""
    return sorted(results, key=lambda r: r.verdict != "FAIL")


def sce_results(results: Sequence[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.check == "sce"]


def other_results(results: Sequence[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.check != "sce"]


CHECK_HEADERS = ["model", "dataset", "check", "n", "figures", "thresholds", ""]


def figure_cell(r: CheckResult, name: str) -> str:
    """``phi 0.412`` or ``failure_rate 0.250 [0.089, 0.532]`` (Wilson 95% interval when there is one)."""
    value = r.get(name)
    ci = r.get(f"{name}_ci")
    text = f"{name} {fmt(value)}"
    if value is not None and ci and None not in ci:
        text += f" [{fmt(ci[0])}, {fmt(ci[1])}]"
    return text


def figures_cell(r: CheckResult) -> str:
    """The check's headline figures (sce_checks.checks.HEADLINE), then its sample sizes."""
    from sce_checks.checks import HEADLINE

    parts = [figure_cell(r, name) for name in HEADLINE.get(r.check, ()) if name in r.figures]
    if r.check == "phi_cct" and r.get("n11") is not None:
        parts.append(f"n11/n10/n01/n00 {r['n11']}/{r['n10']}/{r['n01']}/{r['n00']}")
    counts = ("n_pairs", "n_counterfactuals") if r.check == "stability" else ("n_tested", "n_interventions", "n_scored")
    parts.extend(f"{c} {r[c]}" for c in counts if r.get(c) is not None)
    return "; ".join(parts) or "-"


def check_rows(results: Sequence[CheckResult]) -> list[list[str]]:
    """One row per result of a check other than sce: model, dataset, check, figures, gates."""
    return [[r.model, r.dataset, r.check, str(r.n), figures_cell(r), thresholds_cell(r), r.verdict]
            for r in ordered(other_results(results))]


def summary_rows(results: Sequence[CheckResult]) -> list[list[str]]:
    """One row per SCE result (the other checks have `check_rows`)."""
    rows = []
    for r in ordered(sce_results(results)):
        rows.append([
            r.model, r.dataset, r.variant or "", str(r.n),
            f"{r.get('n_generated', 0)} ({pct(r.get('generation_rate'))})",
            validity_cell(r), pct(r.get("strict_validity")), fmt(r.get("mean_distance")),
            fmt(r.get("mean_rcf_a")), fmt(r.get("mean_icf_a")), fmt(r.get("tm_a")), pct(r.get("exact_match")),
            thresholds_cell(r), r.verdict,
        ])
    return rows


def short(value: Any, width: int = 60) -> str:
    if isinstance(value, dict):
        text = ", ".join(f"{k}={v}" for k, v in value.items())
    else:
        text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def worst_examples(result: CheckResult, k: int = 3) -> list[Any]:
    """Invalid SCEs first (furthest from the target region), then the least minimal valid ones;
    none for other checks (they have `failing_rows`)."""
    if result.check != "sce":
        return []
    invalid = [e for e in result.examples if e.valid is False]
    valid = [e for e in result.examples if e.valid]
    invalid.sort(key=lambda e: -(e.icf_a if e.icf_a is not None else (e.distance or 0.0)))
    valid.sort(key=lambda e: -(e.rcf_a if e.rcf_a is not None else (e.distance or 0.0)))
    return (invalid + valid)[:k]


def example_rows(result: CheckResult, k: int = 3) -> list[list[str]]:
    return [
        [e.id, short(e.input), f"{e.prediction} -> {e.target}", short(e.counterfactual),
         str(e.cf_prediction), "valid" if e.valid else "invalid", fmt(e.distance), fmt(e.min_distance)]
        for e in worst_examples(result, k)
    ]


EXAMPLE_HEADERS = ["id", "input", "answer -> target", "counterfactual", "answer on SCE", "", "dist", "min dist"]


def unparsed_line(result: CheckResult) -> str:
    reasons = result.info.get("unparsed_reasons") or {}
    if not reasons:
        return ""
    parts = ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]))
    from sce_checks.checks import unit_of

    return f"unparsed ({result.dataset}/{unit_of(result)}): {parts}"


def reading_line(result: CheckResult) -> str:
    """What the lenient reading read and the generation fallback decided, when anything:
    ``read leniently (income/minimal): 3 SCEs (numeric_string 2, normalised_label 1); ...``."""
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
    from sce_checks.checks import unit_of

    return f"read leniently ({result.dataset}/{unit_of(result)}): " + "; ".join(parts)


FAILING_HEADERS = ["id", "input", "case", "answer", "detail"]


def failing_rows(result: CheckResult, k: int = 3) -> list[list[str]]:
    """Examples where a check other than sce failed: INV/DIR perturbations that moved the
    prediction (shrunk to the smallest failing edit), CT insertions the explanation did not
    mention, stability SCEs whose verdict changed with the input or the prompt. Empty for checks
    without a per-example verdict."""
    rows = []
    for e in result.examples:
        if len(rows) >= k:
            break
        x = e.extra
        if result.check in ("inv", "dir") and x.get("failed"):
            case = x.get("shrunk") or next((p for p in x.get("perturbations", []) if p.get("failed")), {})
            edits = case.get("edits") or []
            detail = (f"p({case['direction']}) moved {case['shift']:+.3f}" if case.get("shift") is not None
                      and case.get("direction") else short(case.get("text", case.get("input"))))
            rows.append([e.id, short(e.input), short("; ".join(edits) if isinstance(edits, list) else edits),
                         f"{e.prediction} -> {case.get('prediction')}", detail])
        elif result.check == "stability":
            rows.extend([e.id, short(e.input), *case] for case in _stability_cases(e))
        elif result.check == "ct" and x.get("unfaithful"):
            iv = (x.get("interventions") or [{}])[x.get("flipping_insertion") or 0]
            rows.append([e.id, short(e.input), f"inserted {iv.get('word')!r}",
                         f"{e.prediction} -> {iv.get('prediction')}", "explanation: " + short(iv.get("explanation"))])
    return rows[:k]


def _verdict(valid: bool | None) -> str:
    return "valid" if valid else "invalid"


def _stability_cases(e) -> list[list[str]]:
    """How a stability example failed: the SCE of the perturbed input disagrees on validity;
    the counterfactual is not valid under every wording of the prediction prompt."""
    cases = []
    side = e.extra.get("perturbed") or {}
    if e.extra.get("validity_agrees") is False:
        cases.append([short("; ".join(side.get("edits") or [])), f"SCE {_verdict(e.valid)} -> {_verdict(side.get('valid'))}",
                      "perturbed SCE: " + short(side.get("counterfactual"))])
    if e.valid and e.extra.get("valid_under_all_prompts") is False:
        labels = e.extra.get("prompt_predictions") or {}
        odd = ", ".join(f"{p} {label}" for p, label in labels.items() if label != e.target)
        cases.append(["prompt paraphrases", f"{e.prediction} -> {e.target}", short(f"SCE judged {odd}: {e.counterfactual}")])
    return cases


def result_tables(results: Sequence[CheckResult]) -> list[tuple[list[str], list[list[str]]]]:
    """(headers, rows) of the SCE table and of the other checks' table, each when it has rows."""
    return [(h, rows) for h, rows in ((HEADERS, summary_rows(results)), (CHECK_HEADERS, check_rows(results))) if rows]


def notes(results: Sequence[CheckResult], skipped: Sequence[str] = ()) -> list[str]:
    """Per result, a line of unparsed outputs and one of leniently read ones; then one per check
    that could not run."""
    lines = [line for r in results for line in (unparsed_line(r), reading_line(r)) if line]
    return lines + [f"not applicable: {line}" for line in skipped]


def example_tables(result: CheckResult, k: int) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows): the worst SCE examples, or another check's failing examples."""
    return [(title, h, rows) for title, h, rows in (("worst examples", EXAMPLE_HEADERS, example_rows(result, k)),
                                                    ("failing examples", FAILING_HEADERS, failing_rows(result, k))) if rows]
