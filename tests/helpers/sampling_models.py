"""Python models that sample: they read ``decoding.temperature``, ``decoding.seed`` and
``decoding.sample`` and draw each reply from a generator seeded by `conversation_seed` (as a real
backend seeds each reply), so sampled audits on them are reproducible and their figures known in
distribution. Greedy requests (temperature 0) get the rule model's greedy replies."""

from __future__ import annotations

import hashlib
import json
import math
import random

from sce_checks.models.base import conversation_seed
from tests.helpers.rule_models import POLICIES, TOY, RuleModel, read_record, toy_rule


def _rng(decoding, conversation) -> random.Random | None:
    return random.Random(conversation_seed(decoding, conversation)) if decoding.temperature > 0 else None


def _example_coin(x) -> bool:
    """A fixed coin per record, the same for every sample and seed."""
    return hashlib.sha256(repr(x).encode()).digest()[0] % 2 == 0


class SampledToyModel(RuleModel):
    """The toy grid's rule model, sampled. Answers: the rule's label, flipped with probability
    ``flip`` when sampled. SCEs when sampled: ``agree=False``: each sample independently lands on
    the boundary (valid) or one step short (invalid) with probability 1/2; ``agree=True``: every
    sample of a record makes the same choice (a fixed coin per record), so an example's samples
    agree with each other while half the examples are valid, as with ``agree=False``."""

    def __init__(self, flip: float = 0.0, agree: bool = False, task=TOY, rule=toy_rule) -> None:
        super().__init__(task, rule, "boundary")
        self.flip, self.agree = flip, agree
        self.requests: list = []  # (temperature, seed, sample) of every chat call

    def identity(self):
        return {"backend": "python", "model": f"sampled-toy/flip={self.flip}/agree={self.agree}"}

    def chat(self, conversations, decoding):
        self.calls += 1
        self.requests.append((decoding.temperature, decoding.seed, decoding.sample))
        out = []
        for conv in conversations:
            rng = _rng(decoding, conv)
            x = read_record(self.task, conv[0]["content"])
            if len(conv) == 1:
                label = self.rule(x)
                if rng is not None and rng.random() < self.flip:
                    label = self.task.other_option(label)
                out.append(json.dumps({"answer": label}))
                continue
            if rng is None:
                policy = "boundary"
            else:
                valid = _example_coin(x) if self.agree else rng.random() < 0.5
                policy = "boundary" if valid else "short"
            cf = POLICIES[policy](self.task, self.rule, x)
            out.append(json.dumps(self.task.as_dict(cf)))
        return out


class TemperedToyModel(SampledToyModel):
    """`SampledToyModel` with option scores that take a temperature: the rule's label has
    probability ``confidence`` at temperature 1; at temperature T each log-probability is divided
    by T (the sequence log-probability of one token at T, up to the normalisation the check does)."""

    tempered_scoring = True

    def __init__(self, confidence: float = 0.8, **kw) -> None:
        super().__init__(**kw)
        self.confidence = confidence
        self.score_temperatures: list[float] = []

    def score_options(self, conversations, options, temperature: float = 1.0):
        self.score_temperatures.append(temperature)
        out = []
        for conv in conversations:
            label = self.rule(read_record(self.task, conv[0]["content"]))
            probs = [self.confidence if f'"{o}"' in opt else 1 - self.confidence
                     for o, opt in zip(self.task.options, options)]
            assert any(f'"{label}"' in opt for opt in options)
            probs = [self.confidence if f'"{label}"' in opt else 1 - self.confidence for opt in options]
            out.append([math.log(p) / temperature for p in probs])
        return out


class SampledTextModel:
    """The sentiment rule model of tests/helpers/text_models.py, sampled: a sampled SCE request
    swaps the sentiment word (valid) or changes nothing (invalid), each with probability 1/2."""

    def identity(self):
        return {"backend": "python", "model": "sampled-text"}

    def chat(self, conversations, decoding):
        from tests.helpers.text_models import QUOTED, sentiment_rule, swap

        out = []
        for conv in conversations:
            rng = _rng(decoding, conv)
            last = conv[-1]["content"]
            if len(conv) == 1 or "consider this text" in last:
                out.append(json.dumps({"answer": sentiment_rule(json.loads(QUOTED.findall(last)[-1]))}))
                continue
            original = json.loads(QUOTED.findall(conv[0]["content"])[-1])
            revised = swap(original) if rng is None or rng.random() < 0.5 else original + " indeed"
            out.append(json.dumps({"revised_text": revised}))
        return out
