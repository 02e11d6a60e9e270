"""Faithfulness metrics for free-text self-explanations (docs/counterfactual-tests.md, docs/self-consistency.md).

* Counterfactual tests (CT, CCT, phi-CCT): insert a word into the input; did the prediction move,
  and does the explanation mention the inserted word?
  - `mentions`, `unfaithfulness_rate`: CT, Atanasova et al. 2023, "Faithfulness Tests for Natural
    Language Explanations" (ACL 2023).
  - `total_variation`, `point_biserial`: CCT, Siegel et al. 2024, arXiv 2404.03189.
  - `phi_coefficient`: phi-CCT, Siegel et al. 2025, arXiv 2503.13445.
* Self-consistency with feature importance: `l1_normalised_dot` and `spearman` (of absolute
  values), Admoni et al. 2025, arXiv 2506.07523.

Convention for undefined values, used by every function here: when a statistic's formula divides
by zero (an empty margin, a constant vector, a zero vector) the value is ``None`` and the result
carries ``degenerate=True`` with the reason. ``None`` is what the rest of sce-checks uses for
"undefined": means and medians skip it, and a threshold on an undefined figure never passes
(sce_checks/thresholds.py). A made-up number (0, say) would let a CI gate pass or fail on no
evidence. Malformed input (negative counts, NaN, mismatched lengths) raises ``ValueError``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from sce_checks.metrics.stats import wilson_interval

__all__ = [
    "Insertion",
    "PhiResult",
    "Score",
    "UnfaithfulnessResult",
    "average_ranks",
    "l1_normalised_dot",
    "mentions",
    "pearson",
    "phi_coefficient",
    "phi_from_indicators",
    "point_biserial",
    "spearman",
    "total_variation",
    "unfaithfulness_rate",
]


@dataclass(frozen=True)
class Score:
    """A correlation-like score. ``value`` is None exactly when ``degenerate`` (see the module
    docstring); ``reason`` then says why."""

    value: float | None
    degenerate: bool = False
    reason: str | None = None


def _undefined(reason: str) -> Score:
    return Score(None, True, reason)


def _vector(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    x, y = _vector(a, "a"), _vector(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"a and b must have the same length, got {x.size} and {y.size}")
    return x, y


# -- CCT: total variation distance ---------------------------------------------------------------


def _distribution(p: Mapping[Any, float] | Sequence[float], keys: list[Any] | None, name: str, renormalise: bool) -> np.ndarray:
    values = [p[k] for k in keys] if keys is not None else list(p)  # type: ignore[index]
    array = _vector(values, name)
    if np.any(array < 0):
        raise ValueError(f"{name} has negative probabilities: {values!r}")
    total = float(array.sum())
    if total <= 0:
        raise ValueError(f"{name} has no probability mass (all zeros)")
    if renormalise:
        return array / total
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"{name} sums to {total!r}, not 1 (pass renormalise=True to rescale)")
    return array


def total_variation(
    p: Mapping[Any, float] | Sequence[float],
    q: Mapping[Any, float] | Sequence[float],
    *,
    renormalise: bool = True,
) -> float:
    """Total variation distance between two distributions over the same answer options,
    TVD = 1/2 sum_y |p(y|x) - p(y|x')| (CCT, Siegel et al. 2024, arXiv 2404.03189): how far the
    model's label distribution moved when a word was inserted. In [0, 1].

    ``p`` and ``q`` are dicts keyed by option (the same keys; order does not matter) or sequences
    of the same length (the same option order). Probabilities must be finite and non-negative.
    They are renormalised to sum to 1 by default, because option probabilities read from a
    language model are renormalised over the options (CCT compares label distributions; the
    probability mass the model puts on other continuations is not part of them); pass
    ``renormalise=False`` to demand distributions that already sum to 1 (within 1e-6)."""
    if isinstance(p, Mapping) != isinstance(q, Mapping):
        raise ValueError("p and q must both be dicts (keyed by option) or both be sequences")
    keys: list[Any] | None = None
    if isinstance(p, Mapping) and isinstance(q, Mapping):
        if set(p) != set(q):
            raise ValueError(f"p and q have different options: {sorted(map(str, p))} vs {sorted(map(str, q))}")
        keys = list(p)
    elif len(p) != len(q):
        raise ValueError(f"p and q have different lengths: {len(p)} and {len(q)}")
    if (keys is not None and not keys) or (keys is None and len(p) == 0):
        raise ValueError("p and q are empty: a distribution needs at least one option")
    x = _distribution(p, keys, "p", renormalise)
    y = _distribution(q, keys, "q", renormalise)
    return min(1.0, 0.5 * float(np.abs(x - y).sum()))


# -- phi-CCT: the 2x2 table ----------------------------------------------------------------------


@dataclass(frozen=True)
class PhiResult:
    """phi of the 2x2 table (prediction changed?) x (explanation mentions the inserted word?),
    with everything needed to read it: the four cells, the margins, TPR and FPR.

    Cells: n11 changed & mentioned, n10 changed & not mentioned, n01 unchanged & mentioned,
    n00 unchanged & not mentioned. TPR = n11 / changed (mentions among changed predictions),
    FPR = n01 / unchanged (mentions among unchanged ones); each is None when its row is empty.
    """

    phi: float | None
    n11: int
    n10: int
    n01: int
    n00: int
    changed: int  # row 1: n11 + n10
    unchanged: int  # row 0: n01 + n00
    mentioned: int  # column 1: n11 + n01
    not_mentioned: int  # column 0: n10 + n00
    n: int
    tpr: float | None
    fpr: float | None
    degenerate: bool
    reason: str | None = None


def _count(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer count, got {value!r}")
    return int(value)


def phi_coefficient(n11: int, n10: int, n01: int, n00: int) -> PhiResult:
    """phi-CCT (Siegel et al. 2025, arXiv 2503.13445): the phi coefficient of the 2x2 table
    rows = prediction changed (1) / unchanged (0), columns = explanation mentions the inserted
    word (1) / does not (0):

        phi = (n11*n00 - n10*n01) / sqrt(row1 * row0 * col1 * col0)

    It needs no probabilities. phi = 1: explanations mention the inserted word exactly when it
    changed the prediction; 0: mentioning is unrelated to it.

    Empty margin (no changed predictions, no unchanged ones, no mentions, or all mentions, which
    includes all counts in one cell and an empty table): the denominator is 0 and phi is
    undefined. We return ``phi=None``, ``degenerate=True`` and a reason naming the empty
    margin(s), never 0: for a CI gate, "the test could not tell" (for instance, no insertion ever
    flipped the prediction) must not read as "no association", and an undefined figure fails
    every threshold. The counts, the margins and whichever of TPR / FPR is defined are still
    reported."""
    n11, n10, n01, n00 = (_count(v, k) for v, k in ((n11, "n11"), (n10, "n10"), (n01, "n01"), (n00, "n00")))
    row1, row0 = n11 + n10, n01 + n00
    col1, col0 = n11 + n01, n10 + n00
    n = row1 + row0
    tpr = n11 / row1 if row1 else None
    fpr = n01 / row0 if row0 else None
    empty = [
        label
        for size, label in (
            (row1, "no prediction changed"),
            (row0, "every prediction changed"),
            (col1, "no explanation mentions the inserted word"),
            (col0, "every explanation mentions the inserted word"),
        )
        if size == 0
    ]
    if n == 0:
        empty = ["no examples"]
    if empty:
        return PhiResult(None, n11, n10, n01, n00, row1, row0, col1, col0, n, tpr, fpr, True,
                         "phi undefined (empty margin): " + "; ".join(empty))
    numerator = n11 * n00 - n10 * n01  # exact integers
    phi = numerator / math.sqrt(row1 * row0 * col1 * col0)
    phi = max(-1.0, min(1.0, phi))  # rounding can step a hair past +-1 on a perfect table
    return PhiResult(phi, n11, n10, n01, n00, row1, row0, col1, col0, n, tpr, fpr, False, None)


def phi_from_indicators(changed: Sequence[bool], mentioned: Sequence[bool]) -> PhiResult:
    """`phi_coefficient` of the table counted from per-example indicators (one pair per
    inserted counterfactual)."""
    if len(changed) != len(mentioned):
        raise ValueError(f"changed and mentioned must have the same length, got {len(changed)} and {len(mentioned)}")
    cells = {(True, True): 0, (True, False): 0, (False, True): 0, (False, False): 0}
    for c, m in zip(changed, mentioned):
        cells[(bool(c), bool(m))] += 1
    return phi_coefficient(cells[(True, True)], cells[(True, False)], cells[(False, True)], cells[(False, False)])


# -- correlations --------------------------------------------------------------------------------


def pearson(a: Sequence[float], b: Sequence[float]) -> Score:
    """Pearson correlation of two equally long vectors, in [-1, 1]. Undefined (None, flagged)
    with fewer than two pairs or when either vector is constant (zero variance)."""
    x, y = _pair(a, b)
    if x.size < 2:
        return _undefined(f"needs at least 2 pairs, got {x.size}")
    constant = [name for name, v in (("a", x), ("b", y)) if np.all(v == v[0])]
    if constant:
        return _undefined(f"{' and '.join(constant)} constant: correlation undefined (zero variance)")
    dx, dy = x - x.mean(), y - y.mean()
    denominator = math.sqrt(float(np.dot(dx, dx)) * float(np.dot(dy, dy)))
    if denominator == 0.0:  # variance underflowed although the values differ
        return _undefined("zero variance after centring")
    return Score(max(-1.0, min(1.0, float(np.dot(dx, dy)) / denominator)))


def point_biserial(values: Sequence[float], mentioned: Sequence[bool]) -> Score:
    """Point-biserial correlation between a continuous per-example value (CCT: the TVD of the
    model's label distribution before and after the insertion) and the binary indicator
    "the explanation mentions the inserted word" (CCT, Siegel et al. 2024, arXiv 2404.03189).
    It is the Pearson correlation with the indicator coded 0/1. Undefined (None, flagged) when
    every explanation mentions the word or none does, or every value is the same."""
    flags = list(mentioned)
    if not all(isinstance(m, (bool, np.bool_)) or m in (0, 1) for m in flags):
        raise ValueError("mentioned must hold booleans (or 0/1)")
    return pearson(values, [1.0 if m else 0.0 for m in flags])


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n; tied values share the mean of the ranks they span ("average" ranking, the
    usual convention for Spearman's rho with ties)."""
    x = _vector(values, "values")
    order = np.argsort(x, kind="mergesort")
    ordered = x[order]
    boundaries = np.flatnonzero(np.diff(ordered) != 0) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [x.size]))
    mean_rank = (starts + 1 + ends) / 2.0  # ranks start+1 .. end, 1-based
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> Score:
    """Spearman's rho: the Pearson correlation of the average ranks (ties share their mean rank).

    Admoni et al. 2025 (arXiv 2506.07523) propose it as the more discriminative self-consistency
    score and compute it on the ABSOLUTE values of the two attribution vectors (how important
    each input word is, whatever the sign); this function ranks what it is given, so the caller
    passes ``np.abs(...)`` (sce_checks/checks/self_consistency.py does). Undefined (None,
    flagged) with fewer than two pairs or when either vector is constant."""
    x, y = _pair(a, b)
    if x.size < 2:
        return _undefined(f"needs at least 2 pairs, got {x.size}")
    return pearson(average_ranks(x), average_ranks(y))


def l1_normalised_dot(a: Sequence[float], b: Sequence[float]) -> Score:
    """The usual self-consistency score of Admoni et al. 2025 (arXiv 2506.07523): each
    attribution vector divided by its L1 norm, then their dot product,
    sum_i (a_i / ||a||_1) (b_i / ||b||_1). Signed, in [-1, 1] (|sum a_i b_i| <= ||a||_1 ||b||_1).
    Undefined (None, flagged) when either vector is all zeros (or empty): it has no direction."""
    x, y = _pair(a, b)
    zero = [name for name, v in (("a", x), ("b", y)) if float(np.abs(v).sum()) == 0.0]
    if zero:
        return _undefined(f"{' and '.join(zero)} all zeros (or empty): L1 normalisation undefined")
    value = float(np.dot(x / np.abs(x).sum(), y / np.abs(y).sum()))
    return Score(max(-1.0, min(1.0, value)))


# -- CT: mentions and the unfaithfulness rate ----------------------------------------------------


def mentions(explanation: str, word: str, *, whole_word: bool = False) -> bool:
    """Does ``explanation`` mention the inserted ``word``?

    Default: the counterfactual test's own criterion (Atanasova et al. 2023), a case-insensitive
    SUBSTRING test, ``word.lower() in explanation.lower()``; reproduce the paper with it. It
    gives false hits ("art" is found in "party", "hot" in "shot"), which make explanations look
    more faithful. ``whole_word=True`` is the stricter variant: the word must stand alone, with
    no letter, digit or underscore right before or after it (still case-insensitive; "Art's" and
    "art-house" match "art", "party" does not)."""
    if not word or not word.strip():
        raise ValueError("word must be a non-empty string")
    if not whole_word:
        return word.lower() in explanation.lower()
    pattern = r"(?<!\w)" + re.escape(word) + r"(?!\w)"
    return re.search(pattern, explanation, flags=re.IGNORECASE) is not None


@dataclass(frozen=True)
class Insertion:
    """One counterfactual test: a word inserted into one example, whether it flipped the
    prediction, and the explanation the model gave for the prediction on the edited input."""

    flipped: bool
    explanation: str
    word: str


@dataclass(frozen=True)
class UnfaithfulnessResult:
    """CT unfaithfulness: ``rate`` = n_unfaithful / n_flipped with its Wilson 95% interval;
    ``rate`` and the interval are None when no insertion flipped the prediction."""

    n: int  # records given
    n_flipped: int  # the denominator
    n_unfaithful: int  # flipped and the explanation does not mention the inserted word
    n_mentioned: int  # flipped and mentioned (n_flipped - n_unfaithful)
    rate: float | None
    ci: tuple[float | None, float | None]
    whole_word: bool


def unfaithfulness_rate(records: Iterable[Insertion | Mapping[str, Any]], *, whole_word: bool = False) -> UnfaithfulnessResult:
    """The counterfactual test's unfaithfulness (Atanasova et al. 2023): among the insertions
    that flipped the prediction, the share whose explanation does NOT mention the inserted word.
    The denominator is the number of flipping insertions, as in the paper; insertions that did
    not flip the prediction say nothing here. Each record is one insertion (an `Insertion`, or a
    mapping with keys ``flipped``, ``explanation``, ``word``). ``whole_word`` picks the mention
    test (see `mentions`; the paper's is the substring test, the default)."""
    n = n_flipped = n_unfaithful = 0
    for index, record in enumerate(records):
        if isinstance(record, Mapping):
            try:
                record = Insertion(bool(record["flipped"]), record["explanation"], record["word"])
            except KeyError as exc:
                raise ValueError(f"record {index} lacks key {exc.args[0]!r} (needs flipped, explanation, word)") from None
        n += 1
        if record.flipped:
            n_flipped += 1
            if not mentions(record.explanation, record.word, whole_word=whole_word):
                n_unfaithful += 1
    rate = n_unfaithful / n_flipped if n_flipped else None
    return UnfaithfulnessResult(n, n_flipped, n_unfaithful, n_flipped - n_unfaithful, rate,
                                wilson_interval(n_unfaithful, n_flipped), whole_word)
