"""How many grid points the ring search asks the model about, against the exhaustive evaluation
of the whole grid that Mayne et al. (EMNLP 2025, arXiv 2509.09396) use.

For each built-in grid and a few rule "models" (deterministic label functions with known
boundaries), draw 50 random origins (seeded), and find every origin's reference minimal
counterfactual x* (nearest point with a different label):

- independent: a fresh memo per origin -- mean fraction of the grid one search evaluates;
- audit: ONE memo shared by the 50 origins, searched one after another (as `run_grid_sce` does)
  -- fraction of the grid evaluated by the whole audit, and the number of oracle batches;
- lower bound: the share of the grid strictly closer to some origin than its x*; any exact
  black-box method must know those labels, so no exact search can evaluate fewer points;
- lockstep: the same 50 searches through `BoundarySearch.nearest_many` (one batch per ring step
  for all origins) -- fraction and oracle batches.
Exhaustive evaluation is 100% of the grid by definition. Every result is checked against the
brute-force answer. Run: ``python benchmarks/bench_boundary_search.py [--origins 50] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from tabulate import tabulate  # noqa: E402

from sce_checks.metrics.gower import distances_from  # noqa: E402
from sce_checks.search.grid import BoundarySearch  # noqa: E402
from sce_checks.tasks.builtin_grids import EDUCATION_LEVELS, HEART_DISEASE, HOUSE_PRICES, INCOME  # noqa: E402
from sce_checks.tasks.grid import GridTask, Point  # noqa: E402

Rule = Callable[[Point], str]
BACHELOR = EDUCATION_LEVELS.index("Bachelor's degree")


def _linear(task: GridTask, cut: float) -> Rule:
    """"Yes" iff the mean normalised position over features >= cut (a diagonal boundary)."""
    def rule(p: Point) -> str:
        s = sum((f.position(v) - f.position(f.values[0])) / f.span for f, v in zip(task.features, p))
        return "Yes" if s / len(task.features) >= cut else "No"
    return rule


def _random(seed: int) -> Rule:
    """Labels drawn independently per point (no structure: the easy case for a ring search)."""
    return lambda p: "Yes" if random.Random(f"{seed}:{p}").random() < 0.5 else "No"


RULES: dict[str, list[tuple[str, Rule]]] = {
    "income": [
        ("age >= 40 and education >= Bachelor's", lambda p: "Yes" if p[0] >= 40 and EDUCATION_LEVELS.index(p[1]) >= BACHELOR else "No"),
        ("age >= 50", lambda p: "Yes" if p[0] >= 50 else "No"),
        ("linear, half the grid", _linear(INCOME, 0.5)),
        ("random labels", _random(1)),
    ],
    "house_prices": [
        ("area >= 6000 and bathrooms >= 3", lambda p: "Yes" if p[0] >= 6000 and p[2] >= 3 else "No"),
        ("area >= 5000", lambda p: "Yes" if p[0] >= 5000 else "No"),
        ("linear, half the grid", _linear(HOUSE_PRICES, 0.5)),
        ("random labels", _random(2)),
    ],
    "heart_disease": [
        ("(male and age >= 55) or (bp >= 160 and chol >= 240)",
         lambda p: "Yes" if (p[1] == "Male" and p[0] >= 55) or (p[2] >= 160 and p[3] >= 240) else "No"),
        ("age >= 60", lambda p: "Yes" if p[0] >= 60 else "No"),
        ("linear, half the grid", _linear(HEART_DISEASE, 0.5)),
        ("random labels", _random(3)),
    ],
}


class CountingOracle:
    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.batches = 0
        self.points = 0

    def __call__(self, points: list[Point]) -> list[str]:
        self.batches += 1
        self.points += len(points)
        return [self.rule(p) for p in points]


def brute_force(task: GridTask, labels: np.ndarray, origin: Point, label: str) -> tuple[float, np.ndarray]:
    """The minimal distance, and the mask of points strictly closer than it: any exact
    black-box method must know all their labels to certify the minimum."""
    dist = distances_from(task, origin)
    best = float(dist[labels != label].min())
    return best, dist < best - 1e-9


def bench(task: GridTask, name: str, rule: Rule, origins: list[Point]) -> dict[str, object]:
    labels = np.array([rule(p) for p in task.points()])
    brute = [brute_force(task, labels, x, rule(x)) for x in origins]
    expected = [d for d, _ in brute]
    must_know = np.logical_or.reduce([inside for _, inside in brute])

    independent = []
    for x, want_d in zip(origins, expected):
        r = BoundarySearch(task, CountingOracle(rule)).min_counterfactual(x, rule(x))
        assert r.distance == want_d, (task.name, x, r.distance, want_d)
        independent.append(r.evaluated / task.size)

    oracle = CountingOracle(rule)
    search = BoundarySearch(task, oracle)
    t0 = time.perf_counter()
    for x, want_d in zip(origins, expected):
        assert search.min_counterfactual(x, rule(x)).distance == want_d
    seconds = time.perf_counter() - t0

    lock_oracle = CountingOracle(rule)
    lock = BoundarySearch(task, lock_oracle)
    results = lock.nearest_many([(x, lambda y, fx=rule(x): y != fx) for x in origins])
    assert [r.distance for r in results] == expected

    return {
        "grid": f"{task.name} ({task.size})",
        "rule": name,
        "share Yes": f"{np.mean(labels == 'Yes'):.0%}",
        "independent: mean % per origin": f"{100 * np.mean(independent):.1f}",
        "audit: % of grid": f"{100 * search.evaluated / task.size:.1f}",
        "audit: lower bound %": f"{100 * must_know.mean():.1f}",
        "audit: batches": oracle.batches,
        "lockstep: % of grid": f"{100 * lock.evaluated / task.size:.1f}",
        "lockstep: batches": lock_oracle.batches,
        "audit ms": f"{1000 * seconds:.0f}",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--origins", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = []
    for task in (INCOME, HOUSE_PRICES, HEART_DISEASE):
        rng = random.Random(f"{args.seed}:{task.name}")
        origins = [task.point_at(rng.randrange(task.size)) for _ in range(args.origins)]
        for name, rule in RULES[task.name]:
            rows.append(bench(task, name, rule, origins))
    print(f"{args.origins} random origins per grid (seed {args.seed}); exhaustive evaluation = 100% of the grid, 1 batch")
    print(tabulate(rows, headers="keys", tablefmt="github"))


if __name__ == "__main__":
    main()
