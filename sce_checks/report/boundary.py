"""The model's decision boundary on a grid task, as far as the audit knows it: map data for the
HTML report, read from a result alone (pure functions; nothing is predicted or guessed here).

The SCE check stores every grid point it predicted in ``info["grid_predictions"]``
(sce_checks/checks/sce.py, `grid_predictions`): the grid's features and values, the answer
labels, and one code per grid point (answer index, ``?`` unparsed, ``.`` never predicted). A map
is a 2-D cut through that grid, the way Mayne et al. (EMNLP 2025, arXiv 2509.09396, figure 1)
draw theirs: a task with two features is drawn whole; with more, each example gets the slice
through it along the two features its SCE or its exact nearest flip x* changes (the other
features held at the example's values). Cells the audit never predicted stay unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

UNPARSED = "?"  # cell code: the model's reply on that point named no option
UNKNOWN = "."  # cell code: the audit never asked the model about that point


@dataclass(frozen=True)
class GridPredictions:
    """``info["grid_predictions"]`` of a grid SCE result, decoded."""

    features: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]  # every allowed value of each feature, in grid order
    labels: tuple[str, ...]
    codes: str  # one code per grid point, the last feature varying fastest

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> "GridPredictions | None":
        """The predictions a result stores, or None (a report written before they were stored,
        or one whose codes do not cover the grid)."""
        data = info.get("grid_predictions")
        if not isinstance(data, dict):
            return None
        try:
            features = tuple(str(f["name"]) for f in data["features"])
            values = tuple(tuple(f["values"]) for f in data["features"])
            labels, codes = tuple(data["labels"]), str(data["codes"])
        except (KeyError, TypeError):
            return None
        size = 1
        for v in values:
            size *= len(v)
        return cls(features, values, labels, codes) if features and len(codes) == size else None

    def position(self, point: Mapping[str, Any] | None) -> tuple[int, ...] | None:
        """The value index of each feature of ``point`` ({feature: value}), None when off the grid."""
        if not isinstance(point, Mapping):
            return None
        out = []
        for name, values in zip(self.features, self.values):
            if name not in point or point[name] not in values:
                return None
            out.append(values.index(point[name]))
        return tuple(out)

    def code(self, position: Sequence[int]) -> str:
        flat = 0
        for i, values in zip(position, self.values):
            flat = flat * len(values) + i
        return self.codes[flat]

    def answer(self, point: Mapping[str, Any] | None) -> str | None:
        """The model's answer on ``point`` as the audit recorded it: a label, ``"unparsed"``,
        ``"not predicted"``, or None when the point is not on the grid."""
        pos = self.position(point)
        if pos is None:
            return None
        c = self.code(pos)
        return "not predicted" if c == UNKNOWN else "unparsed" if c == UNPARSED else self.labels[int(c)]


@dataclass(frozen=True)
class Marks:
    """One example on a map: cell positions (x index, y index) of the example, of its SCE and of
    its stored nearest flips x* (ties), and the features each of those changes off the map (its
    mark is then the projection onto the map, and the cell under it is not its prediction)."""

    id: str
    origin: tuple[int, int]
    sce: tuple[int, int] | None = None
    valid: bool | None = None
    sce_off: tuple[str, ...] = ()
    xstars: tuple[tuple[int, int], ...] = ()
    xstar_off: tuple[str, ...] = ()


@dataclass(frozen=True)
class BoundaryMap:
    """A 2-D cut of the grid: ``cells[j][i]`` is the code of the point with the ``i``-th value of
    feature ``x`` and the ``j``-th value of feature ``y`` (other features at ``fixed``)."""

    x: str
    y: str
    x_values: tuple[Any, ...]
    y_values: tuple[Any, ...]
    fixed: dict[str, Any]
    cells: tuple[str, ...]  # one string per y value
    labels: tuple[str, ...]
    marks: tuple[Marks, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def counts(self) -> dict[str, int]:
        """Cells per code: how much of the map the audit actually predicted."""
        out: dict[str, int] = {}
        for row in self.cells:
            for c in row:
                out[c] = out.get(c, 0) + 1
        return out


def _changes(preds: GridPredictions, a: tuple[int, ...], b: tuple[int, ...] | None) -> dict[int, float]:
    """Features where ``b`` differs from ``a``, with the change as a share of the value range."""
    if b is None:
        return {}
    return {k: abs(i - j) / max(1, len(preds.values[k]) - 1) for k, (i, j) in enumerate(zip(a, b)) if i != j}


def slice_features(preds: GridPredictions, record: Mapping[str, Any]) -> tuple[int, int] | None:
    """The two features an example's map is drawn along (feature indices, in grid order): those
    changed by both its SCE and its first x*, then by either, larger changes (as a share of the
    feature's value range) first; a single changed feature is paired with the first other
    feature. The whole plane when the grid has two features; None when neither changes anything."""
    if len(preds.features) == 2:
        return (0, 1)
    origin = preds.position(record.get("input"))
    if origin is None:
        return None
    refs = record.get("reference") or []
    changed = [_changes(preds, origin, preds.position(record.get("counterfactual"))),
               _changes(preds, origin, preds.position(refs[0]) if refs else None)]
    scores = {k: (sum(k in c for c in changed), max(c.get(k, 0.0) for c in changed)) for k in set().union(*changed)}
    chosen = sorted(scores, key=lambda k: (-scores[k][0], -scores[k][1], k))[:2]
    if not chosen:
        return None
    if len(chosen) == 1:
        chosen.append(next(k for k in range(len(preds.features)) if k != chosen[0]))
    a, b = sorted(chosen)
    return (a, b)


def _marks(preds: GridPredictions, record: Mapping[str, Any], axes: tuple[int, int]) -> Marks | None:
    origin = preds.position(record.get("input"))
    if origin is None:
        return None
    ax, ay = axes

    def place(pos: tuple[int, ...]) -> tuple[tuple[int, int], tuple[str, ...]]:
        off = tuple(preds.features[k] for k in range(len(pos)) if k not in axes and pos[k] != origin[k])
        return (pos[ax], pos[ay]), off

    sce_pos = preds.position(record.get("counterfactual"))
    sce, sce_off = place(sce_pos) if sce_pos is not None else (None, ())
    xstars, xstar_off = [], set()
    for ref in record.get("reference") or []:
        pos = preds.position(ref)
        if pos is not None:
            cell, off = place(pos)
            xstars.append(cell)
            xstar_off.update(off)
    return Marks(str(record.get("id")), (origin[ax], origin[ay]), sce, record.get("valid"), sce_off,
                 tuple(xstars), tuple(sorted(xstar_off)))


def _cut(preds: GridPredictions, origin: tuple[int, ...], axes: tuple[int, int]) -> tuple[str, ...]:
    ax, ay = axes
    rows = []
    for j in range(len(preds.values[ay])):
        row = []
        for i in range(len(preds.values[ax])):
            pos = list(origin)
            pos[ax], pos[ay] = i, j
            row.append(preds.code(pos))
        rows.append("".join(row))
    return tuple(rows)


def example_map(preds: GridPredictions, record: Mapping[str, Any],
                samples: Sequence[Mapping[str, Any]] = ()) -> BoundaryMap | str:
    """The map of one example (a record as in the JSON report), or why there is none. Under
    sampling, ``samples`` are the example's other records: their SCEs are drawn on the same slice
    (the slice is chosen by ``record``, the one the panel shows)."""
    origin = preds.position(record.get("input"))
    if origin is None:
        return "the example is not a point of the grid"
    axes = slice_features(preds, record)
    if axes is None:
        axes = next((a for a in (slice_features(preds, r) for r in samples) if a is not None), None)
    if axes is None:
        return "no SCE and no nearest flip x* change a feature: no slice to draw"
    marks = tuple(m for m in (_marks(preds, r, axes) for r in (record, *samples)) if m is not None)
    fixed = {n: preds.values[k][origin[k]] for k, n in enumerate(preds.features) if k not in axes}
    notes = []
    sce_off = sorted({f for m in marks for f in m.sce_off})
    xstar_off = sorted({f for m in marks for f in m.xstar_off})
    what = "an SCE" if samples else "the SCE"
    if sce_off:
        notes.append(f"{what} also changes {', '.join(sce_off)}: its mark is projected onto this slice")
    if xstar_off:
        notes.append(f"x* also changes {', '.join(xstar_off)}: its mark is projected onto this slice")
    return BoundaryMap(preds.features[axes[0]], preds.features[axes[1]], preds.values[axes[0]], preds.values[axes[1]],
                       fixed, _cut(preds, origin, axes), preds.labels, marks, tuple(notes))


def plane_map(preds: GridPredictions, records: Sequence[Mapping[str, Any]]) -> BoundaryMap | None:
    """The whole plane of a two-feature grid with every given example marked; None for a grid
    with another number of features."""
    if len(preds.features) != 2:
        return None
    marks = tuple(m for m in (_marks(preds, r, (0, 1)) for r in records) if m is not None)
    return BoundaryMap(preds.features[0], preds.features[1], preds.values[0], preds.values[1], {},
                       _cut(preds, (0, 0), (0, 1)), preds.labels, marks)
