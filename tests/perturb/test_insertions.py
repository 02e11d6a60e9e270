"""sce_checks.perturb.insertions: the CT insertion test's slots and draws (Atanasova et al. 2023).
Exact expected values, so the tests can fail."""

from __future__ import annotations

import pytest

from sce_checks.metrics.text_distance import words as word_tokens
from sce_checks.perturb.insertions import insertion_candidates, insertion_slots, sample_insertions
from sce_checks.perturb.tagging import tag_words
from sce_checks.perturb.wordlists import adjective_list, adverb_list
from tests.perturb.inputs import REVIEW


def test_insertion_candidates_exact() -> None:
    text = "I loved the film."
    got = insertion_candidates(text, ["big", "old"], ["really"])
    assert [(e.kind, e.start, e.new, e.position, e.target, e.word) for e in got] == [
        ("insert_adverb", 2, "really ", 1, "loved", "really"),
        ("insert_adjective", 12, "big ", 3, "film", "big"),
        ("insert_adjective", 12, "old ", 3, "film", "old"),
    ]
    assert [e.apply(text) for e in got] == ["I really loved the film.", "I loved the big film.", "I loved the old film."]


def test_insertions_go_before_nouns_and_verbs_and_keep_the_rest() -> None:
    cands = insertion_candidates(REVIEW)
    roles = {t.word.index: t.role for t in tag_words(REVIEW)}
    adjectives, adverbs = set(adjective_list()), set(adverb_list())
    assert {(e.position, e.target) for e in cands} == {(1, "loved"), (3, "film"), (6, "friend"), (7, "watched"), (9, "story")}
    assert len(cands) == 3 * len(adjectives) + 2 * len(adverbs)
    for e in cands:
        out = e.apply(REVIEW)
        assert out[:e.start] == REVIEW[:e.start] and out[e.start + len(e.new):] == REVIEW[e.start:]
        assert e.new == e.word + " "
        if e.kind == "insert_adjective":
            assert roles[e.position] == "NOUN" and e.word in adjectives
        else:
            assert roles[e.position] == "VERB" and e.word in adverbs
        assert word_tokens(out) == word_tokens(REVIEW)[:e.position] + [e.word] + word_tokens(REVIEW)[e.position:]


def test_insertion_skips_capitalised_sentence_start_and_keeps_articles_right() -> None:
    assert insertion_slots("Movies bore me.") == []  # would need "Big movies": re-casing another word
    slots = insertion_slots("I saw an owl and a cat.", ["old", "big", "honest", "useful"], [])
    assert [(s.target, s.choices) for s in slots] == [("owl", ("old", "honest")), ("cat", ("big", "useful"))]


def test_sample_insertions_reproducible() -> None:
    first = sample_insertions(REVIEW, 5, seed=1)
    assert first == sample_insertions(REVIEW, 5, seed=1)
    assert first != sample_insertions(REVIEW, 5, seed=2)
    assert len(first) == 5 and len(set(first)) == 5 and set(first) <= set(insertion_candidates(REVIEW))
    small = insertion_candidates("I loved the film.", ["big"], ["really"])
    assert sample_insertions("I loved the film.", 10, seed=0, words_adj=["big"], words_adv=["really"]) == small
    assert sample_insertions("I loved the film.", 0, seed=0) == []
    with pytest.raises(ValueError):
        sample_insertions(REVIEW, -1, seed=0)
