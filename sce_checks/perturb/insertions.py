"""CT insertion slots: where the counterfactual test inserts a word, and which words.

Why a module of its own: the counterfactual insertion tests CT / CCT / phi-CCT (Atanasova et al.
2023; Siegel et al. 2024, 2025) insert a random adjective before a noun or a random adverb before
a verb; these edits are NOT label-preserving (a changed prediction is what the test looks at), so
they are kept apart from the INV edit families. `sample_insertions` is CT's random draw;
`insertion_candidates` lists every insertion in a fixed order (slot by slot in text order, words
in list order), so hypothesis shrinks towards the earliest one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

from sce_checks.perturb.edits import Edit
from sce_checks.perturb.tagging import tag_words
from sce_checks.perturb.wordlists import adjective_list, adverb_list

__all__ = ["InsertionSlot", "insertion_candidates", "insertion_slots", "sample_insertions"]


# --- CT insertions ----------------------------------------------------------------------------

_CONSONANT_SOUND_PREFIXES = ("uni", "use", "usu", "ure", "eu", "one", "once")
_VOWEL_SOUND_PREFIXES = ("honest", "honou", "honor", "hour", "heir")


def _vowel_sound(word: str) -> bool:
    """Crude a/an rule on spelling: vowel letter, with the common exceptions."""
    if word.startswith(_VOWEL_SOUND_PREFIXES):
        return True
    return word[:1] in "aeiou" and not word.startswith(_CONSONANT_SOUND_PREFIXES)


@dataclass(frozen=True)
class InsertionSlot:
    """A place where CT may insert a word: before ``target`` (word ``position``), any of
    ``choices``."""

    kind: str  # "insert_adjective" or "insert_adverb"
    position: int
    start: int
    target: str
    choices: tuple[str, ...]

    def edit(self, choice: int) -> Edit:
        word = self.choices[choice]
        return Edit(self.kind, self.start, self.start, "", word + " ", self.position, self.target, word)


def insertion_slots(text: str, words_adj: Sequence[str] | None = None,
                    words_adv: Sequence[str] | None = None) -> list[InsertionSlot]:
    """Where CT can insert: before each NOUN (adjectives) and VERB (adverbs) of `tag_words`, in
    text order. Capitalised sentence-initial words are skipped (inserting before them would need
    re-casing a word the edit must not touch). After "a" / "an", only adjectives that keep the
    article right are offered ("an old owl", "a big owl" is not)."""
    adjs = tuple(adjective_list() if words_adj is None else words_adj)
    advs = tuple(adverb_list() if words_adv is None else words_adv)
    slots: list[InsertionSlot] = []
    for tw in tag_words(text):
        w = tw.word
        if tw.role is None or (tw.sentence_initial and w.text[:1].isupper()):
            continue
        if tw.role == "NOUN":
            kind, choices = "insert_adjective", adjs
            if tw.previous in ("a", "an"):
                choices = tuple(c for c in choices if _vowel_sound(c) == (tw.previous == "an"))
        else:
            kind, choices = "insert_adverb", advs
        if choices:
            slots.append(InsertionSlot(kind, w.index, w.start, w.text, choices))
    return slots


def insertion_candidates(text: str, words_adj: Sequence[str] | None = None,
                         words_adv: Sequence[str] | None = None) -> list[Edit]:
    """Every CT insertion (each slot of `insertion_slots` x each of its words), slot by slot in
    text order, words in list order. Defaults: the bundled adjective and adverb lists."""
    return [slot.edit(j) for slot in insertion_slots(text, words_adj, words_adv) for j in range(len(slot.choices))]


def sample_insertions(text: str, k: int, seed: int, words_adj: Sequence[str] | None = None,
                      words_adv: Sequence[str] | None = None) -> list[Edit]:
    """``k`` distinct random insertions, as CT draws random words at random positions: each draw
    picks a slot uniformly, then a word of that slot uniformly (so a slot's chance does not depend
    on how long its word list is). Same ``seed``, same list, in draw order. All candidates, in
    candidate order, when ``k`` reaches their number."""
    if k < 0:
        raise ValueError(f"k must be >= 0, not {k}")
    slots = insertion_slots(text, words_adj, words_adv)
    total = sum(len(s.choices) for s in slots)
    if k >= total:
        return insertion_candidates(text, words_adj, words_adv)
    rng = random.Random(seed)
    seen: set[tuple[int, int]] = set()
    out: list[Edit] = []
    while len(out) < k:
        i = rng.randrange(len(slots))
        j = rng.randrange(len(slots[i].choices))
        if (i, j) not in seen:
            seen.add((i, j))
            out.append(slots[i].edit(j))
    return out
