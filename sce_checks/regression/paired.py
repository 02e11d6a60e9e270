"""Paired comparisons of two runs on the same examples.

Pure functions over per-example outcomes (no result objects, no reports): the baseline gate
(sce_checks/regression/gate.py) pairs the examples two runs share by id and calls these; how many
examples a gate needs is sce_checks/regression/planning.py.

* Binary outcomes (valid, generated, exact match, INV failure, ...): the exact McNemar test, i.e. a
  binomial test on the discordant pairs (McNemar 1947; the exact form: Fagerland, Lydersen and
  Laake 2013, BMC Med Res Methodol 13:91), with Newcombe's score interval for the paired
  difference of proportions (Newcombe 1998, Stat Med 17:2635-2650, method 10).
* Continuous outcomes (distance, RCF_A, TVD, rank correlations): the Wilcoxon signed-rank test on
  the paired differences (zero differences dropped: Wilcoxon's own treatment), with a percentile
  interval of the mean difference from a paired bootstrap (examples resampled with replacement,
  `BOOTSTRAP_RESAMPLES` resamples, seed `BOOTSTRAP_SEED`).
* Holm's step-down correction across the figures a gate compares (Holm 1979, Scand J Statist
  6:65-70), over the figures whose test could reach the level at all (Tarone 1990, Biometrics
  46:515-522: a discrete test that cannot reach alpha, e.g. McNemar on 3 discordant pairs, only
  dilutes the correction).

Tests are one-sided towards *worse*: a gate asks one question, did the figure get worse. The
p-value of a figure that improved is near 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Sequence

import numpy as np

from sce_checks import optional
from sce_checks.metrics.stats import wilson_interval

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
ZERO = 1e-9  # a paired difference this small is no difference (float rounding of equal distances)


@dataclass(frozen=True)
class PairedTest:
    """One figure compared on the examples both runs share.

    ``before`` / ``after``: the outcome's mean over the pairs; ``delta`` = after - before with its
    95% interval (``low``, ``high``); ``p``: one-sided p-value for a change towards worse;
    ``worse`` / ``better``: examples that moved each way (discordant pairs; for continuous
    outcomes the pairs whose value moved), ``same``: the rest; ``min_p``: the smallest p-value
    the test could give with these pairs (1.0: no example moved, nothing can be concluded)."""

    test: str  # "McNemar" | "Wilcoxon"
    n: int
    before: float
    after: float
    delta: float
    low: float
    high: float
    p: float
    worse: int
    better: int
    same: int
    min_p: float


def mcnemar_p(worse: int, better: int) -> float:
    """Exact one-sided McNemar p-value: P(X >= worse) for X ~ Binomial(worse + better, 1/2), the
    chance of at least this many of the discordant pairs going the bad way when either way is as
    likely. 1.0 without discordant pairs."""
    stats = optional.scipy_stats()

    n = worse + better
    if n == 0:
        return 1.0
    return float(stats.binomtest(worse, n, 0.5, alternative="greater").pvalue)


def newcombe_paired(a: int, b: int, c: int, d: int, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Newcombe's method 10 (1998): the difference p2 - p1 of paired proportions and its score
    interval. ``a``: 1 before and after, ``b``: 1 before, 0 after, ``c``: 0 before, 1 after,
    ``d``: 0 both. p1 = (a + b) / n, p2 = (a + c) / n; the Wilson limits of each are combined
    with the phi correlation of the 2x2 table (phi = 0 when a margin is empty)."""

    n = a + b + c + d
    if n == 0:
        raise ValueError("no pairs")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson_interval(a + b, n, z)  # n > 0: both limits are numbers
    l2, u2 = wilson_interval(a + c, n, z)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    phi = (a * d - b * c) / math.sqrt(margins) if margins else 0.0
    theta = p2 - p1
    # limits of p2 - p1: the lower combines p2's lower and p1's upper distance, and vice versa
    lower = math.sqrt(max(0.0, (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2))
    upper = math.sqrt(max(0.0, (u2 - p2) ** 2 - 2 * phi * (u2 - p2) * (p1 - l1) + (p1 - l1) ** 2))
    return theta, max(-1.0, theta - lower), min(1.0, theta + upper)


def binary_test(pairs: Sequence[tuple[bool, bool]], higher_is_better: bool = True) -> PairedTest:
    """McNemar on (before, after) pairs of a binary outcome; worse = 1 -> 0 when higher is better."""
    a = sum(1 for x, y in pairs if x and y)
    b = sum(1 for x, y in pairs if x and not y)
    c = sum(1 for x, y in pairs if not x and y)
    d = len(pairs) - a - b - c
    worse, better = (b, c) if higher_is_better else (c, b)
    delta, low, high = newcombe_paired(a, b, c, d)
    n = len(pairs)
    return PairedTest("McNemar", n, (a + b) / n, (a + c) / n, delta, low, high, mcnemar_p(worse, better), worse,
                      better, a + d, mcnemar_p(worse + better, 0))


def wilcoxon_p(differences: Sequence[float], worse_is_positive: bool) -> float:
    """One-sided Wilcoxon signed-rank p-value for a shift towards worse; zero differences are
    dropped (Wilcoxon 1945). 1.0 when no difference is left. Exact null distribution without
    ties among the |differences| up to 50 of them (scipy's choice), the normal approximation
    otherwise."""
    stats = optional.scipy_stats()

    moved = [x for x in differences if abs(x) > ZERO]
    if not moved:
        return 1.0
    result = stats.wilcoxon(moved, zero_method="wilcox", alternative="greater" if worse_is_positive else "less")
    return float(result.pvalue)


def bootstrap_mean_interval(differences: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES,
                            seed: int = BOOTSTRAP_SEED, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile interval of the mean paired difference: the pairs resampled with replacement
    ``resamples`` times from a generator seeded with ``seed``."""

    values = np.asarray(differences, dtype=float)
    if values.size == 0:
        raise ValueError("no pairs")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def continuous_test(pairs: Sequence[tuple[float, float]], higher_is_better: bool) -> PairedTest:
    """Wilcoxon signed-rank on (before, after) pairs with a paired-bootstrap interval of the mean
    difference."""
    diffs = [y - x for x, y in pairs]
    worse_positive = not higher_is_better
    n = len(pairs)
    up = sum(1 for x in diffs if x > ZERO)
    down = sum(1 for x in diffs if x < -ZERO)
    worse, better = (down, up) if higher_is_better else (up, down)
    low, high = bootstrap_mean_interval(diffs)
    before, after = sum(x for x, _ in pairs) / n, sum(y for _, y in pairs) / n
    # the smallest p the test can give: every moved pair the bad way, n' = up + down
    min_p = 0.5 ** (up + down) if up + down <= 50 else 0.0
    return PairedTest("Wilcoxon", n, before, after, after - before, low, high, wilcoxon_p(diffs, worse_positive),
                      worse, better, n - up - down, min_p)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's adjusted p-values, in the order given: the i-th smallest of m is multiplied by
    m - i + 1, and the running maximum keeps the order (Holm 1979). A figure is significant at
    alpha when its adjusted p-value is <= alpha."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
