"""Grid moves: one feature of a grid point moved by one step.

Why a module of its own: grid tasks have no text to edit; DIR tests on grids, the counterfactual
checks and the strategies move a point to a neighbouring grid point instead. Moves are not
assumed label-preserving: they probe the model's decision boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from sce_checks.tasks.grid import GridTask, Point

__all__ = ["GridMove", "grid_neighbours"]


# --- grid moves -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GridMove:
    """One feature of a grid point moved by one step. Not assumed label-preserving: a move is how
    a model's decision boundary is probed."""

    origin: Point
    point: Point
    feature: str
    old: Any
    new: Any

    def describe(self) -> str:
        return f"{self.feature}: {self.old!r} -> {self.new!r}"


def _as_point(task: GridTask, point: Point | Mapping[str, Any]) -> Point:
    if isinstance(point, Mapping):
        missing = [f.name for f in task.features if f.name not in point]
        if missing:
            raise ValueError(f"point {dict(point)!r} lacks features {missing} of task {task.name!r}")
        point = tuple(point[f.name] for f in task.features)
    point = tuple(point)
    if len(point) != len(task.features):
        raise ValueError(f"point {point!r} has {len(point)} values; task {task.name!r} has {len(task.features)} features")
    for f, v in zip(task.features, point):
        if v not in f.values:
            raise ValueError(f"{v!r} is not an allowed value of feature {f.name!r} (allowed: {f.describe()})")
    return point


def grid_neighbours(task: GridTask, point: Point | Mapping[str, Any]) -> list[GridMove]:
    """The grid points one step from ``point`` (a tuple in feature order, or a dict by feature
    name), feature by feature: for integer and ordinal features the previous then the next value
    of the feature's ordered value list (integer steps follow the feature's step); for
    categorical features, which have no order, every other value (each at the same Gower
    distance). Points at an edge of the grid have fewer neighbours."""
    origin = _as_point(task, point)
    out: list[GridMove] = []
    for i, (f, v) in enumerate(zip(task.features, origin)):
        idx = f.values.index(v)
        if f.type == "categorical":
            targets = [u for u in f.values if u != v]
        else:
            targets = [f.values[j] for j in (idx - 1, idx + 1) if 0 <= j < len(f.values)]
        for new in targets:
            moved = origin[:i] + (new,) + origin[i + 1:]
            out.append(GridMove(origin, moved, f.name, v, new))
    return out
