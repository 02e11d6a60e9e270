"""sce_checks.perturb.wordlists: the bundled word lists are clean, tagged as their use needs, and
documented in data/words/README.md."""

from __future__ import annotations

from importlib import resources

from sce_checks.perturb.tagging import lexicon_tags
from sce_checks.perturb.wordlists import adjective_list, adverb_list, neutral_sentence_list, synonym_table


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
