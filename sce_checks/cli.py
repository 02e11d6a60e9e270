"""``sce-audit``: run an SCE audit from the command line.

Exit status, like pytest's: 0 when every threshold (and baseline comparison) holds, 1 when one
fails, 2 for bad usage or input (one line on stderr saying what and where), 130 on Ctrl-C (the
response cache keeps every answer already computed, so a rerun resumes).
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from sce_checks.errors import BackendError, UserInputError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like pytest's usage errors
        self.exit(EXIT_USAGE, f"sce-audit: error: {message} (see sce-audit --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sce-audit", description="Audit a language model's self-generated counterfactual explanations.")
    p.add_argument("--model", default="smollm2", metavar="SPEC",
                   help="hf:<hub id or dir> | openai:<model>@<base url> | python:<module>:<attr> | smollm2 (default)")
    p.add_argument("--dataset", action="append", metavar="NAME_OR_PATH",
                   help="income | house_prices | heart_disease | sentiment | a grid .toml | a text .csv/.jsonl/.toml (repeatable; default income)")
    p.add_argument("--variant", action="append", choices=["unconstrained", "minimal"], help="repeatable; both by default")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="examples per dataset, sampled with --seed (default 20; 0 = all)")
    p.add_argument("--seed", type=int, default=0, metavar="N")
    p.add_argument("--prediction", choices=["auto", "score", "generate"], default="auto",
                   help="how answers are read: option log-probabilities when the backend has them (auto), or generated JSON")
    p.add_argument("--text-search-budget", type=int, default=0, metavar="N",
                   help="text tasks: model predictions per example for the reference minimal-edit search (0 = off)")
    p.add_argument("--threshold", action="append", default=[], metavar="METRIC>=X",
                   help="gate, e.g. 'validity>=0.8', 'mean_rcf_a<=0.05', 'validity_lower>=0.5' (repeatable)")
    p.add_argument("--json", metavar="PATH", help="write the JSON report")
    p.add_argument("--markdown", metavar="PATH", help="write the Markdown report")
    p.add_argument("--html", metavar="PATH", help="write the HTML report")
    p.add_argument("--baseline", metavar="PATH", help="compare against a saved baseline; fail on regressions")
    p.add_argument("--save-baseline", metavar="PATH", help="save this run's figures as a baseline")
    p.add_argument("--tolerance", type=float, default=0.0, help="allowed worsening per metric against the baseline (default 0)")
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


def _config(args: argparse.Namespace):
    from sce_checks.audit import AuditConfig
    from sce_checks.models import ModelOptions

    if args.limit < 0:
        raise UserInputError(f"--limit must be >= 0, not {args.limit}")
    if args.batch_size < 1:
        raise UserInputError(f"--batch-size must be >= 1, not {args.batch_size}")
    options = ModelOptions(
        dtype=args.dtype, device=args.device, batch_size=args.batch_size, trust_remote_code=args.trust_remote_code,
        max_concurrency=args.concurrency, timeout_s=args.timeout, max_retries=args.max_retries,
    )
    cache_path = None
    if args.cache_dir:
        from pathlib import Path

        cache_path = str(Path(args.cache_dir) / "responses.sqlite")
    return AuditConfig(
        model=args.model, datasets=args.dataset or ["income"], variants=args.variant or ["unconstrained", "minimal"],
        limit=args.limit or None, seed=args.seed, prediction=args.prediction, text_search_budget=args.text_search_budget,
        model_options=options, cache=not args.no_cache, cache_path=cache_path,
    )


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from sce_checks.audit import run_audit
    from sce_checks.thresholds import Threshold

    thresholds = [Threshold.parse(t, "--threshold") for t in args.threshold]
    config = _config(args)
    if args.clear_cache and config.cache:
        from pathlib import Path

        from sce_checks.models.cache import ResponseCache

        ResponseCache(Path(config.cache_path) if config.cache_path else None).clear()
    baseline = None
    if args.baseline:
        from sce_checks.report.baseline import load_baseline

        baseline = load_baseline(args.baseline)  # fail before the (long) model run
    progress = None if args.quiet else (lambda msg: print(f"[sce-audit] {msg}", file=sys.stderr, flush=True))
    run_ = run_audit(config, progress=progress)
    results, env = run_.results, run_.environment

    from sce_checks.report.table import render_table

    print(render_table(results))
    failed = False
    if thresholds:
        from tabulate import tabulate

        rows = []
        for r in results:
            for t in thresholds:
                ok = t.holds(r)
                failed |= not ok
                rows.append([r.dataset, r.variant, str(t), t.actual(r), "PASS" if ok else "FAIL"])
        rows.sort(key=lambda row: row[-1] != "FAIL")
        print("\n" + tabulate(rows, headers=["dataset", "variant", "threshold", "actual", ""], floatfmt=".4f"))
    if baseline is not None:
        from sce_checks.report.baseline import compare, render_comparison

        comparisons = compare(baseline, results, env, args.tolerance, args.baseline)
        regressed = [c for c in comparisons if c.regressed]
        print(f"\nbaseline {args.baseline} (tolerance {args.tolerance:g}): "
              + (f"{len(regressed)} regression(s)" if regressed else "no regressions"))
        print(render_comparison(comparisons))
        failed |= bool(regressed)
    if args.json:
        from sce_checks.report.json_report import write_json

        write_json(args.json, results, env)
    import os

    if args.markdown or os.environ.get("GITHUB_STEP_SUMMARY"):
        from sce_checks.report.markdown import write_markdown

        write_markdown(args.markdown, results, env)
    if args.html:
        from sce_checks.report.html import write_html

        write_html(args.html, results, env)
    if args.save_baseline:
        from sce_checks.report.baseline import save_baseline

        save_baseline(args.save_baseline, results, env)
    for label, path in (("JSON", args.json), ("Markdown", args.markdown), ("HTML", args.html), ("baseline", args.save_baseline)):
        if path:
            print(f"{label} report written to {path}" if label != "baseline" else f"baseline written to {path}")
    return EXIT_FAILED if failed else EXIT_OK


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
    except KeyboardInterrupt:
        print("sce-audit: interrupted; answers computed so far are cached, rerun to resume", file=sys.stderr)
        code = EXIT_INTERRUPTED
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
