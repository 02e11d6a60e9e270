"""Markdown report, also appended to $GITHUB_STEP_SUMMARY in GitHub Actions. Every piece of text
is escaped (report/safe.py: markdown_text): GitHub renders HTML and Markdown syntax, and model
replies end up in the tables."""

from __future__ import annotations

import os
from typing import Any, Sequence

from sce_checks.report.safe import markdown_text
from sce_checks.report.table import render_table
from sce_checks.results import CheckResult


def render_markdown(results: Sequence[CheckResult], environment: dict[str, Any], skipped: Sequence[str] = (),
                    extra: str = "") -> str:
    libs = environment.get("libraries", {})
    env_line = ", ".join(f"{k} {v}" for k, v in libs.items() if v)
    head = markdown_text(
        f"model {environment.get('model')}, seed {environment.get('seed')}, limit {environment.get('limit')}, "
        f"prediction {environment.get('prediction')}, elicitation {environment.get('elicitation')}, "
        f"parsing {environment.get('parsing')}; sce-checks {environment.get('sce_checks_version')}, "
        f"Python {environment.get('python')}; {env_line}"
    )
    return "# sce-checks report\n\n" + head + "\n\n" + render_table(results, tablefmt="github", skipped=skipped,
                                                                       text=markdown_text) + "\n" + (
        "\n" + extra if extra else "")  # extra: Markdown made inert by its writer (report/changes.py)


def write_markdown(path, results: Sequence[CheckResult], environment: dict[str, Any], skipped: Sequence[str] = (),
                   extra: str = "") -> None:
    from sce_checks.errors import UserInputError
    from sce_checks.report.json_report import write_atomic

    text = render_markdown(results, environment, skipped, extra)
    if path:
        write_atomic(path, text)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        try:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(text + "\n")
        except OSError as exc:
            raise UserInputError(f"cannot append the report to $GITHUB_STEP_SUMMARY ({summary}): "
                                 f"{exc.strerror or exc}") from None
