"""benchmarks/bench_sequential.py still runs and prints the lines the docs quote
(``false_pass_rate:``, ``false_regression_rate:``); the rates themselves are asserted on more
audits by tests/metrics/test_sequential.py::test_simulated_error_rates."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.helpers.projects import REPO


def test_the_benchmark_prints_its_rates():
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_sequential.py"), "--runs", "200",
                          "--limit", "40"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert run.returncode == 0, run.stderr
    rates = dict(re.findall(r"^(false_pass_rate|false_regression_rate): ([0-9.]+)$", run.stdout, re.M))
    assert set(rates) == {"false_pass_rate", "false_regression_rate"}
    assert all(0.0 <= float(v) <= 1.0 for v in rates.values())
    assert "| McNemar, tolerance 0" in run.stdout and "final pass" in run.stdout
