"""Fresh-context predictions, batched and memoised.

Every check asks "what does the model answer on this input, in a new conversation?" many times,
often for the same input (an SCE that lands on an already-predicted grid point, the rings of the
boundary search). `Predictor` answers each distinct input once per audit.

Two ways to predict, chosen per backend (``mode="auto"``):
- *score*: the log-probability of each option's canonical reply ``{"answer": "<option>"}`` as the
  model's whole reply; the prediction is the arg-max. Exact and never unparsed.
- *generate*: greedy generation, then `parse_answer`; replies that name no option are unparsed
  (counted and reported, never guessed). Under structured elicitation (``elicitation="schema"``)
  the reply is constrained to ``{"answer": <one of the options>}`` (prompts/schemas.py).

Under ``auto``, an input whose option scores cannot decide it (a server that reads option tokens
from its top log-probabilities may find none: models/openai.py) is predicted again by generation,
and counted as such (`Predictor.fallbacks`), never left unparsed while a reading exists.

Under sampling (``temperature`` above 0, docs/sampling.md) a predictor also answers *sampled*
questions: the option distribution P_T at temperature T, exact from tempered option scores where
the backend has them (`supports_tempered_scoring`), and seeded draws, from P_T (`Sampling.draw`)
or, without tempered scores, by sampled generation (`Predictor.sampled`). Its plain answer
(`predict`) is then the *modal* answer: the arg-max of P_T with tempered scores, the usual
greedy or scored answer otherwise.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import dataclass, replace
from typing import Any, Callable, Hashable, Sequence

from sce_checks import progress
from sce_checks.choices import ELICITATIONS, PARSINGS, PREDICTIONS
from sce_checks.errors import UserInputError
from sce_checks.models.base import ChatModel, Conversation, Decoding, supports_scoring, supports_tempered_scoring
from sce_checks.parsing import REASONS, parse_answer, shorten
from sce_checks.prompts import grid, text
from sce_checks.prompts.common import canonical_answer
from sce_checks.prompts.schemas import answer_schema
from sce_checks.results import ExampleRecord


@dataclass(frozen=True)
class Prediction:
    label: str | None  # None: the reply named no option
    reply: str  # the raw reply (generate) or the canonical reply of the arg-max (score)
    reason: str | None = None  # why unparsed
    probs: dict[str, float] | None = None  # option distribution (score mode), renormalised
    code: str | None = None  # reason code (sce_checks.parsing.REASONS) when unparsed
    lenient: tuple[str, ...] = ()  # leniency rules the reading of a generated reply needed
    source: str = "score"  # "score", "generate", "fallback" (generated: the scores could not decide), "sampled"
    raw: str | None = None  # the offending part of the reply or scores, shortened (never in ``reason``)


@dataclass(frozen=True)
class Sampling:
    """How replies are decoded (docs/sampling.md): greedy at ``temperature`` 0 (the default, every
    figure as before), else sampled at ``temperature`` and ``top_p``, each reply with its own seed
    derived from ``seed`` (`Decoding.seed`; the backend derives the reply's own seed from it, the
    sample index and the conversation: `conversation_seed`). ``samples``: SCEs per example and
    target (K); ``prediction_samples``: sampled re-predictions per SCE when answers are generated (M)."""

    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    samples: int = 1
    prediction_samples: int = 1

    @classmethod
    def of(cls, settings: Any) -> "Sampling":
        """The sampling of a check's settings (greedy for settings without these fields)."""
        return cls(float(getattr(settings, "temperature", 0.0)), float(getattr(settings, "top_p", 1.0)),
                   getattr(settings, "seed", 0), getattr(settings, "samples", 1), getattr(settings, "prediction_samples", 1))

    @property
    def on(self) -> bool:
        return self.temperature > 0

    def decoding(self, base: Decoding, sample: int) -> Decoding:
        """``base`` as sample ``sample`` draws it: unchanged when greedy (the cache keys of greedy
        audits stay what they were), else at the temperature, with the run's seed."""
        if not self.on:
            return base
        return replace(base, temperature=self.temperature, top_p=self.top_p, seed=self.seed, sample=sample)

    def draw_seed(self, sample: int, purpose: str, key: Any) -> int:
        """The seed of one draw from an option distribution: a hash of the run's seed, the sample
        index, what is drawn (``purpose``: "answer" or "re-prediction") and ``key`` (the task, the
        example, the variant, the point), as `conversation_seed` derives a reply's seed: a rerun
        draws the same, another --seed draws anew. A 63-bit non-negative integer."""
        text = json.dumps([self.seed, sample, purpose, key], ensure_ascii=False, sort_keys=True, default=str,
                          separators=(",", ":"))
        return int.from_bytes(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:8], "big") >> 1

    def draw(self, options: Sequence[str], probs: dict[str, float], sample: int, purpose: str, key: Any) -> str:
        """One option drawn from ``probs`` with the seed `draw_seed` gives: the first option (in the
        task's order) whose cumulative probability exceeds a seeded uniform number."""
        u = random.Random(self.draw_seed(sample, purpose, key)).random()
        total = 0.0
        for option in options:
            total += probs.get(option, 0.0)
            if u < total:
                return option
        return max(options, key=lambda o: probs.get(o, 0.0))  # rounding left u above the last sum


class Predictor:
    """Memoised fresh-context predictions for one (model, task)."""

    def __init__(
        self,
        model: ChatModel,
        options: Sequence[str],
        conversation_for: Callable[[Any], Conversation],
        mode: str = "auto",
        max_new_tokens: int = 48,
        elicitation: str = "free",
        parsing: str = "lenient",
        sampling: Sampling = Sampling(),
    ) -> None:
        if mode not in PREDICTIONS:
            raise ValueError(f"prediction mode must be one of {PREDICTIONS}, not {mode!r}")
        can_score = mode != "generate" and supports_scoring(model)  # generate: no need to probe a server
        if mode == "score" and not can_score:
            raise UserInputError("prediction mode 'score' needs a backend with option scoring; this one has none (use 'auto' or 'generate')")
        # Under sampling, option scores give the answer distribution P_T only when they take the
        # temperature; otherwise answers are sampled by generation (docs/sampling.md).
        self.tempered = sampling.on and can_score and supports_tempered_scoring(model)
        if sampling.on and mode == "score" and not self.tempered:
            raise UserInputError(f"prediction mode 'score' at temperature {sampling.temperature:g} needs option scores "
                                 "that take a temperature; this backend's do not (use 'auto' or 'generate')")
        self.sampling = sampling
        self.draws_by = None if not sampling.on else "scores" if self.tempered else "generation"
        self._sampled: dict[tuple[Hashable, int], Prediction] = {}
        self.model = model
        self.options = tuple(options)
        self.conversation_for = conversation_for
        self.mode = "score" if (mode == "score" or (mode == "auto" and can_score)) else "generate"
        self.fallback = mode == "auto"  # generate what the scores cannot decide
        self.strict = parsing == "strict"
        decoding = Decoding(temperature=0.0, max_new_tokens=max_new_tokens)
        self.decoding = decoding.with_schema(answer_schema(self.options)) if elicitation == "schema" else decoding
        self._memo: dict[Hashable, Prediction] = {}
        self.requested = 0  # distinct inputs sent to the model
        self.fallbacks = 0  # of those, predicted by generation because their scores could not decide

    @classmethod
    def from_settings(cls, model: ChatModel, options: Sequence[str], conversation_for: Callable[[Any], Conversation],
                      settings: Any) -> "Predictor":
        """A predictor reading ``prediction``, ``answer_tokens``, ``elicitation`` and ``parsing``
        from a check's settings."""
        return cls(model, options, conversation_for, settings.prediction, settings.answer_tokens,
                   getattr(settings, "elicitation", "free"), getattr(settings, "parsing", "lenient"),
                   Sampling.of(settings))

    def __len__(self) -> int:
        return len(self._memo)

    def known(self, x: Hashable) -> Prediction | None:
        return self._memo.get(x)

    def predict(self, inputs: Sequence[Hashable]) -> list[Prediction]:
        todo = list(dict.fromkeys(x for x in inputs if x not in self._memo))
        progress.advance(len(set(inputs)) - len(todo))  # known already: no model work
        if todo:
            self.requested += len(todo)
            conversations = [self.conversation_for(x) for x in todo]
            if self.mode == "score":
                replies = [canonical_answer(o) for o in self.options]
                if self.tempered:  # P_T: the distribution a sampler at temperature T answers from
                    scores = self.model.score_options(conversations, replies,  # type: ignore[attr-defined]
                                                      temperature=self.sampling.temperature)
                else:
                    scores = self.model.score_options(conversations, replies)  # type: ignore[attr-defined]
                fresh = [self._from_scores(s) for s in scores]
                undecided = [i for i, p in enumerate(fresh) if p.label is None] if self.fallback else []
                if undecided:
                    self.fallbacks += len(undecided)
                    generated = self.model.chat([conversations[i] for i in undecided], self.decoding)
                    for i, reply in zip(undecided, generated):
                        fresh[i] = self._from_reply(reply, "fallback")
            else:
                fresh = [self._from_reply(r, "generate") for r in self.model.chat(conversations, self.decoding)]
            self._memo.update(zip(todo, fresh))
        return [self._memo[x] for x in inputs]

    def sampled(self, requests: Sequence[tuple[Hashable, int]]) -> list[Prediction]:
        """Generated answers sampled at the temperature, one per (input, sample index), memoised:
        one chat call per sample index (a batch shares its `Decoding`), each reply seeded by the
        backend from the run's seed, the sample index and the conversation."""
        todo = list(dict.fromkeys(r for r in requests if r not in self._sampled))
        for sample in sorted({j for _, j in todo}):
            inputs = [x for x, j in todo if j == sample]
            decoding = self.sampling.decoding(self.decoding, sample)
            replies = self.model.chat([self.conversation_for(x) for x in inputs], decoding)
            self._sampled.update({(x, sample): self._from_reply(r, "sampled") for x, r in zip(inputs, replies)})
        return [self._sampled[r] for r in requests]

    def labels(self, inputs: Sequence[Hashable]) -> list[str | None]:
        return [p.label for p in self.predict(inputs)]

    def _from_reply(self, reply: str, source: str) -> Prediction:
        parsed = parse_answer(reply, self.options, self.strict)
        return Prediction(parsed.value, reply, parsed.reason, code=parsed.code, lenient=parsed.lenient, source=source,
                          raw=parsed.raw)

    def _from_scores(self, scores: Sequence[float]) -> Prediction:
        return prediction_from_scores(self.options, scores)

    def leniency(self) -> dict[str, int]:
        """How many generated predictions of this audit each leniency rule read."""
        counts: dict[str, int] = {}
        for p in [*self._memo.values(), *self._sampled.values()]:
            for rule in p.lenient:
                counts[rule] = counts.get(rule, 0) + 1
        return counts


def task_predictor(model: ChatModel, task: Any, settings: Any) -> Predictor:
    """A `Predictor` asking the task kind's canonical prediction prompt (prompts/grid.py or
    prompts/text.py): what every check means by "the model's answer on this input"."""

    prompts = grid if task.kind == "grid" else text
    return Predictor.from_settings(model, task.options, lambda x: prompts.prediction_conversation(task, x), settings)


def prediction_record(example_id: str, shown: Any, pred: Prediction) -> ExampleRecord:
    """The record of a check that makes no SCE: the prediction on the input, the SCE contract
    fields left empty, the reason when unparsed and the option distribution when scored."""
    rec = ExampleRecord(id=example_id, input=shown, prediction=pred.label, target=None, counterfactual=None,
                        cf_prediction=None, valid=None, distance=None, min_distance=None, prediction_reply=pred.reply)
    if pred.label is None:
        mark_unparsed(rec, "prediction", pred)
    if pred.probs is not None:
        rec.extra["prediction_probs"] = pred.probs
    return rec


def mark_unparsed(rec: ExampleRecord, stage: str, reading: Any) -> None:
    """Note on ``rec`` why ``reading`` (a `Parsed` or a `Prediction`) went unparsed: the readable
    reason (``unparsed``), its code, and apart from both the offending part of the reply."""
    rec.unparsed = f"{stage}: {reading.reason}"
    rec.extra["unparsed_code"] = reading.code
    if reading.raw is not None:
        rec.extra["unparsed_value"] = reading.raw


def validate_settings(settings: Any, positive: Sequence[str]) -> None:
    """The validation every check's settings share: a known prediction mode, an integer seed
    (where the settings have one) and positive integers for the fields named in ``positive``."""

    if settings.prediction not in PREDICTIONS:
        raise UserInputError(f"prediction must be one of {', '.join(PREDICTIONS)}, not {settings.prediction!r}")
    for name, allowed in (("elicitation", ELICITATIONS), ("parsing", PARSINGS)):
        value = getattr(settings, name, allowed[0])
        if value not in allowed:
            raise UserInputError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    seed = getattr(settings, "seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UserInputError(f"seed must be an integer, got {seed!r}")
    for name in positive:
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserInputError(f"{name} must be a positive integer, got {value!r}")


def prediction_from_scores(options: Sequence[str], scores: Sequence[float]) -> Prediction:
    """Arg-max of option log-probabilities, with the renormalised option distribution. Ties go to
    the first option listed (documented; exact ties are vanishingly rare in fp32). Scores are
    backend data: anything but one real number per option, none of them +inf (a bool, a string,
    an integer too large for a float), is ``bad_scores``, never an exception."""
    try:
        real = len(scores) == len(options) and all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in scores)
        values = [float(s) for s in scores] if real else None
    except (TypeError, OverflowError):
        values = None
    if values is None or math.inf in values:
        return Prediction(None, "", REASONS["bad_scores"], code="bad_scores", raw=shorten(scores, 200))
    finite = [s for s in values if not math.isnan(s)]
    if not finite or max(finite) == -math.inf:
        return Prediction(None, "", REASONS["no_finite_score"], code="no_finite_score")
    top = max(finite)
    weights = [math.exp(s - top) if not math.isnan(s) else 0.0 for s in values]
    total = sum(weights)
    probs = {o: w / total for o, w in zip(options, weights)}
    best = max(range(len(options)), key=lambda i: (values[i], -i))
    return Prediction(options[best], canonical_answer(options[best]), None, probs)
