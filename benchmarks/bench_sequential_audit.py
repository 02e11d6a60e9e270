"""Fixed-n against ``--sequential`` audits, end to end, on the Python rule models of
tests/helpers/sequential_models.py (a 200-point grid; SCE check, minimal variant, generated
predictions, batch size 8, gate ``validity>=0.5``): per model, the verdict, the examples audited,
the model calls (batched requests and conversations answered by the model, with ``--no-cache``
so both runs start cold) and the wall time of the audit. The embedded real model is not run here
(minutes per audit on a CPU); its model calls scale with the examples audited the same way.

    python benchmarks/bench_sequential_audit.py [--limit 160] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tabulate import tabulate  # noqa: E402

from sce_checks.cli import main  # noqa: E402
from tests.helpers.sequential_models import BIG_TOML, MODELS  # noqa: E402


def audit(model: str, limit: int, sequential: bool) -> tuple[dict, float, int]:
    """One quiet ``sce-audit`` run in the current folder: (JSON report, seconds, exit status)."""
    args = ["--model", f"python:big_models:{model}", "--dataset", "big.toml", "--limit", str(limit), "--batch-size", "8",
            "--variant", "minimal", "--prediction", "generate", "--threshold", "validity>=0.5", "--no-cache",
            "--json", "r.json", "-q"]
    Path("r.json").unlink(missing_ok=True)
    shown = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(shown), contextlib.redirect_stderr(shown):
        code = main(args + (["--sequential"] if sequential else []))
    seconds = time.perf_counter() - started
    if not Path("r.json").is_file():
        sys.exit(f"the audit wrote no report:\n{shown.getvalue()}")
    return json.loads(Path("r.json").read_text()), seconds, code


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=160)
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the median wall time is shown")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        Path("big.toml").write_text(BIG_TOML)
        Path("big_models.py").write_text(MODELS)
        sys.path.insert(0, folder)
        for model, case in (("sure", "clear pass (validity 1.0)"), ("never", "clear fail (validity 0.0)"),
                            ("half", "borderline (validity 0.5)")):
            for sequential in (False, True):
                runs = [audit(model, args.limit, sequential) for _ in range(args.repeat)]
                report, _, code = runs[0]
                seconds = sorted(s for _, s, _ in runs)[len(runs) // 2]
                calls = report["environment"]["model_calls"]
                (result,) = report["results"]
                rows.append([case, "sequential" if sequential else "fixed-n", "pass" if code == 0 else "fail",
                             result["n"], calls["chat_calls"], calls["chat_conversations"], f"{seconds:.2f}"])
    print(tabulate(rows, headers=["model", "audit", "verdict", "examples", "model calls", "conversations", "wall s"],
                   tablefmt="github"))


if __name__ == "__main__":
    main_bench()
