"""Hypothesis strategies over `sce_checks.perturb`, for INV / DIR / CT tests of a model.

Every text strategy draws a `Perturbed` (``original``, perturbed ``text``, ``edits``), so a
failing example shows the edit and the text the model saw; ``.edit`` is the single edit of the
one-edit strategies. Grid strategies draw a `GridMove` (``origin``, moved ``point``, feature,
old and new value). Candidates are drawn by index into the fixed-order lists of
`sce_checks.perturb`, so hypothesis shrinks a failure towards the first position, the first
word of the list and, for `edits`, a single edit.

A strategy over a text that offers no candidate of its kind raises ValueError when it is built
(say, `typos` of a text without a word of 4+ letters), rather than failing later as unsatisfiable.

Importing this module registers two settings profiles for model-backed tests (see
`register_profiles`); load one with ``settings.load_profile(default_profile())``.
See docs/perturbations.md.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from sce_checks.perturb import (
    LABEL_PRESERVING_FAMILIES,
    Edit,
    GridMove,
    Perturbed,
    candidates,
    case_candidates,
    conflicts,
    grid_neighbours,
    insertion_slots,
    neutral_sentence_candidates,
    perturb,
    punctuation_candidates,
    synonym_candidates,
    typo_candidates,
)
from sce_checks.tasks.grid import GridTask, Point

__all__ = [
    "PROFILE_CI",
    "PROFILE_DEV",
    "PROFILE_MAX_EXAMPLES",
    "case_changes",
    "default_profile",
    "edits",
    "grid_moves",
    "insertions",
    "label_preserving",
    "neutral_sentences",
    "punctuation_changes",
    "register_profiles",
    "synonym_swaps",
    "typos",
]

PROFILE_DEV = "sce-dev"
PROFILE_CI = "sce-ci"
# Each example costs model calls (seconds on a CPU model): fewer than hypothesis' default 100.
PROFILE_MAX_EXAMPLES = 25


def register_profiles() -> None:
    """Register the settings profiles for model-backed tests (called on import):

    - ``sce-dev``: no deadline and no too_slow health check (model latency varies from call to
      call), ``max_examples=25``; failures are saved to the example database and replayed first.
    - ``sce-ci``: the same, derandomised (the same examples on every run; hypothesis then uses no
      example database) and printing the reproduction blob of a failure."""
    # parent: hypothesis' own defaults, not whichever profile is loaded now (re-registering
    # while sce-ci is loaded must not give sce-dev its derandomize)
    common: dict[str, Any] = dict(
        parent=settings.get_profile("default"),
        max_examples=PROFILE_MAX_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    settings.register_profile(PROFILE_DEV, **common)
    settings.register_profile(PROFILE_CI, derandomize=True, print_blob=True, **common)


def default_profile() -> str:
    """``sce-ci`` when the CI environment variable is set (as CI services do), else ``sce-dev``."""
    return PROFILE_CI if os.environ.get("CI") else PROFILE_DEV


register_profiles()


def _one_of_list(text: str, cands: list[Edit], what: str) -> SearchStrategy[Perturbed]:
    if not cands:
        raise ValueError(f"no {what} candidates in {text!r}")
    return st.sampled_from(cands).map(lambda e: perturb(text, [e]))  # shrinks to cands[0]


def insertions(text: str, words_adj: Sequence[str] | None = None,
               words_adv: Sequence[str] | None = None) -> SearchStrategy[Perturbed]:
    """CT insertions (an adjective before a noun, an adverb before a verb): a slot drawn
    uniformly, then a word of its list; shrinks to the first slot and the first word. NOT
    label-preserving: this is the intervention whose effect a faithful explanation must mention."""
    slots = insertion_slots(text, words_adj, words_adv)
    if not slots:
        raise ValueError(f"no insertion point (noun or verb) found in {text!r}")

    @st.composite
    def draw(draw_: Any) -> Perturbed:
        slot = slots[draw_(st.integers(0, len(slots) - 1))]
        choice = draw_(st.integers(0, len(slot.choices) - 1))
        return perturb(text, [slot.edit(choice)])

    return draw()


def typos(text: str) -> SearchStrategy[Perturbed]:
    """One one-letter typo in a word of 4+ letters (label-preserving)."""
    return _one_of_list(text, typo_candidates(text), "typo")


def case_changes(text: str) -> SearchStrategy[Perturbed]:
    """One word re-cased (label-preserving)."""
    return _one_of_list(text, case_candidates(text), "case-change")


def punctuation_changes(text: str) -> SearchStrategy[Perturbed]:
    """One comma or final period added or removed (label-preserving)."""
    return _one_of_list(text, punctuation_candidates(text), "punctuation")


def neutral_sentences(text: str, sentences: Sequence[str] | None = None) -> SearchStrategy[Perturbed]:
    """One content-free sentence inserted at the start or after a sentence (label-preserving)."""
    return _one_of_list(text, neutral_sentence_candidates(text, sentences), "neutral-sentence")


def synonym_swaps(text: str) -> SearchStrategy[Perturbed]:
    """One word swapped for a bundled synonym (label-preserving)."""
    return _one_of_list(text, synonym_candidates(text), "synonym")


def label_preserving(text: str) -> SearchStrategy[Perturbed]:
    """One edit of any label-preserving kind the text allows; shrinks towards the smallest kinds
    (punctuation, case, typo, synonym, then neutral sentence)."""
    parts = [_one_of_list(text, cands, family) for family in LABEL_PRESERVING_FAMILIES
             if (cands := candidates(text, (family,)))]
    if not parts:
        raise ValueError(f"no label-preserving edit possible in {text!r}")
    return st.one_of(parts)


def edits(text: str, kinds: Sequence[str] = LABEL_PRESERVING_FAMILIES, max_edits: int = 3) -> SearchStrategy[Perturbed]:
    """1 to ``max_edits`` edits of the given families (default: the label-preserving ones;
    "insertion" is allowed too) applied together. Edits are drawn as a list of candidate indices;
    one that conflicts with an earlier one (overlapping or touching spans) is dropped, so the
    first is always kept. Shrinks to a single edit, then to the first candidate."""
    if max_edits < 1:
        raise ValueError(f"max_edits must be >= 1, not {max_edits}")
    cands = candidates(text, tuple(kinds))
    if not cands:
        raise ValueError(f"no candidates of kinds {list(kinds)} in {text!r}")

    def build(indices: list[int]) -> Perturbed:
        kept: list[Edit] = []
        for i in indices:
            if not any(conflicts(cands[i], e) for e in kept):
                kept.append(cands[i])
        return perturb(text, kept)

    picks = st.lists(st.integers(0, len(cands) - 1), min_size=1, max_size=max_edits, unique=True)
    return picks.map(build)


def grid_moves(task: GridTask, point: Point | Mapping[str, Any]) -> SearchStrategy[GridMove]:
    """One feature of ``point`` moved one step (`perturb.grid_neighbours`); shrinks to the first
    feature's lower neighbour."""
    moves = grid_neighbours(task, point)
    if not moves:
        raise ValueError(f"point {point!r} of task {task.name!r} has no neighbour")
    return st.sampled_from(moves)
