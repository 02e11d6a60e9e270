"""sce_checks.perturb.tagging: the part-of-speech heuristic (lemminflect lexicon + one word of
context) that decides where CT inserts (Atanasova et al. 2023)."""

from __future__ import annotations

from sce_checks.perturb.tagging import lexicon_tags, tag_words


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
