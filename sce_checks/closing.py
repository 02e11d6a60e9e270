"""The end of a pytest session that ran sce-checks: the reports written, the baselines compared
(their verdict merged into the exit status) and the summary under pytest's own. Apart from
session.py because it imports the report writers and the regression engine (numpy, tabulate,
rapidfuzz): the plugin imports this module from its end-of-session hooks, only when the session
has something to show, so a pytest run that never uses sce-checks does not load them
(docs/architecture.md, "Imports")."""

from __future__ import annotations

import os
from typing import Any

import pytest

from sce_checks.errors import EXIT_BAD_INPUT, UserInputError
from sce_checks.notices import PREFIX
from sce_checks.regression.files import load_baseline, save_baseline
from sce_checks.regression.gate import compare_run
from sce_checks.regression.saved import reference_results
from sce_checks.regression.tolerances import parse_tolerances
from sce_checks.report.changes import changes_html, changes_markdown
from sce_checks.report.comparison import render_report
from sce_checks.report.html import write_html
from sce_checks.report.json_report import write_json
from sce_checks.report.markdown import write_markdown
from sce_checks.report.table import render_table
from sce_checks.session import SCESession


def finish(session: SCESession, exitstatus: int) -> int | None:
    """Write reports and compare with a baseline; return a new exit status when the baseline
    comparison fails (merged, never masking an earlier failure). On an xdist worker, hand
    the results to the controller instead."""
    if session.is_worker:
        if session._results or session.input_errors or session.notices:
            session.config.workeroutput["sce_checks"] = session.export()
        return None
    # bad input or an unusable backend failed the items that met it: exit 2, not 1 (sce_checks/errors.py)
    usage = EXIT_BAD_INPUT if session.input_errors and exitstatus in (
        pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.NO_TESTS_COLLECTED) else None
    results = session.results
    if not results and not session.skipped:
        return usage
    env = session.environment()
    spec = session.spec
    reports, references, bad = compare_baselines(session, results, env)
    if spec.json:
        write_json(spec.json, results, env, session.skipped,
                   baseline=[r.to_dict() for r in reports] if reports else None)

    if spec.markdown or os.environ.get("GITHUB_STEP_SUMMARY"):
        write_markdown(spec.markdown, results, env, session.skipped, [(str(r.path), r.rows) for r in reports],
                       extra=changes_markdown(reports))
    if spec.html:
        write_html(spec.html, results, env, extra_sections=[changes_html(reports)] if reports else (),
                   skipped=session.skipped, references=references)
    if spec.save_baseline:
        save_baseline(spec.save_baseline, results, env)
    if bad:
        return EXIT_BAD_INPUT
    if any(r.regressed for r in reports) and exitstatus == 0:
        return pytest.ExitCode.TESTS_FAILED
    return usage

def compare_baselines(session: SCESession, results: list, env: dict) -> tuple[list, list, bool]:
    """Every baseline of the run compared (``--baseline`` over all results, an audit file's
    over its own), by one rule: the spec's ``baseline_mode``, ``alpha`` and
    ``baseline_metrics``, or the audit file's own where it gives them (as its ``tolerance``)
    (sce_checks/regression/gate.py). A comparison that cannot be made
    (another sample, a missing entry) is bad input. Returns (the comparison reports, the
    baselines' SCE results to draw beside the run's, whether a comparison failed)."""

    spec = session.spec
    run_gate = {"baseline_mode": spec.baseline_mode, "alpha": spec.alpha, "baseline_metrics": spec.baseline_metrics}
    comparisons = []
    if spec.baseline:
        comparisons.append((spec.baseline, list(spec.tolerances), results, run_gate))
    for path, audit in session._audit_baselines.items():
        mine = [r for key, r in session._results.items()
                if key[0] == audit["model"] and key[1] in audit["datasets"] and key[2] in audit["units"]]
        comparisons.append((path, audit["tolerance"], mine, {**run_gate, **audit.get("gate", {})}))
    reports, references = [], []
    for path, tolerance, subset, gate in comparisons:
        try:
            baseline = load_baseline(path)
            reports.append(compare_run(baseline, subset, env, parse_tolerances(tolerance, "--sce-tolerance"),
                                       path, gate["baseline_mode"], gate["alpha"], gate["baseline_metrics"]))
        except UserInputError as exc:
            session.errors.append(str(exc))
            session.input_errors.append(str(exc))
            return reports, references, True
        references.extend(reference_results(baseline, path))
    session.comparison_reports = reports
    return reports, references, False

def terminal_summary(session: SCESession, tr: Any) -> None:
    if session.is_worker:
        return
    for err in session.preflight_errors:
        tr.write_line(f"sce-checks: {err}", red=True)
    results, warnings = session.results, session.notices.lines
    if not results and not session.errors and not session.skipped and not warnings:
        return

    tr.write_sep("=", "sce-checks")
    # as wide as pytest's own lines: the terminal's width (COLUMNS when set), 80 in a pipe
    width = tr.config.get_terminal_writer().fullwidth
    if results or session.errors or session.skipped:  # not for warnings alone
        tr.write_line(render_table(results, skipped=session.skipped, width=width))
    if session.comparison_reports:
        tr.write_line("")
        tr.write_line("\n\n".join(render_report(r, width) for r in session.comparison_reports))
    for line in warnings:  # what the cache and the backends warned about, once each (sce_checks/notices.py)
        tr.write_line(f"{PREFIX}{line}", yellow=True)
    for err in session.errors:
        tr.write_line(f"sce-checks error: {err}", red=True)
