"""``sce-audit``: run an audit of self-explanations from the command line.

It builds a pytest run (like ``deepeval test run``): the audit becomes test items (``--sce-run``:
one per threshold, or one per dataset and variant), so reports, baselines, JUnit XML and
pytest-xdist behave exactly as in a user's pytest suite. Flags sce-audit does not know pass
through to pytest: ``sce-audit --dataset income -n 4 --junitxml audit.xml``.

Exit status, like pytest's: 0 when every threshold (and baseline comparison) holds, 1 when one
fails, 2 for bad usage or input (one line on stderr saying what and where) and for an interrupted
run (the response cache keeps every answer already computed, so a rerun resumes).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from sce_checks.errors import BackendError, UserInputError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like pytest's usage errors
        self.exit(EXIT_USAGE, f"sce-audit: error: {message} (see sce-audit --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The flags: one per setting of the run specification (sce_checks/config.py), and -q."""
    from sce_checks.config import add_cli_arguments

    p = _Parser(prog="sce-audit", description="Audit a language model's self-explanations: counterfactual explanations (SCEs), "
                "perturbation tests (INV/DIR), faithfulness tests (CT, CCT, phi-CCT) and self-consistency.",
                epilog="Other flags pass through to pytest (e.g. -n 4, --junitxml PATH, -x, -v). Settings the command line "
                       "does not give come from [tool.sce-checks] in ./pyproject.toml, then the defaults.")
    add_cli_arguments(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    return p


def run_spec(args: argparse.Namespace) -> Any:
    """The run specification: the flags given, over ``[tool.sce-checks]`` of ./pyproject.toml,
    over the defaults; paths made absolute (the pytest run reads them from another folder)."""
    import os
    from pathlib import Path

    from sce_checks.config import SETTINGS, resolve, tool_table

    given = {}
    for s in SETTINGS:
        raw = getattr(args, s.name)
        if raw is not None:
            given[s.name] = s.read(raw, f"--{s.option}")
    spec = resolve([given, tool_table(Path.cwd() / "pyproject.toml")])
    paths = {s.name: os.path.abspath(getattr(spec, s.name)) for s in SETTINGS if s.kind == "path" and getattr(spec, s.name)}
    return spec.replace(**paths)


def preflight(spec: Any) -> None:
    """Check what is cheap to check before pytest starts, so that bad input gets its one line and
    exit status 2 at once (a model that fails to load is reported by the run itself)."""
    from sce_checks.checks import units
    from sce_checks.models import parse_spec
    from sce_checks.report.baseline import load_baseline, parse_tolerances
    from sce_checks.tasks import load_task
    from sce_checks.thresholds import Threshold

    parse_spec(spec.model)
    run_units = units(spec.checks, spec.variants)
    for text in spec.thresholds:
        t = Threshold.parse(text, "--threshold")
        if not any(t.applies_to(u) for u in run_units):
            raise UserInputError(f"--threshold {text!r}: this run has no {t.unit!r} results (add --check {t.unit})")
    parse_tolerances(list(spec.tolerances), "--tolerance")
    for d in spec.datasets:
        load_task(d)
    if spec.baseline:
        load_baseline(spec.baseline)  # fail before the (long) model run
    if not spec.no_cache:
        from sce_checks.models.cache import check_cache_path

        check_cache_path(spec.cache_path())


def pytest_args(spec_file: str, quiet: bool, passthrough: Sequence[str], workdir: str) -> list[str]:
    """The pytest command line that runs this audit: ``--sce-run`` items of the resolved
    specification in an empty, isolated root (the user's own tests and conftest files are not
    collected), then the pass-through flags."""
    import os

    out = [workdir, "-c", os.path.join(workdir, "pytest.ini"), "--rootdir", os.getcwd(), "-p", "no:cacheprovider",
           # sce_checks is imported before pytest starts, so pytest cannot rewrite asserts in it: expected
           "-W", "ignore::pytest.PytestAssertRewriteWarning", "--sce-run", "--sce-spec", spec_file]
    if quiet:
        out.append("-q")
    return out + list(passthrough)


class _Outcome:
    """A plugin object handed to the inner pytest run: keeps the session's input errors."""

    def __init__(self) -> None:
        self.input_errors: list[str] = []

    def pytest_unconfigure(self, config) -> None:
        from sce_checks.session import SESSION_KEY

        session = config.stash.get(SESSION_KEY, None)
        if session is not None:
            self.input_errors = list(session.input_errors)


def run(argv: Sequence[str] | None = None) -> int:
    args, passthrough = build_parser().parse_known_args(argv)
    spec = run_spec(args)
    preflight(spec)
    import tempfile

    import pytest

    from sce_checks.config import spec_to_json

    outcome = _Outcome()
    with tempfile.TemporaryDirectory(prefix="sce-audit-") as workdir:
        with open(f"{workdir}/pytest.ini", "w", encoding="utf-8") as f:
            f.write("[pytest]\n")
        spec_file = f"{workdir}/spec.json"
        with open(spec_file, "w", encoding="utf-8") as f:
            f.write(spec_to_json(spec))
        code = int(pytest.main(pytest_args(spec_file, args.quiet, passthrough, workdir), plugins=[outcome]))
    if outcome.input_errors:
        print(f"sce-audit: error: {outcome.input_errors[0]}", file=sys.stderr)
    return {0: EXIT_OK, 1: EXIT_FAILED}.get(code, EXIT_USAGE)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = run(argv)
    except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
        code = exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except UserInputError as exc:
        print(f"sce-audit: error: {exc}", file=sys.stderr)
        code = EXIT_USAGE
    except BackendError as exc:
        print(f"sce-audit: model backend failed: {exc}", file=sys.stderr)
        code = EXIT_USAGE
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
