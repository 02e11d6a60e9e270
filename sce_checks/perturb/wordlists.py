"""The bundled word lists: adjectives and adverbs CT inserts, content-free sentences, synonym
pairs (sce_checks/data/words/; data/words/README.md says how they were chosen and checked).

Why a module of its own: the lists are data, read once from the package and cached; the
insertions and the INV edit families draw from them, and users pass their own lists instead.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

__all__ = ["adjective_list", "adverb_list", "neutral_sentence_list", "synonym_table"]


# --- bundled word lists -----------------------------------------------------------------------


@lru_cache(maxsize=None)
def _data_lines(name: str) -> tuple[str, ...]:
    text = resources.files("sce_checks").joinpath("data/words", name).read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def adjective_list() -> tuple[str, ...]:
    """The bundled adjectives CT inserts before nouns (data/words/adjectives.txt)."""
    return _data_lines("adjectives.txt")


def adverb_list() -> tuple[str, ...]:
    """The bundled adverbs CT inserts before verbs (data/words/adverbs.txt)."""
    return _data_lines("adverbs.txt")


def neutral_sentence_list() -> tuple[str, ...]:
    """The bundled content-free sentences (data/words/neutral_sentences.txt)."""
    return _data_lines("neutral_sentences.txt")


@lru_cache(maxsize=None)
def synonym_table() -> dict[str, tuple[tuple[str, str], ...]]:
    """word -> ((synonym, POS), ...) from data/words/synonyms.tsv, both directions."""
    table: dict[str, list[tuple[str, str]]] = {}
    for line in _data_lines("synonyms.tsv"):
        a, b, pos = line.split("\t")
        table.setdefault(a, []).append((b, pos))
        table.setdefault(b, []).append((a, pos))
    return {k: tuple(dict.fromkeys(v)) for k, v in table.items()}
