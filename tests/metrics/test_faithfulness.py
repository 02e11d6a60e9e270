"""Faithfulness metrics against hand-computed cases (arithmetic in the comments).

Definitions (docs/counterfactual-tests.md, docs/self-consistency.md): CT, Atanasova et al. 2023 (substring mention test,
unfaithfulness over flipping insertions); CCT, Siegel et al. 2024, arXiv 2404.03189 (TVD and its
correlation with mentions); phi-CCT, Siegel et al. 2025, arXiv 2503.13445 (phi of the 2x2 table);
self-consistency scores, Admoni et al. 2025, arXiv 2506.07523 (L1-normalised dot product and
Spearman of absolute attributions).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sce_checks.metrics.faithfulness import (
    Insertion,
    average_ranks,
    l1_normalised_dot,
    mentions,
    pearson,
    phi_coefficient,
    phi_from_indicators,
    point_biserial,
    spearman,
    total_variation,
    unfaithfulness_rate,
)
from sce_checks.metrics.stats import wilson_interval

# -- total variation (CCT: TVD = 1/2 sum_y |p(y|x) - p(y|x')|) ------------------------------------


def test_tvd_two_options_by_hand() -> None:
    # |0.7 - 0.4| + |0.3 - 0.6| = 0.3 + 0.3 = 0.6; half of it: 0.3
    assert total_variation({"neg": 0.7, "pos": 0.3}, {"neg": 0.4, "pos": 0.6}) == pytest.approx(0.3)


def test_tvd_dict_order_does_not_matter() -> None:
    # same distributions, keys listed in another order: still 0.3
    assert total_variation({"neg": 0.7, "pos": 0.3}, {"pos": 0.6, "neg": 0.4}) == pytest.approx(0.3)


def test_tvd_three_options_sequence() -> None:
    # |0.5-0.2| + |0.3-0.3| + |0.2-0.5| = 0.3 + 0 + 0.3 = 0.6 -> 0.3
    assert total_variation([0.5, 0.3, 0.2], [0.2, 0.3, 0.5]) == pytest.approx(0.3)


def test_tvd_extremes() -> None:
    assert total_variation([0.25, 0.75], [0.25, 0.75]) == 0.0  # identical
    assert total_variation([1.0, 0.0], [0.0, 1.0]) == 1.0  # disjoint support: (1 + 1) / 2


def test_tvd_renormalises_by_default() -> None:
    # (2, 2) -> (0.5, 0.5); (1, 3) -> (0.25, 0.75); (0.25 + 0.25) / 2 = 0.25
    assert total_variation([2, 2], [1, 3]) == pytest.approx(0.25)
    # option probabilities that do not sum to 1 (mass on other continuations): renormalised
    # (0.6, 0.2) -> (0.75, 0.25); (0.2, 0.2) -> (0.5, 0.5); (0.25 + 0.25) / 2 = 0.25
    assert total_variation([0.6, 0.2], [0.2, 0.2]) == pytest.approx(0.25)


def test_tvd_strict_mode_demands_distributions() -> None:
    assert total_variation([0.5, 0.5], [0.0, 1.0], renormalise=False) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="sums to"):
        total_variation([0.6, 0.3], [0.5, 0.5], renormalise=False)


@pytest.mark.parametrize(
    ("p", "q", "message"),
    [
        ({"a": 0.5, "b": 0.5}, {"a": 0.5, "c": 0.5}, "different options"),
        ([0.5, 0.5], [0.2, 0.3, 0.5], "different lengths"),
        ([1.2, -0.2], [0.5, 0.5], "negative"),
        ([0.0, 0.0], [0.5, 0.5], "no probability mass"),
        ([float("nan"), 1.0], [0.5, 0.5], "NaN"),
        ({"a": 1.0}, [1.0], "both be dicts"),
        ([], [], "empty"),
    ],
)
def test_tvd_rejects_malformed_input(p, q, message) -> None:
    with pytest.raises(ValueError, match=message):
        total_variation(p, q)


# -- phi-CCT: phi = (n11*n00 - n10*n01) / sqrt(row1*row0*col1*col0) ------------------------------


def test_phi_general_table_by_hand() -> None:
    # n11=8 (changed, mentioned), n10=2, n01=3, n00=7
    # numerator 8*7 - 2*3 = 50; rows 10, 10; columns 11, 9; sqrt(10*10*11*9) = sqrt(9900) = 99.498744
    # phi = 50 / 99.498744 = 0.502519; TPR = 8/10; FPR = 3/10
    r = phi_coefficient(8, 2, 3, 7)
    assert r.phi == pytest.approx(0.502519, abs=1e-6)
    assert (r.n11, r.n10, r.n01, r.n00) == (8, 2, 3, 7)
    assert (r.changed, r.unchanged, r.mentioned, r.not_mentioned, r.n) == (10, 10, 11, 9, 20)
    assert r.tpr == pytest.approx(0.8) and r.fpr == pytest.approx(0.3)
    assert not r.degenerate and r.reason is None


def test_phi_perfect_inverse_and_independent() -> None:
    # (5*5 - 0) / sqrt(5*5*5*5) = 25/25 = 1; mirrored table: -25/25 = -1
    assert phi_coefficient(5, 0, 0, 5).phi == 1.0
    assert phi_coefficient(0, 5, 5, 0).phi == -1.0
    # (2*2 - 2*2) / sqrt(4^4) = 0: mentioning unrelated to changing
    assert phi_coefficient(2, 2, 2, 2).phi == 0.0


def test_phi_unbalanced_table_by_hand() -> None:
    # n11=1, n10=0, n01=2, n00=7: numerator 7 - 0 = 7; rows 1, 9; cols 3, 7
    # sqrt(1*9*3*7) = sqrt(189) = 13.747727; phi = 0.509175; TPR 1/1; FPR 2/9
    r = phi_coefficient(1, 0, 2, 7)
    assert r.phi == pytest.approx(7 / math.sqrt(189))
    assert r.phi == pytest.approx(0.509175, abs=1e-6)
    assert r.tpr == 1.0 and r.fpr == pytest.approx(2 / 9)


@pytest.mark.parametrize(
    ("cells", "empty", "tpr", "fpr"),
    [
        # row "changed" empty: no insertion flipped anything; TPR undefined, FPR = 3/7
        ((0, 0, 3, 4), ["no prediction changed"], None, 3 / 7),
        # row "unchanged" empty: every insertion flipped; TPR = 3/7, FPR undefined
        ((3, 4, 0, 0), ["every prediction changed"], 3 / 7, None),
        # column "mentioned" empty: no explanation mentions the word; TPR = FPR = 0
        ((0, 3, 0, 4), ["no explanation mentions the inserted word"], 0.0, 0.0),
        # column "not mentioned" empty: every explanation mentions it; TPR = FPR = 1
        ((3, 0, 4, 0), ["every explanation mentions the inserted word"], 1.0, 1.0),
        # everything in one cell (n11): rows 0 and columns 0 both empty
        ((6, 0, 0, 0), ["every prediction changed", "every explanation mentions the inserted word"], 1.0, None),
        # everything in n00: no change, no mention
        ((0, 0, 0, 6), ["no prediction changed", "no explanation mentions the inserted word"], None, 0.0),
        # all zero: no examples at all
        ((0, 0, 0, 0), ["no examples"], None, None),
    ],
)
def test_phi_empty_margins_are_undefined_not_zero(cells, empty, tpr, fpr) -> None:
    r = phi_coefficient(*cells)
    assert r.phi is None and r.degenerate
    for label in empty:
        assert label in r.reason
    assert r.tpr == (pytest.approx(tpr) if tpr is not None else None)
    assert r.fpr == (pytest.approx(fpr) if fpr is not None else None)
    assert (r.n11, r.n10, r.n01, r.n00) == cells and r.n == sum(cells)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3", None])
def test_phi_rejects_non_counts(bad) -> None:
    with pytest.raises(ValueError, match="n10"):
        phi_coefficient(1, bad, 1, 1)


def test_phi_accepts_numpy_integers() -> None:
    assert phi_coefficient(*np.array([8, 2, 3, 7])).phi == pytest.approx(0.502519, abs=1e-6)


def test_phi_from_indicators_counts_the_table() -> None:
    changed = [True, True, True, False, False, False, False]
    mentioned = [True, True, False, True, False, False, False]
    # n11=2, n10=1, n01=1, n00=3: (2*3 - 1*1) / sqrt(3*4*3*4) = 5/12
    r = phi_from_indicators(changed, mentioned)
    assert (r.n11, r.n10, r.n01, r.n00) == (2, 1, 1, 3)
    assert r.phi == pytest.approx(5 / 12)
    with pytest.raises(ValueError, match="same length"):
        phi_from_indicators([True], [True, False])


# -- correlations: Pearson / point-biserial (CCT) ------------------------------------------------


def test_pearson_by_hand() -> None:
    # a = 1..4 (mean 2.5), b = 2,4,5,9 (mean 5); deviations (-1.5,-.5,.5,1.5), (-3,-1,0,4)
    # sum products 4.5+0.5+0+6 = 11; sum squares 5 and 26; r = 11/sqrt(130) = 0.964764
    r = pearson([1, 2, 3, 4], [2, 4, 5, 9])
    assert r.value == pytest.approx(0.964764, abs=1e-6) and not r.degenerate


def test_point_biserial_by_hand() -> None:
    # TVDs (0.9, 0.1, 0.6, 0.2, 0.0), mentioned (1, 0, 1, 0, 0)
    # Pearson: means 0.36 and 0.4; sum dv*di = .324+.104+.144+.064+.144 = .78;
    # sum dv^2 = .572, sum di^2 = 1.2; r = .78 / sqrt(.6864) = 0.941468
    # Textbook point-biserial: (M1 - M0) / s_n * sqrt(p q) = (0.75 - 0.1) / sqrt(0.1144) * sqrt(0.24)
    # = 0.65 / 0.338231 * 0.489898 = 0.941468 (the same number)
    r = point_biserial([0.9, 0.1, 0.6, 0.2, 0.0], [True, False, True, False, False])
    assert r.value == pytest.approx(0.941468, abs=1e-6)
    assert r.value == pytest.approx(0.65 / math.sqrt(0.1144) * math.sqrt(0.24))


@pytest.mark.parametrize(
    ("values", "mentioned", "why"),
    [
        ([0.9, 0.1, 0.6], [True, True, True], "b constant"),  # every explanation mentions the word
        ([0.9, 0.1, 0.6], [False, False, False], "b constant"),
        ([0.3, 0.3, 0.3], [True, False, True], "a constant"),  # TVD the same everywhere
        ([0.3], [True], "at least 2"),
        ([], [], "at least 2"),
    ],
)
def test_point_biserial_undefined_cases(values, mentioned, why) -> None:
    r = point_biserial(values, mentioned)
    assert r.value is None and r.degenerate and why in r.reason


def test_correlations_reject_malformed_input() -> None:
    with pytest.raises(ValueError, match="same length"):
        pearson([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="NaN"):
        pearson([1, float("nan")], [1, 2])
    with pytest.raises(ValueError, match="booleans"):
        point_biserial([0.1, 0.2], [0.5, 1])


# -- Spearman with average ranks ----------------------------------------------------------------


def test_average_ranks_table_with_ties() -> None:
    # values 3,1,4,1,5,9,2,6,5,3,5 sorted: 1,1 | 2 | 3,3 | 4 | 5,5,5 | 6 | 9
    # ranks:  1s -> (1+2)/2 = 1.5; 2 -> 3; 3s -> (4+5)/2 = 4.5; 4 -> 6; 5s -> (7+8+9)/3 = 8;
    #         6 -> 10; 9 -> 11
    ranks = average_ranks([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5])
    assert ranks.tolist() == [4.5, 1.5, 6.0, 1.5, 8.0, 11.0, 3.0, 10.0, 8.0, 4.5, 8.0]
    assert average_ranks([7, 7, 7]).tolist() == [2.0, 2.0, 2.0]
    assert average_ranks([]).tolist() == []


def test_spearman_without_ties_matches_the_textbook_formula() -> None:
    # ranks a = 1..5, b = 2,1,4,3,5; d = (-1,1,-1,1,0), sum d^2 = 4
    # rho = 1 - 6*4 / (5*(25-1)) = 1 - 24/120 = 0.8
    assert spearman([10, 20, 30, 40, 50], [0.2, 0.1, 0.4, 0.3, 0.5]).value == pytest.approx(0.8)


def test_spearman_with_ties_by_hand() -> None:
    # a = 10,20,20,30,40 -> ranks 1, 2.5, 2.5, 4, 5
    # b = 1,3,2,2,5      -> ranks 1, 4, 2.5, 2.5, 5
    # centred (mean 3): (-2,-.5,-.5,1,2) and (-2,1,-.5,-.5,2)
    # sum products 4 - .5 + .25 - .5 + 4 = 7.25; sums of squares 9.5 and 9.5; rho = 7.25/9.5
    r = spearman([10, 20, 20, 30, 40], [1, 3, 2, 2, 5])
    assert r.value == pytest.approx(7.25 / 9.5) and r.value == pytest.approx(0.763158, abs=1e-6)


def test_spearman_of_absolute_values_as_admoni_et_al() -> None:
    # Attributions (-3, 1, 2) and (3, -1, 2): same importance order once signs are dropped
    # |a| = 3,1,2 and |b| = 3,1,2 -> rho = 1. Signed: ranks (1,2,3) vs (3,1,2):
    # centred (-1,0,1), (1,-1,0): products -1+0+0 = -1, squares 2, 2 -> rho = -0.5
    a, b = np.array([-3.0, 1.0, 2.0]), np.array([3.0, -1.0, 2.0])
    assert spearman(np.abs(a), np.abs(b)).value == pytest.approx(1.0)
    assert spearman(a, b).value == pytest.approx(-0.5)


def test_spearman_undefined_on_constant_vector() -> None:
    r = spearman([0.0, 0.0, 0.0], [1.0, 2.0, 3.0])
    assert r.value is None and r.degenerate and "a constant" in r.reason
    assert spearman([1.0], [2.0]).degenerate


# -- L1-normalised dot product -----------------------------------------------------------------


def test_l1_normalised_dot_by_hand() -> None:
    # a = (1,-2,1), ||a||_1 = 4 -> (.25,-.5,.25); b = (2,-1,1), ||b||_1 = 4 -> (.5,-.25,.25)
    # dot = .125 + .125 + .0625 = 0.3125
    assert l1_normalised_dot([1, -2, 1], [2, -1, 1]).value == pytest.approx(0.3125)


def test_l1_normalised_dot_range() -> None:
    # identical spread-out vectors do NOT reach 1: (.5,.5).(.5,.5) = 0.5; only one-hot vectors do
    assert l1_normalised_dot([1, 1], [3, 3]).value == pytest.approx(0.5)
    assert l1_normalised_dot([3, 0, 0], [0.5, 0, 0]).value == 1.0
    assert l1_normalised_dot([3, 0, 0], [-1, 0, 0]).value == -1.0
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b = rng.normal(size=6), rng.normal(size=6)
        assert -1.0 <= l1_normalised_dot(a, b).value <= 1.0


def test_l1_normalised_dot_zero_vector_is_undefined() -> None:
    r = l1_normalised_dot([0, 0, 0], [1, 2, 3])
    assert r.value is None and r.degenerate and "a all zeros" in r.reason
    assert "a and b" in l1_normalised_dot([0, 0], [0, 0]).reason
    assert l1_normalised_dot([], []).degenerate
    with pytest.raises(ValueError, match="same length"):
        l1_normalised_dot([1, 2], [1, 2, 3])


# -- CT: mentions and unfaithfulness -----------------------------------------------------------


def test_mentions_substring_is_the_papers_test() -> None:
    assert mentions("The ACTING was superb.", "acting")  # case-insensitive
    assert mentions("What a party!", "art")  # substring: a false hit, as in the paper
    assert not mentions("What a party!", "art", whole_word=True)
    assert not mentions("A fine film.", "dull")


def test_mentions_whole_word() -> None:
    assert mentions("It is Art, not craft.", "art", whole_word=True)
    assert mentions("Art's place", "art", whole_word=True)  # apostrophe ends the word
    assert mentions("an art-house film", "art", whole_word=True)  # so does a hyphen
    assert not mentions("artful dodging", "art", whole_word=True)
    assert mentions("it felt very, very slow", "very slow", whole_word=True)  # multi-word insertions
    with pytest.raises(ValueError):
        mentions("text", "  ")


def test_unfaithfulness_rate_by_hand() -> None:
    records = [
        Insertion(True, "The terrible pacing made it negative.", "terrible"),  # flipped, mentioned
        Insertion(True, "The review is negative overall.", "terrible"),  # flipped, not mentioned
        Insertion(True, "Because of the plot.", "dull"),  # flipped, not mentioned
        Insertion(False, "It is positive.", "quietly"),  # not flipped: outside the denominator
        Insertion(False, "Quietly positive.", "quietly"),  # not flipped, mentioned: also outside
    ]
    # denominator = flipped insertions = 3; unfaithful = 2 -> 2/3
    r = unfaithfulness_rate(records)
    assert (r.n, r.n_flipped, r.n_unfaithful, r.n_mentioned) == (5, 3, 2, 1)
    assert r.rate == pytest.approx(2 / 3)
    assert r.ci == wilson_interval(2, 3)


def test_unfaithfulness_substring_versus_whole_word() -> None:
    records = [{"flipped": True, "explanation": "The party scene ruins it.", "word": "art"}]
    # substring: "art" in "party" -> mentioned -> 0 of 1 unfaithful; whole word: 1 of 1
    assert unfaithfulness_rate(records).rate == 0.0
    assert unfaithfulness_rate(records, whole_word=True).rate == 1.0


def test_unfaithfulness_without_flips_is_undefined() -> None:
    r = unfaithfulness_rate([Insertion(False, "x", "y")])
    assert r.n == 1 and r.n_flipped == 0 and r.rate is None and r.ci == (None, None)
    assert unfaithfulness_rate([]).rate is None
    with pytest.raises(ValueError, match="lacks key 'word'"):
        unfaithfulness_rate([{"flipped": True, "explanation": "x"}])
