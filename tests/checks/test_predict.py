"""Fresh-context predictions (checks/predict.py): scoring, generation, and the generation fallback
for inputs whose option scores cannot decide them."""

from __future__ import annotations

import json
import math

from sce_checks.checks.predict import Predictor
from sce_checks.prompts.schemas import answer_schema

OPTIONS = ("No", "Yes")


class HalfScorer:
    """Scores inputs containing 'known'; gives -inf to every option of the others (as a server
    gives when no option token is among its top log-probabilities). Generates 'Yes' for all."""

    def __init__(self):
        self.chats = []

    def score_options(self, conversations, options):
        return [[-0.1, -2.0] if "known" in c[0]["content"] else [-math.inf, -math.inf] for c in conversations]

    def chat(self, conversations, decoding):
        self.chats.append((len(conversations), decoding.schema))
        return [json.dumps({"answer": "yes"}) for _ in conversations]


def conv(x):
    return [{"role": "user", "content": x}]


def test_auto_generates_what_the_scores_cannot_decide():
    model = HalfScorer()
    p = Predictor(model, OPTIONS, conv, "auto", elicitation="schema")
    preds = p.predict(["known 1", "lost 1", "known 2", "lost 2", "lost 1"])
    assert [x.label for x in preds] == ["No", "Yes", "No", "Yes", "Yes"]
    assert [x.source for x in preds] == ["score", "fallback", "score", "fallback", "fallback"]
    assert p.fallbacks == 2 and model.chats == [(2, answer_schema(OPTIONS))]  # one batch, constrained
    assert preds[1].lenient == ("normalised_label",) and p.leniency() == {"normalised_label": 2}


def test_score_mode_leaves_undecided_inputs_unparsed():
    model = HalfScorer()
    p = Predictor(model, OPTIONS, conv, "score")
    (known, lost) = p.predict(["known", "lost"])
    assert known.label == "No" and lost.label is None and lost.code == "no_finite_score"
    assert p.fallbacks == 0 and model.chats == []


def test_strict_parsing_of_generated_answers():
    model = HalfScorer()
    (pred,) = Predictor(model, OPTIONS, conv, "generate", parsing="strict").predict(["x"])
    assert pred.label is None and pred.code == "not_an_option" and pred.source == "generate"
    assert model.chats == [(1, None)]  # free elicitation: no schema
