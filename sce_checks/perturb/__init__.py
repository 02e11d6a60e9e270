"""Input perturbations: deterministic, pure-Python edits of a text or a grid point.

The single source of truth for edits used by the invariance / directional tests (CheckList INV
and DIR, Ribeiro et al. 2020), the counterfactual insertion tests CT / CCT / phi-CCT (Atanasova
et al. 2023; Siegel et al. 2024, 2025), SCE stability checks, and users' own hypothesis tests
(`sce_checks.strategies` draws from the candidate lists made here). See docs/perturbations.md.

One module per job; this package re-exports their public names, so ``from sce_checks import
perturb; perturb.X`` and ``from sce_checks.perturb import X`` work for all of them:

- `sce_checks.perturb.edits`: the edit algebra (``Edit``, ``Perturbed``, ``apply_edits``,
  ``conflicts``, ``perturb``, words with their spans, ``match_case``) and the catalogue of edit
  kinds and families (``KINDS``, ``FAMILIES``, ``LABEL_PRESERVING_FAMILIES``);
- `sce_checks.perturb.wordlists`: the bundled word lists (data/words/);
- `sce_checks.perturb.tagging`: the part-of-speech heuristic (lemminflect lexicon + context);
- `sce_checks.perturb.insertions`: CT insertion slots and draws;
- `sce_checks.perturb.families`: the label-preserving INV edit families and ``candidates``;
- `sce_checks.perturb.grid_moves`: one-step moves of a grid point.

*Order.* Every ``*_candidates`` function returns its edits in a fixed order (by character offset,
then kind, then word-list order), so hypothesis, which shrinks towards the first element, reports
the earliest and smallest edit.

lemminflect is imported lazily (on the first `lexicon_tags` call), so importing this package
stays light.
"""

from __future__ import annotations

from sce_checks.perturb.edits import (
    FAMILIES,
    KINDS,
    LABEL_PRESERVING_FAMILIES,
    Edit,
    Kind,
    Perturbed,
    Word,
    apply_edits,
    conflicts,
    match_case,
    perturb,
    word_spans,
)
from sce_checks.perturb.families import (
    CANDIDATE_FUNCTIONS,
    candidates,
    case_candidates,
    neutral_sentence_candidates,
    punctuation_candidates,
    synonym_candidates,
    typo_candidates,
)
from sce_checks.perturb.grid_moves import GridMove, grid_neighbours
from sce_checks.perturb.insertions import InsertionSlot, insertion_candidates, insertion_slots, sample_insertions
from sce_checks.perturb.tagging import FUNCTION_WORDS, TaggedWord, lexicon_tags, tag_words
from sce_checks.perturb.wordlists import adjective_list, adverb_list, neutral_sentence_list, synonym_table

__all__ = [
    "CANDIDATE_FUNCTIONS",
    "FAMILIES",
    "FUNCTION_WORDS",
    "KINDS",
    "LABEL_PRESERVING_FAMILIES",
    "Edit",
    "GridMove",
    "InsertionSlot",
    "Kind",
    "Perturbed",
    "TaggedWord",
    "Word",
    "adjective_list",
    "adverb_list",
    "apply_edits",
    "candidates",
    "case_candidates",
    "conflicts",
    "grid_neighbours",
    "insertion_candidates",
    "insertion_slots",
    "lexicon_tags",
    "match_case",
    "neutral_sentence_candidates",
    "neutral_sentence_list",
    "perturb",
    "punctuation_candidates",
    "sample_insertions",
    "synonym_candidates",
    "synonym_table",
    "tag_words",
    "typo_candidates",
    "word_spans",
]
