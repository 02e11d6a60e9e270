"""The package's layers import downwards only (docs/architecture.md): the checks, thresholds,
assertions and the regression engine import nothing from report/ (their cells, inert text and
table layout are sce_checks/cells.py, safe.py and layout.py), and report/ only renders: it
imports no statistics library and none of the regression engine's tests, at module top or
inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sce_checks"
BELOW_REPORT = [*sorted((PACKAGE / "checks").glob("*.py")), *sorted((PACKAGE / "regression").glob("*.py")),
                *(PACKAGE / name for name in ("thresholds.py", "assertions.py", "cells.py", "safe.py", "layout.py"))]
STATISTICS = ("scipy", "statsmodels", "sce_checks.regression.paired", "sce_checks.regression.planning",
              "sce_checks.metrics.stats")


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, wherever the import statement is."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


@pytest.mark.parametrize("path", BELOW_REPORT, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_layer_below_the_reports_imports_them(path):
    assert sorted(m for m in imported(path) if m == "sce_checks.report" or m.startswith("sce_checks.report.")) == []


@pytest.mark.parametrize("path", sorted((PACKAGE / "report").glob("*.py")), ids=lambda p: p.name)
def test_the_reports_compute_no_statistics(path):
    assert sorted(m for m in imported(path) if m.startswith(STATISTICS)) == []
