"""The SCE check under sampling (``temperature`` above 0; docs/sampling.md).

Each example is asked K = ``samples`` times, sample k = 0..K-1 replicating the papers' protocol
on its own: the original answer is drawn for sample k, its target follows that answer, the SCE
request is sampled with sample index k, and the SCE is re-predicted by a draw of its own. Every
draw is seeded from the run's --seed, so a rerun is identical (and answered from the response
cache) and another seed draws anew.

Answers come from the option distribution at temperature T, P_T(option) = softmax over the
options of their tempered sequence log-probabilities, where the backend's option scores take a
temperature (exact); otherwise from sampled generation (``prediction_samples`` = M draws per SCE).
The decision boundary, x* and ICF_A's target region are the *modal* answer's (`Predictor.predict`).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Sequence

from sce_checks.checks.predict import Prediction, Predictor, Sampling
from sce_checks.metrics.clustered import (
    RESAMPLES, bootstrap_seed, clustered_mean_interval, clustered_proportion_interval,
)
from sce_checks.prompts.common import canonical_answer
from sce_checks.results import CheckResult, ExampleRecord

Row = tuple[str, int]  # (example id, sample index): one answer
Job = tuple[str, int, str]  # (example id, sample index, target): one SCE request per variant
Key = tuple[str, str, int, str]  # (variant, example id, sample index, target)


def sampled_answers(task: Any, predictor: Predictor, examples: Sequence[tuple[str, Any]],
                    preds: Sequence[Prediction]) -> dict[Row, Prediction]:
    """The answer each sample's SCE request follows: the modal prediction when greedy; under
    sampling a draw from P_T (seeded by the run's seed, the sample, the task and the example id)
    or, without tempered scores, a sampled generated answer (sample index k)."""
    s = predictor.sampling
    if not s.on:
        return {(ex_id, 0): p for (ex_id, _), p in zip(examples, preds)}
    if predictor.draws_by == "generation":
        requests = [(x, k) for _, x in examples for k in range(s.samples)]
        drawn = iter(predictor.sampled(requests))
        return {(ex_id, k): next(drawn) for ex_id, _ in examples for k in range(s.samples)}
    out: dict[Row, Prediction] = {}
    for (ex_id, _), p in zip(examples, preds):
        for k in range(s.samples):
            if p.label is None or p.probs is None:  # unparsed, or generated because the scores could not decide
                out[(ex_id, k)] = p
                continue
            label = s.draw(task.options, p.probs, k, "answer", [task.name, ex_id])
            out[(ex_id, k)] = Prediction(label, canonical_answer(label), None, p.probs, source="sampled")
    return out


@dataclass(frozen=True)
class Reprediction:
    """The fresh-context answer an SCE is judged on. ``label``: the answer validity reads (one
    sampled draw under sampling, the modal answer otherwise; None: unparsed); ``reading``: the
    prediction it came from (for an unparsed one's reason); ``modal``: the modal answer on the SCE;
    ``p_target``: P_T(target | SCE), exact from tempered scores, or the share of the M sampled
    re-predictions that give the target (``draws`` = M; 0 when exact); None when greedy."""

    label: str | None
    reading: Prediction
    modal: str | None
    p_target: float | None = None
    draws: int = 0


def repredict(task: Any, predictor: Predictor, sces: dict[Key, tuple[Any, str]]) -> dict[Key, Reprediction]:
    """Every parsed SCE (``sces``: key -> (counterfactual, target)) re-predicted in a fresh
    context. Its modal prediction is memoised already (the check predicted every counterfactual);
    under sampling one draw judges validity: from P_T, seeded by the run's seed, the sample, the
    task, the variant, the example and the SCE (SCEs of two targets landing on one point share
    the draw); or the first of M sampled generations, sample
    indices k*M .. k*M + M - 1 (draws of one point are shared by the SCEs landing on it)."""
    s = predictor.sampling
    out: dict[Key, Reprediction] = {}
    if s.on and predictor.draws_by == "generation":
        m = s.prediction_samples
        requests = [(cf, key[2] * m + j) for key, (cf, _) in sces.items() for j in range(m)]
        drawn = predictor.sampled(requests)
        for i, (key, (cf, target)) in enumerate(sces.items()):
            draws = drawn[i * m:(i + 1) * m]
            modal = predictor.known(cf)
            out[key] = Reprediction(draws[0].label, draws[0], None if modal is None else modal.label,
                                    sum(d.label == target for d in draws) / m, m)
        return out
    for key, (cf, target) in sces.items():
        modal = predictor.known(cf)
        if not s.on or modal.label is None or modal.probs is None:
            out[key] = Reprediction(modal.label, modal, modal.label,
                                    None if not s.on or modal.probs is None else modal.probs.get(target, 0.0))
            continue
        label = s.draw(task.options, modal.probs, key[2], "re-prediction", [task.name, key[0], key[1], cf])
        out[key] = Reprediction(label, modal, modal.label, modal.probs.get(target, 0.0))
    return out


def note_sample(rec: ExampleRecord, sampling: Sampling, sample: int, seed: int | None, answer: Prediction,
                modal: Prediction) -> None:
    """Under sampling, a record's sample index, its SCE request's seed, and the answers' probabilities."""
    if not sampling.on:
        return
    rec.extra["sample"] = sample
    rec.extra["seed"] = seed
    rec.extra["modal_prediction"] = modal.label
    if answer.probs is not None and answer.label is not None:
        rec.extra["p_prediction"] = answer.probs.get(answer.label)


def note_reprediction(rec: ExampleRecord, rep: Reprediction) -> None:
    if rep.p_target is not None:
        rec.extra["p_target"] = rep.p_target
        rec.extra["cf_modal_prediction"] = rep.modal
        if rep.draws:
            rec.extra["p_target_draws"] = rep.draws


# -- figures over samples ----------------------------------------------------------------------------

def _sd(values: list[float]) -> float | None:
    return statistics.pstdev(values) if len(values) > 1 else (0.0 if values else None)


def _mean(values: list[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def per_example(records: Sequence[ExampleRecord]) -> list[dict[str, Any]]:
    """Each example's samples summed up: how many were generated and valid, the share valid, how
    many distinct SCEs (how consistent the model's explanation is), the spread of their distances,
    the mean P_T(target | SCE) and the P_T of the original answers drawn."""
    by_id: dict[str, list[ExampleRecord]] = {}
    for r in records:
        by_id.setdefault(r.id, []).append(r)
    out = []
    for ex_id, recs in by_id.items():
        generated = [r for r in recs if r.counterfactual is not None]
        distances = [r.distance for r in generated if r.distance is not None]
        distinct = {repr(sorted(r.counterfactual.items())) if isinstance(r.counterfactual, dict) else repr(r.counterfactual)
                    for r in generated}
        p_targets = [r.extra["p_target"] for r in generated if r.extra.get("p_target") is not None]
        out.append({
            "id": ex_id, "samples": len(recs), "n_generated": len(generated),
            "n_valid": sum(1 for r in generated if r.valid),
            "share_valid": sum(1 for r in generated if r.valid) / len(generated) if generated else None,
            "distinct_sces": len(distinct),
            "answers": sorted({r.prediction for r in recs if r.prediction is not None}),
            "distance_min": min(distances) if distances else None,
            "distance_max": max(distances) if distances else None,
            "distance_sd": _sd(distances),
            "mean_p_target": _mean(p_targets),
            "mean_p_prediction": _mean([r.extra["p_prediction"] for r in recs if r.extra.get("p_prediction") is not None]),
        })
    return out


def _clusters(records: Sequence[ExampleRecord], value: Any, counts: Any) -> list[tuple[float, int]]:
    """(sum of ``value``, number of records ``counts`` keeps) per example, in sample order."""
    by_id: dict[str, list[ExampleRecord]] = {}
    for r in records:
        by_id.setdefault(r.id, []).append(r)
    out = []
    for recs in by_id.values():
        kept = [r for r in recs if counts(r)]
        out.append((math.fsum(float(value(r)) for r in kept), len(kept)))
    return out


# Proportions: (figure, success, counted) over the records; means: (figure, value, counted).
_PROPORTIONS = (
    ("validity", lambda r: r.valid is True, lambda r: r.counterfactual is not None),
    ("strict_validity", lambda r: r.valid is True, lambda r: True),
    ("validity_in_context", lambda r: r.extra.get("valid_in_context") is True,
     lambda r: r.counterfactual is not None and "valid_in_context" in r.extra),
)
_MEANS = (
    ("expected_validity", lambda r: r.extra["p_target"], lambda r: r.extra.get("p_target") is not None),
    ("mean_distance", lambda r: r.distance, lambda r: r.counterfactual is not None and r.distance is not None),
    ("mean_rcf_a", lambda r: r.rcf_a, lambda r: r.rcf_a is not None),
    ("mean_icf_a", lambda r: r.icf_a, lambda r: r.icf_a is not None),
)


def add_sampled_figures(result: CheckResult, sampling: Sampling, draws_by: str | None) -> None:
    """Under sampling: ``expected_validity`` (the mean P_T(target | SCE) over generated SCEs) with
    its interval, the per-example aggregates, and with K > 1 the intervals of the rates and means
    from the cluster bootstrap over examples (metrics/clustered.py) instead of Wilson's, which
    would count the K samples of an example as independent."""
    if not sampling.on:
        return
    records = result.examples
    p_targets = [r.extra["p_target"] for r in records if r.counterfactual is not None and r.extra.get("p_target") is not None]
    result.figures["expected_validity"] = _mean(p_targets)
    clustered = sampling.samples > 1
    for name, value, counted in _MEANS:
        if name in result.figures and (clustered or name == "expected_validity") and result.figures[name] is not None:
            ci = clustered_mean_interval(_clusters(records, value, counted), bootstrap_seed(sampling.seed, name))
            result.figures[f"{name}_ci"] = list(ci)
    if clustered:
        for name, success, counted in _PROPORTIONS:
            if f"{name}_ci" in result.figures:
                clusters = _clusters(records, success, counted)
                result.figures[f"{name}_ci"] = list(clustered_proportion_interval(clusters, bootstrap_seed(sampling.seed, name)))
    result.per_example = per_example(records)
    shares = [e["share_valid"] for e in result.per_example if e["share_valid"] is not None]
    result.figures["mean_distinct_sces"] = _mean([float(e["distinct_sces"]) for e in result.per_example if e["n_generated"]])
    result.info["sampling"] = {
        "temperature": sampling.temperature, "top_p": sampling.top_p, "seed": sampling.seed,
        "samples": sampling.samples, "prediction_samples": sampling.prediction_samples,
        "answers_drawn_by": draws_by, "n_examples": len(result.per_example),
        "intervals": "cluster bootstrap over examples" if clustered else "Wilson (one sample per example)",
        "bootstrap_resamples": RESAMPLES if clustered or p_targets else None,
        "examples_all_valid": sum(1 for x in shares if x == 1.0),
        "examples_mixed": sum(1 for x in shares if 0.0 < x < 1.0),
    }
