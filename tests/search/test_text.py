"""sce_checks.search.text: the bounded minimal-edit search on free text and the redundancy of an
SCE's changes (after CARLA's redundancy metric), through the SCE check on a rule model and directly
with prediction callables.

"a bad film" (10 chars) -> "a good film" (11 chars): character edit distance 3, normalised by the
longer length: 3/11. "not a bad film today" (20 chars) -> "not a bad": 11 characters deleted,
11/20; -> "not bad": 13 deleted, 13/20.
"""

from __future__ import annotations

import re

import pytest

from sce_checks.errors import BackendError
from sce_checks.search.text import redundancy, search_minimal_edit, single_edits
from tests.helpers.text_models import sentiment_rule
from tests.helpers.text_models import run_mini as run


def test_redundant_change_is_found():
    r = run("swap_plus")
    # "a good film indeed": reverting "good" gives "a bad film indeed" (negative: needed);
    # reverting " indeed" gives "a good film" (still positive: not needed) -> 1 of 2 redundant.
    a = r.examples[0]
    assert a.valid and a.extra["n_changes"] == 2 and a.extra["n_redundant_changes"] == 1
    assert r["redundancy"] == pytest.approx(0.5)


def test_reference_search_finds_the_antonym_swap():
    r = run("swap_plus", text_search_budget=50)
    a = r.examples[0]
    assert a.reference == "a good film" and a.min_distance == pytest.approx(3 / 11)
    # the SCE "a good film indeed" is 10 edits from "a bad film" over 18 chars
    assert a.extra["minimality_gap"] == pytest.approx(10 / 18 - 3 / 11)
    assert r["reference_found_rate"] == 1.0


# --- direct calls with prediction callables ---------------------------------------------------


class Labels:
    """``labels(texts)`` by the text rule model's rule, recording each batch."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def __call__(self, texts):
        self.batches.append(list(texts))
        return [sentiment_rule(t) for t in texts]


def test_redundancy_asks_one_batch_of_reverted_texts() -> None:
    labels = Labels()
    assert redundancy(labels, "a bad film", "a good film indeed", "positive") == (2, 1)
    assert labels.batches == [["a bad film indeed", "a good film"]]
    # one change: reverting it gives the original back, so the model is not asked
    assert redundancy(labels, "a bad film", "a good film", "positive") == (1, 0) and len(labels.batches) == 1


def test_search_with_labels_only_finds_the_antonym_swap() -> None:
    labels = Labels()
    hit = search_minimal_edit(lambda texts: [(label, None) for label in labels(texts)], "a bad film", "positive", 50)
    assert hit.text == "a good film" and hit.distance == pytest.approx(3 / 11)
    # one batch: the four single edits of "a bad film", closest first (2/10, 3/11, 4/10, 5/10)
    assert labels.batches == [["bad film", "a good film", "a film", "a bad"]] and hit.evaluated == 4


def kept(text: str) -> set[str]:
    """Which of "film" and "today" the text still has."""
    return {"film", "today"} & set(re.findall(r"\w+", text))


def test_search_beam_follows_the_target_probability_when_there_is_one() -> None:
    # The rule: positive iff neither "film" nor "today" is left; no single edit drops both. By
    # character distance the beam keeps the four closest single edits, none of which dropped
    # either word, so the first hit comes at depth 3 ("not bad"); by the target's probability
    # (0.9 for a text missing one of the words) it keeps "not a bad today" and "not a bad film",
    # and depth 2 finds "not a bad".
    text = "not a bad film today"
    assert single_edits(text) == ["a bad film today", "not bad film today", "not a film today",
                                  "not a good film today", "not a bad today", "not a bad film"]

    def label(t: str) -> str:
        return "negative" if kept(t) else "positive"

    def probability(t: str) -> float:
        return 0.9 if len(kept(t)) < 2 else 0.1

    batches: list[int] = []

    def predict(with_probs: bool):
        def call(texts):
            batches.append(len(texts))
            return [(label(t), {"positive": probability(t)} if with_probs else None) for t in texts]
        return call

    by_distance = search_minimal_edit(predict(False), text, "positive", 100)
    assert by_distance.text == "not bad" and by_distance.distance == pytest.approx(13 / 20)
    assert len(batches) == 3 and batches[0] == 6
    batches.clear()
    by_probability = search_minimal_edit(predict(True), text, "positive", 100)
    assert by_probability.text == "not a bad" and by_probability.distance == pytest.approx(11 / 20)
    assert len(batches) == 2 and batches[0] == 6 and by_probability.evaluated == sum(batches)


def test_a_callable_that_answers_too_few_is_a_backend_error() -> None:
    with pytest.raises(BackendError, match="returned 1 answers for 2 texts"):
        redundancy(lambda texts: ["positive"], "a bad film", "a good film indeed", "positive")
    with pytest.raises(BackendError, match="returned 0 answers for 4 texts"):
        search_minimal_edit(lambda texts: [], "a bad film", "positive", 50)
