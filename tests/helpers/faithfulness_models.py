"""Python-callable models with known decisions and known explanations, for the counterfactual
faithfulness tests (CT, CCT, phi-CCT). Like tests/helpers/text_models.py they read the input back
out of the real prompts, so the prompts, parsing, batching and metrics all run for real.

Text models: the base decision is "positive" iff the text holds one of POSITIVE_WORDS, else
"negative"; certain inserted words flip it. Explanations follow a policy:

* ``name``: names every word of ``named`` that is in the text ("The word 'purple' decided it."),
  else a fixed sentence that names nothing (`NOTHING`);
* ``never``: always `NOTHING`;
* ``echo``: repeats the whole input text (so it mentions every word, flipping or not).
"""

from __future__ import annotations

import json
import math
import re
from typing import Callable, Iterable, Mapping

from tests.helpers.rule_models import read_record

POSITIVE_WORDS = frozenset({"good", "great", "fun"})
NOTHING = "It reads that way overall."  # shares no substring with the test word lists
_TEXT = re.compile(r'Text: ("(?:[^"\\]|\\.)*")')


def read_text(conversation) -> str:
    """The text the prediction prompt (the conversation's first turn) asks about."""
    return json.loads(_TEXT.findall(conversation[0]["content"])[-1])


def words_of(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def explain(policy: str, text: str, named: Iterable[str]) -> str:
    if policy == "echo":
        return f"Because the text says: {text}"
    if policy == "never":
        return NOTHING
    if policy != "name":
        raise ValueError(policy)
    found = [w for w in words_of(text) if w in set(named)]
    return " ".join(f"The word '{w}' decided it." for w in found) if found else NOTHING


class InsertionModel:
    """Generate mode only (no ``score_options``): flips its base decision when the text holds a
    word of ``flip_words``; replies with no JSON at all to a prediction prompt whose text holds
    a word of ``garble_words`` (an unparsed prediction). ``named`` defaults to ``flip_words``."""

    def __init__(self, flip_words: Iterable[str], explain: str = "name", named: Iterable[str] | None = None,
                 garble_words: Iterable[str] = ()):
        self.flip_words = frozenset(flip_words)
        self.policy = explain
        self.named = frozenset(self.flip_words if named is None else named)
        self.garble_words = frozenset(garble_words)
        self.chat_batches: list[int] = []  # conversations per chat call
        self.score_batches: list[int] = []

    def identity(self):
        return {"backend": "python", "model": f"insertion/{self.policy}"}

    def label(self, text: str) -> str:
        words = set(words_of(text))
        base = "positive" if words & POSITIVE_WORDS else "negative"
        if words & self.flip_words:
            return "negative" if base == "positive" else "positive"
        return base

    def chat(self, conversations, decoding):
        self.chat_batches.append(len(conversations))
        out = []
        for conv in conversations:
            text = read_text(conv)
            if len(conv) == 1:
                if set(words_of(text)) & self.garble_words:
                    out.append("I am not sure.")
                else:
                    out.append(json.dumps({"answer": self.label(text)}))
            else:
                out.append(explain(self.policy, text, self.named))
        return out


class ScoredInsertionModel(InsertionModel):
    """Adds ``score_options``: p(positive | text) = ``p_positive[w]`` for the first listed word
    w of the text (text order), else ``base``; p(negative) = 1 - p(positive). The prediction is
    then the arg-max, so a word flips the decision iff its p(positive) > 0.5."""

    def __init__(self, p_positive: Mapping[str, float], base: float = 0.2, explain: str = "name",
                 named: Iterable[str] | None = None):
        self.p_positive, self.base = dict(p_positive), base
        flips = {w for w, p in p_positive.items() if p > 0.5}
        super().__init__(flips, explain, flips if named is None else named)

    def probability(self, text: str) -> float:
        return next((self.p_positive[w] for w in words_of(text) if w in self.p_positive), self.base)

    def score_options(self, conversations, options):
        self.score_batches.append(len(conversations))
        rows = []
        for conv in conversations:
            p = self.probability(read_text(conv))
            by_option = {json.dumps({"answer": "positive"}): p, json.dumps({"answer": "negative"}): 1.0 - p}
            rows.append([math.log(by_option[o]) for o in options])
        return rows


class GridExplainModel:
    """A grid model deciding by ``rule`` and always explaining with ``explanation`` (which names
    whatever features the test wants named)."""

    def __init__(self, task, rule: Callable, explanation: str):
        self.task, self.rule, self.explanation = task, rule, explanation
        self.chat_batches: list[int] = []

    def identity(self):
        return {"backend": "python", "model": "grid-explain"}

    def chat(self, conversations, decoding):
        self.chat_batches.append(len(conversations))
        out = []
        for conv in conversations:
            if len(conv) == 1:
                out.append(json.dumps({"answer": self.rule(read_record(self.task, conv[0]["content"]))}))
            else:
                out.append(self.explanation)
        return out
