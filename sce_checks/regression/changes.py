"""The examples that changed between a baseline and a run: a user fixing a fine-tune needs these
first (the examples whose SCE became invalid, went unparsed or got much less minimal, with the
prediction and SCE before and after). Computed from the stored per-example outcomes; every report
lays them out (report/changes.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from sce_checks.checks import get_check
from sce_checks.checks.base import lower_is_better
from sce_checks.regression.files import SHOWN
from sce_checks.regression.tolerances import ROUNDING, Tolerances


@dataclass
class Change:
    """An example whose outcomes moved between the two runs: ``moves`` (outcome, before, after),
    the worse ones first; ``worse``: at least one moved for the worse."""

    key: str
    id: str
    worse: bool
    moves: list[tuple[str, Any, Any]]
    before: dict[str, Any]  # prediction, target, counterfactual in the baseline
    after: dict[str, Any]


def changed_examples(key: str, check: str, old_ex: dict, new_ex: dict, shared: Sequence[str],
                     tolerances: Tolerances) -> list[Change]:
    """The shared examples whose outcomes moved: a binary one flipped, a continuous one moved by
    more than its figure's tolerance."""

    outcomes = get_check(check).outcomes
    out = []
    for i in shared:
        before, after = old_ex[i]["outcomes"], new_ex[i]["outcomes"]
        moves, worse = [], False
        for o in outcomes:
            x, y = before.get(o.name), after.get(o.name)
            if x == y:
                continue
            if o.kind == "continuous" and (x is None or y is None  # follows from a binary move (valid -> invalid)
                                           or abs(y - x) <= max(ROUNDING, min(tolerances.get(f, tolerances["*"])
                                                                              for f in o.figures))):
                continue
            higher = not lower_is_better(check, o.figures[0])
            if x is not None and y is not None:
                bad = (y < x) if higher else (y > x)
            else:  # an outcome appeared or vanished (no SCE any more): worse when it vanished
                bad = y is None
            worse |= bad
            moves.append((o.name, x, y, bad))
        if moves:
            moves.sort(key=lambda m: not m[3])
            out.append(Change(key, i, worse, [(n, x, y) for n, x, y, _ in moves],
                              {k: old_ex[i].get(k) for k in SHOWN}, {k: new_ex[i].get(k) for k in SHOWN}))
    return out
