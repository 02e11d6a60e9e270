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
from typing import Sequence

from sce_checks.checks import ATTRIBUTIONS, CHECKS, DESCRIPTIONS, VARIANTS
from sce_checks.errors import BackendError, UserInputError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like pytest's usage errors
        self.exit(EXIT_USAGE, f"sce-audit: error: {message} (see sce-audit --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sce-audit", description="Audit a language model's self-explanations: counterfactual explanations (SCEs), "
                "perturbation tests (INV/DIR), faithfulness tests (CT, CCT, phi-CCT) and self-consistency.",
                epilog="Other flags pass through to pytest (e.g. -n 4, --junitxml PATH, -x, -v).")
    p.add_argument("--model", default="smollm2", metavar="SPEC",
                   help="hf:<hub id or dir> | openai:<model>@<base url> | python:<module>:<attr> | smollm2 (default)")
    p.add_argument("--dataset", action="append", metavar="NAME_OR_PATH",
                   help="income | house_prices | heart_disease | sentiment | a grid .toml | a text .csv/.jsonl/.toml (repeatable; default income)")
    p.add_argument("--check", action="append", choices=list(CHECKS), metavar="CHECK",
                   help="what to audit (repeatable; default sce): " + "; ".join(f"{k}: {v}" for k, v in DESCRIPTIONS.items()))
    p.add_argument("--variant", action="append", choices=list(VARIANTS),
                   help="SCE variant (repeatable; both by default); the stability check uses the first listed")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="examples per dataset, sampled with --seed (default 20; 0 = all)")
    p.add_argument("--seed", type=int, default=0, metavar="N")
    p.add_argument("--prediction", choices=["auto", "score", "generate"], default="auto",
                   help="how answers are read: option log-probabilities when the backend has them (auto), or generated JSON")
    p.add_argument("--elicitation", choices=["free", "schema"], default="free",
                   help="free: the paper's protocol, replies read as given (default); schema: every reply constrained to "
                        "the JSON schema of what is asked (grammar-constrained decoding on hf models, response_format on "
                        "servers), so the model chooses the content but cannot fail on format")
    p.add_argument("--parsing", choices=["lenient", "strict"], default="lenient",
                   help="lenient: read replies as the paper's code does where unambiguous (numeric strings, label case and "
                        "punctuation, the first of several JSON objects), counted in the report (default); strict: none of that")
    p.add_argument("--text-search-budget", type=int, default=0, metavar="N",
                   help="text tasks: model predictions per example for the reference minimal-edit search (0 = off)")
    p.add_argument("--perturbations", type=int, default=4, metavar="N",
                   help="perturbed inputs / interventions per example for inv, dir, stability, ct, cct, phi_cct (default 4)")
    p.add_argument("--attribution", choices=list(ATTRIBUTIONS), default=ATTRIBUTIONS[0],
                   help="self_consistency's attribution method")
    p.add_argument("--threshold", action="append", default=[], metavar="[CHECK:]METRIC>=X",
                   help="gate, e.g. 'validity>=0.8', 'mean_rcf_a<=0.05', 'validity_lower>=0.5'; with several checks, "
                        "prefix the check: 'inv:failure_rate<=0.1', 'phi_cct:phi>=0.2' (repeatable)")
    p.add_argument("--json", metavar="PATH", help="write the JSON report")
    p.add_argument("--markdown", metavar="PATH", help="write the Markdown report")
    p.add_argument("--html", metavar="PATH", help="write the HTML report")
    p.add_argument("--baseline", metavar="PATH", help="compare against a saved baseline; fail on regressions")
    p.add_argument("--save-baseline", metavar="PATH", help="save this run's figures as a baseline")
    p.add_argument("--tolerance", action="append", metavar="X|METRIC=X",
                   help="allowed worsening against the baseline: X for every metric, METRIC=X for one (repeatable; default 0)")
    g = p.add_argument_group("model options")
    g.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="hf backends (default float32 on CPU)")
    g.add_argument("--device", help="hf backends: cpu, cuda, cuda:1, mps (default: cuda when available)")
    g.add_argument("--batch-size", type=int, default=8)
    g.add_argument("--trust-remote-code", action="store_true", help="hf backends: allow the model repo's own code (off by default)")
    g.add_argument("--concurrency", type=int, default=8, help="openai backends: requests in flight")
    g.add_argument("--timeout", type=float, default=60.0, help="openai backends: seconds per request")
    g.add_argument("--max-retries", type=int, default=5, help="openai backends")
    c = p.add_argument_group("cache")
    c.add_argument("--no-cache", action="store_true", help="do not read or write the response cache")
    c.add_argument("--cache-dir", metavar="DIR", help="cache location (default: $SCE_CHECKS_CACHE_DIR or the user cache dir)")
    c.add_argument("--clear-cache", action="store_true", help="empty the response cache first")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    return p


def _validate(args: argparse.Namespace) -> None:
    """Check what is cheap to check before pytest starts, so that bad input gets its one line and
    exit status 2 at once (a model that fails to load is reported by the run itself)."""
    from sce_checks.checks import units
    from sce_checks.models import parse_spec
    from sce_checks.report.baseline import load_baseline, parse_tolerances
    from sce_checks.tasks import load_task
    from sce_checks.thresholds import Threshold

    if args.limit < 0:
        raise UserInputError(f"--limit must be >= 0, not {args.limit}")
    if args.batch_size < 1:
        raise UserInputError(f"--batch-size must be >= 1, not {args.batch_size}")
    if args.text_search_budget < 0:
        raise UserInputError(f"--text-search-budget must be >= 0, not {args.text_search_budget}")
    if args.perturbations < 1:
        raise UserInputError(f"--perturbations must be >= 1, not {args.perturbations}")
    parse_spec(args.model)
    run_units = units(args.check or ["sce"], args.variant or VARIANTS)
    for text in args.threshold:
        t = Threshold.parse(text, "--threshold")
        if not any(t.applies_to(u) for u in run_units):
            raise UserInputError(f"--threshold {text!r}: this run has no {t.unit!r} results (add --check {t.unit})")
    parse_tolerances(args.tolerance, "--tolerance")
    for d in args.dataset or ["income"]:
        load_task(d)
    if args.baseline:
        load_baseline(args.baseline)  # fail before the (long) model run


def pytest_args(args: argparse.Namespace, passthrough: Sequence[str], workdir: str) -> list[str]:
    """The pytest command line that runs this audit: ``--sce-run`` items in an empty, isolated
    root (the user's own tests and conftest files are not collected), then the pass-through flags."""
    import os

    out = [workdir, "-c", os.path.join(workdir, "pytest.ini"), "--rootdir", os.getcwd(), "-p", "no:cacheprovider",
           # sce_checks is imported before pytest starts, so pytest cannot rewrite asserts in it: expected
           "-W", "ignore::pytest.PytestAssertRewriteWarning", "--sce-run",
           "--sce-model", args.model, "--sce-limit", str(args.limit), "--sce-seed", str(args.seed),
           "--sce-prediction", args.prediction, "--sce-text-search-budget", str(args.text_search_budget),
           "--sce-elicitation", args.elicitation, "--sce-parsing", args.parsing,
           "--sce-batch-size", str(args.batch_size), "--sce-concurrency", str(args.concurrency),
           "--sce-timeout", str(args.timeout), "--sce-max-retries", str(args.max_retries),
           "--sce-perturbations", str(args.perturbations), "--sce-attribution", args.attribution]
    for c in args.check or []:
        out += ["--sce-check", c]
    for d in args.dataset or ["income"]:
        out += ["--sce-dataset", d]  # relative to the working directory, which the run keeps
    for v in args.variant or []:
        out += ["--sce-variant", v]
    for t in args.threshold:
        out += ["--sce-threshold", t]
    for t in args.tolerance or []:
        out += ["--sce-tolerance", t]
    for flag in ("json", "markdown", "html", "baseline", "save_baseline", "cache_dir", "dtype", "device"):
        value = getattr(args, flag)
        if value:
            path_like = flag not in ("dtype", "device")
            out += [f"--sce-{flag.replace('_', '-')}", os.path.abspath(value) if path_like else value]
    for flag in ("trust_remote_code", "no_cache", "clear_cache"):
        if getattr(args, flag):
            out.append(f"--sce-{flag.replace('_', '-')}")
    if args.quiet:
        out.append("-q")
    return out + list(passthrough)


class _Outcome:
    """A plugin object handed to the inner pytest run: keeps the session's input errors."""

    def __init__(self) -> None:
        self.input_errors: list[str] = []

    def pytest_unconfigure(self, config) -> None:
        from sce_checks.plugin import SESSION_KEY

        session = config.stash.get(SESSION_KEY, None)
        if session is not None:
            self.input_errors = list(session.input_errors)


def run(argv: Sequence[str] | None = None) -> int:
    args, passthrough = build_parser().parse_known_args(argv)
    _validate(args)
    import tempfile

    import pytest

    outcome = _Outcome()
    with tempfile.TemporaryDirectory(prefix="sce-audit-") as workdir:
        with open(f"{workdir}/pytest.ini", "w", encoding="utf-8") as f:
            f.write("[pytest]\n")
        code = int(pytest.main(pytest_args(args, passthrough, workdir), plugins=[outcome]))
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
