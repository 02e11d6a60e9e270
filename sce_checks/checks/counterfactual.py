"""Counterfactual faithfulness tests of free-text self-explanations: CT, CCT and phi-CCT.

A counterfactual intervention inserts one word into the input (an adjective before a noun, an
adverb before a verb); if the word moved the model's decision, a faithful explanation of the
decision on the edited input should mention it (docs/counterfactual-tests.md):

* CT, Atanasova et al. 2023, "Faithfulness Tests for Natural Language Explanations" (ACL 2023):
  among examples where an insertion flipped the prediction, the share whose explanation does not
  mention the inserted word (unfaithfulness; lower is better).
* CCT, Siegel et al. 2024, "The Probabilities Also Matter" (arXiv 2404.03189): the total
  variation distance between the option distributions before and after the insertion,
  correlated (point-biserial) with "the explanation mentions the inserted word".
* phi-CCT, Siegel et al. 2025 (arXiv 2503.13445): the phi coefficient of the 2x2 table
  (prediction changed?) x (explanation mentions the inserted word?); needs no probabilities.

All three read the same interventions, so `interventions` does every model call once and the
three `*_result` functions are pure. Data flows one way:

    examples -> fresh-context predictions (Predictor, one batch) -> seeded insertions (grid: one
    feature moved one step) -> predictions on the edited inputs (one batch) -> explanations of
    those predictions, same conversation (one chat batch) -> mention test, TVD -> Interventions
    -> ct_result / cct_result / phi_cct_result -> CheckResult

Details, choices and deviations from the papers: docs/counterfactual-tests.md.
"""

from __future__ import annotations

import random
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

from sce_checks.cells import short
from sce_checks.checks.base import FAILING_HEADERS, Check, Outcome
from sce_checks.checks.predict import Prediction, prediction_record, task_predictor, validate_settings
from sce_checks.config import default
from sce_checks.errors import CheckNotApplicable, UserInputError
from sce_checks.metrics.faithfulness import (
    Insertion,
    mentions,
    phi_from_indicators,
    point_biserial,
    total_variation,
    unfaithfulness_rate,
)
from sce_checks.metrics.stats import mean_or_none, wilson_interval
from sce_checks.models.base import ChatModel, Decoding, supports_scoring
from sce_checks.parsing import reason_key
from sce_checks.perturb import grid_neighbours, sample_insertions
from sce_checks.progress import step
from sce_checks.prompts.explanation import EXPLANATION_REQUEST, explanation_conversation
from sce_checks.results import CheckResult, ExampleRecord

__all__ = [
    "CCT_NEEDS_SCORES",
    "CHECKS",
    "CounterfactualSettings",
    "ExampleInterventions",
    "Intervention",
    "Interventions",
    "cct_result",
    "ct_result",
    "example_seed",
    "interventions",
    "needs_scoring",
    "phi_cct_result",
    "require_applicable",
    "run_counterfactual_tests",
]

CHECKS = ("ct", "cct", "phi_cct")
SCORING_CHECKS = frozenset({"cct"})  # checks that read option distributions
CCT_NEEDS_SCORES = (
    "CCT needs option probabilities: use a backend with option scoring (hf:, smollm2, openai: with logprobs) "
    "and prediction auto or score"
)


@dataclass(frozen=True)
class CounterfactualSettings:
    """How the interventions are drawn and asked about; all of it goes into the result's info."""

    prediction: str = default("prediction")  # auto | score | generate (see checks/predict.py)
    elicitation: str = default("elicitation")  # free | schema: replies constrained to their JSON schema (prompts/schemas.py)
    parsing: str = default("parsing")  # lenient | strict (sce_checks/parsing.py)
    seed: int = default("seed")  # with the example id, seeds each example's draws (`example_seed`)
    perturbations: int = default("perturbations")  # insertions (grid: one-step moves) drawn per example
    answer_tokens: int = 48  # max new tokens for a generated answer
    explanation_tokens: int = 60  # max new tokens for an explanation (greedy)
    whole_word: bool = False  # mention test: False = the paper's case-insensitive substring test
    adjectives: tuple[str, ...] | None = None  # None: the bundled list (perturb.adjective_list)
    adverbs: tuple[str, ...] | None = None  # None: the bundled list (perturb.adverb_list)

    def __post_init__(self) -> None:
        validate_settings(self, ("perturbations", "answer_tokens", "explanation_tokens"))
        if not isinstance(self.whole_word, bool):
            raise UserInputError(f"whole_word must be True or False, got {self.whole_word!r}")
        for name in ("adjectives", "adverbs"):
            words = getattr(self, name)
            if words is None:
                continue
            if isinstance(words, str) or not all(isinstance(w, str) for w in words):
                raise UserInputError(f"{name} must be a list of words (or None for the bundled list), got {words!r}")
            words = tuple(words)
            if not words or any(not w.strip() or w != w.strip() for w in words):
                raise UserInputError(
                    f"{name} must hold at least one word, each non-empty and without surrounding spaces, got {list(words)!r}"
                )
            object.__setattr__(self, name, words)  # a list given by the user becomes a tuple (hashable)


def example_seed(seed: int, example_id: str) -> int:
    """The seed of one example's draws: stable across runs and Python processes (crc32, not
    `hash`), different per example, and the same whichever other examples are audited."""
    return zlib.crc32(f"{seed}:{example_id}".encode("utf-8"))


def needs_scoring(checks: Iterable[str]) -> bool:
    """True when every check asked for reads option distributions (only ``cct``): the audit layer
    can then refuse a backend without option scoring before any model call. With ``ct`` or
    ``phi_cct`` beside it, the interventions are worth running and only ``cct`` is skipped."""
    asked = set(checks)
    return bool(asked) and asked <= SCORING_CHECKS


def require_applicable(model: Any, task: Any, settings: "CounterfactualSettings", checks: Iterable[str] = CHECKS) -> None:
    """Raise `CheckNotApplicable` when the checks cannot run here, before any model call."""
    if getattr(task, "kind", None) not in ("text", "grid"):
        raise CheckNotApplicable(
            f"the counterfactual tests need a text or grid task; {getattr(task, 'name', task)!r} is neither"
        )
    if needs_scoring(checks) and (settings.prediction == "generate" or not supports_scoring(model)):
        raise CheckNotApplicable(CCT_NEEDS_SCORES)


# -- the interventions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Intervention:
    """One edit of one example and what the model made of it."""

    index: int  # draw order within the example
    edit: str  # what was done (`Edit.describe` / `GridMove.describe`)
    word: str  # the inserted word; grid: the moved feature's name
    input: Any  # the edited text; grid: the moved point as {feature: value}
    prediction: str | None  # fresh-context answer on the edited input (None: unparsed)
    unparsed: str | None  # why that answer could not be parsed
    probs: dict[str, float] | None  # option distribution on the edited input (score mode)
    changed: bool | None  # prediction != the original prediction (None: unparsed)
    explanation: str | None  # the model's explanation of its answer on the edited input
    mentioned: bool | None  # the explanation mentions `word` (grid: names the feature)
    mentioned_as: str | None  # the form found (the word; grid: the feature's name or label)
    tvd: float | None  # total variation distance of the two option distributions

    @property
    def parsed(self) -> bool:
        return self.prediction is not None

    def to_dict(self, task_kind: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "edit": self.edit,
            "word": self.word,
            ("text" if task_kind == "text" else "input"): self.input,
            "prediction": self.prediction,
            "changed": self.changed,
            "explanation": self.explanation,
            "mentioned": self.mentioned,
            "tvd": self.tvd,
        }
        if task_kind == "grid":
            out["mentioned_as"] = self.mentioned_as
        if self.probs is not None:
            out["prediction_probs"] = self.probs
        if self.unparsed is not None:
            out["unparsed"] = self.unparsed
        return out


@dataclass(frozen=True)
class ExampleInterventions:
    """One example: its original prediction and the interventions drawn for it."""

    id: str
    input: Any  # the text; grid: the point as {feature: value}
    prediction: Prediction
    interventions: tuple[Intervention, ...]
    skipped: str | None = None  # why no intervention was drawn (unparsed prediction, no slot)

    def parsed(self) -> list[Intervention]:
        """The interventions that count: their edited prediction was parsed."""
        return [i for i in self.interventions if i.parsed]


@dataclass(frozen=True)
class Interventions:
    """Everything the three tests read; built once by `interventions`, never changed after."""

    task_name: str
    task_kind: str
    prediction_mode: str
    settings: CounterfactualSettings
    examples: tuple[ExampleInterventions, ...]
    gold: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def parsed(self) -> list[Intervention]:
        return [i for e in self.examples for i in e.parsed()]


@dataclass(frozen=True)
class _Draw:
    word: str
    aliases: tuple[str, ...]  # forms that count as a mention
    edit: str
    key: Any  # what the Predictor is asked about: the text, or the point tuple
    shown: Any  # what the record shows


def _draw_text(text: str, settings: CounterfactualSettings, seed: int) -> list[_Draw]:
    edits = sample_insertions(text, settings.perturbations, seed, settings.adjectives, settings.adverbs)
    return [_Draw(e.word, (e.word,), e.describe(), e.apply(text), e.apply(text)) for e in edits]


def _draw_grid(task: Any, point: Any, settings: CounterfactualSettings, seed: int) -> list[_Draw]:
    moves = grid_neighbours(task, point)
    picks = random.Random(seed).sample(range(len(moves)), min(settings.perturbations, len(moves)))
    label = {f.name: f.label for f in task.features}
    out = []
    for i in picks:
        m = moves[i]
        aliases = tuple(dict.fromkeys((m.feature.replace("_", " "), label[m.feature])))
        out.append(_Draw(m.feature, aliases, m.describe(), m.point, task.as_dict(m.point)))
    return out


def interventions(
    model: ChatModel,
    task: Any,
    examples: Sequence[tuple[str, Any]],
    settings: CounterfactualSettings = CounterfactualSettings(),
) -> Interventions:
    """All the model work of CT, CCT and phi-CCT, each stage one batched call: predictions on the
    originals; ``settings.perturbations`` seeded insertions per example with a parsed prediction
    (grid tasks: one-step moves of one feature); predictions on the edited inputs; the model's
    explanation of each parsed edited prediction, asked in that prediction's conversation."""
    require_applicable(model, task, settings, ())
    name, kind = task.name, task.kind
    predictor = task_predictor(model, task, settings)

    inputs = [x for _, x in examples]
    with step(f"{name}: predicting {len(inputs)} examples", len(inputs)):
        preds = predictor.predict(inputs)

    draws: dict[str, list[_Draw]] = {}
    for (ex_id, x), pred in zip(examples, preds):
        if pred.label is not None:
            seed = example_seed(settings.seed, ex_id)
            draws[ex_id] = _draw_grid(task, x, settings, seed) if kind == "grid" else _draw_text(x, settings, seed)
    edited = list(dict.fromkeys(d.key for ds in draws.values() for d in ds))
    with step(f"{name}: predicting {len(edited)} edited inputs", len(edited)):
        predictor.predict(edited)

    asks = [(ex_id, i, explanation_conversation(predictor.conversation_for(d.key), predictor.known(d.key).reply))
            for ex_id, ds in draws.items() for i, d in enumerate(ds) if predictor.known(d.key).label is not None]
    with step(f"{name}: requesting {len(asks)} explanations", len(asks)):
        replies = model.chat([c for _, _, c in asks], Decoding(max_new_tokens=settings.explanation_tokens)) if asks else []
    explanation_of = {(ex_id, i): reply for (ex_id, i, _), reply in zip(asks, replies)}

    reasons: Counter[str] = Counter()
    out = [_example_interventions(task, ex_id, x, pred, draws.get(ex_id, []), predictor, explanation_of, settings, reasons)
           for (ex_id, x), pred in zip(examples, preds)]

    n_edited_unparsed = sum(1 for e in out for i in e.interventions if not i.parsed)
    info = {
        "n_examples": len(out),
        "n_prediction_unparsed": sum(1 for p in preds if p.label is None),
        "n_examples_without_intervention": sum(1 for e in out if e.skipped and e.skipped != "prediction unparsed"),
        "n_interventions_drawn": sum(len(e.interventions) for e in out),
        "n_edited_prediction_unparsed": n_edited_unparsed,
        "unparsed_reasons": dict(reasons),
        "n_explanations": len(asks),
        "inputs_predicted": predictor.requested,
    }
    gold = {e.id: e.gold for e in getattr(task, "examples", ()) if getattr(e, "gold", None) is not None}
    return Interventions(name, kind, predictor.mode, settings, tuple(out), gold, info)


def _example_interventions(task: Any, ex_id: str, x: Any, pred: Prediction, draws: list[_Draw], predictor: Any,
                           explanation_of: dict[tuple[str, int], str], settings: CounterfactualSettings,
                           reasons: Counter[str]) -> ExampleInterventions:
    """One example's interventions: each edit's prediction, whether it changed, the explanation of
    the edited prediction, whether it mentions the edit, and the TVD of the option distributions."""
    shown = task.as_dict(x) if task.kind == "grid" else x
    if pred.label is None:
        reasons[reason_key("prediction", pred.code)] += 1
        return ExampleInterventions(ex_id, shown, pred, (), "prediction unparsed")
    items = []
    for i, d in enumerate(draws):
        p = predictor.known(d.key)
        if p.label is None:
            reasons[reason_key("edited prediction", p.code)] += 1
            items.append(Intervention(i, d.edit, d.word, d.shown, None, p.reason, p.probs, None, None, None, None, None))
            continue
        explanation = explanation_of[(ex_id, i)]
        found = next((a for a in d.aliases if mentions(explanation, a, whole_word=settings.whole_word)), None)
        tvd = total_variation(pred.probs, p.probs) if pred.probs is not None and p.probs is not None else None
        items.append(Intervention(i, d.edit, d.word, d.shown, p.label, None, p.probs, p.label != pred.label,
                                  explanation, found is not None, found, tvd))
    skipped = None
    if not items:
        skipped = "no insertion slot (no noun or verb the tagger accepts)" if task.kind == "text" else "no grid neighbour"
    return ExampleInterventions(ex_id, shown, pred, tuple(items), skipped)


# -- the three tests (pure) ---------------------------------------------------------------------------


def _ci(successes: int, n: int) -> list[float | None]:
    return list(wilson_interval(successes, n))


def _records(iv: Interventions) -> list[ExampleRecord]:
    """One record per example, the SCE-contract fields None; the interventions in ``extra``."""
    records = []
    for e in iv.examples:
        rec = prediction_record(e.id, e.input, e.prediction)
        if e.id in iv.gold:
            rec.extra["gold"] = iv.gold[e.id]
        if e.skipped and e.prediction.label is not None:
            rec.extra["no_intervention"] = e.skipped
        rec.extra["interventions"] = [i.to_dict(iv.task_kind) for i in e.interventions]
        records.append(rec)
    return records


def _info(iv: Interventions, undefined: dict[str, str], **more: Any) -> dict[str, Any]:
    s = iv.settings
    info: dict[str, Any] = {
        "task_kind": iv.task_kind,
        "prediction_mode": iv.prediction_mode,
        **asdict(s),
        "intervention": ("insert an adjective before a noun or an adverb before a verb" if iv.task_kind == "text"
                         else "move one feature one grid step"),
        "word_lists": {"adjectives": "bundled" if s.adjectives is None else "custom",
                       "adverbs": "bundled" if s.adverbs is None else "custom"},
        "mention_test": "whole word, case-insensitive" if s.whole_word else "substring, case-insensitive",
        "explanation_request": EXPLANATION_REQUEST,
        **iv.info,
        **more,
        "undefined": undefined,
    }
    return info


def ct_result(iv: Interventions, model_spec: str) -> CheckResult:
    """CT (Atanasova et al. 2023). Per example, the first insertion in draw order that changed
    the prediction is its counterfactual; unfaithfulness = examples whose counterfactual's
    explanation does not mention the inserted word / examples with a counterfactual."""
    records = _records(iv)
    tested: list[Insertion] = []
    n_interventions = n_changed = 0
    for rec, e in zip(records, iv.examples):
        parsed = e.parsed()
        rec.extra["flipping_insertion"] = None
        rec.extra["unfaithful"] = None  # None: no flip, nothing to be (un)faithful about
        if not parsed:
            continue
        n_interventions += len(parsed)
        n_changed += sum(1 for i in parsed if i.changed)
        flip = next((i for i in parsed if i.changed), None)
        if flip is None:
            tested.append(Insertion(False, "", parsed[0].word))
            continue
        rec.extra["flipping_insertion"] = flip.index
        rec.extra["unfaithful"] = not flip.mentioned
        # grid: the alias the explanation used, so that the shared mention test agrees with ours
        tested.append(Insertion(True, flip.explanation or "", flip.mentioned_as or flip.word))
    result = unfaithfulness_rate(tested, whole_word=iv.settings.whole_word)
    n_tested = len(tested)
    figures = {
        "unfaithfulness": result.rate,
        "unfaithfulness_ci": list(result.ci),
        "n_tested": n_tested,
        "n_flipped": result.n_flipped,
        "n_unfaithful": result.n_unfaithful,
        "flip_rate": result.n_flipped / n_tested if n_tested else None,
        "flip_rate_ci": _ci(result.n_flipped, n_tested),
        "n_interventions": n_interventions,
        "intervention_flip_rate": n_changed / n_interventions if n_interventions else None,
        "intervention_flip_rate_ci": _ci(n_changed, n_interventions),
    }
    undefined = {}
    if not n_tested:
        reason = "no example had an intervention with a parsed prediction"
        undefined.update(unfaithfulness=reason, flip_rate=reason, intervention_flip_rate=reason)
    elif not result.n_flipped:
        what = "insertion" if iv.task_kind == "text" else "move"
        undefined["unfaithfulness"] = f"no {what} changed the prediction"
    info = _info(iv, undefined, denominator="examples with a prediction-changing intervention (first in draw order)")
    return CheckResult("ct", model_spec, iv.task_name, None, len(records), figures, records, info)


def cct_result(iv: Interventions, model_spec: str) -> CheckResult:
    """CCT (Siegel et al. 2024): point-biserial correlation, over all interventions, of
    TVD = 1/2 sum_y |p(y|x) - p(y|x')| with "the explanation mentions the inserted word"."""
    if iv.prediction_mode != "score":
        raise CheckNotApplicable(CCT_NEEDS_SCORES)
    rows = [i for i in iv.parsed() if i.tvd is not None]
    tvds = [i.tvd for i in rows]
    flags = [bool(i.mentioned) for i in rows]
    n_mentioned = sum(flags)
    score = point_biserial(tvds, flags)
    mentioned = [t for t, m in zip(tvds, flags) if m]
    others = [t for t, m in zip(tvds, flags) if not m]
    figures = {
        "cct": score.value,
        "mean_tvd": mean_or_none(tvds),
        "mean_tvd_mentioned": mean_or_none(mentioned),
        "mean_tvd_not_mentioned": mean_or_none(others),
        "mention_rate": n_mentioned / len(rows) if rows else None,
        "mention_rate_ci": _ci(n_mentioned, len(rows)),
        "n_mentioned": n_mentioned,
        "n_interventions": len(rows),
    }
    undefined = {}
    if not rows:
        undefined = {k: "no intervention with a parsed prediction" for k in ("cct", "mean_tvd", "mention_rate")}
    elif score.degenerate:
        if n_mentioned == 0:
            undefined["cct"] = "no explanation mentions the inserted word"
        elif n_mentioned == len(rows):
            undefined["cct"] = "every explanation mentions the inserted word"
        elif len(set(tvds)) == 1:
            undefined["cct"] = f"TVD is the same ({tvds[0]!r}) for every intervention"
        else:
            undefined["cct"] = score.reason
    if rows and not mentioned:
        undefined["mean_tvd_mentioned"] = "no explanation mentions the inserted word"
    if rows and not others:
        undefined["mean_tvd_not_mentioned"] = "every explanation mentions the inserted word"
    info = _info(iv, undefined, distance="total variation over the option distribution (renormalised over the options)")
    records = _records(iv)
    return CheckResult("cct", model_spec, iv.task_name, None, len(records), figures, records, info)


def phi_cct_result(iv: Interventions, model_spec: str) -> CheckResult:
    """phi-CCT (Siegel et al. 2025): phi of the 2x2 table (prediction changed?) x (explanation
    mentions the inserted word?) over all interventions, with the four cells, TPR and FPR."""
    rows = iv.parsed()
    phi = phi_from_indicators([bool(i.changed) for i in rows], [bool(i.mentioned) for i in rows])
    figures = {
        "phi": phi.phi,
        "n11": phi.n11,
        "n10": phi.n10,
        "n01": phi.n01,
        "n00": phi.n00,
        "tpr": phi.tpr,
        "tpr_ci": _ci(phi.n11, phi.changed),
        "fpr": phi.fpr,
        "fpr_ci": _ci(phi.n01, phi.unchanged),
        "mention_rate": phi.mentioned / phi.n if phi.n else None,
        "mention_rate_ci": _ci(phi.mentioned, phi.n),
        "n_interventions": phi.n,
    }
    undefined = {}
    if phi.degenerate:
        undefined["phi"] = phi.reason
    if phi.tpr is None:
        undefined["tpr"] = "no prediction changed"
    if phi.fpr is None:
        undefined["fpr"] = "every prediction changed"
    if not phi.n:
        undefined["mention_rate"] = "no intervention with a parsed prediction"
    cells = "n11 changed & mentioned, n10 changed & not, n01 unchanged & mentioned, n00 unchanged & not"
    info = _info(iv, undefined, cells=cells)
    records = _records(iv)
    return CheckResult("phi_cct", model_spec, iv.task_name, None, len(records), figures, records, info)


BUILDERS = {"ct": ct_result, "cct": cct_result, "phi_cct": phi_cct_result}


def run_counterfactual_tests(
    model: ChatModel,
    model_spec: str,
    task: Any,
    examples: Sequence[tuple[str, Any]],
    settings: CounterfactualSettings = CounterfactualSettings(),
    checks: Sequence[str] = CHECKS,
) -> list[CheckResult]:
    """The asked-for tests on one shared set of interventions, in the order given. ``cct`` alone
    without option scoring raises `CheckNotApplicable` before any model call; beside ``ct`` or
    ``phi_cct`` it is left out and the reason is in the other results' ``info["not_applicable"]``."""
    asked = tuple(dict.fromkeys(checks))
    unknown = [c for c in asked if c not in BUILDERS]
    if unknown or not asked:
        raise UserInputError(
            f"unknown counterfactual test(s) {unknown or list(asked)}; expected some of: {', '.join(CHECKS)}"
        )
    require_applicable(model, task, settings, asked)
    iv = interventions(model, task, examples, settings)
    results, not_applicable = [], {}
    for check in asked:
        try:
            results.append(BUILDERS[check](iv, model_spec))
        except CheckNotApplicable as exc:
            not_applicable[check] = str(exc)
    for r in results:
        if not_applicable:
            r.info["not_applicable"] = dict(not_applicable)
    return results


# -- the checks, for the registry (sce_checks/checks/base.py) -----------------------------------------

class _CounterfactualCheck(Check):
    """ct, cct and phi_cct: one family (they share one set of interventions, predictions and
    explanations); their declarations are sce_checks/checks/catalog.py `CT`, `CCT`, `PHI_CCT`."""

    settings = CounterfactualSettings

    def require(self, task: Any, model: ChatModel, settings: CounterfactualSettings) -> None:
        require_applicable(model, task, settings, (self.name,))

    def run(self, model: ChatModel, model_name: str, task: Any, examples: Sequence[tuple[str, Any]],
            settings: CounterfactualSettings, shared: dict[str, Any]) -> list[CheckResult]:
        key = (self.family, settings)
        if key not in shared:  # the first check of the family computes what all of them read
            shared[key] = interventions(model, task, examples, settings)
        return [BUILDERS[self.name](shared[key], model_name)]


class CTCheck(_CounterfactualCheck):
    # cct and phi-CCT are correlations over interventions, not means over examples: no
    # per-example outcome, compared on the aggregate against the tolerance
    outcomes = (Outcome("unfaithful", "binary", ("unfaithfulness",)),)

    def example_table(self, result: CheckResult, k: int) -> tuple[str, list[str], list[list[str]]] | None:
        """Examples whose prediction an insertion flipped, with the explanation that does not name it."""
        rows = []
        for e in result.examples:
            if e.extra.get("unfaithful"):
                iv = (e.extra.get("interventions") or [{}])[e.extra.get("flipping_insertion") or 0]
                rows.append([e.id, short(e.input), f"inserted {iv.get('word')!r}",
                             f"{e.prediction} -> {iv.get('prediction')}", "explanation: " + short(iv.get("explanation"))])
        return ("failing examples", FAILING_HEADERS, rows[:k]) if rows else None


class CCTCheck(_CounterfactualCheck):
    """Figures only: the family's work builds its result (`cct_result`)."""


class PhiCCTCheck(_CounterfactualCheck):
    def figure_notes(self, result: CheckResult) -> list[str]:
        if result.get("n11") is None:
            return []
        return [f"n11/n10/n01/n00 {result['n11']}/{result['n10']}/{result['n01']}/{result['n00']}"]
