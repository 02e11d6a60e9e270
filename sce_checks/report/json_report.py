"""The JSON report (schema: sce_checks/data/report-v1.schema.json; fields may be added, never renamed)."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path
from typing import Any, Sequence

from sce_checks.results import CheckResult, _clean

SCHEMA_ID = "sce-checks/report/v1"


def build_report(results: Sequence[CheckResult], environment: dict[str, Any], skipped: Sequence[str] = (),
                 baseline: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``skipped``: checks that could not run on a task or backend, one line each (the reason);
    ``baseline``: the baseline comparisons of the run (sce_checks/report/baseline.py,
    `ComparisonReport.to_dict`)."""
    report = {"schema": SCHEMA_ID, "environment": _clean(environment), "results": [r.to_dict() for r in results]}
    if skipped:
        report["skipped"] = list(skipped)
    if baseline:
        report["baseline"] = baseline
    return report


def write_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write via a temporary file in the same directory, then rename over ``path``: a crash never
    leaves half a report, and a failed write (a directory at ``path``, a full disk, no permission)
    leaves no temporary file and is one `UserInputError` naming the path, not a traceback.

    Lone surrogates (a reply may carry a ``\\ud800`` escape) are written as backslash escapes:
    in a JSON string that is the same JSON escape, elsewhere readable text; never an encoding error."""
    from sce_checks.errors import UserInputError

    path = Path(path)
    data = text.encode("utf-8", "backslashreplace")
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    created = False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # mode as any new file (umask)
        created = True
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        created = False
    except OSError as exc:
        raise UserInputError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if created:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return path


def write_json(path: str | os.PathLike, results: Sequence[CheckResult], environment: dict[str, Any],
               skipped: Sequence[str] = (), baseline: list[dict[str, Any]] | None = None) -> Path:
    return write_atomic(path, json.dumps(build_report(results, environment, skipped, baseline), indent=2,
                                         ensure_ascii=False))


def read_results(path: str | os.PathLike) -> tuple[list[CheckResult], dict[str, Any]]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return [CheckResult.from_dict(r) for r in data.get("results", [])], data.get("environment", {})
