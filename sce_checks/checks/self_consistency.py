"""Self-consistency of a model's explanation with its own feature importance.

After Admoni et al., "Towards Large Language Models with Self-Consistent Natural Language
Explanations" (arXiv 2506.07523), and CC-SHAP (Parcalabescu and Frank 2023): if an explanation
reflects how the model decided, the input words that matter for the DECISION should be the words
that matter for the EXPLANATION. Both are measured with the same attribution method over the same
input words, and the two attribution vectors are compared (docs/self-consistency.md):

* the usual score: each vector divided by its L1 norm, then their dot product;
* the more discriminative score Admoni et al. propose: Spearman's rho of the absolute values.

Data flows one way:

    examples -> fresh-context predictions (Predictor) -> explanations ("Explain briefly why.",
    same conversation, greedy) -> per example: the input's words -> attribution of
    log p(decision) and of log p(explanation) over the words (captum, batched) -> the two scores
    -> per-example records -> aggregate figures (CheckResult)

Choices (docs/self-consistency.md gives the reasons and the deviations from the paper):

* Features are the words of the user's text (whitespace-separated, punctuation attached) for text
  tasks, and the record's feature lines for grid tasks. Only they are perturbed; the prompt
  template, the instructions, the model's answer and the explanation request stay intact.
* Baseline: a word is REMOVED (the text re-joined without it), and the perturbed prompt is built
  as a conversation from the kept words and templated and tokenised from scratch, so the model
  sees a well-formed text, never a pad or unknown token it was not trained to read. Captum sees a
  0/1 presence vector per word (baseline 0).
* The decision's score: log p(the predicted option's canonical reply ``{"answer": ...}`` as the
  whole assistant reply, end-of-turn included), the quantity score-mode prediction arg-maxes.
  The explanation's score: log p(the explanation's tokens), teacher-forced after the unchanged
  first answer and request; its end-of-turn token is left out because a truncated explanation
  (``explanation_tokens``) never produced one.
* Both are asked of the model the check is handed (normally the `CachedModel`, so a rerun is
  answered from the response cache) through the scoring primitive ``score_replies``
  (sce_checks/models/base.py): ``complete=True`` for the decision, ``complete=False`` for the
  explanation. The check never reaches behind the model for a backend, weights or a tokenizer.
* Methods: ``feature_ablation`` (captum FeatureAblation: f(x) - f(x without word i)) and
  ``shapley_sampling`` (captum ShapleyValueSampling, ``shapley_samples`` permutations, seeded; the
  decision and the explanation are attributed with the same permutations). Perturbed inputs go
  ``perturbations_per_eval`` at a time to ONE ``score_replies`` call (the hf backend batches it,
  ``batch_size`` rows per forward pass, the template prefix every row shares run once), and
  repeated coalitions are scored once.

Only backends that score replies can be attributed: ``hf:`` and ``smollm2`` (also behind the
response cache), or a python object with ``score_replies``. Others raise
`AttributionUnsupported`, before any model call.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from sce_checks import optional
from sce_checks.checks.base import Check, Outcome
from sce_checks.checks.catalog import ATTRIBUTIONS
from sce_checks.checks.predict import Predictor, prediction_record
from sce_checks.config import default
from sce_checks.errors import BackendError, CheckNotApplicable, UserInputError
from sce_checks.metrics.faithfulness import l1_normalised_dot, spearman
from sce_checks.metrics.stats import mean_or_none, median_or_none
from sce_checks.models.base import ChatModel, Conversation, Decoding, supports_reply_scoring
from sce_checks.progress import advance, showing, step
from sce_checks.prompts import grid as grid_prompts, text as text_prompts
from sce_checks.prompts.common import canonical_answer
from sce_checks.prompts.explanation import EXPLANATION_REQUEST, explanation_conversation
from sce_checks.results import CheckResult, ExampleRecord

__all__ = [
    "METHODS",
    "AttributionUnsupported",
    "Features",
    "Scorer",
    "SelfConsistencySettings",
    "attribute",
    "grid_features",
    "require_reply_scoring",
    "run_self_consistency",
    "text_features",
]

METHODS = ATTRIBUTIONS


class AttributionUnsupported(CheckNotApplicable):
    """The backend cannot score replies (no log-probabilities), so nothing can be attributed."""


@dataclass(frozen=True)
class SelfConsistencySettings:
    """How the check runs; all of it goes into the result's ``info``."""

    method: str = default("attribution")  # one of METHODS (the run's ``attribution`` setting)
    prediction: str = default("prediction")  # auto | score | generate (see checks/predict.py)
    elicitation: str = default("elicitation")  # free | schema: replies constrained to their JSON schema (prompts/schemas.py)
    parsing: str = default("parsing")  # lenient | strict (sce_checks/parsing.py)
    answer_tokens: int = 48  # max new tokens for a generated answer
    explanation_tokens: int = 60  # max new tokens for the explanation (greedy)
    perturbations_per_eval: int = 16  # perturbed inputs per score_replies call (one captum batch)
    shapley_samples: int = 10  # permutations for shapley_sampling
    seed: int = default("seed")  # shapley_sampling's permutations
    decimals: int = 6  # attributions are rounded to this many decimals in the records

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise UserInputError(f"unknown attribution method {self.method!r}; accepted: {', '.join(METHODS)}")
        for name in ("explanation_tokens", "perturbations_per_eval", "shapley_samples"):
            if getattr(self, name) < 1:
                raise UserInputError(f"{name} must be at least 1, got {getattr(self, name)}")


def require_reply_scoring(model: Any) -> None:
    """`AttributionUnsupported` unless ``model`` offers the scoring primitive ``score_replies``
    (asked of the model itself: wrappers such as `CachedModel` answer for their inner model)."""
    if supports_reply_scoring(model):
        return
    backend = type(model).__name__
    probe = getattr(model, "identity", None)
    if callable(probe):
        backend = str(probe().get("backend", backend))
    raise AttributionUnsupported(
        f"the self-consistency check needs the hf backend (or smollm2), or a backend that scores replies "
        f"(score_replies); this backend ({backend}) has no gradients/attributions: it gives no "
        "log-probabilities of a reply, so the decision and the explanation cannot be attributed to the input words"
    )


# -- features -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Features:
    """An input cut into attributable units. ``compose(keep)`` rebuilds the input from the kept
    units: ``head``, the kept words each preceded by its original separator (the first kept word
    by none), then ``tail``; with every word kept it is the input itself."""

    words: tuple[str, ...]
    separators: tuple[str, ...]  # separators[i]: the text between words[i-1] and words[i]
    head: str = ""
    tail: str = ""

    def compose(self, keep: Sequence[bool]) -> str:
        if len(keep) != len(self.words):
            raise ValueError(f"keep has {len(keep)} flags for {len(self.words)} words")
        parts: list[str] = []
        for word, separator, kept in zip(self.words, self.separators, keep):
            if kept:
                if parts:
                    parts.append(separator)
                parts.append(word)
        return self.head + "".join(parts) + self.tail


def text_features(text: str) -> Features:
    """The whitespace-separated words of ``text``; punctuation stays attached ("movie," is one
    word), so removing a word never leaves stray commas or half a contraction."""
    spans = [m.span() for m in re.finditer(r"\S+", text)]
    words = tuple(text[a:b] for a, b in spans)
    separators = tuple("" if i == 0 else text[spans[i - 1][1]:a] for i, (a, _) in enumerate(spans))
    head = text[: spans[0][0]] if spans else text
    tail = text[spans[-1][1]:] if spans else ""
    return Features(words, separators, head, tail)


def grid_features(task: Any, point: Any) -> Features:
    """A grid record's feature lines (``- Age: 45``): removing one removes the feature from the
    record the model sees."""
    lines = tuple(task.render(point).split("\n"))
    return Features(lines, tuple("" if i == 0 else "\n" for i in range(len(lines))))


# -- attribution -----------------------------------------------------------------------------------


class Scorer:
    """f(presence vector) = log p(``reply`` | the conversation built from the kept words), the
    function captum perturbs: each batch captum hands over becomes ONE ``model.score_replies``
    call (``complete`` as given). Coalitions already scored are answered from memory (Shapley
    sampling revisits the empty and the full input in every permutation)."""

    def __init__(self, model: Any, features: Features, conversation_for: Callable[[str], Conversation],
                 reply: str, complete: bool = True) -> None:
        self.model, self.features, self.conversation_for = model, features, conversation_for
        self.reply, self.complete = reply, bool(complete)
        self.memo: dict[tuple[bool, ...], float] = {}
        self.rows_scored = 0
        self.forward_passes = 0  # score_replies calls (the backend may split one into several passes)

    def __call__(self, presence: Any) -> Any:
        torch = optional.torch()

        keeps = [tuple(bool(v > 0.5) for v in row) for row in presence.detach().cpu().tolist()]
        todo = list(dict.fromkeys(k for k in keeps if k not in self.memo))
        if todo:
            conversations = [self.conversation_for(self.features.compose(k)) for k in todo]
            with showing(None):  # the check's own step counts examples, not the rows scored
                rows = self.model.score_replies(conversations, [[self.reply]] * len(todo), complete=self.complete)
            rows = list(rows)
            if len(rows) != len(todo) or any(len(row) != 1 for row in rows):
                raise BackendError(f"score_replies returned {rows!r} for {len(todo)} conversations of one reply each")
            self.memo.update(zip(todo, (float(row[0]) for row in rows)))
            self.rows_scored += len(todo)
            self.forward_passes += 1
        return torch.tensor([self.memo[k] for k in keeps], dtype=torch.float64, device=presence.device)


def attribute(
    model: Any,
    features: Features,
    conversation_for: Callable[[str], Conversation],
    reply: str,
    method: str = "feature_ablation",
    *,
    complete: bool = True,
    perturbations_per_eval: int = 16,
    shapley_samples: int = 10,
    seed: int = 0,
) -> tuple[np.ndarray, Scorer]:
    """Attribution of log p(``reply`` | ``conversation_for(text)``) (``model.score_replies``,
    the whole reply when ``complete``, else its beginning) to each word of ``features``
    (baseline: the word removed), with captum. Returns one value per word and the scorer (its
    memo holds every log-probability computed; ``memo[(True,) * n]`` is the unperturbed one)."""
    torch = optional.torch()
    attr = optional.captum_attr()

    if method not in METHODS:
        raise UserInputError(f"unknown attribution method {method!r}; accepted: {', '.join(METHODS)}")
    n = len(features.words)
    scorer = Scorer(model, features, conversation_for, reply, complete)
    if n == 0:
        return np.zeros(0), scorer
    presence = torch.ones((1, n), dtype=torch.float32)
    mask = torch.arange(n).unsqueeze(0)  # one feature per word (the word's sub-word tokens go together)
    if method == "feature_ablation":
        result = attr.FeatureAblation(scorer).attribute(
            presence, baselines=0.0, feature_mask=mask, perturbations_per_eval=perturbations_per_eval,
        )
    else:
        with torch.random.fork_rng(devices=[]):  # captum draws permutations from torch's global RNG
            torch.manual_seed(seed)
            result = attr.ShapleyValueSampling(scorer).attribute(
                presence, baselines=0.0, feature_mask=mask, n_samples=shapley_samples,
                perturbations_per_eval=perturbations_per_eval,
            )
    return result.detach().double().reshape(n).cpu().numpy(), scorer


# -- the check ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Subject:
    """One example made attributable: its words and how to rebuild the prediction conversation
    from a subset of them."""

    id: str
    input: Any  # what the record shows: the text, or the grid point as a dict
    prediction_conversation: Conversation
    features: Features
    conversation_for: Callable[[str], Conversation]


def _subjects(task: Any, examples: Sequence[tuple[str, Any]]) -> list[_Subject]:
    out = []
    for ex_id, x in examples:
        if task.kind == "grid":
            conversation = grid_prompts.prediction_conversation(task, x)
            prompt, record = conversation[0]["content"], task.render(x)
            if not prompt.endswith(record):
                raise AssertionError("the grid prediction prompt must end with the record")
            head = prompt[: len(prompt) - len(record)]
            out.append(_Subject(ex_id, task.as_dict(x), conversation, grid_features(task, x),
                                lambda s, head=head: [{"role": "user", "content": head + s}]))
        else:
            out.append(_Subject(ex_id, x, text_prompts.prediction_conversation(task, x), text_features(x),
                                lambda s: text_prompts.prediction_conversation(task, s)))
    return out


def _require_captum() -> None:
    optional.captum_attr()


def _rounded(values: np.ndarray, decimals: int) -> list[float]:
    return [round(float(v), decimals) for v in values]


def run_self_consistency(
    model: ChatModel,
    model_spec: str,
    task: Any,
    examples: Sequence[tuple[str, Any]],
    settings: SelfConsistencySettings = SelfConsistencySettings(),
) -> CheckResult:
    """The self-consistency check on ``examples`` (``(id, text)`` for text tasks, ``(id, point)``
    for grid tasks, as `task_examples` gives them). Stages: predictions; explanations (same
    conversation); per example, the decision and the explanation attributed to the input's words
    and the two compared; figures. Stages and attributed examples show on the installed progress
    bar (`sce_checks.progress`). Raises `AttributionUnsupported` for backends that do not score
    replies (``score_replies``), before any model call; everything is asked of ``model`` itself
    (pass the `CachedModel` and a rerun makes no model calls)."""
    require_reply_scoring(model)
    _require_captum()
    subjects = _subjects(task, examples)
    inputs = [x for _, x in examples]
    conversation_of = {x: s.prediction_conversation for x, s in zip(inputs, subjects)}
    predictor = Predictor.from_settings(model, task.options, conversation_of.__getitem__, settings)
    with step(f"{task.name}: predicting {len(subjects)} examples", len(subjects)):
        preds = predictor.predict(inputs)
    asks = [(s, explanation_conversation(s.prediction_conversation, p.reply))
            for s, p in zip(subjects, preds) if p.label is not None]
    with step(f"{task.name}: requesting {len(asks)} explanations", len(asks)):
        replies = model.chat([c for _, c in asks], Decoding(max_new_tokens=settings.explanation_tokens)) if asks else []
    explanation_of = {s.id: reply for (s, _), reply in zip(asks, replies)}

    tally = _Tally()
    with step(f"{task.name}: attributing {len(asks)} examples ({settings.method})", len(asks)):
        records = [_attributed_record(model, subject, pred, explanation_of.get(subject.id), settings, tally)
                   for subject, pred in zip(subjects, preds)]
    scored = [r for r in records if "l1_dot" in r.extra]
    l1 = [r.extra["l1_dot"] for r in scored]
    rhos = [r.extra["spearman"] for r in scored]
    figures = {
        "mean_l1_dot": mean_or_none(l1),
        "median_l1_dot": median_or_none(l1),
        "mean_spearman": mean_or_none(rhos),
        "median_spearman": median_or_none(rhos),
        "n_scored": len(scored),
        "n_skipped": sum(tally.skipped.values()),
        "n_l1_dot_undefined": tally.undefined["l1_dot"],
        "n_spearman_undefined": tally.undefined["spearman"],
    }
    info = {
        "task_kind": task.kind,
        "method": settings.method,
        "baseline": "word removed" if task.kind == "text" else "feature line removed",
        "features": "words of the input text" if task.kind == "text" else "feature lines of the record",
        "explanation_request": EXPLANATION_REQUEST,
        "explanation_tokens": settings.explanation_tokens,
        "prediction_mode": predictor.mode,
        "perturbations_per_eval": settings.perturbations_per_eval,
        "shapley_samples": settings.shapley_samples if settings.method == "shapley_sampling" else None,
        "seed": settings.seed,
        "skipped_reasons": dict(tally.skipped),
        "sequences_scored": tally.rows_scored,
        "forward_passes": tally.forward_passes,
        "attribution_seconds": round(tally.seconds, 3),
    }
    return CheckResult("self_consistency", model_spec, task.name, settings.method, len(records), figures, records, info)


@dataclass
class _Tally:
    """What the attribution of one audit counts: skipped examples by reason, undefined scores by
    score, and the model work done."""

    skipped: Counter = field(default_factory=Counter)
    undefined: Counter = field(default_factory=Counter)
    rows_scored: int = 0
    forward_passes: int = 0
    seconds: float = 0.0


def _attributed_record(model: ChatModel, subject: _Subject, pred: Any, explanation: str | None,
                       settings: SelfConsistencySettings, tally: _Tally) -> ExampleRecord:
    """One example: its decision and its explanation attributed to the same input words, and the
    two attribution vectors compared (L1-normalised dot product, Spearman of absolute values)."""
    rec = prediction_record(subject.id, subject.input, pred)
    if pred.label is None:
        tally.skipped["prediction unparsed"] += 1
        return rec
    rec.extra["explanation"] = explanation
    words = subject.features.words
    rec.extra["words"] = list(words)
    why = "explanation: empty reply" if not explanation.strip() else ("input: no words to attribute" if not words else None)
    if why is not None:
        rec.unparsed = why
        tally.skipped["no explanation generated" if why.startswith("explanation") else "no words to attribute"] += 1
        advance(1)
        return rec
    started = time.perf_counter()
    common = dict(perturbations_per_eval=settings.perturbations_per_eval, shapley_samples=settings.shapley_samples,
                  seed=settings.seed)
    # decision: the canonical reply as the WHOLE reply; explanation: its tokens after the
    # unchanged answer and request, no end-of-turn (a truncated one never produced it)
    attr_d, scorer_d = attribute(model, subject.features, subject.conversation_for, canonical_answer(pred.label),
                                 settings.method, complete=True, **common)
    attr_e, scorer_e = attribute(model, subject.features,
                                 lambda s: explanation_conversation(subject.conversation_for(s), pred.reply),
                                 explanation, settings.method, complete=False, **common)
    tally.seconds += time.perf_counter() - started
    tally.rows_scored += scorer_d.rows_scored + scorer_e.rows_scored
    tally.forward_passes += scorer_d.forward_passes + scorer_e.forward_passes
    dot = l1_normalised_dot(attr_d, attr_e)
    rho = spearman(np.abs(attr_d), np.abs(attr_e))
    full = (True,) * len(words)
    rec.extra.update({
        "decision_attribution": _rounded(attr_d, settings.decimals),
        "explanation_attribution": _rounded(attr_e, settings.decimals),
        "l1_dot": dot.value,
        "spearman": rho.value,
        "decision_logprob": scorer_d.memo[full],
        "explanation_logprob": scorer_e.memo[full],
    })
    for label, score in (("l1_dot", dot), ("spearman", rho)):
        if score.degenerate:
            rec.extra[f"{label}_undefined"] = score.reason
            tally.undefined[label] += 1
    advance(1)
    return rec


# -- the check, for the registry (sce_checks/checks/base.py) ------------------------------------------

class SelfConsistencyCheck(Check):
    """The implementation; its declaration (name, figures, the ``attribution`` setting) is
    sce_checks/checks/catalog.py `SELF_CONSISTENCY`."""

    settings = SelfConsistencySettings
    reads_settings = ("attribution",)
    outcomes = (Outcome("spearman", "continuous", ("mean_spearman",)),
                Outcome("l1_dot", "continuous", ("mean_l1_dot",)))

    def settings_from(self, spec: Any, **fixed: Any) -> SelfConsistencySettings:
        """The run's ``attribution`` setting is this check's ``method``."""
        fixed.setdefault("method", spec.attribution)
        return super().settings_from(spec, **fixed)

    def require(self, task: Any, model: ChatModel, settings: SelfConsistencySettings) -> None:
        require_reply_scoring(model)

    def run(self, model: ChatModel, model_name: str, task: Any, examples: Sequence[tuple[str, Any]],
            settings: SelfConsistencySettings, shared: dict[str, Any]) -> list[CheckResult]:
        return [run_self_consistency(model, model_name, task, examples, settings)]
