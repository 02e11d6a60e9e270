"""The JSON report (schema: sce_checks/data/report-v1.schema.json; fields may be added, never renamed)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

from sce_checks.paths import write_atomic
from sce_checks.results import REPORT_SCHEMA, CheckResult, _clean


def build_report(results: Sequence[CheckResult], environment: dict[str, Any], skipped: Sequence[str] = (),
                 baseline: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``skipped``: checks that could not run on a task or backend, one line each (the reason);
    ``baseline``: the baseline comparisons of the run (sce_checks/regression/gate.py,
    `ComparisonReport.to_dict`)."""
    report = {"schema": REPORT_SCHEMA, "environment": _clean(environment), "results": [r.to_dict() for r in results]}
    if skipped:
        report["skipped"] = list(skipped)
    if baseline:
        report["baseline"] = baseline
    return report


def write_json(path: str | os.PathLike, results: Sequence[CheckResult], environment: dict[str, Any],
               skipped: Sequence[str] = (), baseline: list[dict[str, Any]] | None = None) -> Path:
    return write_atomic(path, json.dumps(build_report(results, environment, skipped, baseline), indent=2,
                                         ensure_ascii=False))
