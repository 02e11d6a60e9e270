"""The exact nearest grid point with a wanted label, without predicting the whole grid.

Mayne et al. (EMNLP 2025, arXiv 2509.09396) define the reference minimal counterfactual
x* = argmin over grid points z with f(z) != f(x) of d(x, z), and ICF_A = min over z with
f(z) = target of d(x', z) (d = Gower's distance, f = the model's fresh-context prediction); they
evaluate f on the whole grid. On a task with K > 2 options the SCE check asks, per (example,
target t), for the nearest point with f(z) = t (`BoundarySearch.nearest_with_label`; with two
options that is the x* above: docs/method.md, multi-class tasks). We get the same minimum
exactly while asking the model about far fewer points (see benchmarks/bench_boundary_search.py):

*Ring search.* Sort the grid by Gower's distance from the origin and group equal distances into
rings (consecutive sorted distances closer than `RING_TOLERANCE` share a ring, so float noise
cannot split a ring; distinct Gower distances on a grid differ by far more). Walk the rings
outwards; for each ring, send the points whose label is still unknown to the oracle in one
batch (with those of the next rings when a ring is small, so a batch holds at least
``min_batch`` points), and stop at the first ring holding a point whose label satisfies ``want``. Its distance is
the minimum, and every satisfying point of that ring is returned (ties). Labels are memoised in
the `BoundarySearch` object and shared by every origin of an audit, so later searches mostly
walk through known labels; known labels also bound the search before it starts (no ring beyond
the nearest already-known satisfying point needs evaluating).

*A search, not a metric.* It asks the model, through ``oracle``: a batched prediction callable
``labels(points) -> [label | None, ...]`` (one label per point, in order; e.g. `Predictor.labels`),
and raises `BackendError` when the answers are malformed; the metrics (sce_checks/metrics/) are
pure functions of values already known, Gower's distance among them.

*Unparsable predictions.* A point whose label is None (the model's reply named no option) never
satisfies ``want``: it is excluded from the candidate set, like the paper drops unparsed
predictions. Nothing is guessed; `NearestResult.unparsed_within` counts such points at least as
close as the answer (the true minimum could be smaller if they were parsed), and
`BoundarySearch.unparsed_points` counts them over the audit.

*A budget.* With ``budget`` N > 0, one search sends at most N grid points to the oracle (points
whose labels are already known cost nothing). A search whose next ring would take it past N
stops there, before that ring, and returns *bounds* instead of the minimum
(`NearestResult.bounded`): every grid point nearer than ``lower`` is known not to satisfy
``want`` (each ring walked so far was predicted, or known, in full), so the true minimum is at
least ``lower`` (the distance of the first ring not walked in full) and, where a point known to
satisfy ``want`` exists, at most ``upper`` (the nearest such point; None: none known, the minimum
may be farther or not exist). ``radius`` is the farthest distance walked in full: d > radius is
the certificate in words. A stop is decided by counts, never by a clock, so the same budget
gives the same bounds on every run and a cached rerun reproduces them (docs/scaling.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from sce_checks.errors import BackendError, UserInputError
from sce_checks.metrics.gower import distances_from, gower_distance
from sce_checks.tasks.grid import GridTask, Point

RING_TOLERANCE = 1e-9
MAX_GRID_POINTS = 2_000_000
# Per-origin arrays kept at once by `nearest_many` (distances + candidate order), in grid points.
_CHUNK_POINTS = 4_000_000

_UNKNOWN = -2  # label code: not evaluated yet
_UNPARSED = -1  # label code: the oracle answered None

Oracle = Callable[[list[Point]], Sequence["str | None"]]
Want = Callable[[str], bool]


@dataclass(frozen=True)
class NearestResult:
    """The answer of one search.

    ``distance``: the minimal Gower distance to a point whose label satisfies ``want`` (None when
    no grid point does); ``points``: every such point at that distance, in grid order (ties);
    ``evaluated``: grid points this search sent to the oracle (labels not known before);
    ``unparsed_within``: points with an unparsable (None) label at distance <= ``distance`` (all
    of them when ``distance`` is None; below ``lower`` when bounded), which were excluded from
    the candidate set. ``bounded``: the search stopped at its budget (module docstring): then
    ``distance`` is None, ``points`` is empty and ``lower`` <= the minimum <= ``upper``."""

    distance: float | None
    points: list[Point]
    evaluated: int
    unparsed_within: int = 0
    bounded: bool = False
    lower: float | None = None
    upper: float | None = None
    radius: float | None = None

    @property
    def bounds(self) -> tuple[float, float | None] | None:
        """(lower, upper) on the minimal distance: (d, d) when exact, ``upper`` None when no
        satisfying point is known (unbounded); None when exact and no grid point satisfies."""
        if self.bounded:
            return (self.lower if self.lower is not None else 0.0, self.upper)
        return None if self.distance is None else (self.distance, self.distance)


@dataclass
class _Query:
    origin: Point
    want: Want
    dist: np.ndarray  # distance from origin to every grid point
    order: np.ndarray  # candidate indices, sorted by distance
    starts: np.ndarray  # ring boundaries into `order` (len = rings + 1)
    ring: int = 0
    upto: int = 0  # rings [ring, upto) are being evaluated (pending)
    pending: np.ndarray | None = None
    evaluated: int = 0
    cache: dict[int, bool] = field(default_factory=dict)  # label code -> want(label)
    result: NearestResult | None = None
    budget: int = 0  # points this search may send to the oracle (0: no limit)


class BoundarySearch:
    """Memoised exact nearest-label search on one grid task, for one model.

    ``oracle(points) -> labels`` returns the model's fresh-context label for each point (None
    when unparsable); it is called in batches, never twice for the same point. Create one per
    (model, task) and share it between all examples of an audit. ``budget``: grid points one
    search may send to the oracle (0: no limit; module docstring)."""

    def __init__(self, task: GridTask, oracle: Oracle, min_batch: int = 1, budget: int = 0) -> None:
        if task.size > MAX_GRID_POINTS:
            raise UserInputError(
                f"grid task {task.name!r} has {task.size:,} points; the boundary search supports at "
                f"most {MAX_GRID_POINTS:,} (it keeps one label per grid point and sorts the grid by "
                "distance for each origin): use fewer features, fewer values or larger steps"
            )
        self.task = task
        self.oracle = oracle
        # Points per oracle batch a step aims at: a search with only small rings left looks a few
        # rings ahead, so a batched backend is not called with a handful of points at a time.
        self.min_batch = max(1, int(min_batch))
        self.budget = max(0, int(budget))
        self._codes = np.full(task.size, _UNKNOWN, dtype=np.int32)
        self._labels: list[str] = []
        self._code_of: dict[str, int] = {}
        self._value_index = [{v: i for i, v in enumerate(f.values)} for f in task.features]
        strides, stride = [], 1
        for f in reversed(task.features):
            strides.append(stride)
            stride *= len(f.values)
        self._strides = tuple(reversed(strides))
        self.evaluated = 0  # distinct grid points sent to the oracle
        self.oracle_calls = 0  # oracle batches

    # --- memo -------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return self.task.size

    @property
    def unparsed_points(self) -> int:
        """Grid points evaluated so far whose label was unparsable (None)."""
        return int(np.count_nonzero(self._codes == _UNPARSED))

    @property
    def known_points(self) -> int:
        """Grid points whose label is known (evaluated or remembered)."""
        return int(np.count_nonzero(self._codes != _UNKNOWN))

    def index_of(self, point: Point) -> int:
        """Position of ``point`` in `task.points()` order (ValueError when off the grid)."""
        if len(point) != len(self._strides):
            raise ValueError(f"point {point!r} has {len(point)} values; task {self.task.name!r} has {len(self._strides)} features")
        index = 0
        for f, lookup, stride, v in zip(self.task.features, self._value_index, self._strides, point):
            if v not in lookup:
                raise ValueError(f"{v!r} is not an allowed value of feature {f.name!r} (allowed: {f.describe()})")
            index += lookup[v] * stride
        return index

    def is_known(self, point: Point) -> bool:
        return bool(self._codes[self.index_of(point)] != _UNKNOWN)

    def label_of(self, point: Point) -> str | None:
        """The memoised label of ``point`` (KeyError when it was never evaluated)."""
        code = int(self._codes[self.index_of(point)])
        if code == _UNKNOWN:
            raise KeyError(point)
        return None if code == _UNPARSED else self._labels[code]

    def remember(self, points: Sequence[Point], labels: Sequence[str | None]) -> None:
        """Record labels obtained elsewhere (e.g. the predictions of the audit's examples), so the
        search does not send those points to the oracle again. Not counted as evaluated."""
        if len(points) != len(labels):
            raise ValueError(f"{len(points)} points but {len(labels)} labels")
        for p, label in zip(points, labels):
            self._codes[self.index_of(p)] = self._code(label)

    def labels(self, points: Sequence[Point]) -> list[str | None]:
        """Labels of ``points``, asking the oracle (one batch) only for unknown ones."""
        idx = np.array([self.index_of(p) for p in points], dtype=np.int64)
        self._evaluate(idx)
        return [None if c == _UNPARSED else self._labels[c] for c in self._codes[idx].tolist()]

    def _code(self, label: str | None) -> int:
        if label is None:
            return _UNPARSED
        if not isinstance(label, str):
            raise BackendError(f"the prediction oracle returned {label!r}; expected a label string or None")
        code = self._code_of.get(label)
        if code is None:
            code = self._code_of[label] = len(self._labels)
            self._labels.append(label)
        return code

    def _evaluate(self, indices: np.ndarray) -> None:
        """One oracle batch for the still-unknown points among ``indices`` (grid order)."""
        idx = np.unique(indices)
        idx = idx[self._codes[idx] == _UNKNOWN]
        if idx.size == 0:
            return
        points = [self.task.point_at(int(i)) for i in idx]
        labels = list(self.oracle(points))
        if len(labels) != len(points):
            raise BackendError(f"the prediction oracle returned {len(labels)} labels for {len(points)} points")
        self._codes[idx] = [self._code(label) for label in labels]
        self.evaluated += int(idx.size)
        self.oracle_calls += 1

    def _satisfies(self, q: _Query, indices: np.ndarray) -> np.ndarray:
        """Boolean mask: known label that satisfies ``q.want`` (unknown and None -> False)."""
        codes = self._codes[indices]
        for c in np.unique(codes[codes >= 0]).tolist():
            if c not in q.cache:
                q.cache[c] = bool(q.want(self._labels[c]))
        table = np.array([q.cache.get(c, False) for c in range(len(self._labels))] + [False], dtype=bool)
        # codes < 0 index the trailing False (python-style -1) or are masked out below
        return (codes >= 0) & table[np.where(codes >= 0, codes, -1)]

    # --- search -----------------------------------------------------------------------------
    def nearest(self, origin: Point, want: Want) -> NearestResult:
        """The grid points nearest to ``origin`` whose label satisfies ``want`` (see module)."""
        return self.nearest_many([(origin, want)])[0]

    def min_counterfactual(self, x: Point, fx: str) -> NearestResult:
        """Reference minimal counterfactual x*: nearest point whose label is not ``fx``."""
        return self.nearest(x, lambda y: y != fx)

    def nearest_with_label(self, x: Point, label: str) -> NearestResult:
        """Nearest point predicted as ``label``: x* of (``x``, target ``label``), or ICF_A's
        region when ``x`` is an invalid SCE."""
        return self.nearest(x, lambda y: y == label)

    def nearest_many(self, queries: Sequence[tuple[Point, Want]]) -> list[NearestResult]:
        """Several searches in lockstep: each step sends the next ring of every unfinished
        search to the oracle in ONE batch (bigger batches for a batched model backend). Results
        equal those of separate `nearest` calls; the evaluated count may differ slightly because
        a search cannot use labels that later searches would have found first."""
        results: list[NearestResult] = []
        chunk = max(1, _CHUNK_POINTS // max(1, self.size))
        for start in range(0, len(queries), chunk):
            qs = [self._setup(origin, want) for origin, want in queries[start:start + chunk]]
            self._run(qs)
            results.extend(q.result for q in qs)  # type: ignore[misc]
        return results

    def _setup(self, origin: Point, want: Want) -> _Query:
        dist = distances_from(self.task, tuple(origin))
        q = _Query(tuple(origin), want, dist, np.empty(0, dtype=np.int64), np.zeros(1, dtype=np.int64),
                   budget=self.budget)
        sat = self._satisfies(q, np.arange(self.size))
        bound = float(dist[sat].min()) if sat.any() else math.inf
        # Candidates: unknown points (may satisfy) and known satisfying ones, no farther than
        # the nearest known satisfying point.
        cand = np.flatnonzero((dist <= bound + RING_TOLERANCE) & ((self._codes == _UNKNOWN) | sat))
        order = cand[np.argsort(dist[cand], kind="stable")]
        ds = dist[order]
        breaks = np.flatnonzero(np.diff(ds) > RING_TOLERANCE) + 1
        q.order = order
        q.starts = np.concatenate(([0], breaks, [order.size])).astype(np.int64)
        return q

    def _run(self, qs: list[_Query]) -> None:
        active = list(qs)
        while active:
            requests = []
            share = max(1, self.min_batch // len(active))  # the batch is shared by the active searches
            for q in active:
                self._advance(q, share)
                if q.pending is not None:
                    requests.append(q.pending)
            if requests:
                self._evaluate(np.concatenate(requests))
            for q in active:
                if q.pending is not None:
                    q.pending = None
                    while q.ring < q.upto and not self._check_ring(q):
                        q.ring += 1
            active = [q for q in active if q.result is None]

    def _ring(self, q: _Query, ring: int | None = None) -> np.ndarray:
        ring = q.ring if ring is None else ring
        return q.order[q.starts[ring]:q.starts[ring + 1]]

    def _advance(self, q: _Query, want_points: int = 1) -> None:
        """Walk through rings that need no oracle call; at the first ring with unknown points,
        set ``q.pending`` to them and to those of the next rings until ``want_points`` are pending
        (never past a ring that already holds a satisfying point), or finish the search. The
        pending rings are then checked in order: the minimum stays exact, and the look-ahead only
        costs predictions of points a little farther out."""
        rings = len(q.starts) - 1
        while q.ring < rings:
            unknown = self._unknown(q, q.ring)
            if unknown.size:
                if q.budget and q.evaluated + unknown.size > q.budget:
                    self._stop_at_budget(q)
                    return
                parts, count, end = [unknown], int(unknown.size), q.ring + 1
                while count < want_points and end < rings:
                    ahead = self._unknown(q, end)
                    if ahead.size == 0 and self._satisfies(q, self._ring(q, end)).any():
                        break
                    if q.budget and q.evaluated + count + ahead.size > q.budget:
                        break  # look ahead only within the budget
                    parts.append(ahead)
                    count += int(ahead.size)
                    end += 1
                q.pending = np.concatenate(parts)
                q.upto = end
                q.evaluated += count
                return
            if self._check_ring(q):
                return
            q.ring += 1
        self._finish(q, None, [])

    def _unknown(self, q: _Query, ring: int) -> np.ndarray:
        points = self._ring(q, ring)
        return points[self._codes[points] == _UNKNOWN]

    def _check_ring(self, q: _Query) -> bool:
        ring = self._ring(q)
        hit = ring[self._satisfies(q, ring)]
        if hit.size == 0:
            return False
        hit = np.sort(hit)
        self._finish(q, float(q.dist[hit].min()), [self.task.point_at(int(i)) for i in hit])
        return True

    def _stop_at_budget(self, q: _Query) -> None:
        """The next ring would take the search past its budget: the bounds of the module
        docstring. A ring that holds a known satisfying point gives the minimum itself (lower =
        upper): the result is then exact, its ties limited to the points already known."""
        lower = float(q.dist[q.order[q.starts[q.ring]]])
        ring = self._ring(q)
        hit = np.sort(ring[self._satisfies(q, ring)])
        if hit.size:
            self._finish(q, lower, [self.task.point_at(int(i)) for i in hit])
            return
        sat = self._satisfies(q, np.arange(self.size))
        upper = float(q.dist[sat].min()) if sat.any() else None
        nearer = q.dist[q.dist < lower - RING_TOLERANCE]
        radius = float(nearer.max()) if nearer.size else None
        unparsed = int(np.count_nonzero((self._codes == _UNPARSED) & (q.dist < lower - RING_TOLERANCE)))
        q.result = NearestResult(None, [], q.evaluated, unparsed, bounded=True, lower=lower, upper=upper, radius=radius)
        q.dist = q.order = np.empty(0)

    def nearest_known(self, origin: Point, want: Want) -> float | None:
        """The distance from ``origin`` to the nearest point whose KNOWN label satisfies
        ``want`` (None: none known): an upper bound on the minimum that asks the oracle nothing,
        used to tighten a bounded result with labels learned after it stopped."""
        q = _Query(tuple(origin), want, distances_from(self.task, tuple(origin)), np.empty(0), np.zeros(1))
        sat = self._satisfies(q, np.arange(self.size))
        return float(q.dist[sat].min()) if sat.any() else None

    def _finish(self, q: _Query, distance: float | None, points: list[Point]) -> None:
        unparsed = self._codes == _UNPARSED
        if distance is not None:
            unparsed &= q.dist <= distance + RING_TOLERANCE
        q.result = NearestResult(distance, points, q.evaluated, int(np.count_nonzero(unparsed)))
        q.dist = q.order = np.empty(0)  # free memory early in big batches


def exhaustive_nearest(
    task: GridTask, labels: Mapping[Point, str | None], origin: Point, want: Want
) -> NearestResult:
    """The same answer as `BoundarySearch.nearest` by brute force over a fully labelled grid
    (``labels`` maps every grid point to its label, None = unparsable): the paper's method, kept
    as the reference for tests and benchmarks. ``evaluated`` is the grid size."""
    found: list[tuple[float, Point]] = []
    unparsed: list[float] = []
    for p in task.points():
        if p not in labels:
            raise ValueError(f"labels has no entry for grid point {p!r}")
        label = labels[p]
        if label is None:
            unparsed.append(gower_distance(task, origin, p))
        elif want(label):
            found.append((gower_distance(task, origin, p), p))
    if not found:
        return NearestResult(None, [], task.size, len(unparsed))
    best = min(d for d, _ in found)
    points = [p for d, p in found if d <= best + RING_TOLERANCE]
    within = sum(1 for d in unparsed if d <= best + RING_TOLERANCE)
    return NearestResult(best, points, task.size, within)
