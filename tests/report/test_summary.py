"""The rows every human-readable report renders (sce_checks/report/summary.py)."""

from __future__ import annotations

from sce_checks.report.summary import result_tables
from sce_checks.results import CheckResult


def sce_result(variant: str) -> CheckResult:
    return CheckResult("sce", "m", "income", variant, 4, {"validity": 0.5, "generation_rate": 1.0}, [])


def test_no_empty_column_and_gate_columns_only_where_a_gate_was_judged():
    (headers, rows), = result_tables([sce_result("unconstrained"), sce_result("minimal")])
    assert all(headers) and "thresholds" not in headers and "verdict" not in headers
    assert all(len(row) == len(headers) and all(cell != "" for cell in row[:3]) for row in rows)

    gated = sce_result("minimal")
    gated.record_verdict("validity>=0.8", 0.5, passed=False)
    (headers, rows), = result_tables([sce_result("unconstrained"), gated])
    assert headers[-2:] == ["thresholds", "verdict"] and all(headers)
    assert rows[0][-2:] == ["FAIL validity>=0.8 (0.500)", "FAIL"]  # failures first
    assert rows[1][-2:] == ["-", "-"]
