"""Grid tasks: tabular records rendered as text over a small, fully enumerable input space.

Mayne et al. (EMNLP 2025, arXiv 2509.09396) use such grids so that the *exact* minimal
counterfactual of the model's own decision function can be found. A point is a tuple of feature
values in feature order; integers for ``integer`` features, strings for ``ordinal`` and
``categorical`` ones.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any, Iterator, Literal

FeatureType = Literal["integer", "ordinal", "categorical"]
FEATURE_TYPES: tuple[str, ...] = ("integer", "ordinal", "categorical")

Point = tuple[Any, ...]


@dataclass(frozen=True)
class Feature:
    """One input feature and every value it may take on the grid."""

    name: str  # the JSON key the model must use in its SCE
    label: str  # shown to the model: "- <label>: <value>"
    type: FeatureType
    values: tuple[Any, ...]  # every allowed value, in order (ordinal order for ordinals)
    # A stated domain prior for the CheckList DIR test (checks/perturbation.py): moving this
    # feature one step up should not make this option less likely. None: no direction declared.
    # Integer and ordinal features only (categorical values have no order). Not part of the
    # fingerprint: it does not change the grid, the prompts or any SCE figure.
    increases: str | None = None

    @property
    def span(self) -> float:
        """The Gower normaliser: value range for integers, index range for ordinals, 1 for
        categorical features (where the per-feature distance is already 0 or 1)."""
        if self.type == "integer":
            return float(self.values[-1] - self.values[0]) or 1.0
        if self.type == "ordinal":
            return float(len(self.values) - 1) or 1.0
        return 1.0

    def position(self, value: Any) -> float:
        """Where a value sits on this feature's axis (for Gower's distance)."""
        if self.type == "integer":
            return float(value)
        return float(self.values.index(value))

    def describe(self) -> str:
        """The allowed values and the type, as the SCE request lists them (after the reference
        code of Mayne et al.: ``17-96 inclusive (integer)``, ``["a", "b"] (ordinal)``)."""
        if self.type == "integer":
            if list(self.values) == list(range(self.values[0], self.values[-1] + 1)):
                return f"{self.values[0]}-{self.values[-1]} inclusive (integer)"
            return f"one of {', '.join(map(str, self.values))} (integer)"
        quoted = json.dumps(list(self.values), ensure_ascii=False)
        order = ", lowest to highest" if self.type == "ordinal" else ""
        return f"{quoted} ({self.type}{order})"


@dataclass(frozen=True)
class GridTask:
    """A decision among K >= 2 options over a finite grid: the setting of Mayne et al. (2025),
    section 3, with two; more are audited target by target (docs/method.md, multi-class tasks)."""

    name: str
    question: str
    preamble: str
    options: tuple[str, ...]
    features: tuple[Feature, ...]
    source: str = "builtin"

    kind = "grid"

    def __post_init__(self) -> None:
        if not 2 <= len(self.options) <= 10:  # a report's decision map holds one digit per grid point
            raise ValueError(f"grid task {self.name!r}: {len(self.options)} options; a grid task has 2 to 10")
        for f in self.features:
            if f.increases is None:
                continue
            if f.type == "categorical":
                raise ValueError(f"feature {f.name!r}: a categorical feature cannot declare 'increases' (its values have no order)")
            if f.increases not in self.options:
                raise ValueError(f"feature {f.name!r}: increases={f.increases!r} is not one of the options {list(self.options)}")

    @property
    def size(self) -> int:
        n = 1
        for f in self.features:
            n *= len(f.values)
        return n

    def points(self) -> Iterator[Point]:
        """Every point of the grid, in a fixed order."""
        return itertools.product(*(f.values for f in self.features))

    def point_at(self, index: int) -> Point:
        """The ``index``-th point of `points()` without enumerating the grid."""
        if not 0 <= index < self.size:
            raise IndexError(index)
        out = []
        for f in reversed(self.features):
            index, r = divmod(index, len(f.values))
            out.append(f.values[r])
        return tuple(reversed(out))

    def as_dict(self, point: Point) -> dict[str, Any]:
        return {f.name: v for f, v in zip(self.features, point)}

    def render(self, point: Point) -> str:
        """The record as the model sees it: one ``- <label>: <value>`` line per feature."""
        return "\n".join(f"- {f.label}: {v}" for f, v in zip(self.features, point))

    def other_option(self, option: str) -> str:
        """The option that is not ``option``: two-option tasks only (with more, a target is
        chosen by the ``targets`` setting: sce_checks/tasks/targets.py)."""
        if len(self.options) != 2:
            raise ValueError(f"task {self.name!r} has {len(self.options)} options; other_option needs two")
        a, b = self.options
        return b if option == a else a

    def fingerprint(self) -> dict[str, Any]:
        """Everything that defines the task, for baselines (refuse to compare across changes)."""
        return {
            "name": self.name,
            "question": self.question,
            "options": list(self.options),
            "features": [[f.name, f.type, list(f.values)] for f in self.features],
        }


def integer_feature(name: str, label: str, lo: int, hi: int, step: int = 1, increases: str | None = None) -> Feature:
    return Feature(name, label, "integer", tuple(range(lo, hi + 1, step)), increases)
