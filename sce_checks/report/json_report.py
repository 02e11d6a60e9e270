"""The JSON report (schema: sce_checks/data/report-v1.schema.json; fields may be added, never renamed)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

from sce_checks.results import CheckResult, _clean

SCHEMA_ID = "sce-checks/report/v1"


def build_report(results: Sequence[CheckResult], environment: dict[str, Any], skipped: Sequence[str] = ()) -> dict[str, Any]:
    """``skipped``: checks that could not run on a task or backend, one line each (the reason)."""
    report = {"schema": SCHEMA_ID, "environment": _clean(environment), "results": [r.to_dict() for r in results]}
    if skipped:
        report["skipped"] = list(skipped)
    return report


def write_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write via a temporary file and rename, so a crash never leaves half a report."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_json(path: str | os.PathLike, results: Sequence[CheckResult], environment: dict[str, Any],
               skipped: Sequence[str] = ()) -> Path:
    return write_atomic(path, json.dumps(build_report(results, environment, skipped), indent=2, ensure_ascii=False))


def read_results(path: str | os.PathLike) -> tuple[list[CheckResult], dict[str, Any]]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return [CheckResult.from_dict(r) for r in data.get("results", [])], data.get("environment", {})
