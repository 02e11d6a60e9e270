"""Sequential gates against fixed-n audits: error rates and examples used, by simulation.

Simulates sequential audits (sce_checks/metrics/sequential.py: `gate_paths`, `comparison_paths`,
the same capitals `SequentialGate` and `SequentialComparison` compute batch by batch) with
per-example outcomes drawn at known rates, and the fixed-n audit of the same limit on the same
draws:

- binary, validity-like: ``validity >= 0.8``, outcomes Bernoulli(p);
- continuous, distance-like: ``mean_rcf_a <= 0.1``, outcomes Beta with mean mu and
  concentration 4 (standard deviation 0.13 at mu = 0.1);
- paired binary (sequential McNemar, tolerance 0): 20% of the examples change, a drop d is
  (10% + d/2) worse, (10% - d/2) better;
- paired continuous, tolerance 0.05: half the examples unchanged, the rest change by
  2 delta + Uniform(-0.3, 0.3) towards worse (mean change delta).

Per case: the share of runs whose sequential gate passed, failed early, or was undecided at the
limit, its final pass rate (undecided fails, a threshold and a comparison alike), the mean
examples used (a fixed-n audit uses the limit), and the fixed-n gates' pass rates on the same
draws (and, for validity, the fixed-n Wilson gate re-read after every batch: what peeking at a
fixed-n interval costs). ``--bettors`` compares the betting strategies (and the beta-binomial mixture of Howard et
al. 2021 on binary outcomes) that docs/sequential.md chose between. Prints ``false_pass_rate:``
(the worst gate with the truth at its threshold: a threshold gate, or a comparison whose change
is exactly its tolerance) and ``false_regression_rate:`` (the worst comparison with no
regression beyond its tolerance).

    python benchmarks/bench_sequential.py [--quick] [--runs 20000] [--limit 160] [--batch 8] [--bettors]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from tabulate import tabulate  # noqa: E402

from sce_checks.metrics.sequential import (  # noqa: E402
    SequentialGate,
    comparison_paths,
    gate_paths,
    log_wealth,
    plugin_bets,
)
from sce_checks.metrics.stats import Z_95  # noqa: E402

VALIDITY, DISTANCE, TOLERANCE = 0.8, 0.1, 0.05
CONCENTRATION = 4.0  # distance-like outcomes: Beta(mu k, (1 - mu) k)
DISCORDANT = 0.2  # paired binary: share of examples that change


def binary(rng: np.random.Generator, p: float, runs: int, limit: int) -> np.ndarray:
    return (rng.random((runs, limit)) < p).astype(float)


def distance(rng: np.random.Generator, mu: float, runs: int, limit: int) -> np.ndarray:
    return rng.beta(mu * CONCENTRATION, (1 - mu) * CONCENTRATION, size=(runs, limit))


def discordant(rng: np.random.Generator, drop: float, runs: int, limit: int) -> np.ndarray:
    u = rng.random((runs, limit))
    worse = (DISCORDANT + drop) / 2
    return np.where(u < worse, 1.0, np.where(u < DISCORDANT, -1.0, 0.0))


def shifted(rng: np.random.Generator, delta: float, runs: int, limit: int) -> np.ndarray:
    moved = rng.random((runs, limit)) < 0.5
    return np.where(moved, 2 * delta + rng.uniform(-0.3, 0.3, size=(runs, limit)), 0.0)


def wilson_lower(k: np.ndarray, n) -> np.ndarray:
    """The Wilson 95% lower bound of sce_checks/metrics/stats.py, vectorised over counts (and
    sample sizes)."""
    p = k / n
    z2 = Z_95 * Z_95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z_95 / (1 + z2 / n) * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return np.where(k == 0, 0.0, np.maximum(0.0, centre - half))


def student_bound(x: np.ndarray, alpha: float, upper: bool) -> np.ndarray:
    """The one-sided Student t bound at level alpha on each run's mean (a fixed-n interval for a
    mean; the project gates means on their point value)."""
    from scipy.stats import t

    n = x.shape[1]
    half = t.ppf(1 - alpha, n - 1) * x.std(axis=1, ddof=1) / math.sqrt(n)
    return x.mean(axis=1) + (half if upper else -half)


def exact_mcnemar_rejects(w: np.ndarray, alpha: float) -> np.ndarray:
    """The fixed-n exact one-sided McNemar test (docs/regression.md) on all pairs of each run."""
    from scipy.stats import binom

    worse, better = (w > 0).sum(axis=1), (w < 0).sum(axis=1)
    p = binom.sf(worse - 1, worse + better, 0.5)
    return (worse + better > 0) & (p <= alpha)


def row(case: str, truth: str, side: str, paths, comparison: bool, fixed: dict) -> dict:
    """One table line: the sequential gate's outcomes, then the fixed-n gates' pass rates."""
    passed, failed = float(np.mean(paths.state == "pass")), float(np.mean(paths.state == "fail"))
    undecided = 1.0 - passed - failed
    names = ("held (shown)", "regressed") if comparison else ("pass", "fail early")
    return {"case": case, "truth": truth, "side": side, names[0]: passed, names[1]: failed, "undecided": undecided,
            "final pass": passed, "mean n": float(np.mean(paths.n)), **fixed}


def threshold_cases(rng, runs: int, limit: int, batch: int, alpha: float) -> list[dict]:
    rows = []
    for p in (0.70, 0.75, 0.80, 0.85, 0.90, 0.95, 1.0):
        x = binary(rng, p, runs, limit)
        k = x.sum(axis=1)
        ends = np.unique(np.r_[np.arange(batch, limit, batch), limit])
        peeked = wilson_lower(np.cumsum(x, axis=1)[:, ends - 1], ends) >= VALIDITY
        fixed = {"fixed-n interval pass": float(np.mean(wilson_lower(k, limit) >= VALIDITY)),
                 "fixed-n point pass": float(np.mean(k / limit >= VALIDITY)),
                 "interval re-read per batch": float(np.mean(peeked.any(axis=1)))}
        side = "at threshold" if p == VALIDITY else ("failing" if p < VALIDITY else "passing")
        rows.append(row(f"validity>={VALIDITY}", f"p={p:.2f}", side,
                        gate_paths(x, ">=", VALIDITY, alpha, batch=batch), False, fixed))
    for mu in (0.15, 0.125, 0.10, 0.075, 0.05, 0.025):
        x = distance(rng, mu, runs, limit)
        fixed = {"fixed-n interval pass": float(np.mean(student_bound(x, alpha, upper=True) <= DISTANCE)),
                 "fixed-n point pass": float(np.mean(x.mean(axis=1) <= DISTANCE)),
                 "interval re-read per batch": float("nan")}
        side = "at threshold" if mu == DISTANCE else ("failing" if mu > DISTANCE else "passing")
        rows.append(row(f"mean_rcf_a<={DISTANCE}", f"mu={mu:.3f}", side,
                        gate_paths(x, "<=", DISTANCE, alpha, batch=batch), False, fixed))
    return rows


def comparison_cases(rng, runs: int, limit: int, batch: int, alpha: float) -> list[dict]:
    rows = []
    for drop in (-0.05, 0.0, 0.05, 0.10, 0.15):
        w = discordant(rng, drop, runs, limit)
        fixed = {"fixed-n interval pass": float(np.mean(~exact_mcnemar_rejects(w, alpha))),
                 "fixed-n point pass": float(np.mean(w.mean(axis=1) <= 0))}
        side = "at threshold" if drop == 0 else ("regressed" if drop > 0 else "improved")
        rows.append(row("McNemar, tolerance 0", f"drop={drop:+.2f}", side,
                        comparison_paths(w, 0.0, alpha, batch=batch, horizon=limit), True, fixed))
    for delta in (0.10, 0.075, 0.05, 0.025, 0.0):
        w = shifted(rng, delta, runs, limit)
        fixed = {"fixed-n interval pass": float(np.mean(student_bound(w, alpha, upper=False) <= TOLERANCE)),
                 "fixed-n point pass": float(np.mean(w.mean(axis=1) <= TOLERANCE))}
        side = "at threshold" if delta == TOLERANCE else ("regressed" if delta > TOLERANCE else "held")
        rows.append(row(f"paired mean, tolerance {TOLERANCE}", f"worse by {delta:.3f}", side,
                        comparison_paths(w, TOLERANCE, alpha, batch=batch, horizon=limit), True, fixed))
    return rows


def class_timing(rng, limit: int, batch: int, alpha: float, audits: int = 100) -> float:
    """Milliseconds per `SequentialGate.update` over ``audits`` audits run through the class."""
    x = binary(rng, 0.85, audits, limit)
    updates, start = 0, time.perf_counter()
    for values in x:
        gate = SequentialGate("binary", ">=", VALIDITY, alpha, horizon=limit)
        for i in range(0, limit, batch):
            updates += 1
            if gate.update(values[i:i + batch]) != "undecided":
                break
    return 1000 * (time.perf_counter() - start) / updates


def beta_binomial_wealth(x: np.ndarray, m: float, concentration: float) -> np.ndarray:
    """log of the one-sided beta-binomial mixture martingale (Howard et al. 2021, Section 3's
    conjugate mixtures): the likelihood ratio of p against m, mixed over a Beta(m r, (1 - m) r)
    prior restricted to p >= m; a supermartingale when the mean is at most m."""
    from scipy.special import betainc, betaln

    a0, b0 = m * concentration, (1 - m) * concentration
    s = np.cumsum(x, axis=1)
    f = np.arange(1, x.shape[1] + 1) - s
    upper = np.log(np.maximum(1e-300, 1 - betainc(a0 + s, b0 + f, m)))
    prior_upper = math.log(1 - betainc(a0, b0, m))
    return betaln(a0 + s, b0 + f) + upper - betaln(a0, b0) - prior_upper - s * math.log(m) - f * math.log(1 - m)


def bettor_paths(x: np.ndarray, op: str, threshold: float, alpha: float, batch: int, wealth) -> tuple[float, float]:
    """Pass rate and mean examples of a gate whose capital betting that the mean exceeds m is
    ``wealth(x, m)`` (the same on 1 - x for the other side)."""
    limit = x.shape[1]
    ends = np.unique(np.r_[np.arange(batch, limit, batch), limit]) - 1
    bar = math.log(1 / alpha)
    up = np.maximum.accumulate(wealth(x, threshold), axis=1)[:, ends] >= bar
    down = np.maximum.accumulate(wealth(1 - x, 1 - threshold), axis=1)[:, ends] >= bar
    passed, failed = (up, down) if op == ">=" else (down, up)
    decided = passed | failed
    first = np.where(decided.any(axis=1), decided.argmax(axis=1), ends.size - 1)
    rows = np.arange(x.shape[0])
    return float(np.mean(passed[rows, first] & ~failed[rows, first])), float(np.mean(ends[first] + 1))


def strategies(alpha: float, limit: int) -> dict:
    """name -> wealth(x, m): WSR's bets, the bets tuned to the limit, the two-bettor mixture
    with c = 1/2 and as used (c = 3/4 on the main bettor), and the beta-binomial mixture."""
    def betting(horizon, bettors=slice(None), main_truncation=None):
        def wealth(x, m):
            bets = plugin_bets(x, alpha, horizon)[bettors]
            if main_truncation is not None:
                bets[0] = bets[0]._replace(truncation=main_truncation)
            if len(bets) == 1:
                bets[0] = bets[0]._replace(weight=1.0)
            return log_wealth(x, m, bets)
        return wealth

    return {"WSR PrPl, no horizon": betting(None),
            "tuned to limit, c=1/2": betting(limit, slice(0, 1), 0.5),
            "limit + limit/8, c=1/2": betting(limit, slice(None), 0.5),
            "limit (c=3/4) + limit/8 (used)": betting(limit),
            "beta-binomial r=5": lambda x, m: beta_binomial_wealth(x, m, 5.0),
            "beta-binomial r=15": lambda x, m: beta_binomial_wealth(x, m, 15.0)}


def bettors(rng, runs: int, limit: int, batch: int, alpha: float) -> list[dict]:
    """Pass rate / mean examples per strategy (docs/sequential.md, "Choosing the bets")."""
    cases = [("binary", ">=", 0.8, t) for t in (0.8, 0.85, 0.9, 1.0)] + \
            [("binary", ">=", 0.5, t) for t in (0.5, 0.6, 0.7)] + \
            [("binary", "<=", 0.1, t) for t in (0.1, 0.05)] + \
            [("distance", "<=", 0.1, t) for t in (0.1, 0.075, 0.05)] + \
            [("distance", ">=", 0.1, t) for t in (0.125, 0.15)]
    rows = []
    for kind, op, threshold, truth in cases:
        x = binary(rng, truth, runs, limit) if kind == "binary" else distance(rng, truth, runs, limit)
        entry = {"outcomes": kind, "gate": f"{op} {threshold}", "truth": f"{truth:.3f}"}
        for name, wealth in strategies(alpha, limit).items():
            if kind != "binary" and name.startswith("beta"):
                entry[name] = "-"
                continue
            passed, used = bettor_paths(x, op, threshold, alpha, batch, wealth)
            entry[name] = f"{passed:.3f} / {used:.0f}"
        rows.append(entry)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20000, help="simulated audits per case (default 20000)")
    parser.add_argument("--quick", action="store_true", help="10000 audits per case")
    parser.add_argument("--limit", type=int, default=160)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bettors", action="store_true", help="also compare the betting strategies")
    args = parser.parse_args()
    runs = 10000 if args.quick else args.runs
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    gates = threshold_cases(rng, runs, args.limit, args.batch, args.alpha)
    comparisons = comparison_cases(rng, runs, args.limit, args.batch, args.alpha)
    elapsed = time.perf_counter() - start
    audits = runs * (len(gates) + len(comparisons))
    print(f"{audits} simulated audits ({runs} per case), limit {args.limit}, batches of {args.batch}, "
          f"alpha {args.alpha}, seed {args.seed}: {elapsed:.1f} s")
    print(tabulate(gates, headers="keys", tablefmt="github", floatfmt=".3f"))
    print()
    print(tabulate(comparisons, headers="keys", tablefmt="github", floatfmt=".3f"))
    print(f"\nSequentialGate.update, one audit at a time: {class_timing(rng, args.limit, args.batch, args.alpha):.2f} "
          "ms per batch")
    if args.bettors:
        print("\npass rate / mean examples of a gate, per betting strategy:")
        print(tabulate(bettors(rng, runs, args.limit, args.batch, args.alpha), headers="keys", tablefmt="github"))
    at = [r for r in gates + comparisons if r["side"] == "at threshold"]
    print(f"false_pass_rate: {max(r['final pass'] for r in at):.4f}")
    print(f"false_regression_rate: {max(r['regressed'] for r in comparisons if r['side'] in ('at threshold', 'held', 'improved')):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
