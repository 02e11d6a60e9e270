"""SCE stability: does an SCE's verdict survive changes that should not matter?

Two questions, each about a confound of the SCE check (checks/sce.py):

1. *Input perturbation* (text tasks). If a typo or a synonym in the input, one that leaves the
   model's own prediction unchanged, turns a valid SCE into an invalid one (or back), the
   validity measured on the original input describes that input's wording more than the model's
   decision boundary. For each example the first drawn label-preserving single edit
   (`perturbation.draw_perturbations`: punctuation, case, typo, synonym, neutral sentence) that
   keeps the model's prediction is taken; an SCE is requested for the perturbed text exactly as
   for the original (same prompt, variant and target), and both SCEs are checked in a fresh
   context. Figures, over the pairs where both SCEs were generated: ``pair_validity`` (the
   original's), ``perturbed_validity``, ``validity_agreement`` (both valid or both invalid) and
   ``validity_drop`` = pair_validity - perturbed_validity. Grid records have no label-preserving
   edit (every one-step move is a different applicant), so these are undefined on grids, with
   the reason in ``info["undefined"]``.
2. *Prompt paraphrase* (every task). Validity is judged by the model's answer on the
   counterfactual under one wording of the prediction prompt. Each counterfactual generated for
   an original input is predicted again under the paraphrases of prompts/paraphrase.py (same
   information and answer format, different framing and layout). ``prompt_consistency``: the
   share of counterfactuals that get the same label under the canonical prompt and every
   paraphrase; ``original_prompt_consistency``: the same for the original inputs (counterfactuals
   sit near the decision boundary, so a gap between the two is expected and worth seeing);
   ``robust_validity``: the share of generated SCEs that are valid under every prompt.

Neither protocol is in the SCE papers (Mayne et al., EMNLP 2025, arXiv 2509.09396;
Dehghanighobadi et al., EMNLP 2025, arXiv 2502.18156), which fix one input and one wording; the
label-preserving edits are CheckList's INV perturbations (Ribeiro et al., ACL 2020). Choices and
their reasons are in docs/stability.md.

Data flows one way:

    examples -> predictions -> (text) rounds of single-edit perturbations until one keeps the
             prediction (one batch per round) -> SCE requests for originals and perturbed texts
             (one batch) -> predictions on all counterfactuals (one batch) -> originals and
             counterfactuals under every paraphrase (one batch) -> records -> figures

Unparsed replies are counted and reported, never guessed: an SCE that cannot be parsed is not
generated; a counterfactual whose prediction cannot be parsed is invalid (as in the SCE check)
and is left out of the consistency figures, which need a label under every prompt.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from sce_checks import perturb
from sce_checks.cells import short
from sce_checks.checks.perturbation import PerturbationSettings, draw_perturbations
from sce_checks.checks.base import FAILING_HEADERS, Check, Outcome
from sce_checks.checks.predict import (Prediction, Predictor, mark_unparsed, prediction_record, task_predictor,
                                       validate_settings)
from sce_checks.config import default
from sce_checks.choices import VARIANTS
from sce_checks.checks.sce import SCESettings, parse_sce, pick_target, request_sces
from sce_checks.errors import UserInputError
from sce_checks.metrics.gower import gower_distance
from sce_checks.metrics.stats import put_proportion
from sce_checks.metrics.text_distance import normalized_levenshtein
from sce_checks.models.base import ChatModel
from sce_checks.parsing import reason_key
from sce_checks.progress import step
from sce_checks.prompts import grid as grid_prompts
from sce_checks.prompts import text as text_prompts
from sce_checks.prompts.paraphrase import PARAPHRASE_NAMES, paraphrases
from sce_checks.results import CheckResult, ExampleRecord

__all__ = ["CANONICAL", "StabilitySettings", "run_stability"]

CANONICAL = "canonical"  # the prediction prompt every other check uses (prompts/grid.py, prompts/text.py)
NO_EDITS_ON_GRIDS = "grid records have no label-preserving edit (every one-step move is another record); the input-perturbation half runs on text tasks"
_PERTURBED = "\x00perturbed"  # suffix of internal job ids for the perturbed text of an example


@dataclass(frozen=True)
class StabilitySettings:
    """How the stability check runs; all of it goes into the result's ``info``."""

    variant: str = default("variants")[0]  # the SCE request (checks/sce.py VARIANTS): the first variant of the run
    perturbations: int = default("perturbations")  # single-edit perturbations tried per example until one keeps the prediction
    prediction: str = default("prediction")  # auto | score | generate (see checks/predict.py)
    elicitation: str = default("elicitation")  # free | schema: replies constrained to their JSON schema (prompts/schemas.py)
    parsing: str = default("parsing")  # lenient | strict (sce_checks/parsing.py)
    seed: int = default("seed")  # perturbation draws and target draws
    paraphrases: tuple[str, ...] = PARAPHRASE_NAMES  # prompts/paraphrase.py
    families: tuple[str, ...] = perturb.LABEL_PRESERVING_FAMILIES  # edits tried (text tasks)
    answer_tokens: int = 48
    sce_tokens: int = 256

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise UserInputError(f"variant must be one of {', '.join(VARIANTS)}, not {self.variant!r}")
        validate_settings(self, ("perturbations", "answer_tokens", "sce_tokens"))
        if isinstance(self.paraphrases, str):
            raise UserInputError(f"paraphrases must be a sequence of names, not the string {self.paraphrases!r}")
        names = tuple(dict.fromkeys(self.paraphrases))
        bad = [n for n in names if n not in PARAPHRASE_NAMES]
        if bad or not names:
            raise UserInputError(f"paraphrases must name one or more of: {', '.join(PARAPHRASE_NAMES)}"
                                 + (f" (not {bad[0]!r})" if bad else ""))
        object.__setattr__(self, "paraphrases", names)
        object.__setattr__(self, "families", self.edit_settings().families)  # validated there

    def edit_settings(self) -> PerturbationSettings:
        """The draw of single label-preserving edits (INV's families, one edit each)."""
        return PerturbationSettings(perturbations=self.perturbations, max_edits=1, seed=self.seed,
                                    prediction=self.prediction, families=self.families)


def _keeping_perturbations(predictor: Predictor, examples, preds, settings: StabilitySettings, name: str) -> tuple[dict, dict]:
    """For each example with a parsed prediction, the first drawn single-edit perturbation that
    the model gives the same label. Round r predicts the r-th draw of the examples still
    without one, so a model that is stable under edits costs one prediction per example."""
    draw = settings.edit_settings()
    drawn = {ex_id: draw_perturbations(text, ex_id, draw) for (ex_id, text), p in zip(examples, preds) if p.label is not None}
    label_of = {ex_id: p.label for (ex_id, _), p in zip(examples, preds)}
    kept: dict[str, Any] = {}
    tried: dict[str, list[dict[str, Any]]] = {ex_id: [] for ex_id in drawn}
    for r in range(settings.perturbations):
        todo = [(ex_id, ps[r]) for ex_id, ps in drawn.items() if ex_id not in kept and len(ps) > r]
        if not todo:
            break
        with step(f"{name}: predicting {len(todo)} perturbed texts (round {r + 1})", len(todo)):
            labels = predictor.predict([p.text for _, p in todo])
        for (ex_id, p), q in zip(todo, labels):
            tried[ex_id].append({"edits": [e.describe() for e in p.edits], "prediction": q.label})
            if q.label is not None and q.label == label_of[ex_id]:
                kept[ex_id] = (p, q)
    return kept, {ex_id: (len(drawn[ex_id]), rows) for ex_id, rows in tried.items()}


def run_stability(
    model: ChatModel,
    model_spec: str,
    task: Any,
    examples: Sequence[tuple[str, Any]],
    settings: StabilitySettings = StabilitySettings(),
) -> CheckResult:
    """Both halves of the stability check on one task (the perturbation half on text tasks only).
    Stages: predictions; (text) a perturbation that keeps each prediction; SCEs of originals and
    perturbed partners in one batch; predictions on the SCEs; originals and SCEs under every
    paraphrase; records; figures."""
    text = task.kind == "text"
    predictor = task_predictor(model, task, settings)
    inputs = [x for _, x in examples]
    with step(f"{task.name}: predicting {len(set(inputs))} examples", len(set(inputs))):
        preds = predictor.predict(inputs)
    kept, tried = _keeping_perturbations(predictor, examples, preds, settings, task.name) if text else ({}, {})
    targets, replies, parsed = _request_pair_sces(model, task, examples, preds, kept, settings)
    counterfactuals = list(dict.fromkeys(p.value for p in parsed.values() if p.ok))
    with step(f"{task.name}: predicting {len(counterfactuals)} counterfactuals", len(counterfactuals)):
        predictor.predict(counterfactuals)
    under_prompts, para = _paraphrase_predictions(model, task, examples, targets, parsed, predictor, settings)

    reasons: Counter[str] = Counter()
    records = []
    for (ex_id, x), pred in zip(examples, preds):
        rec = _stability_record(task, ex_id, x, pred, targets, replies, parsed, predictor, under_prompts, reasons)
        records.append(rec)
        if text and pred.label is not None:
            _perturbed_side(rec, kept.get(ex_id), tried.get(ex_id, (0, [])), replies, parsed, predictor, reasons)

    figures, undefined = _figures(records, text, settings)
    info = {
        "task_kind": task.kind,
        "variant": settings.variant,
        "prediction_mode": predictor.mode,
        "prompts": [CANONICAL, *settings.paraphrases],
        "settings": asdict(settings),
        "validity_by_prompt": _validity_by_prompt(records, [CANONICAL, *settings.paraphrases]),
        "n_prediction_unparsed": sum(1 for p in preds if p.label is None),
        "n_sce_unparsed": sum(1 for r in records if r.target is not None and r.counterfactual is None),
        "n_with_perturbation": len(kept),
        "unparsed_reasons": dict(reasons),
        "predictions_requested": predictor.requested + para.requested,
        "undefined": undefined,
    }
    return CheckResult("stability", model_spec, task.name, None, len(records), figures, records, info)


def _distance(task: Any, a: Any, b: Any) -> float:
    return normalized_levenshtein(a, b, "char") if task.kind == "text" else gower_distance(task, a, b)


def _request_pair_sces(model: ChatModel, task: Any, examples: Sequence[tuple[str, Any]], preds: list[Prediction],
                       kept: dict[str, Any], settings: StabilitySettings) -> tuple[dict[str, str], dict, dict]:
    """The SCE requests, one batch: each original with a parsed prediction, and its perturbed
    partner (job id ``<id>\\x00perturbed``), both asked for the original's target.
    Returns (targets, replies, readings) by job id."""
    prompts = text_prompts if task.kind == "text" else grid_prompts
    targets: dict[str, str] = {}
    jobs: list[tuple[str, Any]] = []
    job_preds: list[Prediction] = []
    for (ex_id, x), pred in zip(examples, preds):
        if pred.label is None:
            continue
        # one target per example, drawn as --targets random draws it (the only other option of a
        # two-option task): the pair is compared on one target (docs/method.md, multi-class tasks)
        targets[ex_id] = pick_target(task.options, pred.label, ex_id, settings.seed)
        jobs.append((ex_id, x))
        job_preds.append(pred)
        if ex_id in kept:
            p, q = kept[ex_id]
            targets[ex_id + _PERTURBED] = targets[ex_id]
            jobs.append((ex_id + _PERTURBED, p.text))
            job_preds.append(q)
    sce_settings = SCESettings(variants=(settings.variant,), sce_tokens=settings.sce_tokens,
                               elicitation=settings.elicitation, parsing=settings.parsing)
    form = (settings.elicitation,) if task.kind == "text" else ()  # the text SCE's reply form (prompts/text.py)
    replies = request_sces(model, sce_settings, jobs, job_preds, targets,
                           lambda x, first, t, v: prompts.sce_conversation(task, x, first, t, v, *form), task.name, task)
    replies = {job_id: r for (_, job_id), r in replies.items()}
    return targets, replies, {job_id: parse_sce(task, r, settings) for job_id, r in replies.items()}


def _paraphrase_predictions(model: ChatModel, task: Any, examples: Sequence[tuple[str, Any]], targets: dict[str, str],
                            parsed: dict, predictor: Predictor, settings: StabilitySettings) -> tuple[Any, Predictor]:
    """Originals and their counterfactuals predicted under every paraphrase, one batch; returns
    ``under_prompts(x) -> {prompt: label}`` (the canonical prompt first) and the paraphrase predictor."""
    templates = paraphrases(task)
    para = Predictor.from_settings(model, task.options, lambda key: templates[key[0]](task, key[1]), settings)
    subjects = list(dict.fromkeys(
        [x for (ex_id, x) in examples if ex_id in targets] + [parsed[ex_id].value for ex_id, _ in examples
                                                              if ex_id in parsed and parsed[ex_id].ok]))
    keys = [(n, x) for n in settings.paraphrases for x in subjects]
    with step(f"{task.name}: predicting {len(subjects)} inputs and counterfactuals under {len(settings.paraphrases)} "
              "paraphrases", len(keys)):
        para.predict(keys)

    def under_prompts(x: Any) -> dict[str, str | None]:
        out = {CANONICAL: predictor.known(x).label}
        out.update({n: para.known((n, x)).label for n in settings.paraphrases})
        return out

    return under_prompts, para


def _stability_record(task: Any, ex_id: str, x: Any, pred: Prediction, targets: dict[str, str], replies: dict,
                      parsed: dict, predictor: Predictor, under_prompts: Any, reasons: Counter[str]) -> ExampleRecord:
    """An example's record: its SCE, valid or not, and judged under every prompt."""
    rec = prediction_record(ex_id, task.as_dict(x) if task.kind == "grid" else x, pred)
    rec.target = targets.get(ex_id)
    if pred.label is None:
        reasons[reason_key("prediction", pred.code)] += 1
        return rec
    rec.extra["original_prompt_predictions"] = under_prompts(x)
    rec.sce_reply = replies[ex_id]
    sce = parsed[ex_id]
    if not sce.ok:
        mark_unparsed(rec, "sce", sce)
        reasons[reason_key("sce", sce.code)] += 1
        return rec
    rec.counterfactual = task.as_dict(sce.value) if task.kind == "grid" else sce.value
    rec.cf_prediction = predictor.known(sce.value).label
    rec.valid = rec.cf_prediction == rec.target
    rec.distance = _distance(task, x, sce.value)
    labels = under_prompts(sce.value)
    rec.extra["prompt_predictions"] = labels
    rec.extra["valid_under_all_prompts"] = all(v == rec.target for v in labels.values())
    if None in labels.values():
        reasons["counterfactual prediction unparsed (some prompt)"] += 1
    return rec


def _perturbed_side(rec: ExampleRecord, kept: Any, tried: tuple[int, list], replies: dict, parsed: dict,
                    predictor: Predictor, reasons: Counter[str]) -> None:
    """A text example's perturbed partner: the edit that kept the prediction, its SCE, and whether
    that SCE's validity agrees with the original's."""
    n_drawn, rows = tried
    rec.extra["perturbations_tried"] = rows
    if kept is None:
        rec.extra["perturbed"] = None
        reasons["no candidate edit" if not n_drawn else "no drawn edit kept the prediction"] += 1
        return
    p, q = kept
    job = rec.id + _PERTURBED
    psce = parsed[job]
    side: dict[str, Any] = {"text": p.text, "edits": [e.describe() for e in p.edits], "prediction": q.label,
                            "sce_reply": replies[job], "counterfactual": None, "cf_prediction": None, "valid": None}
    if psce.ok:
        side["counterfactual"] = psce.value
        side["cf_prediction"] = predictor.known(psce.value).label
        side["valid"] = side["cf_prediction"] == rec.target
        side["distance"] = normalized_levenshtein(p.text, psce.value, "char")
    else:
        side["unparsed"] = f"sce: {psce.reason}"
        side["unparsed_code"] = psce.code
        if psce.raw is not None:
            side["unparsed_value"] = psce.raw
        reasons[reason_key("perturbed sce", psce.code)] += 1
    rec.extra["perturbed"] = side
    if rec.valid is not None and side["valid"] is not None:
        rec.extra["validity_agrees"] = rec.valid == side["valid"]


def _validity_by_prompt(records: list[ExampleRecord], prompts: list[str]) -> dict[str, float | None]:
    """Validity of the generated SCEs with the counterfactual judged under each prompt alone."""
    generated = [r for r in records if r.counterfactual is not None]
    return {p: (sum(1 for r in generated if r.extra["prompt_predictions"][p] == r.target) / len(generated)
                if generated else None) for p in prompts}


def _consistent(labels: dict[str, str | None]) -> bool | None:
    """Same label under every prompt; None when one of them is unparsed (nothing to compare)."""
    values = list(labels.values())
    return None if None in values else len(set(values)) == 1


def _figures(records: list[ExampleRecord], text: bool, settings: StabilitySettings) -> tuple[dict[str, Any], dict[str, str]]:
    figures: dict[str, Any] = {}
    undefined: dict[str, str] = {}

    # 1. input perturbation: paired over examples where both SCEs were generated
    pairs = [r for r in records if "validity_agrees" in r.extra]
    figures["n_pairs"] = len(pairs)
    why = NO_EDITS_ON_GRIDS if not text else "no example with a prediction-keeping perturbation and both SCEs generated"
    put_proportion(figures, undefined, "pair_validity", sum(1 for r in pairs if r.valid), len(pairs), why)
    put_proportion(figures, undefined, "perturbed_validity", sum(1 for r in pairs if r.extra["perturbed"]["valid"]), len(pairs), why)
    put_proportion(figures, undefined, "validity_agreement", sum(1 for r in pairs if r.extra["validity_agrees"]), len(pairs), why)
    if pairs:
        figures["validity_drop"] = figures["pair_validity"] - figures["perturbed_validity"]
    else:
        figures["validity_drop"] = None
        undefined["validity_drop"] = why

    # 2. prompt paraphrase
    generated = [r for r in records if r.counterfactual is not None]
    figures["n_counterfactuals"] = len(generated)
    put_proportion(figures, undefined, "validity", sum(1 for r in generated if r.valid), len(generated), "no SCE generated")
    put_proportion(figures, undefined, "robust_validity", sum(1 for r in generated if r.extra["valid_under_all_prompts"]),
                   len(generated), "no SCE generated")
    judged = [c for c in (_consistent(r.extra["prompt_predictions"]) for r in generated) if c is not None]
    put_proportion(figures, undefined, "prompt_consistency", sum(judged), len(judged),
                   "no counterfactual with a parsed prediction under every prompt")
    originals = [c for c in (_consistent(r.extra["original_prompt_predictions"]) for r in records
                             if "original_prompt_predictions" in r.extra) if c is not None]
    put_proportion(figures, undefined, "original_prompt_consistency", sum(originals), len(originals),
                   "no input with a parsed prediction under every prompt")
    return figures, undefined


# -- the check, for the registry (sce_checks/checks/base.py) ------------------------------------------

def _verdict(valid: bool | None) -> str:
    return "valid" if valid else "invalid"


def _failing_cases(e: ExampleRecord) -> list[list[str]]:
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


class StabilityCheck(Check):
    """The implementation; its declaration (name, figures) is sce_checks/checks/catalog.py `STABILITY`."""

    settings = StabilitySettings
    reads_settings = ("variants",)  # its SCEs are requested in the first variant

    outcomes = (
        Outcome("validity_agrees", "binary", ("validity_agreement",)),
        Outcome("perturbed_valid", "binary", ("perturbed_validity",),
                lambda e: (e.get("perturbed") or {}).get("valid") if "validity_agrees" in e else None),
        Outcome("prompt_consistent", "binary", ("prompt_consistency",),
                lambda e: _consistent(e["prompt_predictions"]) if e.get("counterfactual") is not None
                and e.get("prompt_predictions") else None),
        Outcome("valid_under_all_prompts", "binary", ("robust_validity",),
                lambda e: e.get("valid_under_all_prompts") if e.get("counterfactual") is not None else None),
        Outcome("valid", "binary", ("validity",)),
    )

    def settings_from(self, spec: Any, **fixed: Any) -> StabilitySettings:
        """The SCEs are requested in the first variant the run lists."""
        fixed.setdefault("variant", spec.variants[0])
        return super().settings_from(spec, **fixed)

    def run(self, model: ChatModel, model_name: str, task: Any, examples: Sequence[tuple[str, Any]],
            settings: StabilitySettings, shared: dict[str, Any]) -> list[CheckResult]:
        return [run_stability(model, model_name, task, examples, settings)]

    def example_table(self, result: CheckResult, k: int) -> tuple[str, list[str], list[list[str]]] | None:
        rows = [[e.id, short(e.input), *case] for e in result.examples for case in _failing_cases(e)][:k]
        return ("failing examples", FAILING_HEADERS, rows) if rows else None
