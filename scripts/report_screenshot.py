"""The screenshot of the HTML report in docs/reports.md and the README: an audit of a Python model
with a known decision boundary (tests/helpers/report_models.py: "Approved" iff income + 2 * years
>= 36 on a 31 x 21 grid; its SCEs a known mix of exact, overshooting, one-step-short and
unparsable ones), rendered by headless Chromium.

    PYTHONPATH=$PWD python scripts/report_screenshot.py [docs/report-screenshot.png]

Needs Chromium (Debian package ``chromium``); no model download, no network. Writes the report
next to the picture in a temporary folder and prints the page's console messages (none expected).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from sce_checks.cli import main
from tests.helpers.report_models import PLANE, task_toml


def run(out: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        sys.exit("report_screenshot: Chromium not found (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "loan.toml").write_text(task_toml(PLANE))
        os.environ["SCE_CHECKS_CACHE_DIR"] = str(work / "cache")
        html = work / "report.html"
        code = main(["--dataset", str(work / "loan.toml"), "--variant", "minimal", "--limit", "16", "--seed", "1",
                     "--prediction", "generate", "-q", "--model", "python:tests.helpers.report_models:plane",
                     "--html", str(html)])
        if code != 0:
            sys.exit(f"report_screenshot: the audit exited {code}")
        shot = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                               "--no-first-run", f"--user-data-dir={work / 'profile'}", "--window-size=1100,935",
                               "--hide-scrollbars", "--enable-logging=stderr", "--v=0", f"--screenshot={out.resolve()}",
                               html.as_uri()], capture_output=True, text=True, timeout=120)
        messages = [line for line in shot.stderr.splitlines() if ":CONSOLE" in line]
        if shot.returncode != 0 or not out.is_file():
            sys.exit(f"report_screenshot: Chromium failed: {shot.stderr[-2000:]}")
        print(f"wrote {out}; console messages: {len(messages)}", *messages, sep="\n")


if __name__ == "__main__":
    run(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/report-screenshot.png"))
