"""Normalised Levenshtein distance, the closeness measure of Dehghanighobadi, Fischer and Zafar
(EMNLP 2025, arXiv 2502.18156): edit distance / length of the longer
text, here over characters or words."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sce_checks.metrics.text_distance import changed_words, levenshtein, normalized_levenshtein, words


def test_char_level_by_hand() -> None:
    # kitten -> sitting: k->s, e->i, insert g = 3 edits; longer length 7.
    assert levenshtein("kitten", "sitting") == 3
    assert normalized_levenshtein("kitten", "sitting") == pytest.approx(3 / 7)
    assert normalized_levenshtein("good", "bad", "char") == pytest.approx(3 / 4)  # g->b, o->a, delete o


def test_word_level_by_hand() -> None:
    # one word replaced out of four
    assert normalized_levenshtein("the film was good", "the film was bad", "word") == pytest.approx(1 / 4)
    # "The film was not good." has 6 tokens (punctuation is a token); one insertion
    assert normalized_levenshtein("The film was good.", "The film was not good.", "word") == pytest.approx(1 / 6)
    # whitespace differences are not edits at the word level, but are at the character level
    assert normalized_levenshtein("a  b", "a b", "word") == 0.0
    assert normalized_levenshtein("a  b", "a b", "char") == pytest.approx(1 / 4)


def test_empty_strings() -> None:
    assert normalized_levenshtein("", "") == 0.0
    assert normalized_levenshtein("", "", "word") == 0.0
    assert normalized_levenshtein("", "abc") == 1.0
    assert normalized_levenshtein("...", "", "word") == 1.0


def test_tokenisation_documented_pattern() -> None:
    assert words("The film wasn't good, really.") == ["The", "film", "wasn't", "good", ",", "really", "."]
    assert words("  ") == []


def test_bad_unit() -> None:
    with pytest.raises(ValueError, match="unit"):
        normalized_levenshtein("a", "b", "token")  # type: ignore[arg-type]


def test_changed_words() -> None:
    # original: the(0) film(1) was(2) good(3); revised: the movie was very good
    assert changed_words("the film was good", "the movie was very good") == [("replace", 1, 1), ("insert", 3, 3)]
    assert changed_words("a b c", "a c") == [("delete", 1, 1)]
    assert changed_words("same text", "same text") == []


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=30), st.text(max_size=30))
def test_properties(a: str, b: str) -> None:
    for unit in ("char", "word"):
        d = normalized_levenshtein(a, b, unit)
        assert 0.0 <= d <= 1.0
        assert d == normalized_levenshtein(b, a, unit)
    assert (normalized_levenshtein(a, b) == 0.0) == (a == b)
    # the number of word edits equals the word-level distance
    assert len(changed_words(a, b)) == levenshtein(a, b, "word")
