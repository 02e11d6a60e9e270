"""sce_checks.perturb.edits: words with exact spans, the Edit algebra (apply, describe, conflicts,
several edits of one text) and the edit kinds. Exact expected values, so the tests can fail."""

from __future__ import annotations

import pytest

from sce_checks.perturb.edits import (
    FAMILIES,
    KINDS,
    LABEL_PRESERVING_FAMILIES,
    Edit,
    apply_edits,
    conflicts,
    match_case,
    perturb,
    word_spans,
)
from sce_checks.perturb.families import synonym_candidates, typo_candidates
from sce_checks.perturb.insertions import insertion_candidates


def test_word_spans_keep_exact_character_spans() -> None:
    text = "The film  wasn't good, really."
    spans = word_spans(text)
    assert [(w.text, w.start, w.end, w.index) for w in spans] == [
        ("The", 0, 3, 0), ("film", 4, 8, 1), ("wasn't", 10, 16, 2), ("good", 17, 21, 3), ("really", 23, 29, 4),
    ]
    assert all(text[w.start:w.end] == w.text for w in spans)


def test_edit_apply_describe_and_mismatch() -> None:
    edit = Edit("insert_adjective", 4, 4, "", "big ", 1, "dog", "big")
    assert edit.apply("the dog barks") == "the big dog barks"
    assert edit.describe() == "insert an adjective before a noun: '' -> 'big ' at chars 4-4, word 1 ('dog')"
    assert edit.family == "insertion" and edit.label_preserving is False
    with pytest.raises(ValueError, match="does not apply"):
        Edit("typo_swap", 4, 7, "dog", "odg", 1, "dog", "odg").apply("the cat barks")
    with pytest.raises(ValueError, match="unknown edit kind"):
        Edit("shout", 0, 0, "", "!", 0)
    with pytest.raises(ValueError, match="does not fit"):
        Edit("typo_swap", 0, 2, "dog", "odg", 0)


def test_kinds_declare_what_they_preserve() -> None:
    assert set(FAMILIES) == {k.family for k in KINDS.values()}
    for kind in KINDS.values():
        assert kind.label_preserving == (kind.family != "insertion"), kind.name
        assert kind.preserves and kind.summary
    assert set(LABEL_PRESERVING_FAMILIES) == set(FAMILIES) - {"insertion"}


def test_apply_several_edits_and_conflicts() -> None:
    text = "I loved the film"
    typo, synonym = typo_candidates(text)[0], synonym_candidates(text)[0]
    assert (typo.new, synonym.new) == ("olved", "movie")
    assert apply_edits(text, [synonym, typo]) == "I olved the movie"
    insertion = insertion_candidates(text, ["big"], [])[0]  # before "film": touches the synonym's span
    assert conflicts(insertion, synonym) and conflicts(synonym, insertion)
    assert not conflicts(typo, synonym)
    with pytest.raises(ValueError, match="conflicting edits"):
        apply_edits(text, [insertion, synonym])
    p = perturb(text, [synonym, typo])
    assert p.edits == (typo, synonym) and p.text == "I olved the movie" and p.label_preserving
    with pytest.raises(ValueError):
        p.edit  # noqa: B018 - two edits, not one


def test_match_case() -> None:
    assert [match_case("movie", w) for w in ("film", "Film", "FILM", "I")] == ["movie", "Movie", "MOVIE", "Movie"]
