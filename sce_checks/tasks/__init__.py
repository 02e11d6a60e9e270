"""Tasks (datasets): built-in grids, user grid files, text datasets. (Minimal stand-in; see helper.)"""

from __future__ import annotations

import random
from typing import Any

from sce_checks.errors import UserInputError
from sce_checks.tasks.builtin_grids import BUILTIN_GRIDS

BUILTIN_TASKS = tuple(BUILTIN_GRIDS)


def load_task(name_or_path: str):
    if name_or_path in BUILTIN_GRIDS:
        return BUILTIN_GRIDS[name_or_path]
    if name_or_path.endswith(".toml"):
        from sce_checks.tasks.grid_file import load_grid_file

        return load_grid_file(name_or_path)
    raise UserInputError(f"unknown dataset {name_or_path!r}; built-in: {', '.join(BUILTIN_TASKS)}")


def sample_indices(population: int, limit: int | None, seed: int) -> list[int]:
    if limit is None or limit >= population:
        return list(range(population))
    return sorted(random.Random(seed).sample(range(population), limit))


def task_examples(task, limit: int | None, seed: int) -> list[tuple[str, Any]]:
    if task.kind == "grid":
        width = len(str(task.size - 1))
        return [(f"{task.name}-{i:0{width}d}", task.point_at(i)) for i in sample_indices(task.size, limit, seed)]
    return [(e.id, e.text) for i, e in enumerate(task.examples) if i in set(sample_indices(len(task.examples), limit, seed))]
