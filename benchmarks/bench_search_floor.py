"""How close the exact x* search comes to the fewest grid points any exact method must predict.

On the income grid, with the audit's 20 examples (seed 0) and the audit's search settings, the
labels come from a fixed rule on the record (no model: the count depends on the labels' layout,
not on who gives them). Exactness needs every point closer to an example than its nearest flip,
and its nearest flips: the floor is the union over the examples of the points no farther than
their x*. Prints the points the ring search predicted, that floor, and the oracle calls
(docs/performance.md, "Where the time goes").

    python benchmarks/bench_search_floor.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from sce_checks.checks.sce import SEARCH_MIN_BATCH  # noqa: E402
from sce_checks.search.grid import BoundarySearch, distances_from  # noqa: E402
from sce_checks.tasks import load_task, task_examples  # noqa: E402


def rule(point: tuple) -> str:
    """A boundary with islands: age and the length of the education label's text."""
    age, education = point
    return "Above $50,000" if age * 0.02 + (len(education) % 7) * 0.1 > 1.3 else "Below $50,000"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    task = load_task("income")
    points = [x for _, x in task_examples(task, args.limit, args.seed)]
    asked: set = set()

    def oracle(batch: list) -> list[str]:
        asked.update(batch)
        return [rule(p) for p in batch]

    search = BoundarySearch(task, oracle, min_batch=SEARCH_MIN_BATCH)
    labels = [rule(x) for x in points]
    search.remember(points, labels)
    found = search.nearest_many([(x, lambda y, label=label: y != label) for x, label in zip(points, labels)])
    floor = np.zeros(task.size, dtype=bool)
    for x, res in zip(points, found):
        floor |= distances_from(task, tuple(x)) <= res.distance + 1e-9
    predicted = len(asked | set(points))
    print(f"income, {args.limit} examples (seed {args.seed}): the ring search predicted {predicted} grid points "
          f"in {search.oracle_calls} oracle calls; the floor (points no farther than some example's x*) is "
          f"{int(floor.sum())} of {task.size} ({100 * (predicted / floor.sum() - 1):.1f}% more)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
