"""Result objects: what a check found, per example and in aggregate.

Assertions, the terminal table, the JSON/Markdown/HTML reports and baselines all read these
objects; none of them recomputes a figure. ``to_dict`` gives the public JSON shape of the report (schema:
sce_checks/data/report-v1.schema.json): fields may be added, never renamed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

# The JSON report's schema id: report/json_report.py writes it, regression/saved.py reads reports by it.
REPORT_SCHEMA = "sce-checks/report/v1"


@dataclass
class ExampleRecord:
    """One example of an SCE check. The first ten fields are the public contract."""

    id: str
    input: Any  # grid: {feature: value}; text: the text
    prediction: str | None  # the model's fresh-context answer on the input (None: unparsed)
    target: str | None  # the other option the SCE must reach (None when no prediction)
    counterfactual: Any  # same shape as input; None when no SCE could be parsed
    cf_prediction: str | None  # fresh-context answer on the counterfactual
    valid: bool | None  # cf_prediction == target; None when no SCE was generated
    distance: float | None  # d(input, counterfactual)
    min_distance: float | None  # d(input, reference minimal counterfactual)
    # -- extra detail, free to grow --
    prediction_reply: str | None = None
    sce_reply: str | None = None
    unparsed: str | None = None  # why the prediction or the SCE could not be parsed
    rcf_a: float | None = None
    rcf: float | None = None
    icf_a: float | None = None
    icf: float | None = None
    reference: Any = None  # the reference minimal counterfactual(s)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        extra = out.pop("extra")
        out.update(extra)
        return _clean(out)


@dataclass
class CheckResult:
    """A check's aggregate figures plus per-example records.

    ``figures`` holds every aggregate (validity, generation_rate, mean_rcf_a, ...); ``info`` holds
    counts and settings that explain them (unparsed reasons, model calls, distance unit).
    """

    check: str
    model: str
    dataset: str
    variant: str | None
    n: int
    figures: dict[str, Any]
    examples: list[ExampleRecord]
    info: dict[str, Any] = field(default_factory=dict)
    # Under sampling (docs/sampling.md) ``examples`` holds one record per (example, sample) and this
    # one summary per example (share valid, distinct SCEs, spread of distances); empty otherwise.
    per_example: list[dict[str, Any]] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.check, self.model, self.dataset, self.variant or "")

    def __getitem__(self, name: str) -> Any:
        return self.figures[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.figures.get(name, default)

    def record_verdict(self, threshold: str, actual: Any, passed: bool, expected_failure: bool = False,
                       bounds: Any = None, undecided: bool = False) -> None:
        """Note a threshold judged on this result (audit items and assertion helpers do), so every
        report shows the gate beside the figure; the same verdict is kept once. ``bounds``: the
        figure's [lower, upper] when it is known only within bounds; ``undecided``: the bounds could
        not decide the gate, which then fails (sce_checks/thresholds.py)."""
        entry = {"threshold": threshold, "actual": actual, "passed": bool(passed)}
        if bounds is not None:
            entry["bounds"] = list(bounds)
        if undecided:
            entry["undecided"] = True
        if expected_failure:
            entry["expected_failure"] = True
        verdicts = self.info.setdefault("thresholds", [])
        if entry not in verdicts:
            verdicts.append(entry)

    @property
    def verdict(self) -> str:
        """FAIL when a threshold failed (expected failures aside), PASS when all held, - when none."""
        verdicts = self.info.get("thresholds") or []
        if any(not v["passed"] and not v.get("expected_failure") for v in verdicts):
            return "FAIL"
        return "PASS" if verdicts else "-"

    def to_dict(self, *, with_examples: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "check": self.check,
            "model": self.model,
            "dataset": self.dataset,
            "variant": self.variant,
            "n": self.n,
        }
        out.update(self.figures)
        out["info"] = {k: v for k, v in self.info.items() if k != "sequential"}
        if "sequential" in self.info:  # --sequential: where and why the audit stopped (sce_checks/stopping.py)
            out["sequential"] = self.info["sequential"]
        if with_examples:
            out["examples"] = [e.to_dict() for e in self.examples]
            if self.per_example:
                out["per_example"] = self.per_example
        return _clean(out)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CheckResult":
        """Rebuild from a JSON report entry (used by baselines and by xdist transport)."""
        data = dict(data)
        head = {k: data.pop(k) for k in ("check", "model", "dataset", "variant", "n")}
        info = data.pop("info", {})
        if "sequential" in data:
            info = {**info, "sequential": data.pop("sequential")}
        raw_examples = data.pop("examples", [])
        per_example = data.pop("per_example", [])
        names = set(ExampleRecord.__dataclass_fields__) - {"extra"}
        examples = []
        for e in raw_examples:
            known = {k: v for k, v in e.items() if k in names}
            extra = {k: v for k, v in e.items() if k not in names}
            examples.append(ExampleRecord(**known, extra=extra))
        return cls(**head, figures=data, examples=examples, info=info, per_example=per_example)


def _clean(value: Any) -> Any:
    """JSON-safe: tuples to lists, NaN/inf to None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value
