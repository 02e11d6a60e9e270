"""How many examples a paired gate on a rate needs (CLI: ``sce-audit --plan-sample-size``), and
the power of the gate a comparison ran (its notes: sce_checks/regression/gate.py).

The exact power of the one-sided exact McNemar test (sce_checks/regression/paired.py) for a drop
``d`` of a rate, summed over the number of discordant pairs (the unconditional power of the
conditional test; docs/regression.md), and the smallest sample that reaches a power. The
significance level defaults to the ``alpha`` setting (sce_checks/config.py), written once there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sce_checks import optional
from sce_checks.config import default


def critical_worse(discordant, alpha: float):
    """The smallest number of worse pairs among ``discordant`` ones that the one-sided exact
    McNemar test rejects at ``alpha`` (``discordant + 1`` where none does). Vectorised over
    ``discordant`` (a numpy array)."""
    stats = optional.scipy_stats()

    # isf(alpha) is the smallest x with P(X > x) <= alpha: reject from x + 1 worse pairs on
    return stats.binom.isf(alpha, np.asarray(discordant), 0.5).astype(int) + 1


def mcnemar_power(n: int, drop: float, changed: float, alpha: float = default("alpha")) -> float:
    """Exact power of the one-sided exact McNemar test on ``n`` pairs when a share ``changed``
    of the examples change outcome, a share ``(changed + drop) / 2`` for the worse and
    ``(changed - drop) / 2`` for the better (so the rate falls by ``drop``). The number of
    discordant pairs D is Binomial(n, changed); given D, the worse ones are
    Binomial(D, (changed + drop) / (2 changed)); power = sum over D of P(D) P(reject | D)."""
    _check_design(drop, changed, alpha)
    return _power(n, changed, _rejection(n, drop, changed, alpha))


def _rejection(most: int, drop: float, changed: float, alpha: float):
    """P(reject | D discordant pairs) for D = 0 .. ``most``: it depends on D alone, not on the
    number of pairs, so one array serves every n up to ``most``."""
    stats = optional.scipy_stats()

    D = np.arange(most + 1)
    share_worse = (changed + drop) / (2 * changed)
    return stats.binom.sf(critical_worse(D, alpha) - 1, D, share_worse)


def _power(n: int, changed: float, rejection) -> float:
    """Sum over D = 0 .. n of P(D discordant pairs among n) P(reject | D)."""
    stats = optional.scipy_stats()

    return float(np.sum(stats.binom.pmf(np.arange(n + 1), n, changed) * rejection[: n + 1]))


def _check_design(drop: float, changed: float, alpha: float) -> None:
    if not 0 < drop <= 1:
        raise ValueError(f"drop must be in (0, 1], got {drop}")
    if not drop <= changed <= 1:
        raise ValueError(f"the share of changed examples must be between the drop ({drop}) and 1, got {changed}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def independent_changes(p: float, drop: float) -> float:
    """The share of examples whose outcome changes if the outcomes before (rate p) and after
    (rate p - drop) were independent: p (1 - q) + q (1 - p), q = p - drop. Runs of two
    checkpoints of one model agree more than that, so this is the pessimistic end."""
    q = p - drop
    return p * (1 - q) + q * (1 - p)


def mcnemar_sample_size(drop: float, changed: float, alpha: float = default("alpha"), power: float = 0.8,
                        limit: int = 100_000) -> int | None:
    """The smallest number of examples at which the one-sided exact McNemar test detects a drop
    of ``drop`` with at least ``power`` (see `mcnemar_power`); None beyond ``limit``. The power of
    an exact test is not monotone in n (it saws up and down); the first n that reaches the power
    is returned, as in exact sample-size tables."""
    _check_design(drop, changed, alpha)
    if not 0 < power < 1:
        raise ValueError(f"power must be in (0, 1), got {power}")
    lo = 1
    hi = 16
    while mcnemar_power(hi, drop, changed, alpha) < power:
        lo, hi = hi, hi * 2
        if hi > limit:
            return None
    # the power's sawtooth: scan the last doubling interval for the first n that reaches it
    rejection = _rejection(hi, drop, changed, alpha)
    for n in range(lo, hi + 1):
        if _power(n, changed, rejection) >= power:
            return n
    return hi


@dataclass(frozen=True)
class SamplePlan:
    """How many examples a paired gate on a rate needs: ``fewest`` if every example that
    changes changes for the worse, ``independent`` if outcomes before and after were independent;
    the truth for two checkpoints of one model lies between."""

    p: float
    drop: float
    alpha: float
    power: float
    fewest: int | None
    independent: int | None
    changed: float | None = None  # a share of changed examples given by the user
    given: int | None = None  # the sample size for that share

    def describe(self) -> str:
        head = (f"to detect a drop of {self.drop:g} from {self.p:g} (one-sided exact McNemar, alpha {self.alpha:g}, "
                f"power {self.power:g}): ")
        if self.changed is not None:
            return head + f"{_n(self.given)} examples if {self.changed:g} of the examples change outcome"
        return head + (f"at least {_n(self.fewest)} examples (if every changed example got worse), "
                       f"{_n(self.independent)} if outcomes before and after were independent")


def _n(value: int | None) -> str:
    return "more than 100,000" if value is None else f"{value:,}"


def plan_sample_size(p: float, drop: float, alpha: float = default("alpha"), power: float = 0.8,
                     changed: float | None = None) -> SamplePlan:
    """The planning helper (CLI: ``sce-audit --plan-sample-size``): examples needed to detect a
    drop of a rate ``p`` by ``drop``. Without ``changed`` (the share of examples expected to
    change outcome) both ends of the range are given."""
    if not 0 < p <= 1:
        raise ValueError(f"p must be in (0, 1], got {p}")
    if not 0 < drop <= p:
        raise ValueError(f"drop must be in (0, p], got {drop}")
    if changed is not None:
        return SamplePlan(p, drop, alpha, power, None, None, changed, mcnemar_sample_size(drop, changed, alpha, power))
    return SamplePlan(p, drop, alpha, power, mcnemar_sample_size(drop, drop, alpha, power),
                      mcnemar_sample_size(drop, max(drop, independent_changes(p, drop)), alpha, power))


def smallest_detectable(n: int, alpha: float) -> int | None:
    """The fewest examples that must get worse (none better) among ``n`` shared ones for the
    one-sided exact McNemar test to reject at ``alpha``: the smallest k with 2^-k <= alpha, or
    None when n is too small."""
    k = math.ceil(math.log2(1 / alpha) - 1e-12)
    return k if k <= n else None
