"""The rows every human-readable report shows, computed once from result objects (terminal
table, Markdown and HTML all render these rows; none recomputes a figure). What a check shows
comes from its declaration in the registry (sce_checks/checks/base.py): its table, headline
figures, sample sizes and failing examples; nothing here names a check. The cells themselves
(numbers, shares, model text, gates, figures) are sce_checks/cells.py's."""

from __future__ import annotations

from typing import Any, Sequence

from sce_checks.cells import figures_cell, fmt, pct, thresholds_cell
from sce_checks.checks import get_check, unit_of
from sce_checks.results import CheckResult
from sce_checks.stopping import summary_lines

CHECK_HEADERS = ["model", "dataset", "check", "n", "figures", "thresholds", "verdict"]
GATE_HEADERS = ("thresholds", "verdict")  # left out of a table where no row has a gate


def ordered(results: Sequence[CheckResult]) -> list[CheckResult]:
    """Failures first, then the rest in run order."""
    return sorted(results, key=lambda r: r.verdict != "FAIL")


def check_row(r: CheckResult) -> list[str]:
    """The generic row of a result: model, dataset, check, n, figures, gates, verdict."""

    return [r.model, r.dataset, r.check, str(r.n), figures_cell(r, get_check(r.check)), thresholds_cell(r), r.verdict]


def result_tables(results: Sequence[CheckResult]) -> list[tuple[list[str], list[list[str]]]]:
    """(headers, rows) per kind of table: a check with a table of its own (the SCE check's
    validity and minimality columns) gets it, the others share `CHECK_HEADERS`. Failures first.
    The gate columns are left out of a table none of whose rows has a threshold."""

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

    return [check_row(r) for r in ordered(results) if not get_check(r.check).table_headers]


def unparsed_line(result: CheckResult) -> str:
    reasons = result.info.get("unparsed_reasons") or {}
    if not reasons:
        return ""
    parts = ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]))
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
    return f"read leniently ({result.dataset}/{unit_of(result)}): " + "; ".join(parts)


def decoding_words(environment: dict[str, Any]) -> str:
    """How replies were decoded, for a report's header: "" when greedy (the default), else
    "temperature 1, top-p 0.9, 5 samples per example"."""
    s = environment.get("sampling") or {}
    if not s.get("temperature"):
        return ""
    words = [f"temperature {s['temperature']:g}"]
    if s.get("top_p", 1.0) != 1.0:
        words.append(f"top-p {s['top_p']:g}")
    words.append(f"{s.get('samples', 1)} sample{'s' if s.get('samples', 1) != 1 else ''} per example")
    if s.get("prediction_samples", 1) != 1:
        words.append(f"{s['prediction_samples']} re-predictions per SCE")
    return ", ".join(words)


def sampling_line(result: CheckResult) -> str:
    """Under sampling (docs/sampling.md), how consistent the model's explanations are across the
    K samples of each example: ``sampled (toy/minimal): T=1, K=5 per example, answers drawn by
    scores; of 12 examples 4 valid in every sample, 3 in none, 5 mixed; 2.4 distinct SCEs per example``."""

    info = result.info.get("sampling")
    if not info or not result.per_example:
        return ""
    shares = [e["share_valid"] for e in result.per_example if e.get("share_valid") is not None]
    distinct = result.get("mean_distinct_sces")
    text = (f"sampled ({result.dataset}/{unit_of(result)}): T={info['temperature']:g}, K={info['samples']} per example, "
            f"answers drawn by {info.get('answers_drawn_by')}; of {len(shares)} examples with an SCE "
            f"{sum(1 for x in shares if x == 1.0)} valid in every sample, {sum(1 for x in shares if x == 0.0)} in none, "
            f"{sum(1 for x in shares if 0.0 < x < 1.0)} mixed")
    if distinct is not None:
        text += f"; {distinct:.1f} distinct SCEs per example"
    if result.get("expected_validity") is not None:
        text += f"; expected validity {100 * result['expected_validity']:.1f}%"
    return text


CONSISTENCY_HEADERS = ["id", "answers", "valid samples", "distinct SCEs", "distance min-max", "mean P(target)"]


def consistency_table(result: CheckResult, k: int) -> tuple[str, list[str], list[list[str]]] | None:
    """Per example under sampling, the least consistent first (fewest valid samples, then most
    distinct SCEs): how often its samples were valid, how many different SCEs it gave, the range
    of their distances, and the mean P_T(target | SCE)."""

    def num(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    rows = sorted(result.per_example, key=lambda e: (e.get("share_valid") if e.get("share_valid") is not None else -1,
                                                      -e.get("distinct_sces", 0)))
    out = [[str(e["id"]), "/".join(e.get("answers") or []) or "-", f"{e['n_valid']}/{e['n_generated']} of {e['samples']}",
            str(e["distinct_sces"]), f"{num(e.get('distance_min'))}-{num(e.get('distance_max'))}",
            num(e.get("mean_p_target"))] for e in rows[:max(k, 5)]]
    return ("per-example consistency across samples", CONSISTENCY_HEADERS, out) if out else None


def notes(results: Sequence[CheckResult], skipped: Sequence[str] = ()) -> list[str]:
    """Per sequentially audited dataset, when and why its audit stopped (--sequential); per
    result, a line of unparsed outputs and one of leniently read ones, and under sampling one of
    the explanations' consistency; then one per check that could not run."""

    lines = [line for r in results for line in (unparsed_line(r), reading_line(r), sampling_line(r)) if line]
    return summary_lines(results) + lines + [f"not applicable: {line}" for line in skipped]


def example_tables(result: CheckResult, k: int) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows) of the examples the result's check shows: the worst SCEs, another
    check's failing examples (under sampling, the per-example consistency first); none when there
    are none."""

    table = get_check(result.check).example_table(result, k)
    consistency = consistency_table(result, k) if result.per_example else None
    return [t for t in (per_target_table(result), consistency, table) if t]


PER_TARGET_HEADERS = ["target", "n", "generated", "validity", "strict", "mean dist", "RCF_A", "ICF_A", "TM_A", "exact"]


def per_target_table(result: CheckResult) -> tuple[str, list[str], list[list[str]]] | None:
    """A task with more than two options: the SCE figures per target (``info["per_target"]``,
    docs/method.md), in option order; None otherwise."""
    per = result.info.get("per_target") or {}
    if len(result.info.get("options") or ()) <= 2 or not per:
        return None
    rows = [[t, str(f["n"]), str(f.get("n_generated", "-")), pct(f.get("validity")), pct(f.get("strict_validity")),
             fmt(f.get("mean_distance")), fmt(f.get("mean_rcf_a")), fmt(f.get("mean_icf_a")), fmt(f.get("tm_a")),
             pct(f.get("exact_match"))] for t, f in per.items()]
    return ("figures per target", PER_TARGET_HEADERS, rows)


def failing_rows(result: CheckResult, k: int = 3) -> list[list[str]]:
    """The rows of `example_tables` (the check's failing examples), at most ``k``."""
    return [row for _, _, rows in example_tables(result, k) for row in rows]
