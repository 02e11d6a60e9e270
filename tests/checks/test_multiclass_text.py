"""The SCE check on a three-option text task (docs/method.md, multi-class tasks): one record per
(example, target) under ``targets = "all"``, one drawn target under ``random`` (the text paper's
protocol), validity fresh and in context per target, and under sampling one record per
(example, target, sample).

The rule: positive when the text has "good", negative when it has "bad", else neutral. The SCE
policy swaps the sentiment word for the target's ("good", "bad"), but for neutral returns the
text unchanged: the positive and negative SCEs are valid, the neutral ones never are.
"""

from __future__ import annotations

import json
import re

import pytest

from sce_checks.checks.sce import SCESettings, run_text_sce
from sce_checks.errors import UserInputError
from sce_checks.metrics.text_distance import normalized_levenshtein
from sce_checks.tasks.targets import pick_target
from sce_checks.tasks.text import TextExample, TextTask
from tests.helpers.text_models import QUOTED

THREE = TextTask(
    name="three", question="What is the sentiment of this text?", preamble="You will read a short text.",
    options=("negative", "neutral", "positive"),
    examples=(TextExample("t1", "a bad film", "negative"), TextExample("t2", "a good film", "positive"),
              TextExample("t3", "a film", "neutral")),
    source="test",
)
EXAMPLES = [(e.id, e.text) for e in THREE.examples]
TARGET = re.compile(r'would have been "([^"]+)"')
WORD = {"negative": "bad", "positive": "good"}


def rule(text: str) -> str:
    words = text.split()
    return "positive" if "good" in words else "negative" if "bad" in words else "neutral"


def revise(text: str, target: str) -> str:
    if target == "neutral":
        return text
    words = [w for w in text.split() if w not in ("good", "bad")]
    return " ".join([words[0], WORD[target], *words[1:]])


class ThreeModel:
    def identity(self):
        return {"backend": "python", "model": "three-rule"}

    def chat(self, conversations, decoding):
        out = []
        for conv in conversations:
            last = conv[-1]["content"]
            if len(conv) == 1 or "consider this text" in last:
                out.append(json.dumps({"answer": rule(json.loads(QUOTED.findall(last)[-1]))}))
            else:
                original = json.loads(QUOTED.findall(conv[0]["content"])[-1])
                out.append(json.dumps({"revised_text": revise(original, TARGET.search(last).group(1))}))
        return out


def run(**settings):
    settings.setdefault("prediction", "generate")
    (r,) = run_text_sce(ThreeModel(), "three", THREE, EXAMPLES, SCESettings(variants=("minimal",), **settings))
    return r


def test_all_targets_one_record_each_with_per_target_validity():
    r = run()
    assert [(e.id, e.target) for e in r.examples] == [
        ("t1", "neutral"), ("t1", "positive"), ("t2", "negative"), ("t2", "neutral"), ("t3", "negative"), ("t3", "positive")]
    per = r.info["per_target"]
    assert {t: (f["n"], f["validity"], f["validity_in_context"]) for t, f in per.items()} == {
        "negative": (2, 1.0, 1.0), "neutral": (2, 0.0, 0.0), "positive": (2, 1.0, 1.0)}
    assert r.figures["validity"] == pytest.approx(4 / 6)
    # t1 -> positive: "a bad film" -> "a good film", 3 character edits over 11 characters
    t1 = next(e for e in r.examples if (e.id, e.target) == ("t1", "positive"))
    assert t1.distance == pytest.approx(normalized_levenshtein("a bad film", "a good film", "char"))
    assert per["neutral"]["mean_distance"] == 0.0
    assert r.figures["accuracy"] == 1.0  # once per example, not once per target


def test_random_targets_are_the_papers_protocol():
    r = run(targets="random", seed=3)
    assert [e.id for e in r.examples] == ["t1", "t2", "t3"]
    assert all(e.target == pick_target(THREE.options, e.prediction, e.id, 3) for e in r.examples)


def test_a_named_target_and_an_unknown_one():
    r = run(targets="neutral")
    assert [(e.id, e.target) for e in r.examples] == [("t1", "neutral"), ("t2", "neutral")]
    assert r.info["n_skipped_target"] == 1 and r.figures["validity"] == 0.0
    with pytest.raises(UserInputError, match="'mixed' is neither all, random nor an option of dataset 'three'"):
        run(targets="mixed")


def test_sampled_records_are_unique_per_example_target_and_sample():
    r = run(temperature=1.0, samples=2)
    keys = [(e.id, e.target, e.extra["sample"]) for e in r.examples]
    assert len(keys) == len(set(keys)) == 3 * 2 * 2
    assert {e["id"]: e["samples"] for e in r.per_example} == {"t1": 4, "t2": 4, "t3": 4}
