"""sce_checks.strategies: valid draws, the claimed preservation, reproducibility and shrinking
towards the smallest edit (hypothesis.find returns the minimal example of a predicate)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from sce_checks.metrics.text_distance import words as word_tokens
from sce_checks.perturb import (
    LABEL_PRESERVING_FAMILIES,
    Perturbed,
    apply_edits,
    candidates,
    case_candidates,
    conflicts,
    grid_neighbours,
    insertion_candidates,
    insertion_slots,
    neutral_sentence_candidates,
    punctuation_candidates,
    synonym_candidates,
    tag_words,
    typo_candidates,
)
from sce_checks.strategies import (
    PROFILE_CI,
    PROFILE_DEV,
    case_changes,
    default_profile,
    edits,
    grid_moves,
    insertions,
    label_preserving,
    neutral_sentences,
    punctuation_changes,
    register_profiles,
    synonym_swaps,
    typos,
)
from tests.perturb.inputs import REVIEW, grid_task

FIND = settings(database=None, max_examples=300, derandomize=True)
GIVEN = settings(database=None, max_examples=40, deadline=None, derandomize=True)


def check_valid(p: Perturbed) -> None:
    """A draw is a usable input: non-empty, different, and exactly its edits applied."""
    assert p.original == REVIEW
    assert p.text.strip() and p.text != REVIEW
    assert p.text == apply_edits(REVIEW, p.edits)
    assert p.edits and list(p.edits) == sorted(p.edits, key=lambda e: e.start)
    assert p.describe() == "; ".join(e.describe() for e in p.edits)


# --- valid draws that preserve what they claim ------------------------------------------------


@GIVEN
@given(p=insertions(REVIEW))
def test_insertions_put_the_word_before_a_noun_or_verb(p: Perturbed) -> None:
    check_valid(p)
    e = p.edit
    role = {t.word.index: t.role for t in tag_words(REVIEW)}[e.position]
    assert role == ("NOUN" if e.kind == "insert_adjective" else "VERB")
    assert not p.label_preserving
    assert word_tokens(p.text) == word_tokens(REVIEW)[:e.position] + [e.word] + word_tokens(REVIEW)[e.position:]


@GIVEN
@given(p=typos(REVIEW))
def test_typos_change_one_word(p: Perturbed) -> None:
    check_valid(p)
    before, after = word_tokens(REVIEW), word_tokens(p.text)
    assert [i for i, (a, b) in enumerate(zip(before, after)) if a != b] == [p.edit.position]
    assert p.label_preserving


@GIVEN
@given(p=st.one_of(case_changes(REVIEW), punctuation_changes(REVIEW), neutral_sentences(REVIEW), synonym_swaps(REVIEW)))
def test_other_label_preserving_kinds(p: Perturbed) -> None:
    check_valid(p)
    assert p.label_preserving
    e = p.edit
    if e.family == "case":
        assert p.text.lower() == REVIEW.lower()
    elif e.family == "punctuation":
        assert word_tokens(p.text.replace(",", " ").replace(".", " ")) == word_tokens(REVIEW.replace(".", " "))
    elif e.family == "neutral_sentence":
        assert REVIEW in p.text
    else:
        assert e.family == "synonym" and (e.old, e.new) in {("film", "movie"), ("story", "tale")}


@GIVEN
@given(p=edits(REVIEW, kinds=("typo", "case", "synonym", "insertion"), max_edits=4))
def test_edits_apply_together_without_conflict(p: Perturbed) -> None:
    check_valid(p)
    assert 1 <= len(p.edits) <= 4
    assert not any(conflicts(a, b) for i, a in enumerate(p.edits) for b in p.edits[i + 1:])


@GIVEN
@given(move=grid_moves(grid_task(), (30, "small", "blue")))
def test_grid_moves_change_one_feature_by_one_step(move) -> None:
    task = grid_task()
    assert move.origin == (30, "small", "blue")
    changed = [i for i, (a, b) in enumerate(zip(move.origin, move.point)) if a != b]
    assert len(changed) == 1 and task.features[changed[0]].name == move.feature
    assert move.point in set(task.points())
    feature = task.features[changed[0]]
    if feature.type != "categorical":
        assert abs(feature.values.index(move.new) - feature.values.index(move.old)) == 1


def test_each_strategy_draws_from_its_candidate_list() -> None:
    pairs = [
        (typos(REVIEW), typo_candidates(REVIEW)),
        (case_changes(REVIEW), case_candidates(REVIEW)),
        (punctuation_changes(REVIEW), punctuation_candidates(REVIEW)),
        (neutral_sentences(REVIEW), neutral_sentence_candidates(REVIEW)),
        (synonym_swaps(REVIEW), synonym_candidates(REVIEW)),
    ]
    for strategy, cands in pairs:
        drawn = find(strategy, lambda p, c=cands: p.edit == c[-1], settings=FIND)
        assert drawn.edit == cands[-1]  # the last candidate is reachable, too


# --- shrinking ----------------------------------------------------------------------------------


def test_insertions_shrink_to_the_first_candidate() -> None:
    assert find(insertions(REVIEW), lambda p: True, settings=FIND).edit == insertion_candidates(REVIEW)[0]


def test_insertion_failing_after_position_k_shrinks_to_position_k() -> None:
    for k in (2, 5, 9):
        found = find(insertions(REVIEW), lambda p, k=k: p.edit.position >= k, settings=FIND).edit
        slot = next(s for s in insertion_slots(REVIEW) if s.position >= k)
        assert (found.position, found.word) == (slot.position, slot.choices[0])
    found = find(insertions(REVIEW), lambda p: p.edit.kind == "insert_adjective", settings=FIND).edit
    assert (found.position, found.target, found.word) == (3, "film", "able")  # first noun, first adjective


def test_single_edit_strategies_shrink_to_the_first_candidate() -> None:
    assert find(typos(REVIEW), lambda p: True, settings=FIND).edit == typo_candidates(REVIEW)[0]
    assert find(typos(REVIEW), lambda p: p.edit.position >= 6, settings=FIND).edit.new == "rfiend"
    assert find(label_preserving(REVIEW), lambda p: True, settings=FIND).edit == candidates(REVIEW)[0]
    found = find(label_preserving(REVIEW), lambda p: p.edit.family == "synonym", settings=FIND)
    assert found.edit == synonym_candidates(REVIEW)[0]
    move = find(grid_moves(grid_task(), (30, "small", "blue")), lambda m: True, settings=FIND)
    assert move == grid_neighbours(grid_task(), (30, "small", "blue"))[0]
    assert (move.feature, move.new) == ("age", 20)


def test_lists_of_edits_shrink_to_one_edit() -> None:
    strategy = edits(REVIEW, kinds=("typo", "case"), max_edits=4)
    assert find(strategy, lambda p: True, settings=FIND).edits == (typo_candidates(REVIEW)[0],)
    found = find(strategy, lambda p: any(e.family == "case" for e in p.edits), settings=FIND)
    assert found.edits == (case_candidates(REVIEW)[0],)
    found = find(strategy, lambda p: len(p.edits) >= 2, settings=FIND)
    assert len(found.edits) == 2  # the smallest failing list


def test_empty_candidate_lists_raise_at_build_time() -> None:
    with pytest.raises(ValueError, match="no typo candidates"):
        typos("a b c")
    with pytest.raises(ValueError, match="no insertion point"):
        insertions("Oh, no.")
    with pytest.raises(ValueError, match="no label-preserving edit"):
        label_preserving("")
    with pytest.raises(ValueError, match="max_edits"):
        edits(REVIEW, max_edits=0)
    assert LABEL_PRESERVING_FAMILIES[0] == "punctuation"


# --- reproducibility and profiles -------------------------------------------------------------


def test_derandomized_draws_are_reproducible() -> None:
    def draws() -> list[str]:
        seen: list[str] = []

        @settings(database=None, max_examples=15, derandomize=True)
        @given(p=label_preserving(REVIEW))
        def collect(p: Perturbed) -> None:
            seen.append(p.text)

        collect()
        return seen

    first = draws()
    assert len(set(first)) > 3 and first == draws()


def test_profiles_are_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    register_profiles()
    dev, ci = settings.get_profile(PROFILE_DEV), settings.get_profile(PROFILE_CI)
    for profile in (dev, ci):
        assert profile.deadline is None and profile.max_examples == 25
        assert HealthCheck.too_slow in profile.suppress_health_check
    assert ci.derandomize is True and ci.database is None and dev.derandomize is False
    monkeypatch.setenv("CI", "true")
    assert default_profile() == PROFILE_CI
    monkeypatch.delenv("CI")
    assert default_profile() == PROFILE_DEV
