"""Inputs shared by the tests of sce_checks.perturb (and tests/test_strategies.py)."""

from __future__ import annotations

from sce_checks.tasks.grid import Feature, GridTask, integer_feature

REVIEW = "I loved the film and my friend watched the story twice."


def grid_task() -> GridTask:
    return GridTask(
        name="toy",
        question="Approve?",
        preamble="A toy grid.",
        options=("yes", "no"),
        features=(
            integer_feature("age", "Age", 20, 60, step=10),
            Feature("size", "Size", "ordinal", ("small", "medium", "large")),
            Feature("colour", "Colour", "categorical", ("red", "green", "blue")),
        ),
    )
