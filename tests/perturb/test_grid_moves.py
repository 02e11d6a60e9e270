"""sce_checks.perturb.grid_moves: one-step moves of a grid point. Exact expected values."""

from __future__ import annotations

import pytest

from sce_checks.perturb.grid_moves import grid_neighbours
from tests.perturb.inputs import grid_task


def test_grid_neighbours_exact() -> None:
    task = grid_task()
    moves = grid_neighbours(task, (20, "medium", "green"))
    assert [(m.feature, m.old, m.new) for m in moves] == [
        ("age", 20, 30), ("size", "medium", "small"), ("size", "medium", "large"),
        ("colour", "green", "red"), ("colour", "green", "blue"),
    ]
    assert moves[0].point == (30, "medium", "green") and moves[0].describe() == "age: 20 -> 30"
    assert grid_neighbours(task, {"age": 20, "size": "medium", "colour": "green"}) == moves


def test_grid_neighbours_move_one_feature_one_step_on_the_grid() -> None:
    task = grid_task()
    for point in task.points():
        moves = grid_neighbours(task, point)
        assert len(moves) == len({m.point for m in moves})
        for m in moves:
            changed = [i for i, (a, b) in enumerate(zip(point, m.point)) if a != b]
            assert len(changed) == 1
            f = task.features[changed[0]]
            assert f.name == m.feature and m.new in f.values
            if f.type != "categorical":
                assert abs(f.values.index(m.new) - f.values.index(m.old)) == 1


def test_grid_neighbours_reject_off_grid_points() -> None:
    task = grid_task()
    with pytest.raises(ValueError, match="not an allowed value"):
        grid_neighbours(task, (25, "medium", "green"))
    with pytest.raises(ValueError, match="has 2 values"):
        grid_neighbours(task, (20, "medium"))
    with pytest.raises(ValueError, match="lacks features"):
        grid_neighbours(task, {"age": 20})
