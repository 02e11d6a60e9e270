"""Gower's distance between points of a grid task.

Definition (Mayne et al., EMNLP 2025, arXiv 2509.09396, section 3):
per feature, ``|pos(a) - pos(b)| / span`` for integer and ordinal features (an ordinal value's
position is its index in the feature's value list) and 0/1 (equal / different) for categorical
ones; the distance is the UNWEIGHTED MEAN of the per-feature terms, so it lies in [0, 1].

`gower_distance` is the scalar definition; `distances_from` computes the distance from one origin
to every grid point at once (numpy broadcasting, one array per feature), in `task.points()`
order, and performs exactly the same floating-point operations in the same order, so both give
bit-identical results.
"""

from __future__ import annotations

import numpy as np

from sce_checks.tasks.grid import Feature, GridTask, Point


def _check_length(task: GridTask, point: Point) -> None:
    if len(point) != len(task.features):
        names = ", ".join(f.name for f in task.features)
        raise ValueError(
            f"point {point!r} has {len(point)} values; task {task.name!r} has "
            f"{len(task.features)} features ({names})"
        )


def _position(feature: Feature, value: object) -> float:
    if value not in feature.values:
        raise ValueError(
            f"{value!r} is not an allowed value of feature {feature.name!r} "
            f"(allowed: {feature.describe()})"
        )
    return feature.position(value)


def feature_term(feature: Feature, a: object, b: object) -> float:
    """One feature's contribution to Gower's distance, in [0, 1]."""
    pa, pb = _position(feature, a), _position(feature, b)  # also checks both are on the grid
    if feature.type == "categorical":
        return 0.0 if pa == pb else 1.0
    return abs(pa - pb) / feature.span


def gower_distance(task: GridTask, a: Point, b: Point) -> float:
    """Gower's distance between two points of ``task``: the unweighted mean of the per-feature
    terms (Mayne et al. 2025). Raises ValueError for a point of the wrong length or with a
    value that is not on the grid -- callers pass validated (parsed, on-grid) points."""
    _check_length(task, a)
    _check_length(task, b)
    total = 0.0
    for feature, va, vb in zip(task.features, a, b):
        total += feature_term(feature, va, vb)
    return total / len(task.features)


def _feature_terms(feature: Feature, origin_value: object) -> np.ndarray:
    """The term of this feature between ``origin_value`` and each of the feature's values."""
    origin_position = _position(feature, origin_value)
    if feature.type == "categorical":
        return np.array([0.0 if v == origin_value else 1.0 for v in feature.values], dtype=np.float64)
    positions = np.array([feature.position(v) for v in feature.values], dtype=np.float64)
    return np.abs(positions - origin_position) / feature.span


def distances_from(task: GridTask, origin: Point) -> np.ndarray:
    """Gower's distance from ``origin`` to every grid point, as a float64 array in
    `task.points()` order (index i is the distance to ``task.point_at(i)``).

    Built by broadcasting one small array per feature, so it costs O(grid size) numpy work and no
    Python loop over points (about 10 ms for a 1e6-point grid)."""
    _check_length(task, origin)
    n = len(task.features)
    total: np.ndarray = np.zeros((), dtype=np.float64)
    for axis, (feature, value) in enumerate(zip(task.features, origin)):
        shape = [1] * n
        shape[axis] = len(feature.values)
        total = total + _feature_terms(feature, value).reshape(shape)
    return (total / n).reshape(-1)
