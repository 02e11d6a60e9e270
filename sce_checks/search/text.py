"""Model-in-the-loop edits of free text: a bounded search for a small label-flipping edit, and
the redundancy of an SCE's changes.

*Reference search.* Neither grid-style exhaustive search nor a true minimum is possible on free
text; we approximate the reference minimal counterfactual by a breadth-first search over word
deletions and antonym substitutions (a bundled list, data/antonyms.txt), one to three edits deep,
keeping the candidates the model rates closest to the target (by option probability when the
backend scores, else by edit size), under a budget of model predictions per example. Among the
flipping candidates of the shallowest depth, the one with the smallest character distance is the
reference. This is an upper bound on the true minimal edit, reported as such.

*Redundancy* (after CARLA's redundancy metric): revert each changed span of a valid SCE, one at a
time; if the model still gives the target label, that change was not needed.

*Prediction callables.* Both ask the model through a batched callable, not a model or a
`Predictor` (see sce_checks/search/__init__.py): `redundancy` needs only labels (`Labels`:
``labels(texts) -> [label | None, ...]``, e.g. `Predictor.labels`); `search_minimal_edit` also
orders its beam by the target option's probability when the backend scores options, so it takes
`LabelsAndProbs`: ``predict(texts) -> [(label | None, probs | None), ...]`` (``probs``: option ->
probability, None when the backend does not score).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Callable, Mapping, Sequence

from rapidfuzz.distance import Levenshtein

from sce_checks.errors import BackendError
from sce_checks.metrics.text_distance import normalized_levenshtein
from sce_checks.perturb.edits import match_case

_TOKEN = re.compile(r"\s+|\w+(?:'\w+)?|[^\w\s]")
MAX_DEPTH = 3
BEAM = 4

# labels(texts) -> one label per text, in order (None: the reply named no option); batched.
Labels = Callable[[Sequence[str]], Sequence["str | None"]]
# predict(texts) -> one (label, option probabilities or None) pair per text, in order; batched.
LabelsAndProbs = Callable[[Sequence[str]], Sequence[tuple["str | None", "Mapping[str, float] | None"]]]


def tokens(text: str) -> list[str]:
    """Words, punctuation and the whitespace between them: ''.join(tokens(t)) == t."""
    return _TOKEN.findall(text)


def _is_word(tok: str) -> bool:
    return bool(tok) and (tok[0].isalnum() or tok[0] == "_")


@lru_cache(maxsize=1)
def antonyms() -> dict[str, tuple[str, ...]]:
    table: dict[str, list[str]] = {}
    text = resources.files("sce_checks").joinpath("data/antonyms.txt").read_text(encoding="utf-8")
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 2 or line.startswith("#"):
            continue
        a, b = parts
        table.setdefault(a, []).append(b)
        table.setdefault(b, []).append(a)
    return {k: tuple(dict.fromkeys(v)) for k, v in table.items()}


def single_edits(text: str) -> list[str]:
    """Every text one word deletion or one antonym substitution away."""
    toks = tokens(text)
    out = []
    table = antonyms()
    for i, tok in enumerate(toks):
        if not _is_word(tok):
            continue
        # deletion: drop the word and one neighbouring whitespace token
        if i + 1 < len(toks) and toks[i + 1].isspace():
            out.append("".join(toks[:i] + toks[i + 2 :]))
        elif i > 0 and toks[i - 1].isspace():
            out.append("".join(toks[: i - 1] + toks[i + 1 :]))
        else:
            out.append("".join(toks[:i] + toks[i + 1 :]))
        for sub in table.get(tok.lower(), ()):
            out.append("".join(toks[:i] + [match_case(sub, tok)] + toks[i + 1 :]))
    return [t for t in dict.fromkeys(out) if t.strip() and t != text]


@dataclass(frozen=True)
class SearchHit:
    text: str | None  # the smallest flipping edit found; None when none within the budget
    distance: float | None  # normalised character Levenshtein distance to the original
    evaluated: int  # model predictions spent


def _answers(got: Sequence, asked: int) -> list:
    got = list(got)
    if len(got) != asked:
        raise BackendError(f"the prediction callable returned {len(got)} answers for {asked} texts")
    return got


def search_minimal_edit(predict: LabelsAndProbs, text: str, target: str, budget: int) -> SearchHit:
    """The reference search of the module docstring: at most ``budget`` texts sent to ``predict``
    (a `LabelsAndProbs`); the hit's text is None when no edit within the budget gets ``target``."""
    frontier = [text]
    seen = {text}
    evaluated = 0
    for _depth in range(MAX_DEPTH):
        candidates = []
        for base in frontier:
            for cand in single_edits(base):
                if cand not in seen:
                    seen.add(cand)
                    candidates.append(cand)
        candidates.sort(key=lambda c: normalized_levenshtein(text, c, "char"))
        candidates = candidates[: max(0, budget - evaluated)]
        if not candidates:
            break
        preds = _answers(predict(candidates), len(candidates))
        evaluated += len(candidates)
        hits = [c for c, (label, _) in zip(candidates, preds) if label == target]
        if hits:
            best = min(hits, key=lambda c: normalized_levenshtein(text, c, "char"))
            return SearchHit(best, normalized_levenshtein(text, best, "char"), evaluated)

        def closeness(pair):
            cand, (_, probs) = pair
            if probs is not None:
                return -probs.get(target, 0.0)
            return normalized_levenshtein(text, cand, "char")

        frontier = [c for c, _ in sorted(zip(candidates, preds), key=closeness)[:BEAM]]
    return SearchHit(None, None, evaluated)


def change_blocks(original: str, revised: str) -> tuple[list[str], list[str], list[tuple[int, int, int, int]]]:
    """Token lists and the non-equal opcode blocks that touch at least one non-space token."""
    a, b = tokens(original), tokens(revised)
    blocks = []
    for op in Levenshtein.opcodes(a, b):
        if op.tag == "equal":
            continue
        touched = a[op.src_start : op.src_end] + b[op.dest_start : op.dest_end]
        if any(not t.isspace() for t in touched):
            blocks.append((op.src_start, op.src_end, op.dest_start, op.dest_end))
    return a, b, blocks


def redundancy(labels: Labels, original: str, revised: str, target: str) -> tuple[int, int]:
    """(number of changed spans, number of them whose reversal keeps the target label)."""
    a, b, blocks = change_blocks(original, revised)
    if len(blocks) < 2:
        # With one change, reverting it gives back the original, whose label is not the target.
        return len(blocks), 0
    reverted = []
    for s0, s1, d0, d1 in blocks:
        reverted.append("".join(b[:d0] + a[s0:s1] + b[d1:]))
    got = _answers(labels(reverted), len(reverted))
    return len(blocks), sum(1 for lab in got if lab == target)
