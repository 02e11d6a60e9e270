"""``sce-audit``: run an audit of self-explanations from the command line.

It builds a pytest run (like ``deepeval test run``): the audit becomes test items (``--sce-run``:
one per threshold, or one per dataset and variant), so reports, baselines, JUnit XML and
pytest-xdist behave exactly as in a user's pytest suite. Flags sce-audit does not know pass
through to pytest: ``sce-audit --dataset income -n 4 --junitxml audit.xml``.

Exit status (sce_checks/errors.py, README "Exit codes"): 0 when every threshold (and baseline
comparison) holds, 1 when one fails, 2 for bad usage or input and an unusable backend (one line
on stderr saying what and where; bad input is found before any model call: sce_checks/preflight.py)
and for an interrupted run (the response cache keeps every answer already computed, so a rerun
resumes).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import pytest
from pytest import hookimpl as pytest_hookimpl

from sce_checks.config import SETTINGS, add_cli_arguments, resolve, spec_to_json, tool_table
from sce_checks.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, BackendError, UserInputError
from sce_checks.layout import terminal_width
from sce_checks.models.cache import ResponseCache
from sce_checks.notices import PREFIX, Notices, collecting
from sce_checks.preflight import preflight
from sce_checks.regression.planning import plan_sample_size
from sce_checks.regression.saved import compare_saved, read_saved_report
from sce_checks.report.changes import changes_html
from sce_checks.report.comparison import render_report
from sce_checks.report.html import write_html
from sce_checks.session import SESSION_KEY


if TYPE_CHECKING:
    from sce_checks.config import RunSpec


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like pytest's usage errors
        self.exit(EXIT_BAD_INPUT, f"sce-audit: error: {message} (see sce-audit --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The flags: one per setting of the run specification (sce_checks/config.py), and -q."""

    p = _Parser(prog="sce-audit", description="Audit a language model's self-explanations: counterfactual explanations (SCEs), "
                "perturbation tests (INV/DIR), faithfulness tests (CT, CCT, phi-CCT) and self-consistency.",
                epilog="Other flags pass through to pytest (e.g. -n 4, --junitxml PATH, -x, -v). Settings the command line "
                       "does not give come from [tool.sce-checks] in ./pyproject.toml, then the defaults.")
    add_cli_arguments(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    tools = p.add_argument_group("without a model (docs/regression.md)")
    tools.add_argument("--compare", nargs="+", metavar="REPORT",
                       help="compare saved JSON reports or baselines, the first against each of the others, on the "
                            "results and examples they share (no model call; --tolerance, --baseline-mode, --alpha, "
                            "--baseline-metric and --html apply); exit 1 on a regression")
    tools.add_argument("--plan-sample-size", metavar="p=P,drop=D[,alpha=A][,power=W][,changed=C]",
                       help="how many examples a paired gate needs to detect a drop D of a rate P (exact McNemar; "
                            "changed: the share of examples expected to change outcome, else both bounds)")
    return p


def run_spec(args: argparse.Namespace) -> Any:
    """The run specification: the flags given, over ``[tool.sce-checks]`` of ./pyproject.toml,
    over the defaults; paths made absolute (the pytest run reads them from another folder)."""


    given = {}
    for s in SETTINGS:
        raw = getattr(args, s.name)
        if raw is not None:
            given[s.name] = s.read(raw, f"--{s.option}")
    spec = resolve([given, tool_table(Path.cwd() / "pyproject.toml")])
    paths = {s.name: os.path.abspath(getattr(spec, s.name)) for s in SETTINGS if s.kind == "path" and getattr(spec, s.name)}
    return spec.replace(**paths)


def pytest_args(spec_file: str, quiet: bool, passthrough: Sequence[str], workdir: str) -> list[str]:
    """The pytest command line that runs this audit: ``--sce-run`` items of the resolved
    specification, collected from the specification file itself (so pytest's "collected N items"
    counts them) in an empty, isolated root (the user's own tests and conftest files are not
    collected), then the pass-through flags."""

    out = [spec_file, "-c", os.path.join(workdir, "pytest.ini"), "--rootdir", os.getcwd(), "-p", "no:cacheprovider",
           # hypothesis's plugin imports hypothesis at the end of every run (1.7 s), for tests an audit has none of
           "-p", "no:hypothesispytest",
           # sce_checks is imported before pytest starts, so pytest cannot rewrite asserts in it: expected
           "-W", "ignore::pytest.PytestAssertRewriteWarning", "--sce-run", "--sce-spec", spec_file]
    if quiet:
        out.append("-q")
    return out + list(passthrough)


class _Outcome:
    """A plugin object handed to the inner pytest run: keeps the session's input errors, and
    shows the audit in pytest's header instead of the temporary ini file that isolates the run
    from the user's own pytest configuration."""

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self.input_errors: list[str] = []

    @pytest_hookimpl(wrapper=True)
    def pytest_report_header(self, config, start_path):
        lines = yield
        kept = [[line for line in ([entry] if isinstance(entry, str) else entry) if not line.startswith("configfile:")]
                for entry in lines]
        spec = self.spec
        what = f"sce-audit: {spec.model} on {', '.join(spec.datasets)}; checks {', '.join(spec.checks)}"
        return [[f"{what}; limit {spec.limit}, seed {spec.seed}"]] + kept  # pytest prints these last first

    def pytest_unconfigure(self, config) -> None:
        session = config.stash.get(SESSION_KEY, None)
        if session is not None:
            self.input_errors = list(session.input_errors)


def plan(text: str) -> str:
    """``--plan-sample-size p=0.8,drop=0.1[,alpha=0.05][,power=0.8][,changed=0.2]``: one line."""

    where = "--plan-sample-size"
    values: dict[str, float] = {}
    for part in text.split(","):
        name, sep, raw = part.partition("=")
        name = name.strip()
        if not sep or name not in ("p", "drop", "alpha", "power", "changed"):
            raise UserInputError(f"{where}: expected NAME=VALUE with NAME one of p, drop, alpha, power, changed; "
                                 f"got {part.strip()!r}")
        try:
            values[name] = float(raw)
        except ValueError:
            raise UserInputError(f"{where}: {name}: expected a number, got {raw.strip()!r}") from None
    for needed in ("p", "drop"):
        if needed not in values:
            raise UserInputError(f"{where}: {needed}= is required (e.g. p=0.8,drop=0.1)")
    try:
        return plan_sample_size(**values).describe()
    except ValueError as exc:
        raise UserInputError(f"{where}: {exc}") from None


def compare_files(paths: Sequence[str], spec: Any) -> int:
    """``--compare``: saved reports or baselines compared, printed, and drawn with --html."""

    if len(paths) < 2:
        raise UserInputError("--compare: give at least two saved reports or baselines (the first is the reference)")
    reports = compare_saved(paths, list(spec.tolerances), spec.baseline_mode, spec.alpha, spec.baseline_metrics)
    print("\n\n".join(render_report(r, terminal_width()) for r in reports))
    if spec.html:
        write_comparison_html(spec.html, paths, reports)
    return EXIT_FAILED if any(r.regressed for r in reports) else EXIT_OK


def write_comparison_html(path: str, paths: Sequence[str], reports: Sequence[Any]) -> None:
    """The HTML report of the saved reports' results side by side (each result's model named with
    its file, so the validity-minimality plot has one point per run) with the comparisons."""


    results, env = [], {}
    for p in paths:
        saved = read_saved_report(p)
        if saved is None:
            continue  # a baseline: figures, no results to draw
        env = env or saved[1]
        for r in saved[0]:
            r.model = f"{r.model} ({Path(p).name})"
            results.append(r)
    write_html(path, results, env, extra_sections=[changes_html(reports)])


# the settings that apply to the commands that run no model
COMPARE_SETTINGS = ("tolerances", "baseline_mode", "alpha", "baseline_metrics", "html")


def _refuse_others(args: argparse.Namespace, passthrough: Sequence[str], command: str, allowed: Sequence[str]) -> None:
    """A flag that a command without a model ignores is refused, not silently dropped."""

    given = [f"--{s.option}" for s in SETTINGS if s.name not in allowed and getattr(args, s.name) not in (None, False)]
    if command == "--plan-sample-size" and args.compare:
        given.append("--compare")
    if given or passthrough:
        raise UserInputError(f"{command}: {' '.join([*given, *passthrough])} does not apply (no model is run)")


def run(argv: Sequence[str] | None = None) -> int:
    args, passthrough = build_parser().parse_known_args(argv)
    if args.plan_sample_size:
        _refuse_others(args, passthrough, "--plan-sample-size", ())
        print(plan(args.plan_sample_size))
        return EXIT_OK
    if args.compare:
        _refuse_others(args, passthrough, "--compare", COMPARE_SETTINGS)
        return compare_files(args.compare, run_spec(args))
    spec = run_spec(args)

    preflight(spec)  # bad input exits 2 here, before pytest starts and any model loads
    if spec.clear_cache and not spec.no_cache:
        clear_cache(spec.cache_path())
        spec = spec.replace(clear_cache=False)  # done: the run then finds the cache empty
    outcome = _Outcome(spec)
    with tempfile.TemporaryDirectory(prefix="sce-audit-") as workdir:
        with open(f"{workdir}/pytest.ini", "w", encoding="utf-8") as f:
            f.write("[pytest]\n")
        spec_file = f"{workdir}/spec.json"
        with open(spec_file, "w", encoding="utf-8") as f:
            f.write(spec_to_json(spec))
        code = int(pytest.main(pytest_args(spec_file, args.quiet, passthrough, workdir), plugins=[outcome]))
    if outcome.input_errors:
        print(f"sce-audit: error: {outcome.input_errors[0]}", file=sys.stderr)
    return {0: EXIT_OK, 1: EXIT_FAILED}.get(code, EXIT_BAD_INPUT)


def clear_cache(path: Path) -> None:
    """``--clear-cache``, here before pytest starts: a cache that cannot be cleared (read-only,
    locked) is bad input, said as ``sce-audit: error: ...`` like every other (inside the pytest run
    it could only be pytest's ``ERROR:`` usage line). Warnings met opening it (a damaged file
    moved aside) are the audit's one-line warnings."""

    found = Notices()
    with collecting(found):
        cache = ResponseCache(path)
        try:
            cache.clear()
        finally:
            cache.close()
    for line in found.lines:
        print(f"{PREFIX}{line}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = run(argv)
    except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
        code = exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    except UserInputError as exc:
        print(f"sce-audit: error: {exc}", file=sys.stderr)
        code = EXIT_BAD_INPUT
    except BackendError as exc:
        print(f"sce-audit: model backend failed: {exc}", file=sys.stderr)
        code = EXIT_BAD_INPUT
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
