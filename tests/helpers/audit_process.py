"""Run ``sce-audit`` in a fresh Python process, timed, and say which heavy libraries it imported.

Shared by tests/models/test_lazy.py (a fully cached rerun imports neither torch nor transformers)
and benchmarks/bench_cached_rerun.py (cold against cached wall time). The process runs the CLI's
``main`` exactly as the ``sce-audit`` script does, then prints one last line listing the modules of
``HEAVY`` in ``sys.modules``: a module imported at any point of the run is still there at exit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers")
_MARK = "sce-audit-heavy-imports: "
_RUNNER = (
    "import json, sys\n"
    "from sce_checks.cli import main\n"
    "code = main(sys.argv[1:])\n"
    f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
    f"print({_MARK!r} + json.dumps(heavy), flush=True)\n"
    "sys.exit(code)\n"
)


@dataclass
class AuditProcess:
    returncode: int
    seconds: float  # wall time of the whole process: interpreter start, imports, audit, reports
    heavy: list[str] | None  # of HEAVY, the libraries the run imported (None: the run ended before saying)
    output: str


def run_sce_audit(args: list[str], env: dict[str, str] | None = None, timeout: float = 1800) -> AuditProcess:
    """``sce-audit ARGS`` in a new interpreter with this checkout first on the path; ``env``
    is added to the current environment."""
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environment.get("PYTHONPATH")]))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _RUNNER, *args], env=environment, capture_output=True, text=True,
                          timeout=timeout)
    seconds = time.perf_counter() - started
    heavy = None
    for line in done.stdout.splitlines():
        if line.startswith(_MARK):
            heavy = json.loads(line[len(_MARK):])
    return AuditProcess(done.returncode, seconds, heavy, done.stdout + done.stderr)
