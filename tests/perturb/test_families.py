"""sce_checks.perturb: the deterministic edits behind INV/DIR tests (Ribeiro et al. 2020) and the
CT insertion test (Atanasova et al. 2023). Exact expected values, so the tests can fail."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources

import pytest

from sce_checks.metrics.text_distance import words as word_tokens
from sce_checks.perturb import (
    FAMILIES,
    KINDS,
    LABEL_PRESERVING_FAMILIES,
    Edit,
    adjective_list,
    adverb_list,
    apply_edits,
    candidates,
    case_candidates,
    conflicts,
    grid_neighbours,
    insertion_candidates,
    insertion_slots,
    lexicon_tags,
    match_case,
    neutral_sentence_candidates,
    neutral_sentence_list,
    perturb,
    punctuation_candidates,
    sample_insertions,
    synonym_candidates,
    synonym_table,
    tag_words,
    typo_candidates,
    word_spans,
)
from sce_checks.tasks.grid import Feature, GridTask, integer_feature

REVIEW = "I loved the film and my friend watched the story twice."


def grid_task() -> GridTask:
    return GridTask(
        name="toy",
        question="Approve?",
        preamble="A toy grid.",
        options=("yes", "no"),
        features=(
            integer_feature("age", "Age", 20, 60, step=10),
            Feature("size", "Size", "ordinal", ("small", "medium", "large")),
            Feature("colour", "Colour", "categorical", ("red", "green", "blue")),
        ),
    )


# --- words and edits --------------------------------------------------------------------------


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


# --- part of speech and CT insertions ---------------------------------------------------------


def test_roles_from_lexicon_and_context() -> None:
    roles = {(t.word.index, t.word.text): t.role for t in tag_words("They watch the watch and I film it.")}
    assert roles == {
        (0, "They"): None, (1, "watch"): "VERB", (2, "the"): None, (3, "watch"): "NOUN",
        (4, "and"): None, (5, "I"): None, (6, "film"): "VERB", (7, "it"): None,
    }
    # adjective-or-noun words are never slots; mid-sentence capitals are taken for proper nouns
    tagged = {t.word.text: t for t in tag_words("The story is great, said Bill Story.")}
    assert tagged["story"].role == "NOUN" and tagged["great"].role is None
    assert tagged["Bill"].tags == frozenset() and tagged["Story"].role is None
    assert lexicon_tags("Film") == frozenset({"NOUN", "VERB"})


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


# --- label-preserving edits -------------------------------------------------------------------


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


# --- bundled word lists -----------------------------------------------------------------------


def test_word_lists_are_clean_and_tagged() -> None:
    adjectives, adverbs = adjective_list(), adverb_list()
    assert 300 <= len(adjectives) <= 600 and 200 <= len(adverbs) <= 400
    for words, tag in ((adjectives, "ADJ"), (adverbs, "ADV")):
        assert len(set(words)) == len(words) and list(words) == sorted(words)
        assert all(w.isalpha() and w.islower() for w in words)
        assert [w for w in words if tag not in lexicon_tags(w)] == []
    sentences = neutral_sentence_list()
    assert len(sentences) >= 20 and all(s[0].isupper() and s.endswith(".") for s in sentences)
    table = synonym_table()
    assert table["film"] == (("movie", "NOUN"),) and table["movie"] == (("film", "NOUN"),)
    for word, pairs in table.items():
        for synonym, pos in pairs:
            assert pos in lexicon_tags(word) and pos in lexicon_tags(synonym), (word, synonym)
    readme = resources.files("sce_checks").joinpath("data/words/README.md").read_text(encoding="utf-8")
    for name in ("adjectives.txt", "adverbs.txt", "neutral_sentences.txt", "synonyms.tsv"):
        assert name in readme


def test_import_stays_light() -> None:
    code = "import sys, sce_checks.perturb; print('lemminflect' in sys.modules, 'hypothesis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# --- grid moves -------------------------------------------------------------------------------


def test_grid_neighbours_exact() -> None:
    task = grid_task()
    moves = grid_neighbours(task, (20, "medium", "green"))
    assert [(m.feature, m.old, m.new) for m in moves] == [
        ("age", 20, 30), ("size", "medium", "small"), ("size", "medium", "large"),
        ("colour", "green", "red"), ("colour", "green", "blue"),
    ]
    assert moves[0].point == (30, "medium", "green") and moves[0].describe() == "age: 20 -> 30"
    assert grid_neighbours(task, {"age": 20, "size": "medium", "colour": "green"}) == moves


def test_grid_neighbours_move_one_feature_one_step_on_the_grid() -> None:
    task = grid_task()
    for point in task.points():
        moves = grid_neighbours(task, point)
        assert len(moves) == len({m.point for m in moves})
        for m in moves:
            changed = [i for i, (a, b) in enumerate(zip(point, m.point)) if a != b]
            assert len(changed) == 1
            f = task.features[changed[0]]
            assert f.name == m.feature and m.new in f.values
            if f.type != "categorical":
                assert abs(f.values.index(m.new) - f.values.index(m.old)) == 1


def test_grid_neighbours_reject_off_grid_points() -> None:
    task = grid_task()
    with pytest.raises(ValueError, match="not an allowed value"):
        grid_neighbours(task, (25, "medium", "green"))
    with pytest.raises(ValueError, match="has 2 values"):
        grid_neighbours(task, (20, "medium"))
    with pytest.raises(ValueError, match="lacks features"):
        grid_neighbours(task, {"age": 20})
