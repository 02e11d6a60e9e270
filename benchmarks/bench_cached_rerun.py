"""A cold run of the demo audit against its fully cached rerun, each as its own ``sce-audit`` process.

The demo (scripts/demo) audits the embedded SmolLM2-135M-Instruct on the income grid and the
sentiment sample with schema elicitation and writes JSON, Markdown and HTML reports. This runs that
audit twice on one new, empty response cache (``--cache-dir`` in a temporary folder): the first run
computes every answer, the second finds every answer in the cache. It prints each wall time (the
whole process: interpreter start, imports, audit, reports), their ratio, the model calls of the
rerun and the heavy libraries each run imported, and checks that both runs report the same figures.
The model's converted folder (made once per machine, docs/performance.md) is made first, untimed.

    python benchmarks/bench_cached_rerun.py           # the demo's own settings, --limit 5
    python benchmarks/bench_cached_rerun.py --quick   # --limit 2: a few minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers.audit_process import REPO, run_sce_audit  # noqa: E402

DEMO = ["--model", "smollm2", "--dataset", "income", "--dataset", "sentiment", "--seed", "0",
        "--elicitation", "schema", "--batch-size", "16"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="--limit 2 instead of the demo's 5")
    parser.add_argument("--limit", type=int, default=None, help="examples per dataset (overrides --quick)")
    args = parser.parse_args()
    limit = args.limit or (2 if args.quick else 5)
    subprocess.run([sys.executable, "-c", "from sce_checks.models.smollm2 import converted_folder; converted_folder()"],
                   check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"})
    with tempfile.TemporaryDirectory(prefix="sce-bench-cache-") as folder:
        runs = {}
        for name in ("cold", "cached"):
            report = Path(folder) / f"{name}.json"
            run = run_sce_audit([*DEMO, "--limit", str(limit), "--cache-dir", str(Path(folder) / "cache"), "-q",
                                 "--json", str(report), "--markdown", str(report.with_suffix(".md")),
                                 "--html", str(report.with_suffix(".html"))])
            if run.returncode not in (0, 1):  # 1: a gate failed, which is a figure, not a fault
                print(run.output)
                return 1
            runs[name] = (run, json.loads(report.read_text(encoding="utf-8")))
    (cold, cold_report), (cached, cached_report) = runs["cold"], runs["cached"]
    calls = cached_report["environment"]["model_calls"]
    same = cold_report["results"] == cached_report["results"]
    print(f"{datetime.date.today()}  demo audit, --limit {limit}, {cold_report['environment']['platform']}")
    print("| run | wall time | model calls (chat + score) | heavy imports | model loaded |")
    print("|---|---|---|---|---|")
    for name, (run, report) in runs.items():
        env = report["environment"]
        made = env["model_calls"]["chat_calls"] + env["model_calls"]["score_calls"]
        print(f"| {name} | {run.seconds:.2f} s | {made} | {', '.join(run.heavy or []) or 'none'} | "
              f"{env.get('model_loaded')} |")
    print(f"ratio cold / cached: {cold.seconds / cached.seconds:.1f}x; rerun cache hits {calls['cache_hits']}; "
          f"same figures: {same}")
    return 0 if same and calls["chat_calls"] == calls["score_calls"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
