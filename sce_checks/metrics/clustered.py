"""Intervals for figures over clustered samples: K sampled SCEs per example (docs/sampling.md).

The K samples of one example share the example, and usually much of the model's answer: they are
not K independent observations. An interval that counted them as such would shrink with K even
when every sample of an example says the same thing. Examples are the independent units, so the
intervals resample *examples*, each with all its samples (a cluster bootstrap: Davison and Hinkley
1997, section 3.8; Field and Welsh 2007, JASA 102:479), with `RESAMPLES` resamples and a seed
derived from the run's --seed and the figure's name (`bootstrap_seed`).

* Proportions (validity, strict validity, validity in context): a Wilson interval (Wilson 1927)
  at the *effective* sample size n_eff = p(1 - p) / Var*(p), Var* the cluster-bootstrap variance
  of the pooled proportion p (Kish's design effect, Kish 1965, estimated by the bootstrap), kept
  between the number of examples (every sample of an example agreeing) and the number of samples
  (independent samples). Where p is 0 or 1 the bootstrap variance says nothing about agreement,
  and n_eff is the number of examples: the cautious end. With one sample per example n_eff is n
  and the interval is exactly the usual Wilson interval.
* Means (expected validity, distances, RCF_A, ICF_A): the percentile interval of the ratio
  estimator sum(values) / count over resampled examples.

A figure's inputs are given per example as (sum of values, number of values) over its samples.
"""

from __future__ import annotations

import hashlib
import json
from typing import Sequence

import numpy as np

from sce_checks.metrics.stats import wilson_interval

RESAMPLES = 2000
CONFIDENCE = 0.95

Cluster = tuple[float, int]  # (sum of the example's values, how many values it has)


def bootstrap_seed(seed: int, figure: str) -> int:
    """The seed of one figure's bootstrap: a hash of the run's --seed and the figure's name, so a
    rerun gives the same interval and each figure its own resamples."""
    text = json.dumps(["cluster-bootstrap", seed, figure], separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def _resampled_ratios(clusters: Sequence[Cluster], seed: int, resamples: int) -> np.ndarray:
    """sum / count over ``resamples`` resamples of the examples (NaN where a resample has no value)."""
    sums = np.array([c[0] for c in clusters], dtype=float)
    counts = np.array([c[1] for c in clusters], dtype=float)
    picks = np.random.default_rng(seed).integers(0, len(clusters), size=(resamples, len(clusters)))
    num, den = sums[picks].sum(axis=1), counts[picks].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def clustered_proportion_interval(clusters: Sequence[Cluster], seed: int,
                                  resamples: int = RESAMPLES) -> tuple[float | None, float | None]:
    """Wilson interval of the pooled proportion at the effective sample size (module docstring);
    ``clusters``: (successes, trials) per example, examples without trials included or not."""
    used = [c for c in clusters if c[1] > 0]
    n = sum(c[1] for c in used)
    if n == 0:
        return None, None
    k = sum(c[0] for c in used)
    p = k / n
    n_eff = float(len(used))
    if len(used) < n and 0 < p < 1:
        ratios = _resampled_ratios(used, seed, resamples)
        variance = float(np.nanvar(ratios))
        if variance > 0:
            n_eff = min(float(n), max(float(len(used)), p * (1 - p) / variance))
    elif len(used) == n:
        n_eff = float(n)
    return wilson_interval_real(p, n_eff)


def wilson_interval_real(p: float, n: float) -> tuple[float | None, float | None]:
    """The Wilson interval of proportion ``p`` observed on ``n`` (a real number: an effective
    sample size); equal to `wilson_interval` (k, n) for integer n and k = p n."""
    if n <= 0:
        return None, None
    rounded = round(n)
    if abs(n - rounded) < 1e-12 and abs(p * rounded - round(p * rounded)) < 1e-9:
        return wilson_interval(int(round(p * rounded)), int(rounded))
    z = 1.959963984540054
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)) ** 0.5
    low = 0.0 if p == 0 else max(0.0, centre - half)
    high = 1.0 if p == 1 else min(1.0, centre + half)
    return low, high


def clustered_mean_interval(clusters: Sequence[Cluster], seed: int,
                            resamples: int = RESAMPLES) -> tuple[float | None, float | None]:
    """Percentile interval of the mean over all values, resampling examples (module docstring)."""
    used = [c for c in clusters if c[1] > 0]
    if not used:
        return None, None
    ratios = _resampled_ratios(used, seed, resamples)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.nanpercentile(ratios, [tail, 100 - tail])
    return float(low), float(high)
