"""Anytime-valid sequential gates: confidence sequences for means of values in [0, 1], and the
paired comparisons of a baseline, updated batch by batch (docs/sequential.md).

A fixed-n gate looks at its figure once, after ``--limit`` examples. A sequential audit looks
after every batch and stops as soon as every gate is decided; looking many times at a fixed-n
interval would raise its error rate far above alpha. A *confidence sequence* (CS) holds at every
sample size at once: P(some t has mean outside C_t) <= alpha, so it can be read after each batch
and the audit can stop whenever it likes.

Method: betting (Waudby-Smith and Ramdas 2023, "Estimating means of bounded random variables by
betting", JRSS-B 86:1-27; WSR below). To test "the mean is at most m", bet on each new value
exceeding m: the capital

    K_t(m) = prod_{i <= t} (1 + lambda_i(m) (x_i - m)),   lambda_i(m) = min(lambda_i, c / m)

is a non-negative supermartingale when the mean is at most m, for any bets lambda_i >= 0 chosen
from the values before x_i (predictable), so by Ville's inequality it ever reaches 1/alpha with
probability at most alpha. The truncation c / m (c < 1) keeps every factor at least 1 - c,
so one bad value never ruins the bettor. The lower end of the CS is the smallest m whose capital never reached 1/alpha;
K_t(m) falls as m grows (each factor does), so the excluded means form an interval [0, lower).
The upper end is the same construction on 1 - x. Taking the largest capital over all t <= n
(not only the last) is the running intersection of the CS, valid by the same inequality.

Bets: WSR's predictable plug-in ("PrPl") with their regularised estimates
``mu_t = (1/2 + sum x_i) / (t + 1)`` and ``var_t = (1/4 + sum (x_i - mu_i)^2) / (t + 1)``:

* no horizon: ``lambda_t = sqrt(2 log(1/alpha) / (var_{t-1} t log(1 + t)))`` with c = 1/2,
  WSR's bets for a CS over an unbounded time (their hedged capital process, with log(2/alpha) on
  each side, is the two-sided case: `confidence_sequence`);
* a horizon n (the audit's ``--limit``): a mixture (weighted average of capitals, still a
  supermartingale) of two bettors: 3/4 of the capital on ``lambda_t = sqrt(2 log(1/alpha) /
  (var_{t-1} n))``, WSR's bets for an interval at a fixed n, with c = 3/4 (their other suggested
  truncation: a figure near 0 gated from above, mean RCF_A <= 0.1, needs bets the c = 1/2 cap
  forbids), and 1/4 on the same bets tuned to n / 8 with c = 1/2, which stops easy gates sooner
  (docs/sequential.md measures these choices against the alternatives).

Binary outcomes are the special case x in {0, 1}; measured against the one-sided beta-binomial
mixture of Howard et al. (2021, Ann. Statist. 49:1055-1080) the betting bets decide more gates at
limit 160 (docs/sequential.md), so both kinds share one method.

A figure pooled over K sampled records per example (``--samples K``) is gated by
`ClusteredGate`: one value per example, so the example stays the unit, weighted so that the gate
decides the pooled figure sum / count itself (its docstring; docs/sequential.md, "Sampled audits").

One-sided gates spend alpha on one side each: a gate ``x >= t`` passes when the lower bound at
level ``alpha`` exceeds t (its error, a false pass, is at most alpha whenever the mean is at most
t) and fails early when the upper bound at level ``fail_alpha`` (default alpha) is below t (a
false early fail, at most fail_alpha whenever the mean is at least t). Neither is halved: a gate
needs only its one side to guard its error. The interval (lower, upper) shown beside a gate is
therefore a (1 - alpha - fail_alpha) CS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

import numpy as np

from sce_checks.errors import UserInputError

TRUNCATION = 0.5  # c: a bet stakes at most half the capital at risk (every factor >= 1 - c); WSR's default
MAIN_TRUNCATION = 0.75  # c of the bettor tuned to the horizon (WSR's other suggestion; docs/sequential.md)
PRIOR_MEAN, PRIOR_VAR = 0.5, 0.25  # WSR's regularisation: one pseudo-observation at 1/2, variance 1/4
EARLY_SHARE, EARLY_WEIGHT = 0.125, 0.25  # the second bettor: tuned to horizon / 8, a quarter of the capital
BISECTIONS = 40  # bound precision 2^-40
OPS = (">=", ">", "<=", "<")
PASS, FAIL, UNDECIDED = "pass", "fail", "undecided"


def unit_values(values: Sequence[float] | np.ndarray, what: str = "values") -> np.ndarray:
    """``values`` as a float array, refused in one line unless every one is a number in [0, 1]."""
    x = np.asarray(values, dtype=float).ravel()
    bad = np.flatnonzero(~((x >= 0.0) & (x <= 1.0)))  # NaN fails both comparisons
    if bad.size:
        i = int(bad[0])
        raise UserInputError(f"sequential gate: {what} must be numbers in [0, 1]; got {float(x[i])} at position {i} "
                             f"({bad.size} of {x.size} out of range)")
    return x


def _level(alpha: float, name: str = "alpha") -> float:
    if not (isinstance(alpha, (int, float)) and 0.0 < alpha < 1.0):
        raise UserInputError(f"sequential gate: {name} must be in (0, 1), got {alpha!r}")
    return float(alpha)


def _horizon(horizon: int | None) -> int | None:
    if horizon is not None and (not isinstance(horizon, (int, np.integer)) or horizon < 1):
        raise UserInputError(f"sequential gate: horizon must be a positive number of examples, got {horizon!r}")
    return None if horizon is None else int(horizon)


class Bettor(NamedTuple):
    """One betting strategy of the mixture: its share of the capital, its truncation c, and its
    untruncated bets lambda_1..n (along the last axis of the values)."""

    weight: float
    truncation: float
    bets: np.ndarray


def plugin_bets(x: np.ndarray, alpha: float, horizon: int | None = None) -> list[Bettor]:
    """The bettors of the module docstring on ``x`` (values along the last axis).

    Bet t uses x_1..x_{t-1} only (WSR's regularised variance before t), which is what makes the
    capital a supermartingale under the null."""
    x = np.asarray(x, dtype=float)
    n = x.shape[-1]
    t = np.arange(1, n + 1, dtype=float)
    mu = (PRIOR_MEAN + np.cumsum(x, axis=-1)) / (t + 1)
    var = (PRIOR_VAR + np.cumsum((x - mu) ** 2, axis=-1)) / (t + 1)
    var_before = np.concatenate([np.full(x.shape[:-1] + (1,), PRIOR_VAR), var[..., :-1]], axis=-1)
    budget = 2.0 * math.log(1.0 / alpha) / var_before
    if horizon is None:
        return [Bettor(1.0, TRUNCATION, np.sqrt(budget / (t * np.log1p(t))))]
    early = max(1.0, horizon * EARLY_SHARE)
    return [Bettor(1.0 - EARLY_WEIGHT, MAIN_TRUNCATION, np.sqrt(budget / horizon)),
            Bettor(EARLY_WEIGHT, TRUNCATION, np.sqrt(budget / early))]


def log_wealth(x: np.ndarray, m: float | np.ndarray, bets: list[Bettor]) -> np.ndarray:
    """log K_t(m), t = 1..n along the last axis: the capital of betting that the mean of ``x``
    exceeds ``m`` (module docstring), a weighted mixture of the bettors in ``bets``.

    ``m`` is a number in [0, 1] or an array that broadcasts against ``x[..., :1]`` (one m per
    row). Computed in log space: a factor is at least 1 - c, so log1p never sees -1."""
    x = np.asarray(x, dtype=float)
    m = np.asarray(m, dtype=float)
    with np.errstate(divide="ignore"):
        per_stake = 1.0 / m  # m = 0: no cap (x - m >= 0, the factor cannot fall below 1)
    logs = [math.log(b.weight) + np.cumsum(np.log1p(np.minimum(b.bets, b.truncation * per_stake) * (x - m)), axis=-1)
            for b in bets]
    if len(logs) == 1:
        return logs[0]
    return np.logaddexp.reduce(np.stack(logs), axis=0)


def _excluded_below(x: np.ndarray, m: float, bets: list, level: float) -> bool:
    """The capital at ``m`` reached 1/level at some t: every mean <= m is excluded."""
    return bool(x.size) and float(np.max(log_wealth(x, m, bets))) >= math.log(1.0 / level)


def lower_bound(x: np.ndarray, bets: list[Bettor], level: float) -> float:
    """The lower end of the CS after all of ``x``: the smallest m whose capital never reached
    1/level, found by bisection (the capital falls as m grows) and rounded down, so the bound
    stays valid. 0.0 when no m > 0 is excluded."""
    x = np.asarray(x, dtype=float)
    if not _excluded_below(x, 0.0, bets, level):
        return 0.0
    lo, hi = 0.0, 1.0  # K_t(1) <= 1 < 1/level: m = 1 is never excluded
    for _ in range(BISECTIONS):
        mid = 0.5 * (lo + hi)
        if _excluded_below(x, mid, bets, level):
            lo = mid
        else:
            hi = mid
    return lo


def confidence_sequence(values: Sequence[float] | np.ndarray, alpha: float = 0.05,
                        horizon: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided CS at level ``alpha``: (lower, upper) after each of the n values.

    Each side at alpha / 2: with ``horizon=None`` this is WSR's hedged capital CS (theta = 1/2,
    c = 1/2, PrPl bets with log(2/alpha)), with the running intersection. O(n^2): for plots and
    tests; an audit updates `ConfidenceSequence` batch by batch."""
    x = unit_values(values)
    alpha = _level(alpha)
    horizon = _horizon(horizon)
    lows, highs = np.zeros(x.size), np.ones(x.size)
    for t in range(1, x.size + 1):
        head = x[:t]
        lows[t - 1] = lower_bound(head, plugin_bets(head, alpha / 2, horizon), alpha / 2)
        highs[t - 1] = 1.0 - lower_bound(1.0 - head, plugin_bets(1.0 - head, alpha / 2, horizon), alpha / 2)
    return lows, highs


class ConfidenceSequence:
    """Time-uniform bounds on the mean of values in [0, 1], fed batch by batch.

    ``alpha_lower`` / ``alpha_upper``: the error of each side (the mean below ``lower``, above
    ``upper``, at any time); the defaults make a two-sided 95% CS. ``horizon``: the sample size
    the bets are tuned for (the audit's limit); the bounds stay valid past it."""

    def __init__(self, alpha_lower: float = 0.025, alpha_upper: float = 0.025, horizon: int | None = None):
        self.alpha_lower = _level(alpha_lower, "alpha_lower")
        self.alpha_upper = _level(alpha_upper, "alpha_upper")
        self.horizon = _horizon(horizon)
        self.values = np.zeros(0)
        self.lower, self.upper = 0.0, 1.0

    @property
    def n(self) -> int:
        return int(self.values.size)

    def update(self, values: Sequence[float] | np.ndarray, what: str = "values") -> tuple[float, float]:
        """Add a batch (in the audit's order); returns the new (lower, upper)."""
        self.values = np.concatenate([self.values, unit_values(values, what)])
        x = self.values
        self.lower = lower_bound(x, plugin_bets(x, self.alpha_lower, self.horizon), self.alpha_lower)
        flipped = 1.0 - x
        self.upper = 1.0 - lower_bound(flipped, plugin_bets(flipped, self.alpha_upper, self.horizon),
                                       self.alpha_upper)
        return self.lower, self.upper

    def shows_above(self, m: float) -> bool:
        """The mean exceeds ``m``, at level alpha_lower: the capital at m reached 1/alpha_lower."""
        if m < 0.0:
            return True
        if m >= 1.0:
            return False
        x = self.values
        return _excluded_below(x, m, plugin_bets(x, self.alpha_lower, self.horizon), self.alpha_lower)

    def shows_below(self, m: float) -> bool:
        """The mean is below ``m``, at level alpha_upper (the same bet on 1 - x)."""
        if m > 1.0:
            return True
        if m <= 0.0:
            return False
        x = 1.0 - self.values
        return _excluded_below(x, 1.0 - m, plugin_bets(x, self.alpha_upper, self.horizon), self.alpha_upper)


@dataclass
class SequentialGate:
    """One threshold on a mean figure, decided as examples arrive: ``validity >= 0.8`` is
    ``SequentialGate("binary", ">=", 0.8)``, ``mean_rcf_a <= 0.1`` is
    ``SequentialGate("mean", "<=", 0.1)``.

    ``kind``: "binary" (values 0 or 1: validity, exact match, failure rates) or "mean" (values in
    [0, 1]: Gower distance, RCF_A, TVD). ``state()`` is "pass" once the CS lies wholly on the
    passing side (the mean is shown to satisfy the gate strictly, at level ``alpha``), "fail" once
    it lies wholly on the failing side (at level ``fail_alpha``, default alpha), else "undecided";
    the first decision stands (later batches still narrow the interval). ``final()`` is the
    verdict when the audit stops: an undecided gate fails, as an undecided threshold does
    (sce_checks/thresholds.py). ``>`` and ``>=`` (``<`` and ``<=``) decide alike: the mean
    exactly at the threshold never passes with probability above alpha."""

    kind: str
    op: str
    threshold: float
    alpha: float = 0.05
    horizon: int | None = None
    fail_alpha: float | None = None
    history: list[tuple[int, float, float]] = field(default_factory=list, init=False)
    _state: str = field(default=UNDECIDED, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in ("binary", "mean"):
            raise UserInputError(f"sequential gate: kind must be 'binary' or 'mean', got {self.kind!r}")
        if self.op not in OPS:
            raise UserInputError(f"sequential gate: op must be one of {', '.join(OPS)}, got {self.op!r}")
        if not (isinstance(self.threshold, (int, float)) and math.isfinite(self.threshold)):
            raise UserInputError(f"sequential gate: the threshold must be a number, got {self.threshold!r}")
        self.alpha = _level(self.alpha)
        self.fail_alpha = self.alpha if self.fail_alpha is None else _level(self.fail_alpha, "fail_alpha")
        low, high = (self.alpha, self.fail_alpha) if self.higher else (self.fail_alpha, self.alpha)
        self.cs = ConfidenceSequence(low, high, self.horizon)
        self._decide()  # a threshold outside [0, 1] is decided before any example

    @property
    def higher(self) -> bool:
        """The gate passes on high values (``>=``, ``>``)."""
        return self.op in (">=", ">")

    @property
    def n(self) -> int:
        return self.cs.n

    def update(self, values: Sequence[float] | np.ndarray) -> str:
        """Add a batch of per-example values (in the audit's order); returns ``state()``."""
        values = np.asarray(values, dtype=float).ravel()
        if self.kind == "binary" and np.any((values != 0.0) & (values != 1.0)):
            bad = float(values[(values != 0.0) & (values != 1.0)][0])
            raise UserInputError(f"sequential gate: binary outcomes must be 0 or 1, got {bad}")
        lower, upper = self.cs.update(values)
        self.history.append((self.n, lower, upper))
        self._decide()
        return self._state

    def _decide(self) -> None:
        if self._state != UNDECIDED:
            return
        above, below = self.cs.shows_above(self.threshold), self.cs.shows_below(self.threshold)
        passed, failed = (above, below) if self.higher else (below, above)
        if failed:  # both (an empty CS): fail, never a false pass
            self._state = FAIL
        elif passed:
            self._state = PASS

    def interval(self) -> tuple[float, float]:
        """(lower, upper) bounds on the mean now; (0, 1) before any example."""
        return self.cs.lower, self.cs.upper

    def state(self) -> str:
        return self._state

    def final(self) -> str:
        """"pass" or "fail" when the audit stops here: undecided fails."""
        return PASS if self._state == PASS else FAIL


def pooled_values(sums: np.ndarray, counts: np.ndarray, samples: int, m: float) -> np.ndarray:
    """Per example, ``m + (sum - m count) / samples``: a value in [0, 1] whose mean exceeds m
    exactly when the pooled figure's mean, E[sum] / E[count], does (`ClusteredGate`)."""
    z = m + (np.asarray(sums, dtype=float) - m * np.asarray(counts, dtype=float)) / samples
    return np.clip(z, 0.0, 1.0)  # float noise only: 0 <= sum <= count <= samples keeps z in [0, 1]


def _pooled_excluded_below(sums: np.ndarray, counts: np.ndarray, samples: int, r: float, level: float,
                           horizon: int | None) -> bool:
    """The pooled mean is shown above ``r`` at ``level``: the bet on `pooled_values` at r won."""
    z = pooled_values(sums, counts, samples, r)
    return _excluded_below(z, r, plugin_bets(z, level, horizon), level)


def pooled_lower_bound(sums: np.ndarray, counts: np.ndarray, samples: int, level: float,
                       horizon: int | None) -> float:
    """The lower end of the CS of E[sum] / E[count]: the largest r the bets exclude, by bisection
    over r (each r has its own values, `pooled_values`), rounded down. 0.0 when none is."""
    if not _pooled_excluded_below(sums, counts, samples, 0.0, level, horizon):
        return 0.0
    lo, hi = 0.0, 1.0  # r = 1: every value is at most 1, so 1 is never excluded
    for _ in range(BISECTIONS):
        mid = 0.5 * (lo + hi)
        if _pooled_excluded_below(sums, counts, samples, mid, level, horizon):
            lo = mid
        else:
            hi = mid
    return lo


@dataclass
class ClusteredGate:
    """A threshold on a figure pooled over K sampled records per example (docs/sequential.md,
    "Sampled audits"): the figure is sum(values) / count over every record, an example's records
    are not independent, the examples are. Fed per example its (sum of values, count) over its
    samples, values in [0, 1] (a binary outcome's sum is how many samples it holds in).

    The pooled figure estimates R = E[sum] / E[count], which is not the mean of per-example shares
    when examples count different numbers of samples (an example with 1 generated SCE weighs 1/K
    of one with K). R >= t exactly when E[sum - t count] >= 0, i.e. when the mean of
    ``z = t + (sum - t count) / K`` (in [0, 1]: 0 <= sum <= count <= K) is at least t. So the gate
    decides "R vs t" as a `SequentialGate` ("mean", WSR's bounded-mean CS) on z, one value per
    example: the same error guarantees, with the example as the unit. The interval shown is the
    CS of R itself: the r that the same bets at r do not exclude. When every example counts all
    K samples, z is the example's share and this is the bounded-mean CS of the shares; with K = 1
    it is `SequentialGate` on the outcomes."""

    kind: str  # the outcome's kind, as reported ("binary" | "mean")
    op: str
    threshold: float
    samples: int
    alpha: float = 0.05
    horizon: int | None = None
    fail_alpha: float | None = None
    history: list[tuple[int, float, float]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.samples, (int, np.integer)) or self.samples < 1:
            raise UserInputError(f"clustered gate: samples must be a positive number, got {self.samples!r}")
        self.decider = SequentialGate("mean", self.op, self.threshold, self.alpha, self.horizon, self.fail_alpha)
        self.alpha, self.fail_alpha = self.decider.alpha, self.decider.fail_alpha
        self.horizon = self.decider.cs.horizon
        self.at = min(1.0, max(0.0, float(self.threshold)))  # outside [0, 1] the gate is decided already
        self.sums, self.counts = np.zeros(0), np.zeros(0)
        self.lower, self.upper = 0.0, 1.0

    @property
    def n(self) -> int:
        """Examples fed (those counting at least one sample)."""
        return int(self.counts.size)

    def update(self, sums: Sequence[float] | np.ndarray, counts: Sequence[float] | np.ndarray) -> str:
        """Add a batch of examples: each one's sum of values and count of samples (count >= 1)."""
        s, c = np.asarray(sums, dtype=float).ravel(), np.asarray(counts, dtype=float).ravel()
        ok = (s.size == c.size) and bool(np.all((c >= 1) & (c <= self.samples) & (c % 1 == 0)
                                                & (s >= 0) & (s <= c)))
        if not ok:
            raise UserInputError(f"clustered gate: each example needs a count in 1..{self.samples} and a sum of "
                                 "values in [0, count]")
        self.sums, self.counts = np.concatenate([self.sums, s]), np.concatenate([self.counts, c])
        self.decider.update(pooled_values(s, c, self.samples, self.at))
        a_low, a_high = self.decider.cs.alpha_lower, self.decider.cs.alpha_upper
        k, h = self.samples, self.horizon
        self.lower = pooled_lower_bound(self.sums, self.counts, k, a_low, h)
        self.upper = 1.0 - pooled_lower_bound(self.counts - self.sums, self.counts, k, a_high, h)
        self.history.append((self.n, self.lower, self.upper))
        return self.state()

    def interval(self) -> tuple[float, float]:
        return self.lower, self.upper

    def state(self) -> str:
        return self.decider.state()

    def final(self) -> str:
        return self.decider.final()


@dataclass
class SequentialComparison:
    """One figure compared with a baseline on the same examples, decided as pairs arrive.

    Gates the mean change towards worse, w = before - after (``better="higher"``) or
    after - before (``better="lower"``), in [-1, 1], against ``tolerance``: ``state()`` is "fail"
    (regressed) once the CS shows w > tolerance at level ``alpha``, "pass" once it shows
    w < tolerance at level ``pass_alpha`` (default alpha), else "undecided". ``final()`` turns
    undecided into "fail", as `SequentialGate.final` does: under ``--sequential`` the comparison
    is the baseline gate's verdict (docs/sequential.md), and a gate that cannot decide must not
    pass. With tolerance 0 only an improvement can be shown, so a comparison without a tolerance
    passes only a model that got better.

    ``kind="binary"`` (0/1 outcomes, tolerance 0) is a sequential McNemar test: a concordant pair
    has w = 0 = m and leaves the capital unchanged, so the capital bets on the discordant pairs
    alone, and it is a supermartingale whenever P(worse | discordant) <= 1/2, whatever the
    share of discordant pairs. ``kind="continuous"``: values in [0, 1], the CS of the mean paired
    difference. Either way the CS runs on (w + 1) / 2 in [0, 1]."""

    kind: str
    better: str = "higher"
    tolerance: float = 0.0
    alpha: float = 0.05
    horizon: int | None = None
    pass_alpha: float | None = None
    worse: int = field(default=0, init=False)
    improved: int = field(default=0, init=False)
    history: list[tuple[int, float, float]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if self.kind not in ("binary", "continuous"):
            raise UserInputError(f"sequential comparison: kind must be 'binary' or 'continuous', got {self.kind!r}")
        if self.better not in ("higher", "lower"):
            raise UserInputError(f"sequential comparison: better must be 'higher' or 'lower', got {self.better!r}")
        if not (isinstance(self.tolerance, (int, float)) and 0.0 <= self.tolerance < 1.0):
            raise UserInputError(f"sequential comparison: tolerance must be in [0, 1), got {self.tolerance!r}")
        self.alpha = _level(self.alpha)
        self.pass_alpha = self.alpha if self.pass_alpha is None else _level(self.pass_alpha, "pass_alpha")
        # w <= tolerance passes: the gate "(w + 1) / 2 <= (tolerance + 1) / 2", failing at alpha
        self.gate = SequentialGate("mean", "<=", (self.tolerance + 1.0) / 2.0, self.pass_alpha, self.horizon,
                                   fail_alpha=self.alpha)

    @property
    def n(self) -> int:
        return self.gate.n

    def update(self, before: Sequence[float] | np.ndarray, after: Sequence[float] | np.ndarray) -> str:
        """Add a batch of pairs (the same examples' outcomes in the baseline and now)."""
        b, a = unit_values(before, "baseline outcomes"), unit_values(after, "outcomes")
        if b.size != a.size:
            raise UserInputError(f"sequential comparison: {b.size} baseline outcomes but {a.size} outcomes")
        if self.kind == "binary" and np.any((b % 1 != 0) | (a % 1 != 0)):
            raise UserInputError("sequential comparison: binary outcomes must be 0 or 1")
        w = b - a if self.better == "higher" else a - b
        self.worse += int(np.count_nonzero(w > 0))
        self.improved += int(np.count_nonzero(w < 0))
        state = self.gate.update((w + 1.0) / 2.0)
        self.history.append((self.n, *self.interval()))
        return state

    def interval(self) -> tuple[float, float]:
        """(lower, upper) bounds on the mean change after - before; (-1, 1) before any pair."""
        lo, hi = self.gate.interval()
        w_lo, w_hi = 2.0 * lo - 1.0, 2.0 * hi - 1.0
        return (-w_hi, -w_lo) if self.better == "higher" else (w_lo, w_hi)

    @property
    def mean_change(self) -> float | None:
        """The mean change after - before over the pairs so far (None before any pair)."""
        if not self.n:
            return None
        w = 2.0 * float(np.mean(self.gate.cs.values)) - 1.0
        return (-w if self.better == "higher" else w) + 0.0  # + 0.0: no -0.0

    def state(self) -> str:
        return self.gate.state()

    def final(self) -> str:
        """"pass" or "fail" when the audit stops here: undecided fails, as an undecided gate does
        (a change within the tolerance must be shown, as a regression must)."""
        return PASS if self.gate.state() == PASS else FAIL


@dataclass(frozen=True)
class GatePaths:
    """The decisions of many simulated sequential audits: per run, the state when it stopped
    and the examples it used."""

    state: np.ndarray  # "pass" | "fail" | "undecided"
    n: np.ndarray


def gate_paths(x: np.ndarray, op: str, threshold: float, alpha: float = 0.05, *, batch: int = 8,
               horizon: int | None = None, fail_alpha: float | None = None) -> GatePaths:
    """`SequentialGate` over every row of ``x`` (runs x examples, values in [0, 1]) at once,
    looking after each ``batch`` examples: the same capitals, vectorised for simulations
    (benchmarks/bench_sequential.py); tests check both agree. The horizon defaults to the row
    length, as an audit's does to its limit."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[1] == 0 or batch < 1:
        raise UserInputError("gate_paths: x must be runs x examples, batch a positive number")
    unit_values(x)
    gate = SequentialGate("mean", op, threshold, alpha, horizon or x.shape[1], fail_alpha)  # validates
    runs, limit = x.shape
    ends = np.unique(np.r_[np.arange(batch, limit, batch), limit]) - 1
    above = _shown(x, threshold, gate.cs.alpha_lower, gate.horizon, ends)
    below = _shown(1.0 - x, 1.0 - threshold, gate.cs.alpha_upper, gate.horizon, ends)
    passed, failed = (above, below) if gate.higher else (below, above)
    decided = passed | failed
    first = np.where(decided.any(axis=1), decided.argmax(axis=1), ends.size - 1)
    rows = np.arange(runs)
    state = np.full(runs, UNDECIDED, dtype=object)
    state[passed[rows, first]] = PASS
    state[failed[rows, first]] = FAIL
    if gate.state() != UNDECIDED:  # a threshold outside [0, 1]
        return GatePaths(np.full(runs, gate.state(), dtype=object), np.zeros(runs, dtype=int))
    return GatePaths(state, ends[first] + 1)


def comparison_paths(worse: np.ndarray, tolerance: float = 0.0, alpha: float = 0.05, *, batch: int = 8,
                     horizon: int | None = None, pass_alpha: float | None = None) -> GatePaths:
    """`SequentialComparison` over every row of ``worse`` (runs x pairs of the change towards
    worse, in [-1, 1]) at once: "fail" is a regression shown at ``alpha``."""
    w = np.asarray(worse, dtype=float)
    if np.any(~((w >= -1.0) & (w <= 1.0))):
        raise UserInputError("comparison_paths: the changes must be numbers in [-1, 1]")
    comparison = SequentialComparison("continuous", "lower", tolerance, alpha, horizon, pass_alpha)  # validates
    return gate_paths((w + 1.0) / 2.0, "<=", (tolerance + 1.0) / 2.0, comparison.pass_alpha, batch=batch,
                      horizon=horizon, fail_alpha=comparison.alpha)


def _shown(x: np.ndarray, m: float, level: float, horizon: int, ends: np.ndarray) -> np.ndarray:
    """Per run and look: the capital at ``m`` has reached 1/level by then (runs x looks)."""
    if m < 0.0 or m >= 1.0:
        return np.full((x.shape[0], ends.size), m < 0.0)
    reached = np.maximum.accumulate(log_wealth(x, m, plugin_bets(x, level, horizon)), axis=1)
    return reached[:, ends] >= math.log(1.0 / level)
