"""The SCE check: are a model's self-generated counterfactual explanations valid and minimal?

Grid tasks follow Mayne et al. (EMNLP 2025, arXiv 2509.09396); text tasks follow Dehghanighobadi,
Fischer and Zafar (EMNLP 2025, arXiv 2502.18156). Data flows one way:

    examples -> fresh-context predictions -> SCE requests (same conversation) -> parsed SCEs
             -> fresh-context predictions on the SCEs -> distances, reference minimal
                counterfactuals -> per-example records -> aggregate figures (CheckResult)

Model calls are batched (one batch per step, all examples at once) and predictions memoised, so
an SCE that lands on an already-predicted point, or a boundary-search ring shared by several
examples, costs nothing extra.

At a temperature above 0 every example is asked ``samples`` (K) times, one record per (example,
sample): see sce_checks/checks/sce_sampling.py and docs/sampling.md.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from sce_checks.cells import fmt, pct, short, thresholds_cell
from sce_checks.checks.base import Check, Outcome
from sce_checks.checks.predict import (
    Prediction, Predictor, Sampling, mark_unparsed, prediction_record, task_predictor, validate_settings,
)
from sce_checks.checks.sce_sampling import (
    Job, Key, Reprediction, Row, add_sampled_figures, note_reprediction, note_sample, repredict, sampled_answers,
)
from sce_checks.choices import VARIANTS
from sce_checks.config import default
from sce_checks.metrics.gower import gower_distance
from sce_checks.metrics.minimality import TOLERANCE as MINIMALITY_TOLERANCE
from sce_checks.metrics.minimality import MinimalityRow, aggregate_minimality, interval_mean
from sce_checks.metrics.stats import mean_or_none, put_proportion, wilson_interval
from sce_checks.metrics.text_distance import normalized_levenshtein
from sce_checks.errors import UserInputError
from sce_checks.models.base import ChatModel, Decoding, conversation_seed
from sce_checks.parsing import Parsed, parse_grid_sce, parse_text_sce, reason_key
from sce_checks.progress import step
from sce_checks.prompts import grid as grid_prompts
from sce_checks.prompts import text as text_prompts
from sce_checks.prompts.schemas import grid_sce_schema, text_sce_schema
from sce_checks.results import CheckResult, ExampleRecord
from sce_checks.search.grid import BoundarySearch, NearestResult
from sce_checks.search.text import redundancy, search_minimal_edit
from sce_checks.tasks.grid import GridTask, Point
from sce_checks.tasks.targets import check_targets, choose_targets, pick_target  # noqa: F401 (pick_target: stability's)

# Grid points per prediction batch the exact searches aim at: a search left with small rings
# looks a few rings ahead (search/grid.py) instead of asking the model about 1-4 points at a time.
SEARCH_MIN_BATCH = 32


@dataclass(frozen=True)
class SCESettings:
    """How the check runs; all of it goes into the report's environment. Fields named like a
    setting of the run specification (sce_checks/config.py) take its value and its default."""

    variants: tuple[str, ...] = default("variants")
    prediction: str = default("prediction")  # auto | score | generate (see checks/predict.py)
    elicitation: str = default("elicitation")  # free | schema: replies constrained to their JSON schema (prompts/schemas.py)
    parsing: str = default("parsing")  # lenient | strict (sce_checks/parsing.py)
    answer_tokens: int = 48  # max new tokens for a generated answer
    sce_tokens: int = 256  # max new tokens for an SCE reply
    seed: int = default("seed")  # target draw for tasks with more than two options
    targets: str = default("targets")  # all | random | an option label (sce_checks/tasks/targets.py)
    text_search_budget: int = default("text_search_budget")  # model predictions per example for the text reference search (0: off)
    xstar_budget: int = default("xstar_budget")  # grid points predicted per exact search, x* or ICF_A (0: no limit)
    temperature: float = default("temperature")  # 0: greedy; above 0: sampled replies (docs/sampling.md)
    top_p: float = default("top_p")
    samples: int = default("samples")  # K SCEs per example and target
    prediction_samples: int = default("prediction_samples")  # M sampled re-predictions per SCE (generated answers)

    def __post_init__(self) -> None:
        validate_settings(self, ("answer_tokens", "sce_tokens", "samples", "prediction_samples"))
        if self.temperature == 0 and (self.samples > 1 or self.prediction_samples > 1):
            which = "--samples" if self.samples > 1 else "--prediction-samples"
            raise UserInputError(f"{which} above 1 needs --temperature above 0: greedy decoding gives the same reply "
                                 "every time")


def validity_figures(n: int, n_generated: int, n_valid: int) -> dict[str, Any]:
    """Validity three ways: paper-compatible (over generated SCEs), strict (over all examples),
    and the generation rate; Wilson 95% intervals for both validities."""
    return {
        "n_generated": n_generated,
        "n_valid": n_valid,
        "generation_rate": n_generated / n if n else 0.0,
        "validity": n_valid / n_generated if n_generated else None,
        "strict_validity": n_valid / n if n else 0.0,
        "validity_ci": list(wilson_interval(n_valid, n_generated)),
        "strict_validity_ci": list(wilson_interval(n_valid, n)),
    }


def _first_reply(prediction: Prediction) -> str:
    """The assistant turn the SCE request follows: the raw reply when the answer was generated,
    the canonical JSON answer when it was scored (a documented deviation: see docs/method.md)."""
    return prediction.reply


def sce_decoding(task: Any, settings: Any, inputs: Sequence[Any]) -> Decoding:
    """How SCE replies are decoded: free, or (``elicitation="schema"``) constrained to the SCE
    schema of the task (prompts/schemas.py). A revised text is bounded to twice the longest input
    plus 50 characters, and the token budget raised to hold that many, so a constrained reply
    always closes its JSON."""
    decoding = Decoding(max_new_tokens=settings.sce_tokens)
    if getattr(settings, "elicitation", "free") != "schema":
        return decoding
    if task.kind == "grid":
        return decoding.with_schema(grid_sce_schema(task))
    longest = max((len(x) for x in inputs), default=0)
    schema = text_sce_schema()
    schema["properties"]["revised_text"]["maxLength"] = 2 * longest + 50
    return Decoding(max_new_tokens=max(settings.sce_tokens, 2 * longest + 50 + 32)).with_schema(schema)


def parse_sce(task: Any, reply: str, settings: Any) -> Parsed:
    """An SCE reply read as the settings say (``parsing``: lenient or strict)."""
    strict = getattr(settings, "parsing", "lenient") == "strict"
    if task.kind == "grid":
        return parse_grid_sce(reply, task, strict)
    return parse_text_sce(reply, strict, form=text_prompts.sce_form(getattr(settings, "elicitation", "free")))


def request_sces(model, settings: SCESettings, examples, preds, targets: dict, conversation, name: str, task: Any) -> dict:
    """One batched chat call for every (variant, example with a parsed prediction): the SCE
    request in the prediction's conversation. Returns {(variant, example id): raw reply}."""
    jobs = []
    for variant in settings.variants:
        for (ex_id, x), pred in zip(examples, preds):
            if pred.label is not None:
                jobs.append((variant, ex_id, conversation(x, _first_reply(pred), targets[ex_id], variant)))
    decoding = sce_decoding(task, settings, [x for _, x in examples])
    with step(f"{name}: requesting {len(jobs)} SCEs", len(jobs)):
        replies = model.chat([c for _, _, c in jobs], decoding) if jobs else []
    return {(v, i): r for (v, i, _), r in zip(jobs, replies)}


def reply_info(settings: Any, predictor: Predictor, parsed: dict) -> dict[str, Any]:
    """How replies were elicited and read, for a result's ``info``: the settings, the leniency
    rules each reading needed (counted over parsed SCEs and generated predictions) and the
    predictions generated because option scores could not decide them."""
    sce_rules: Counter[str] = Counter()
    for sce in parsed.values():
        if sce.ok:
            sce_rules.update(sce.lenient)
    return {
        "elicitation": getattr(settings, "elicitation", "free"),
        "parsing": getattr(settings, "parsing", "lenient"),
        "sce_leniency": dict(sce_rules),
        "n_sce_lenient": sum(1 for sce in parsed.values() if sce.ok and sce.lenient),
        "prediction_leniency": predictor.leniency(),
        "n_prediction_fallback": predictor.fallbacks,
    }


@dataclass
class Elicited:
    """What the first two stages hand the others: the modal predictions on the examples, the
    answer each sample's SCE requests follow and their targets (sce_checks/tasks/targets.py),
    keyed by (example id, sample), and every SCE reply with its reading and its request's seed,
    by (variant, example id, sample, target). Greedy audits have one sample, 0, whose answer is
    the prediction. ``skipped``: answers that already were the one named target (no request)."""

    preds: list[Prediction]
    answers: dict[Row, Prediction]
    targets: dict[Row, tuple[str, ...]]
    replies: dict[Key, str]
    parsed: dict[Key, Parsed]
    seeds: dict[Key, int]
    samples: int = 1
    skipped: int = 0

    def jobs(self) -> list[Job]:
        """Every (example id, sample, target) an SCE was requested for, answer by answer."""
        return [(ex_id, k, t) for (ex_id, k), ts in self.targets.items() for t in ts]


def sampled_targets(examples: Sequence[tuple[str, Any]], answers: dict[Row, Prediction], samples: int,
                    target_of: Callable[[str, str, int], tuple[str, ...]]) -> dict[Row, tuple[str, ...]]:
    """Each sample's targets, from the answer that sample drew."""
    return {(ex_id, k): target_of(ex_id, answers[(ex_id, k)].label, k)
            for ex_id, _ in examples for k in range(samples) if answers[(ex_id, k)].label is not None}


def request_sampled_sces(model: ChatModel, settings: SCESettings, examples: Sequence[tuple[str, Any]],
                         answers: dict[Row, Prediction], targets: dict[Row, tuple[str, ...]], conversation: Callable,
                         task: Any, samples: int) -> tuple[dict[Key, str], dict[Key, int]]:
    """The SCE requests of every (variant, example with an answer, sample, target), one chat call per
    sample (a batch shares its `Decoding`, whose ``sample`` the backend seeds each reply with).
    Returns the replies and, under sampling, each request's own seed (`conversation_seed`)."""
    sampling = Sampling.of(settings)
    base = sce_decoding(task, settings, [x for _, x in examples])
    jobs = [(variant, (ex_id, k, t), conversation(x, _first_reply(answers[(ex_id, k)]), t, variant))
            for k in range(samples) for variant in settings.variants for ex_id, x in examples
            for t in targets.get((ex_id, k), ())]
    replies: dict[Key, str] = {}
    seeds: dict[Key, int] = {}
    with step(f"{task.name}: requesting {len(jobs)} SCEs", len(jobs)):
        for k in range(samples):
            batch = [(v, job, c) for v, job, c in jobs if job[1] == k]
            if not batch:
                continue
            decoding = sampling.decoding(base, k)
            for (v, job, c), reply in zip(batch, model.chat([c for _, _, c in batch], decoding)):
                replies[(v, *job)] = reply
                if sampling.on:
                    seeds[(v, *job)] = conversation_seed(decoding, c)
    return replies, seeds


def elicit(model: ChatModel, task: Any, examples: Sequence[tuple[str, Any]], settings: SCESettings,
           predictor: Predictor, target_of: Callable[[str, str, int], tuple[str, ...]], conversation: Callable) -> Elicited:
    """Stages 1 and 2: fresh-context predictions on the examples (one batch), each sample's answer
    (sce_sampling.py), then the SCE requests in those conversations (one batch per sample, every
    variant), read as the settings say."""
    inputs = [x for _, x in examples]
    with step(f"{task.name}: predicting {len(inputs)} examples", len(inputs)):
        preds = predictor.predict(inputs)
        answers = sampled_answers(task, predictor, examples, preds)
    samples = predictor.sampling.samples if predictor.sampling.on else 1
    targets = sampled_targets(examples, answers, samples, target_of)
    replies, seeds = request_sampled_sces(model, settings, examples, answers, targets, conversation, task, samples)
    return Elicited(preds, answers, {row: ts for row, ts in targets.items() if ts}, replies,
                    {k: parse_sce(task, r, settings) for k, r in replies.items()}, seeds, samples,
                    sum(1 for ts in targets.values() if not ts))


def target_chooser(task: Any, settings: SCESettings) -> Callable[[str, str, int], tuple[str, ...]]:
    """``(example id, answer, sample) -> targets`` under ``settings.targets``, refused in one line
    (before any model call) when it names no option of ``task``. A random draw is keyed by the
    example id, and by the sample under sampling (``id#k``, k > 0)."""
    check_targets(settings.targets, [task])
    return lambda ex_id, label, k: choose_targets(task.options, label, settings.targets, settings.seed,
                                                  ex_id if k == 0 else f"{ex_id}#{k}")


def predict_counterfactuals(task: Any, predictor: Predictor, el: Elicited) -> dict[Key, Reprediction]:
    """Stage 3: fresh-context predictions on every distinct parsed SCE (one batch), and the
    answer each SCE is judged on (its modal answer, or under sampling a draw: sce_sampling.py)."""
    counterfactuals = list(dict.fromkeys(p.value for p in el.parsed.values() if p.ok))
    with step(f"{task.name}: predicting {len(counterfactuals)} counterfactuals", len(counterfactuals)):
        predictor.predict(counterfactuals)
        reps = repredict(task, predictor, {key: (p.value, key[3]) for key, p in el.parsed.items() if p.ok})
    return reps


def sce_record(ex_id: str, shown: Any, row: Row, target: str | None, variant: str, el: Elicited,
               reasons: Counter[str]) -> tuple[ExampleRecord, Parsed | None]:
    """One (example, sample, target)'s record up to its SCE: the answer, the target and the raw
    SCE reply, and the SCE's reading when there is one (None when the answer or the SCE went
    unparsed: the reason is in the record and counted in ``reasons``)."""
    answer = el.answers[row]
    rec = prediction_record(ex_id, shown, answer)
    if answer.label is None or target is None:
        reasons[reason_key("prediction", answer.code)] += 1
        return rec, None
    key = (variant, *row, target)
    rec.target = target
    rec.sce_reply = el.replies[key]
    sce = el.parsed[key]
    if not sce.ok:
        mark_unparsed(rec, "sce", sce)
        reasons[reason_key("sce", sce.code)] += 1
        return rec, None
    if sce.lenient:
        rec.extra["sce_leniency"] = list(sce.lenient)
    return rec, sce


def sample_rows(examples: Sequence[tuple[str, Any]], el: Elicited) -> list[tuple[str, Any, Prediction, Row, str | None]]:
    """(example id, input, modal prediction, row, target) of every record, example by example,
    its samples in order, each sample's targets in option order. An unparsed answer has one
    record without a target; an answer skipped because it already was the named target has none."""
    out = []
    for (ex_id, x), pred in zip(examples, el.preds):
        for k in range(el.samples):
            if el.answers[(ex_id, k)].label is None:
                out.append((ex_id, x, pred, (ex_id, k), None))
            out.extend((ex_id, x, pred, (ex_id, k), t) for t in el.targets.get((ex_id, k), ()))
    return out


def common_info(settings: SCESettings, predictor: Predictor, el: Elicited, variant: str,
                records: list[ExampleRecord], reasons: Counter[str]) -> dict[str, Any]:
    """The info both task kinds report: how predictions were made, what went unparsed, how
    replies were elicited and read."""
    return {
        "prediction_mode": predictor.mode,
        "n_prediction_unparsed": sum(1 for p in el.answers.values() if p.label is None),
        "n_sce_unparsed": sum(1 for r in records if r.target is not None and r.counterfactual is None),
        "unparsed_reasons": dict(reasons),
        **reply_info(settings, predictor, {k: v for k, v in el.parsed.items() if k[0] == variant}),
        "targets": settings.targets,
        "n_skipped_target": el.skipped,
    }


# -- grid tasks ------------------------------------------------------------------------------------


def run_grid_sce(
    model: ChatModel,
    model_name: str,
    task: GridTask,
    examples: Sequence[tuple[str, Point]],
    settings: SCESettings = SCESettings(),
) -> list[CheckResult]:
    """One `CheckResult` per variant for a grid task: predictions, SCEs, predictions on the SCEs,
    the exact reference searches, then each variant's records and figures."""
    target_of = target_chooser(task, settings)
    predictor = task_predictor(model, task, settings)
    search = BoundarySearch(task, predictor.labels, min_batch=search_batch(model), budget=settings.xstar_budget)
    el = elicit(model, task, examples, settings, predictor, target_of,
                lambda x, first, t, v: grid_prompts.sce_conversation(task, x, first, t, v))
    search.remember([x for _, x in examples], [p.label for p in el.preds])
    reps = predict_counterfactuals(task, predictor, el)
    counterfactuals = list(dict.fromkeys(p.value for p in el.parsed.values() if p.ok))
    search.remember(counterfactuals, predictor.labels(counterfactuals))
    nearest_flip, icf = grid_references(task, search, examples, el, reps)
    results = [grid_result(variant, model_name, task, examples, settings, predictor, search, el, reps, nearest_flip, icf)
               for variant in settings.variants]
    predicted = grid_predictions(task, predictor)
    for r in results:
        r.info["grid_predictions"] = predicted
    return results


def grid_predictions(task: GridTask, predictor: Predictor) -> dict[str, Any]:
    """Every grid point the audit predicted, with the model's answer, so a report can draw the
    decision boundary from predictions alone (docs/reports.md): ``codes`` has one character per
    grid point in `GridTask.points` order (the last feature varies fastest): the index of the
    answer in ``labels``, ``?`` unparsed, ``.`` never predicted."""
    labels = list(task.options)
    codes = []
    for point in task.points():
        pred = predictor.known(point)
        codes.append("." if pred is None else "?" if pred.label is None else str(labels.index(pred.label)))
    return {"features": [{"name": f.name, "values": list(f.values)} for f in task.features],
            "labels": labels, "codes": "".join(codes)}


def search_batch(model: Any) -> int:
    """Grid points per search batch: `SEARCH_MIN_BATCH`, or a server's concurrency when it is
    larger, so that one ring step fills every request slot (a wrapper's inner model is asked)."""
    while model is not None:
        concurrency = getattr(model, "max_concurrency", None)
        if isinstance(concurrency, int):
            return max(SEARCH_MIN_BATCH, concurrency)
        model = getattr(model, "inner", None)
    return SEARCH_MIN_BATCH


def grid_references(task: GridTask, search: BoundarySearch, examples: Sequence[tuple[str, Point]], el: Elicited,
                    reps: dict[Key, Reprediction]) -> tuple[dict[tuple[str, str], NearestResult], dict[tuple, NearestResult]]:
    """Stage 4: the exact x* (RCF) of each (example, target): the nearest grid point whose modal
    answer is the target (with two options: the nearest point answered differently, Mayne et al.'s
    x*), and for every invalid SCE the nearest point that gets its target (ICF_A). All searches
    of a stage advance in lockstep: one model batch per ring step, not one per ring per example.
    A search stopped at its budget gives bounds; their upper ends are tightened at the end with
    every label the stage learned. Returns ({(example id, target): x*}, {(SCE, target): ICF_A})."""
    point_of = dict(examples)
    flips = list(dict.fromkeys((ex_id, t) for ex_id, _, t in el.jobs()))
    with step(f"{task.name}: searching reference minimal counterfactuals (grid points predicted)"):
        found = search.nearest_many([(point_of[ex_id], _label_is(t)) for ex_id, t in flips])
    queries = list(dict.fromkeys(
        (sce.value, key[3]) for key, sce in el.parsed.items() if sce.ok and reps[key].label != key[3]
    ))
    with step(f"{task.name}: searching the nearest target points of invalid SCEs (grid points predicted)"):
        nearest = search.nearest_many([(cf, _label_is(t)) for cf, t in queries])
    xstar = {flip: tightened(search, res, point_of[flip[0]], _label_is(flip[1])) for flip, res in zip(flips, found)}
    icf = {(cf, t): tightened(search, res, cf, _label_is(t)) for (cf, t), res in zip(queries, nearest)}
    return xstar, icf


def _label_is(target: str) -> Callable[[str], bool]:
    return lambda y: y == target


def tightened(search: BoundarySearch, res: NearestResult, origin: Point, want: Callable[[str], bool]) -> NearestResult:
    """A bounded result with its upper bound from every label known now (unchanged otherwise)."""
    if not res.bounded:
        return res
    upper = search.nearest_known(origin, want)
    if upper is None or (res.upper is not None and res.upper <= upper):
        return res
    return NearestResult(None, [], res.evaluated, res.unparsed_within, True, res.lower, upper, res.radius)


def bounds_of(res: NearestResult) -> list[float | None] | None:
    """[lower, upper] of a bounded search result (upper None: unbounded), None when exact."""
    return [res.lower, res.upper] if res.bounded else None


def grid_record(task: GridTask, rec: ExampleRecord, point: Point, cf: Point, rep: Reprediction, near: NearestResult,
                icf: dict[tuple, NearestResult]) -> MinimalityRow:
    """An SCE's part of its record: the answer it is judged on, validity, Gower distance and
    RCF/ICF (with their bounds where a search stopped at its budget); its minimality row."""
    rec.counterfactual = task.as_dict(cf)
    rec.cf_prediction = rep.label
    if rep.label is None:
        rec.extra["cf_prediction_unparsed"] = rep.reading.reason
    note_reprediction(rec, rep)
    rec.valid = rep.label == rec.target
    rec.distance = gower_distance(task, point, cf)
    near_target = None if rec.valid else icf[(cf, rec.target)]
    d_min = rec.min_distance
    if rec.valid and d_min is not None and rec.distance < d_min:
        # only under sampling (a drawn answer, not the modal one, gave the target): the SCE is itself
        # the nearest point seen to get the target, so it is as minimal as can be (docs/sampling.md)
        d_min = rec.distance
        rec.extra["valid_inside_xstar"] = True
    row = MinimalityRow(rec.valid, rec.distance, d_min,
                        None if near_target is None else near_target.distance, bounds_of(near),
                        None if near_target is None else bounds_of(near_target))
    if row.bounded:
        intervals = {"rcf_a_bounds": row.rcf_a_interval(), "rcf_bounds": row.rcf_interval(),
                     "icf_a_bounds": row.icf_a_interval(), "icf_bounds": row.icf_interval(),
                     "exact_match_bounds": row.exact_interval()}
        for key, (lo, hi) in ((k, v) for k, v in intervals.items() if v is not None):
            rec.extra[key] = [lo, hi if math.isfinite(hi) else None]  # None: unbounded, as in the JSON
        if near_target is not None and near_target.bounded:
            rec.extra["icf_a_search_radius"] = near_target.radius
    rec.rcf_a, rec.rcf, rec.icf_a, rec.icf = row.rcf_a, row.rcf, row.icf_a, row.icf
    return row


def grid_result(variant: str, model_name: str, task: GridTask, examples: Sequence[tuple[str, Point]],
                settings: SCESettings, predictor: Predictor, search: BoundarySearch, el: Elicited,
                reps: dict[Key, Reprediction], nearest_flip: dict[tuple[str, str], NearestResult],
                icf: dict[tuple, NearestResult]) -> CheckResult:
    """Stage 5: one variant's records (validity, Gower distances, RCF/ICF), one per (example,
    sample, target), and figures, pooled and per target."""
    records: list[ExampleRecord] = []
    rows: dict[int, MinimalityRow] = {}  # id(record) -> its minimality row (generated SCEs)
    reasons: Counter[str] = Counter()
    for ex_id, point, pred, row, target in sample_rows(examples, el):
        rec, sce = sce_record(ex_id, task.as_dict(point), row, target, variant, el, reasons)
        note_sample(rec, predictor.sampling, row[1], el.seeds.get((variant, *row, target or "")), el.answers[row], pred)
        records.append(rec)
        if rec.target is not None:
            near = nearest_flip[(ex_id, rec.target)]
            rec.min_distance = near.distance
            rec.reference = [task.as_dict(p) for p in near.points[:5]]
            if near.bounded:  # the search stopped at its budget: d(x, x*) > radius, within bounds
                rec.extra.update(xstar_bounded=True, min_distance_bounds=bounds_of(near), xstar_radius=near.radius)
        if sce is not None:
            rows[id(rec)] = grid_record(task, rec, point, sce.value, reps[(variant, *row, target)], near, icf)
    cf_unparsed = sum(1 for r in records if "cf_prediction_unparsed" in r.extra)
    figures, n_bounded = grid_figures(records, rows, nearest_flip)
    info = {
        "task_kind": "grid",
        "distance": "gower",
        **common_info(settings, predictor, el, variant, records, reasons),
        "n_cf_prediction_unparsed": cf_unparsed,
        "grid_size": task.size,
        "grid_points_predicted": len(predictor),
        "grid_fraction_predicted": len(predictor) / task.size,
        "boundary_search_points": search.evaluated,
        "boundary_search_batches": search.oracle_calls,
        "n_examples_without_flip": sum(1 for v in nearest_flip.values() if v.distance is None and not v.bounded),
        "xstar_budget": settings.xstar_budget,
        "n_xstar_bounded": sum(1 for r in records if r.extra.get("xstar_bounded")),
        "n_icf_a_bounded": sum(1 for res in icf.values() if res.bounded),
        "n_examples_bounded": n_bounded,
        "options": list(task.options),
        "per_target": per_target(task.options, records, lambda recs: grid_figures(recs, rows, nearest_flip)[0]),
    }
    result = CheckResult("sce", model_name, task.name, variant, len(records), figures, records, info)
    add_sampled_figures(result, predictor.sampling, predictor.draws_by)
    return result


def grid_figures(records: Sequence[ExampleRecord], rows: dict[int, MinimalityRow],
                 nearest_flip: dict[tuple[str, str], NearestResult]) -> tuple[dict[str, Any], int]:
    """The figures of a set of grid records (all of a variant's, or one target's): validity,
    minimality (sce_checks/metrics/minimality.py) and the mean d(x, x*); and how many records a
    budget left bounded."""
    n_generated = sum(1 for r in records if r.counterfactual is not None)
    figures = validity_figures(len(records), n_generated, sum(1 for r in records if r.valid))
    minimality = aggregate_minimality([rows[id(r)] for r in records if id(r) in rows])
    n_bounded = minimality.pop("n_bounded", 0)
    figures.update({k: v for k, v in minimality.items() if k != "n_scored"})
    figures["mean_min_distance"] = mean_or_none([r.min_distance for r in records])
    searched = [nearest_flip[(r.id, r.target)] for r in records if r.target is not None]
    if any(res.bounded for res in searched):
        figures["mean_min_distance_bounds"] = interval_mean([res.bounds for res in searched])
        figures["mean_min_distance"] = None
    return figures, n_bounded


def per_target(options: Sequence[str], records: Sequence[ExampleRecord],
               figures_of: Callable[[list[ExampleRecord]], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The figures per target, in option order, over the records asking for it (``n`` records;
    records without a target, whose answer went unparsed, count in the pooled figures only).
    Greedy intervals are Wilson's; under sampling the pooled figures alone carry clustered ones."""
    out = {}
    for t in options:
        recs = [r for r in records if r.target == t]
        if recs:
            out[t] = {"n": len(recs), **figures_of(recs)}
    return out


# -- text tasks ------------------------------------------------------------------------------------


def run_text_sce(
    model: ChatModel,
    model_name: str,
    task: Any,
    examples: Sequence[tuple[str, str]],
    settings: SCESettings = SCESettings(),
) -> list[CheckResult]:
    """One `CheckResult` per variant for a free-text task (Dehghanighobadi et al. 2025):
    predictions, SCEs, predictions on the SCEs fresh and in context (Val, Val_c), each variant's
    records and figures, then the model-in-the-loop searches (redundancy, reference edits)."""
    target_of = target_chooser(task, settings)
    predictor = task_predictor(model, task, settings)
    el = elicit(model, task, examples, settings, predictor, target_of,
                lambda x, first, t, v: text_prompts.sce_conversation(task, x, first, t, v, settings.elicitation))
    reps = predict_counterfactuals(task, predictor, el)
    in_context = predict_in_context(task, examples, settings, el, model)
    results = [text_result(variant, model_name, task, examples, settings, predictor, el, reps, in_context)
               for variant in settings.variants]
    add_redundancy(task, predictor, results)
    if settings.text_search_budget > 0:
        add_reference_edits(task, predictor, examples, el, settings.text_search_budget, results)
    return results


def predict_in_context(task: Any, examples: Sequence[tuple[str, str]], settings: SCESettings, el: Elicited,
                       model: ChatModel) -> dict[Key, Prediction]:
    """Stage 3b (Val_c): each revised text classified inside the conversation that produced it
    (its modal answer under sampling: docs/sampling.md)."""
    in_context = Predictor.from_settings(model, task.options, json.loads, settings)
    text_of = dict(examples)
    keys = {}
    for (variant, ex_id, k, target), sce in el.parsed.items():
        if sce.ok:
            conversation = text_prompts.in_context_conversation(
                task, text_of[ex_id], _first_reply(el.answers[(ex_id, k)]), target, variant,
                el.replies[(variant, ex_id, k, target)], sce.value, settings.elicitation,
            )
            keys[(variant, ex_id, k, target)] = json.dumps(conversation, ensure_ascii=False)
    with step(f"{task.name}: predicting {len(keys)} counterfactuals in context", len(keys)):
        predictions = in_context.predict(list(keys.values()))
    return dict(zip(keys, predictions))


def text_result(variant: str, model_name: str, task: Any, examples: Sequence[tuple[str, str]], settings: SCESettings,
                predictor: Predictor, el: Elicited, reps: dict[Key, Reprediction],
                in_context: dict[Key, Prediction]) -> CheckResult:
    """Stage 4: one variant's records (validity fresh and in context, edit distances), one per
    (example, sample, target), and figures, pooled and per target."""
    gold_of = {e.id: e.gold for e in getattr(task, "examples", ())}
    records: list[ExampleRecord] = []
    reasons: Counter[str] = Counter()
    for ex_id, text, pred, row, target in sample_rows(examples, el):
        rec, sce = sce_record(ex_id, text, row, target, variant, el, reasons)
        note_sample(rec, predictor.sampling, row[1], el.seeds.get((variant, *row, target or "")), el.answers[row], pred)
        if gold_of.get(ex_id) is not None:
            rec.extra["gold"] = gold_of[ex_id]
        records.append(rec)
        if sce is None:
            continue
        rep = reps[(variant, *row, target)]
        rec.counterfactual = sce.value
        rec.cf_prediction = rep.label
        note_reprediction(rec, rep)
        rec.valid = rec.cf_prediction == rec.target
        ctx = in_context[(variant, *row, target)]
        rec.extra["cf_prediction_in_context"] = ctx.label
        rec.extra["valid_in_context"] = ctx.label == rec.target
        rec.distance = normalized_levenshtein(text, sce.value, "char")
        rec.extra["word_distance"] = normalized_levenshtein(text, sce.value, "word")
    figures = text_figures(records)
    labelled = [r for r in records if "gold" in r.extra]
    # how well the model does the task itself: a model that cannot tell the classes apart has no
    # decision boundary worth explaining (reported beside the SCE figures); counted once per
    # example and sample, however many targets it was asked for
    answered = {(r.id, r.extra.get("sample", 0)): r for r in labelled}.values()
    figures["accuracy"] = (sum(1 for r in answered if r.prediction == r.extra["gold"]) / len(answered)
                           if answered else None)
    info = {"task_kind": "text", "distance": "levenshtein", "distance_unit": "char",
            **common_info(settings, predictor, el, variant, records, reasons),
            "options": list(task.options), "per_target": per_target(task.options, records, text_figures)}
    result = CheckResult("sce", model_name, task.name, variant, len(records), figures, records, info)
    add_sampled_figures(result, predictor.sampling, predictor.draws_by)
    return result


def text_figures(records: Sequence[ExampleRecord]) -> dict[str, Any]:
    """The figures of a set of text records (all of a variant's, or one target's): validity
    fresh and in context, and the edit distances."""
    generated = [r for r in records if r.counterfactual is not None]
    valid = [r for r in generated if r.valid]
    figures = validity_figures(len(records), len(generated), len(valid))
    put_proportion(figures, {}, "validity_in_context", sum(1 for r in generated if r.extra["valid_in_context"]),
                   len(generated), "no SCE generated")
    figures["mean_distance"] = mean_or_none([r.distance for r in generated])
    figures["mean_word_distance"] = mean_or_none([r.extra["word_distance"] for r in generated])
    figures["mean_distance_valid"] = mean_or_none([r.distance for r in valid])
    return figures


def add_redundancy(task: Any, predictor: Predictor, results: list[CheckResult]) -> None:
    """Stage 5a: the share of each valid SCE's changes the model did not need (CARLA's
    redundancy): every change reverted alone, predicted again."""

    for result in results:
        valid = [r for r in result.examples if r.valid]
        with step(f"{task.name}/{result.variant}: redundancy of {len(valid)} valid SCEs (predictions)",
                  None if valid else 0):
            counts = [redundancy(predictor.labels, r.input, r.counterfactual, r.target) for r in valid]
        for rec, (n_changes, n_redundant) in zip(valid, counts):
            rec.extra["n_changes"] = n_changes
            rec.extra["n_redundant_changes"] = n_redundant
        shares = [nr / nc for nc, nr in counts if nc]
        result.figures["redundancy"] = mean_or_none(shares)
        result.info["redundancy_over"] = len(shares)


def add_reference_edits(task: Any, predictor: Predictor, examples: Sequence[tuple[str, str]], el: Elicited,
                        budget: int, results: list[CheckResult]) -> None:
    """Stage 5b: a bounded model-in-the-loop search for a minimal flipping edit of each example
    (an upper bound on the minimal edit), and each valid SCE's gap to it."""

    def labels_and_probs(texts):
        return [(p.label, p.probs) for p in predictor.predict(texts)]

    found = {}
    with step(f"{task.name}: searching minimal edits, budget {budget} per example (predictions)"):
        text_of = dict(examples)
        for ex_id, _, target in el.jobs():
            if (ex_id, target) not in found:
                found[(ex_id, target)] = search_minimal_edit(labels_and_probs, text_of[ex_id], target, budget)
    for result in results:
        gaps = []
        for rec in result.examples:
            hit = found.get((rec.id, rec.target))
            if hit is None or hit.text is None:
                continue
            rec.min_distance = hit.distance
            rec.reference = hit.text
            if rec.valid and rec.distance is not None:
                rec.extra["minimality_gap"] = rec.distance - hit.distance
                gaps.append(rec.distance - hit.distance)
        result.figures["mean_minimality_gap"] = mean_or_none(gaps)
        result.figures["reference_found_rate"] = (
            sum(1 for h in found.values() if h.text is not None) / len(found) if found else None
        )
        result.info["text_search_budget"] = budget


# -- the check, for the registry (sce_checks/checks/base.py) ------------------------------------------

EXAMPLE_HEADERS = ["id", "input", "answer -> target", "counterfactual", "answer on SCE", "valid?", "dist", "min dist"]


def worst_examples(result: CheckResult, k: int = 3) -> list[ExampleRecord]:
    """Invalid SCEs first (furthest from the target region), then the least minimal valid ones;
    under sampling, an example's worst sample only."""
    invalid = [e for e in result.examples if e.valid is False]
    valid = [e for e in result.examples if e.valid]
    invalid.sort(key=lambda e: -(e.icf_a if e.icf_a is not None else (e.distance or 0.0)))
    valid.sort(key=lambda e: -(e.rcf_a if e.rcf_a is not None else (e.distance or 0.0)))
    worst: dict[str, ExampleRecord] = {}
    for e in invalid + valid:
        worst.setdefault(e.id, e)
    return list(worst.values())[:k]


def _validity_cell(r: CheckResult) -> str:
    lo, hi = r.get("validity_ci") or (None, None)
    if r.get("validity") is None:
        return "-"
    return f"{pct(r['validity'])} [{pct(lo)}, {pct(hi)}]"




def _exact(e: dict[str, Any]) -> bool | None:
    """Exact match of a generated SCE: valid and as close as x* (the figure's definition,
    sce_checks/metrics/minimality.py); None without an SCE."""
    if e.get("counterfactual") is None:
        return None
    return bool(e.get("valid")) and e.get("rcf") is not None and abs(e["rcf"]) <= MINIMALITY_TOLERANCE


def _gap(absolute: bool) -> Callable[[dict[str, Any]], float | None]:
    """An example's term of TM_A (RCF_A of a valid SCE, ICF_A of an invalid one) or of TM (RCF,
    ICF): TM_A is exactly their mean over the generated SCEs, TM mixes their medians."""
    valid_key, invalid_key = ("rcf_a", "icf_a") if absolute else ("rcf", "icf")

    def read(e: dict[str, Any]) -> float | None:
        if e.get("counterfactual") is None or e.get("valid") is None:
            return None
        return e.get(valid_key) if e["valid"] else e.get(invalid_key)

    return read


def _correct(e: dict[str, Any]) -> bool | None:
    return None if e.get("gold") is None else e.get("prediction") == e["gold"]


# Per-example outcomes under the compared figures, over the examples each figure counts
# (validity and the minimality means over generated SCEs, strict validity over all).
SCE_OUTCOMES = (
    Outcome("generated", "binary", ("generation_rate",), lambda e: e.get("counterfactual") is not None),
    Outcome("valid", "binary", ("validity",)),
    Outcome("p_target", "continuous", ("expected_validity",)),
    Outcome("strict_valid", "binary", ("strict_validity",), lambda e: e.get("valid") is True),
    Outcome("exact", "binary", ("exact_match",), _exact),
    Outcome("distance", "continuous", ("mean_distance",), unit_mean=True),
    Outcome("rcf_a", "continuous", ("mean_rcf_a",), unit_mean=True),
    Outcome("rcf", "continuous", ("median_rcf",)),
    Outcome("icf_a", "continuous", ("mean_icf_a",), unit_mean=True),
    Outcome("icf", "continuous", ("median_icf",)),
    Outcome("tm_a_term", "continuous", ("tm_a",), _gap(absolute=True)),
    Outcome("tm_term", "continuous", ("tm",), _gap(absolute=False)),
    Outcome("valid_in_context", "binary", ("validity_in_context",)),
    Outcome("word_distance", "continuous", ("mean_word_distance",), unit_mean=True),
    Outcome("correct", "binary", ("accuracy",), _correct),
)


class SCECheck(Check):
    """The implementation; its declaration (name, figures, plots, one unit per variant) is
    sce_checks/checks/catalog.py `SCE`."""

    settings = SCESettings
    outcomes = SCE_OUTCOMES  # per example, for paired baseline comparisons (defined above the class)

    table_headers = ["model", "dataset", "variant", "n", "generated", "validity [95% CI]", "strict", "mean dist",
                     "RCF_A", "ICF_A", "TM_A", "exact", "thresholds", "verdict"]

    def key_settings(self, spec: Any, unit: str) -> SCESettings:
        """A variant's result does not depend on the other variants computed beside it."""
        return self.settings_from(spec, variants=(unit,))

    def run(self, model: ChatModel, model_name: str, task: Any, examples: Sequence[tuple[str, Any]],
            settings: SCESettings, shared: dict[str, Any]) -> list[CheckResult]:
        runner = run_grid_sce if task.kind == "grid" else run_text_sce
        return runner(model, model_name, task, examples, settings)

    def table_row(self, r: CheckResult) -> list[str]:
        def bounded(name: str, show: Callable[[Any], str]) -> str:
            """The figure, or its bounds when the x* search budget left it undecided."""
            bounds = r.get(f"{name}_bounds")
            if r.get(name) is None and bounds:
                return f"[{show(bounds[0])}, {show(bounds[1]) if bounds[1] is not None else '?'}] bounded"
            return show(r.get(name))

        return [r.model, r.dataset, r.variant or "", str(r.n), f"{r.get('n_generated', 0)} ({pct(r.get('generation_rate'))})",
                _validity_cell(r), pct(r.get("strict_validity")), fmt(r.get("mean_distance")), bounded("mean_rcf_a", fmt),
                bounded("mean_icf_a", fmt), bounded("tm_a", fmt), bounded("exact_match", pct), thresholds_cell(r), r.verdict]

    def summary_line(self, r: CheckResult) -> str:
        lo, hi = r.get("validity_ci") or (None, None)
        return (f"{r.model} / {r.dataset} / {r.variant}: n={r.n}, generated={r.get('n_generated')} "
                f"({pct(r.get('generation_rate'))}), validity={pct(r.get('validity'))} [95% CI {pct(lo)}, {pct(hi)}], "
                f"strict validity={pct(r.get('strict_validity'))}"
                + (f", expected validity={pct(r.get('expected_validity'))}" if r.get("expected_validity") is not None else ""))

    def example_table(self, result: CheckResult, k: int) -> tuple[str, list[str], list[list[str]]] | None:
        def min_dist(e: ExampleRecord) -> str:
            bounds = e.extra.get("min_distance_bounds")
            if e.min_distance is None and bounds:  # bounded by the x* search budget
                return f">= {fmt(bounds[0])}" + (f", <= {fmt(bounds[1])}" if bounds[1] is not None else "")
            return fmt(e.min_distance)

        rows = [[e.id if "sample" not in e.extra else f"{e.id} #{e.extra['sample']}", short(e.input), f"{e.prediction} -> {e.target}", short(e.counterfactual),
                 str(e.cf_prediction), "valid" if e.valid else "invalid", fmt(e.distance), min_dist(e)]
                for e in worst_examples(result, k)]
        return ("worst examples", EXAMPLE_HEADERS, rows) if rows else None
