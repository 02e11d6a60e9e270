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
  and tokenised from scratch, so the model sees a well-formed text, never a pad or unknown token
  it was not trained to read. Captum sees a 0/1 presence vector per word (baseline 0).
* The decision's score: log p(the predicted option's canonical reply ``{"answer": ...}`` as the
  whole assistant reply, end-of-turn included), the quantity score-mode prediction arg-maxes.
  The explanation's score: log p(the explanation's tokens), teacher-forced after the unchanged
  first answer and request; its end-of-turn token is left out because a truncated explanation
  (``explanation_tokens``) never produced one.
* Methods: ``feature_ablation`` (captum FeatureAblation: f(x) - f(x without word i)) and
  ``shapley_sampling`` (captum ShapleyValueSampling, ``shapley_samples`` permutations, seeded; the
  decision and the explanation are attributed with the same permutations). Perturbed inputs run
  ``perturbations_per_eval`` at a time in ONE batched forward pass (left-padded; the template
  prefix every row shares runs once), and repeated coalitions are scored once.

Only backends with weights can be attributed: ``hf:`` and ``smollm2`` (unwrapped from the
response cache). Others raise `AttributionUnsupported`.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from sce_checks.checks import ATTRIBUTIONS
from sce_checks.checks.base import Check, Figure
from sce_checks.checks.predict import Predictor
from sce_checks.config import default
from sce_checks.errors import CheckNotApplicable, UserInputError
from sce_checks.metrics.faithfulness import l1_normalised_dot, spearman
from sce_checks.metrics.stats import mean_or_none, median_or_none
from sce_checks.models.base import ChatModel, Conversation, Decoding
from sce_checks.progress import advance, step
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
    "hf_backend",
    "run_self_consistency",
    "sequence_logprobs",
    "text_features",
]

METHODS = ATTRIBUTIONS
_MIN_SHARED_PREFIX = 8  # tokens; below this, running the prefix once is not worth a second pass


class AttributionUnsupported(CheckNotApplicable):
    """The backend gives no access to the model's weights, so nothing can be attributed."""


@dataclass(frozen=True)
class SelfConsistencySettings:
    """How the check runs; all of it goes into the result's ``info``."""

    method: str = default("attribution")  # one of METHODS (the run's ``attribution`` setting)
    prediction: str = default("prediction")  # auto | score | generate (see checks/predict.py)
    elicitation: str = default("elicitation")  # free | schema: replies constrained to their JSON schema (prompts/schemas.py)
    parsing: str = default("parsing")  # lenient | strict (sce_checks/parsing.py)
    answer_tokens: int = 48  # max new tokens for a generated answer
    explanation_tokens: int = 60  # max new tokens for the explanation (greedy)
    perturbations_per_eval: int = 16  # perturbed inputs per batched forward pass
    shapley_samples: int = 10  # permutations for shapley_sampling
    seed: int = default("seed")  # shapley_sampling's permutations
    decimals: int = 6  # attributions are rounded to this many decimals in the records

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise UserInputError(f"unknown attribution method {self.method!r}; accepted: {', '.join(METHODS)}")
        for name in ("explanation_tokens", "perturbations_per_eval", "shapley_samples"):
            if getattr(self, name) < 1:
                raise UserInputError(f"{name} must be at least 1, got {getattr(self, name)}")


def hf_backend(model: Any) -> Any:
    """The `HFChatModel` behind ``model`` (unwrapping `CachedModel` and similar wrappers that keep
    their backend in ``.inner``); `AttributionUnsupported` when there is none."""
    from sce_checks.models.hf import HFChatModel

    seen = model
    for _ in range(8):  # wrappers nest a level or two; a cycle must not loop forever
        if isinstance(seen, HFChatModel):
            return seen
        inner = getattr(seen, "inner", None)
        if inner is None:
            break
        seen = inner
    backend = type(seen).__name__
    probe = getattr(model, "identity", None)
    if callable(probe):
        backend = str(probe().get("backend", backend))
    raise AttributionUnsupported(
        f"the self-consistency check needs the hf backend (or smollm2); this backend ({backend}) has no "
        "gradients/attributions: it gives no access to the model's weights, so the decision and the "
        "explanation cannot be attributed to the input words"
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


# -- teacher-forced scoring ------------------------------------------------------------------------


def _left_pad(rows: list[list[int]], pad_id: int, device: Any) -> tuple[Any, Any]:
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row):] = 1
    return ids.to(device), mask.to(device)


def _common_prefix(rows: list[list[int]]) -> int:
    first, n = rows[0], min(len(r) for r in rows)
    for i in range(n):
        if any(r[i] != first[i] for r in rows):
            return i
    return n


def _forward(model: Any, keep: int, **inputs: Any) -> Any:
    """``model(**inputs)``, computing only the last ``keep`` columns' logits where the model
    supports ``logits_to_keep`` (transformers' causal LMs do; the full vocabulary for every
    prompt column would cost more than the rest of the pass)."""
    import inspect

    if "logits_to_keep" in inspect.signature(model.forward).parameters:
        inputs["logits_to_keep"] = keep
    return model(**inputs)


def sequence_logprobs(hf: Any, rows: Sequence[tuple[list[int], list[int]]]) -> list[float]:
    """log p(target | prompt), summed over the target tokens (natural log, fp32 log-softmax,
    float64 sums), for every ``(prompt ids, target ids)`` row, in ONE batched forward pass of
    ``hf.model``: rows are left-padded so their targets end in the same column, only the logits
    of the last columns are computed, and the token prefix all rows share (the chat template,
    instructions, the text's opening words) runs once, its key/value cache copied to every row."""
    import torch

    if not rows:
        return []
    if any(not target for _, target in rows) or any(not prompt for prompt, _ in rows):
        raise ValueError("every row needs a non-empty prompt and a non-empty target")
    fed = [list(prompt) + list(target[:-1]) for prompt, target in rows]  # the last token is only predicted
    keep = max(len(target) for _, target in rows)
    # the shared prefix must leave every row's predicting positions (its last len(target)) to
    # the second pass
    shared = min(_common_prefix(fed), min(len(f) - len(t) for f, (_, t) in zip(fed, rows)))
    model, device = hf.model, hf.device
    with torch.inference_mode():
        if len(rows) > 1 and shared >= _MIN_SHARED_PREFIX:
            head = torch.tensor([fed[0][:shared]], device=device)
            cache = _forward(model, 1, input_ids=head, use_cache=True).past_key_values
            cache.batch_repeat_interleave(len(rows))
            ids, rest_mask = _left_pad([f[shared:] for f in fed], hf.pad_id, device)
            ones = torch.ones((len(rows), shared), dtype=rest_mask.dtype, device=device)
            mask = torch.cat([ones, rest_mask], dim=1)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, shared:]
            out = _forward(model, keep, input_ids=ids, attention_mask=mask, position_ids=positions,
                           past_key_values=cache, use_cache=True)
        else:
            ids, mask = _left_pad(fed, hf.pad_id, device)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            out = _forward(model, keep, input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False)
        logp = torch.log_softmax(out.logits[:, -keep:, :].float(), dim=-1)
        totals = []
        for b, (_, target) in enumerate(rows):
            columns = torch.arange(keep - len(target), keep, device=logp.device)
            tokens = torch.tensor(target, device=logp.device)
            totals.append(float(logp[b, columns, tokens].double().sum()))
    return totals


# -- attribution -----------------------------------------------------------------------------------


class Scorer:
    """f(presence vector) = log p(target | prompt built from the kept words), the function
    captum perturbs. Coalitions already scored are answered from memory (Shapley sampling revisits
    the empty and the full input in every permutation)."""

    def __init__(self, hf: Any, features: Features, prompt_for: Callable[[str], list[int]], target: list[int]) -> None:
        self.hf, self.features, self.prompt_for, self.target = hf, features, prompt_for, list(target)
        self.memo: dict[tuple[bool, ...], float] = {}
        self.rows_scored = 0
        self.forward_passes = 0

    def __call__(self, presence: Any) -> Any:
        import torch

        keeps = [tuple(bool(v > 0.5) for v in row) for row in presence.detach().cpu().tolist()]
        todo = list(dict.fromkeys(k for k in keeps if k not in self.memo))
        if todo:
            rows = [(self.prompt_for(self.features.compose(k)), self.target) for k in todo]
            self.memo.update(zip(todo, sequence_logprobs(self.hf, rows)))
            self.rows_scored += len(todo)
            self.forward_passes += 1
        return torch.tensor([self.memo[k] for k in keeps], dtype=torch.float64, device=presence.device)


def attribute(
    hf: Any,
    features: Features,
    prompt_for: Callable[[str], list[int]],
    target: list[int],
    method: str = "feature_ablation",
    *,
    perturbations_per_eval: int = 16,
    shapley_samples: int = 10,
    seed: int = 0,
) -> tuple[np.ndarray, Scorer]:
    """Attribution of log p(``target`` | ``prompt_for(text)``) to each word of ``features``
    (baseline: the word removed), with captum. Returns one value per word and the scorer (its
    memo holds every log-probability computed; ``memo[(True,) * n]`` is the unperturbed one)."""
    import torch
    from captum.attr import FeatureAblation, ShapleyValueSampling

    if method not in METHODS:
        raise UserInputError(f"unknown attribution method {method!r}; accepted: {', '.join(METHODS)}")
    n = len(features.words)
    scorer = Scorer(hf, features, prompt_for, target)
    if n == 0:
        return np.zeros(0), scorer
    presence = torch.ones((1, n), dtype=torch.float32)
    mask = torch.arange(n).unsqueeze(0)  # one feature per word (the word's sub-word tokens go together)
    if method == "feature_ablation":
        result = FeatureAblation(scorer).attribute(
            presence, baselines=0.0, feature_mask=mask, perturbations_per_eval=perturbations_per_eval,
        )
    else:
        with torch.random.fork_rng(devices=[]):  # captum draws permutations from torch's global RNG
            torch.manual_seed(seed)
            result = ShapleyValueSampling(scorer).attribute(
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
    from sce_checks.prompts import grid as grid_prompts
    from sce_checks.prompts import text as text_prompts

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


def _explanation_target(hf: Any, conversation: Conversation, explanation: str) -> list[int]:
    """The explanation's tokens as the template writes them for that assistant reply, without
    the end-of-turn token."""
    prompt = hf.prompt_ids(conversation)
    tokens = list(hf.continuation_ids(conversation, explanation, prompt))
    stops = set(hf.stop_ids())
    while tokens and tokens[-1] in stops:
        tokens.pop()
    return tokens


def _require_captum() -> None:
    try:
        import captum.attr  # noqa: F401
    except ImportError as exc:
        raise UserInputError(
            f"the self-consistency check needs captum, which is not importable ({exc}); install it with: "
            "pip install 'captum>=0.8,<1'"
        ) from None


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
    for grid tasks, as `task_examples` gives them). Stages and attributed examples show on the
    installed progress bar (`sce_checks.progress`). Raises `AttributionUnsupported` for backends
    without weights, before any model call."""
    hf = hf_backend(model)
    _require_captum()
    subjects = _subjects(task, examples)
    name = task.name

    inputs = [x for _, x in examples]
    conversation_of = {x: s.prediction_conversation for x, s in zip(inputs, subjects)}
    predictor = Predictor.from_settings(model, task.options, conversation_of.__getitem__, settings)
    with step(f"{name}: predicting {len(subjects)} examples", len(subjects)):
        preds = predictor.predict(inputs)

    asks = [(s, explanation_conversation(s.prediction_conversation, p.reply))
            for s, p in zip(subjects, preds) if p.label is not None]
    with step(f"{name}: requesting {len(asks)} explanations", len(asks)):
        replies = model.chat([c for _, c in asks], Decoding(max_new_tokens=settings.explanation_tokens)) if asks else []
    explanation_of = {s.id: (conv, reply) for (s, conv), reply in zip(asks, replies)}

    records: list[ExampleRecord] = []
    skipped: Counter[str] = Counter()
    undefined: Counter[str] = Counter()
    rows_scored = forward_passes = 0
    seconds = 0.0
    todo = [s for s in subjects if s.id in explanation_of]
    with step(f"{name}: attributing {len(todo)} examples ({settings.method})", len(todo)):
        for subject, pred in zip(subjects, preds):
            rec = ExampleRecord(id=subject.id, input=subject.input, prediction=pred.label, target=None,
                                counterfactual=None, cf_prediction=None, valid=None, distance=None,
                                min_distance=None, prediction_reply=pred.reply)
            records.append(rec)
            if pred.label is None:
                rec.unparsed = f"prediction: {pred.reason}"
                skipped["prediction unparsed"] += 1
                continue
            conversation, explanation = explanation_of[subject.id]
            rec.extra["explanation"] = explanation
            words = subject.features.words
            rec.extra["words"] = list(words)
            target_e = _explanation_target(hf, conversation, explanation) if explanation.strip() else []
            if not target_e:
                rec.unparsed = "explanation: empty reply"
                skipped["no explanation generated"] += 1
                advance(1)
                continue
            if not words:
                rec.unparsed = "input: no words to attribute"
                skipped["no words to attribute"] += 1
                advance(1)
                continue
            started = time.perf_counter()
            decision_prompt = subject.prediction_conversation
            target_d = hf.continuation_ids(decision_prompt, canonical_answer(pred.label), hf.prompt_ids(decision_prompt))
            common = dict(perturbations_per_eval=settings.perturbations_per_eval,
                          shapley_samples=settings.shapley_samples, seed=settings.seed)
            attr_d, scorer_d = attribute(
                hf, subject.features, lambda s: hf.prompt_ids(subject.conversation_for(s)), target_d,
                settings.method, **common)
            attr_e, scorer_e = attribute(
                hf, subject.features,
                lambda s: hf.prompt_ids(explanation_conversation(subject.conversation_for(s), pred.reply)),
                target_e, settings.method, **common)
            seconds += time.perf_counter() - started
            rows_scored += scorer_d.rows_scored + scorer_e.rows_scored
            forward_passes += scorer_d.forward_passes + scorer_e.forward_passes
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
                "explanation_n_tokens": len(target_e),
            })
            for label, score in (("l1_dot", dot), ("spearman", rho)):
                if score.degenerate:
                    rec.extra[f"{label}_undefined"] = score.reason
                    undefined[label] += 1
            advance(1)

    scored = [r for r in records if "l1_dot" in r.extra]
    l1 = [r.extra["l1_dot"] for r in scored]
    rhos = [r.extra["spearman"] for r in scored]
    figures = {
        "mean_l1_dot": mean_or_none(l1),
        "median_l1_dot": median_or_none(l1),
        "mean_spearman": mean_or_none(rhos),
        "median_spearman": median_or_none(rhos),
        "n_scored": len(scored),
        "n_skipped": sum(skipped.values()),
        "n_l1_dot_undefined": undefined["l1_dot"],
        "n_spearman_undefined": undefined["spearman"],
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
        "skipped_reasons": dict(skipped),
        "sequences_scored": rows_scored,
        "forward_passes": forward_passes,
        "attribution_seconds": round(seconds, 3),
    }
    return CheckResult("self_consistency", model_spec, name, settings.method, len(records), figures, records, info)



# -- the check, for the registry (sce_checks/checks/base.py) ------------------------------------------

class SelfConsistencyCheck(Check):
    name = "self_consistency"
    question = "decision and explanation attributed to the same input words (Admoni et al. 2025; captum)"
    settings = SelfConsistencySettings
    counts = ("n_scored",)
    reads_settings = ("attribution",)
    figures = (
        Figure("mean_spearman", "higher", headline=True),
        Figure("mean_l1_dot", "higher", headline=True),
        Figure("median_spearman", None),
        Figure("median_l1_dot", None),
        Figure("n_scored", None), Figure("n_skipped", None),
        Figure("n_l1_dot_undefined", None), Figure("n_spearman_undefined", None),
    )

    def settings_from(self, spec: Any, **fixed: Any) -> SelfConsistencySettings:
        """The run's ``attribution`` setting is this check's ``method``."""
        fixed.setdefault("method", spec.attribution)
        return super().settings_from(spec, **fixed)

    def applies(self, task: Any, model: ChatModel, settings: SelfConsistencySettings) -> str | None:
        try:
            hf_backend(model)
        except CheckNotApplicable as exc:
            return str(exc)
        return None

    def run(self, model: ChatModel, model_name: str, task: Any, examples: Sequence[tuple[str, Any]],
            settings: SelfConsistencySettings, shared: dict[str, Any]) -> list[CheckResult]:
        return [run_self_consistency(model, model_name, task, examples, settings)]
