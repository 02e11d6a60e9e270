"""Tasks (datasets): the built-in grids and text sample, user grid files, user text datasets.

`load_task` turns a ``--dataset`` value into a task; `task_examples` draws the audited examples.
Both are cheap and import nothing heavy (no torch), so a bad dataset fails before any model loads.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Union

from sce_checks.errors import UserInputError
from sce_checks.tasks.builtin_grids import BUILTIN_GRIDS
from sce_checks.tasks.grid import GridTask
from sce_checks.tasks.grid_file import grid_task_from_dict, load_grid_file
from sce_checks.tasks.text import (
    DATA_SUFFIXES,
    TextExample,
    TextTask,
    load_sentiment,
    load_sentiment3,
    load_text_data,
    load_text_dataset,
    load_text_task_file,
    text_task_from_dict,
)
from sce_checks.tasks.tables import HF_PREFIX, is_table_source
from sce_checks.userfiles import read_toml

Task = Union[GridTask, TextTask]

BUILTIN_TASKS: tuple[str, ...] = (*BUILTIN_GRIDS, "sentiment", "sentiment3")
FILE_TYPES = ("a grid or text task .toml, a text .csv, .jsonl or .parquet file, a folder written by datasets' "
              "save_to_disk, or hf:<name>[:<split>] (a dataset in the local Hugging Face cache)")

__all__ = [
    "BUILTIN_TASKS", "GridTask", "Task", "TextExample", "TextTask", "load_grid_file", "load_task",
    "load_text_data", "load_text_dataset", "load_text_task_file", "sample_indices", "task_examples",
]


def _load_toml_task(path: str) -> Task:
    """Tell a grid task file (``[[features]]``) from a text task file (``data = ...``) by content."""
    doc = read_toml(path)
    has_features, has_data = "features" in doc, "data" in doc
    if has_features and has_data:
        raise UserInputError(
            f"{path}: has both 'features' (grid task) and 'data' (text task); a task file is one or the other"
        )
    if has_features:
        return grid_task_from_dict(doc, path)
    if has_data:
        return text_task_from_dict(doc, path)
    raise UserInputError(
        f"{path}: not a task file: expected [[features]] tables (a grid task) or a 'data' key naming "
        "a .csv/.jsonl/.parquet file, a saved dataset folder or hf:<name> (a text task); see docs/datasets.md"
    )


def load_task(name_or_path: str | os.PathLike[str]) -> Task:
    """A built-in task by name (`BUILTIN_TASKS`), else a task from a file: ``.toml`` (grid or
    text task, told apart by content), ``.csv``, ``.jsonl`` or ``.parquet`` (text data with a
    ``label`` column), a ``save_to_disk`` folder or ``hf:<name>`` (sce_checks/tasks/tables.py)."""
    spec = os.fspath(name_or_path)
    if spec in BUILTIN_GRIDS:
        return BUILTIN_GRIDS[spec]
    if spec == "sentiment":
        return load_sentiment()
    if spec == "sentiment3":
        return load_sentiment3()
    if spec.startswith(HF_PREFIX) or (Path(spec).is_dir() and is_table_source(spec)):
        return load_text_data(spec)
    suffix = Path(spec).suffix.lower()
    if suffix not in (".toml", *DATA_SUFFIXES):
        what = ("no such file" if not Path(spec).exists() else "a folder not written by datasets' save_to_disk: no "
                "dataset_dict.json or state.json" if Path(spec).is_dir() else f"unsupported file type {Path(spec).suffix!r}")
        raise UserInputError(
            f"unknown dataset {spec!r} ({what}); expected a built-in task ({', '.join(BUILTIN_TASKS)}) "
            f"or a path to {FILE_TYPES}"
        )
    if not Path(spec).is_file():
        raise UserInputError(f"{spec}: dataset file not found; expected a built-in task "
                             f"({', '.join(BUILTIN_TASKS)}) or a path to {FILE_TYPES}")
    if suffix == ".toml":
        return _load_toml_task(spec)
    return load_text_data(spec)


def sample_indices(population: int, limit: int | None, seed: int, shuffled: bool = False) -> list[int]:
    """Which examples to audit: a seeded sample without replacement, sorted so runs read in
    dataset order; everything when ``limit`` is None or covers the population.

    ``shuffled`` (a sequential audit, which may stop after any prefix): the same examples in
    the seeded random order they were drawn in, so every prefix is itself a seeded random
    sample; the whole population is shuffled when ``limit`` covers it."""
    if limit is not None and limit < 0:
        raise UserInputError(f"limit must be None (all) or a non-negative integer, not {limit}")
    if limit is None or limit >= population:
        return random.Random(seed).sample(range(population), population) if shuffled else list(range(population))
    drawn = random.Random(seed).sample(range(population), limit)
    return drawn if shuffled else sorted(drawn)


def _grid_id(task: GridTask, index: int) -> str:
    width = max(5, len(str(task.size - 1)))
    return f"{task.name}-{index:0{width}d}"


def task_examples(task: Task, limit: int | None, seed: int, shuffled: bool = False) -> list[tuple[str, Any]]:
    """The audited examples as ``(id, input)`` pairs: for grids ``("income-00042", point)`` with
    the grid index in the id (stable across runs), for text tasks ``(example id, text)``.
    ``shuffled``: in the seeded random order of a sequential audit (`sample_indices`)."""
    if task.kind == "grid":
        return [(_grid_id(task, i), task.point_at(i)) for i in sample_indices(task.size, limit, seed, shuffled)]
    examples = task.examples
    return [(examples[i].id, examples[i].text) for i in sample_indices(len(examples), limit, seed, shuffled)]
