"""Thresholds: ``validity>=0.8``, ``mean_rcf_a<=0.05``, ``validity_lower>=0.6``, ``phi_cct:phi>=0.2``.

``<figure>_lower`` / ``<figure>_upper`` read the ends of the figure's Wilson 95% interval
(``validity_lower`` is ``validity_ci[0]``), so a gate on a small sample can demand that the
*interval*, not the noisy point estimate, clears the bar.

An optional ``UNIT:`` prefix (a check such as ``inv`` or ``phi_cct``, ``sce`` for both SCE
variants, or one variant) says which results the gate applies to, for runs of several checks;
without it the gate applies to every result of the run.

*Bounded figures.* When an exact x* search stopped at its budget (``--xstar-budget``), a
minimality figure is known only within bounds (``<figure>_bounds`` = [lower, upper], upper None
for unbounded; sce_checks/metrics/minimality.py) and the figure itself is None. A gate is then
judged on the bounds: it passes when the whole interval satisfies it, fails when none of it does,
and is otherwise **undecided**. An undecided gate fails, with the reason "undecided" and the
bounds (exit code 1, like any failed gate): a gate nobody could check must not pass silently, and
guessing a value inside the bounds would be exactly that. Raise the budget (a rerun reuses every
cached prediction) until the bounds decide it (docs/scaling.md).
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from dataclasses import dataclass
from typing import Any, Sequence

from sce_checks.checks import check_of, get_check, is_unit, known_units, unit_of
from sce_checks.errors import UserInputError
from sce_checks.results import CheckResult

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
_RE = re.compile(r"^\s*(?:([A-Za-z_]+)\s*:\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|>|<)\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Threshold:
    metric: str
    op: str
    value: float
    unit: str | None = None  # None: every result of the run

    def __str__(self) -> str:
        """Without the unit: item ids and verdicts name the unit beside it."""
        return f"{self.metric}{self.op}{self.value:g}"

    @classmethod
    def parse(cls, text: str, where: str = "threshold") -> "Threshold":
        m = _RE.match(text)
        if not m:
            raise UserInputError(f"{where}: cannot read {text!r}; expected [CHECK:]METRIC>=VALUE or METRIC<=VALUE, "
                                 "e.g. 'validity>=0.8' or 'phi_cct:phi>=0.2'")
        unit = m.group(1)
        if unit is not None and not is_unit(unit):
            raise UserInputError(f"{where}: {text!r}: unknown check {unit!r} before ':'; expected one of: "
                                 + ", ".join(known_units()))
        value = float(m.group(4))
        if not math.isfinite(value):
            raise UserInputError(f"{where}: {text!r}: the value {m.group(4)} is out of range")
        return cls(m.group(2), m.group(3), value, unit)

    def check_run(self, run_units: Sequence[str], where: str, tasks: Sequence[Any] = ()) -> None:
        """Refuse, before any model call, a gate no result can be judged on: the run has no
        result it applies to, or one of them has no such figure (`gateable`) on the kind of
        every task in ``tasks`` (the run's datasets, loaded; none: any kind)."""

        applies = [u for u in run_units if self.applies_to(u)]
        if not applies:
            raise UserInputError(f"{where}: this run has no {self.unit!r} results (add --check {check_of(self.unit)}; "
                                 f"the run reports {', '.join(run_units)})")
        checks = list(dict.fromkeys(check_of(u) for u in applies))
        for check in checks:
            known = gateable(check)
            if self.metric not in known:
                close = difflib.get_close_matches(self.metric, known, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                if len(checks) > 1:
                    hint += f"a gate without a CHECK: prefix applies to every check of the run ({', '.join(checks)}); "
                raise UserInputError(f"{where}: unknown metric {self.metric!r} for {check}; {hint}"
                                     f"known: {', '.join(known)}")
            for task in tasks:
                reported = gateable(check, task.kind)
                if self.metric not in reported:
                    raise UserInputError(f"{where}: {check} reports no {self.metric!r} on {task.kind} tasks such as "
                                         f"{task.name!r}; on {task.kind} tasks: {', '.join(reported)}")

    def applies_to(self, unit: str) -> bool:
        return self.unit is None or self.unit == unit or self.unit == check_of(unit)

    def actual(self, result: CheckResult) -> Any:
        return figure(result, self.metric)

    def decide(self, result: CheckResult) -> str:
        """`PASS`, `FAIL` or `UNDECIDED` (module docstring): a figure known exactly is compared; a
        bounded one passes or fails only when its whole interval does; undefined fails."""
        value = self.actual(result)
        if value is not None:
            return PASS if _OPS[self.op](value, self.value) else FAIL
        bounds = figure_bounds(result, self.metric)
        if bounds is None:
            return FAIL
        lo, hi = bounds
        if self.op in (">=", ">"):
            if _OPS[self.op](lo, self.value):
                return PASS
            return FAIL if hi is not None and not _OPS[self.op](hi, self.value) else UNDECIDED
        if hi is not None and _OPS[self.op](hi, self.value):
            return PASS
        return FAIL if not _OPS[self.op](lo, self.value) else UNDECIDED


PASS, FAIL, UNDECIDED = "pass", "fail", "undecided"


def figure_bounds(result: CheckResult, name: str) -> tuple[float, float | None] | None:
    """(lower, upper) of a figure known only within bounds (upper None: unbounded), else None."""
    bounds = result.figures.get(f"{name}_bounds")
    if not isinstance(bounds, (list, tuple)) or len(bounds) != 2 or bounds[0] is None:
        return None
    return (float(bounds[0]), None if bounds[1] is None else float(bounds[1]))


def gateable(check: str, kind: str | None = None) -> tuple[str, ...]:
    """The figures a threshold on ``check`` can name: its declared figures
    (sce_checks/checks/base.py, `Figure`) and the ends of their Wilson intervals; with ``kind``,
    those its results on that kind of task report."""

    out: list[str] = []
    for f in get_check(check).figures:
        if kind is not None and kind not in f.tasks:
            continue
        out.append(f.name)
        if f.interval:
            out.extend((f"{f.name}_lower", f"{f.name}_upper"))
    return tuple(out)


def figure(result: CheckResult, name: str) -> Any:
    for suffix, idx in (("_lower", 0), ("_upper", 1)):
        if name.endswith(suffix) and f"{name[: -len(suffix)]}_ci" in result.figures:
            ci = result.figures[f"{name[: -len(suffix)]}_ci"] or [None, None]
            return ci[idx]
    if name not in result.figures:
        known = ", ".join(sorted(k for k, v in result.figures.items() if isinstance(v, (int, float)) or v is None))

        raise UserInputError(f"unknown metric {name!r} for {result.dataset}/{unit_of(result)}; known: {known}")
    return result.figures[name]
