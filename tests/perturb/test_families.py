"""sce_checks.perturb.families: the label-preserving edits behind INV tests (Ribeiro et al. 2020) and
`candidates`. Exact expected values, so the tests can fail."""

from __future__ import annotations

import pytest

from sce_checks.metrics.text_distance import words as word_tokens
from sce_checks.perturb.edits import FAMILIES, KINDS, word_spans
from sce_checks.perturb.families import (
    candidates,
    case_candidates,
    neutral_sentence_candidates,
    punctuation_candidates,
    synonym_candidates,
    typo_candidates,
)
from tests.perturb.inputs import REVIEW


def test_typo_candidates_exact() -> None:
    got = typo_candidates("go cats!")
    assert [(e.kind, e.new) for e in got] == [
        ("typo_swap", "acts"), ("typo_swap", "ctas"), ("typo_swap", "cast"),
        ("typo_delete", "ats"), ("typo_delete", "cts"), ("typo_delete", "cas"), ("typo_delete", "cat"),
        ("typo_duplicate", "ccats"), ("typo_duplicate", "caats"), ("typo_duplicate", "catts"), ("typo_duplicate", "catss"),
    ]
    assert {(e.start, e.end, e.old, e.position) for e in got} == {(3, 7, "cats", 1)}
    # a doubled letter gives one deletion and no swap at the pair
    assert [e.new for e in typo_candidates("good") if e.kind != "typo_duplicate"] == ["ogod", "godo", "ood", "god", "goo"]


def test_typos_change_exactly_one_word() -> None:
    before = word_tokens(REVIEW)
    cands = typo_candidates(REVIEW)
    assert cands and all(len(e.old) > 3 for e in cands)
    for e in cands:
        after = word_tokens(e.apply(REVIEW))
        assert len(after) == len(before)
        assert [i for i, (a, b) in enumerate(zip(before, after)) if a != b] == [e.position]
        assert abs(len(e.new) - len(e.old)) <= 1 and e.new != e.old


def test_case_candidates_exact() -> None:
    got = case_candidates("The film 3")
    assert [(e.kind, e.new, e.position) for e in got] == [
        ("case_lower", "the", 0), ("case_upper", "THE", 0), ("case_title", "Film", 1), ("case_upper", "FILM", 1),
    ]
    for e in got:
        assert e.apply("The film 3").lower() == "the film 3"


def test_punctuation_candidates_exact() -> None:
    text = "I liked it and laughed"
    assert [(e.kind, e.start, e.new, e.position, e.apply(text)) for e in punctuation_candidates(text)] == [
        ("punct_add_comma", 10, ",", 3, "I liked it, and laughed"),
        ("punct_add_period", 22, ".", 5, "I liked it and laughed."),
    ]
    text = "I liked it, and laughed.\n"
    assert [e.apply(text) for e in punctuation_candidates(text)] == ["I liked it and laughed.\n", "I liked it, and laughed\n"]
    assert punctuation_candidates("Wait...") == []
    assert punctuation_candidates(".") == [] and punctuation_candidates("") == []


def test_neutral_sentence_candidates_exact() -> None:
    got = neutral_sentence_candidates("Good. Bad", ["X.", "Y."])
    assert [(e.start, e.new, e.position, e.apply("Good. Bad")) for e in got] == [
        (0, "X. ", 0, "X. Good. Bad"), (0, "Y. ", 0, "Y. Good. Bad"),
        (5, " X.", 1, "Good. X. Bad"), (5, " Y.", 1, "Good. Y. Bad"),
    ]
    assert [e.apply("Fine!") for e in neutral_sentence_candidates("Fine!", ["X."])] == ["X. Fine!", "Fine! X."]
    assert neutral_sentence_candidates("   ", ["X."]) == []


def test_synonym_candidates_respect_part_of_speech_and_case() -> None:
    assert [e.apply("I loved the film.") for e in synonym_candidates("I loved the film.")] == ["I loved the movie."]
    assert synonym_candidates("I want to film it.") == []  # verb use: not swapped for "movie"
    assert [e.apply("Movies often bore me.") for e in synonym_candidates("Movies often bore me.")] == [
        "Films often bore me.", "Movies frequently bore me.",
    ]
    assert [(e.new, e.position) for e in synonym_candidates("They began to film.")] == [("started", 1)]


def test_candidates_by_family_and_unknown_family() -> None:
    text = "I loved the film"
    assert candidates(text, ("typo", "case")) == typo_candidates(text) + case_candidates(text)
    assert candidates(text)[0] == punctuation_candidates(text)[0]
    with pytest.raises(ValueError, match="unknown perturbation family"):
        candidates(text, ("shouting",))


def test_every_candidate_is_valid_and_keeps_the_rest_byte_identical() -> None:
    for text in (REVIEW, "Worst. Movie. Ever!", "  a plot, and THE end  "):
        for e in candidates(text, FAMILIES):
            out = e.apply(text)
            assert out.strip() and out != text
            assert out[:e.start] == text[:e.start] and out[e.start + len(e.new):] == text[e.end:]
            assert 0 <= e.position <= len(word_spans(text))
            assert e.describe().startswith(KINDS[e.kind].summary)
