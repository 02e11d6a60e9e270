"""The toy project of the CLI and plugin tests: a 2-D grid task file and a module of rule models
(tests/helpers/rule_models.py) that a run reaches through ``python:toy_models:<policy>``, and the
fixtures that lay them out (tests/conftest.py)."""

from __future__ import annotations

import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[2]

TOY_TOML = textwrap.dedent(
    """
    name = "toy"
    question = "Is this record a yes?"
    preamble = "A toy record."
    options = ["No", "Yes"]
    [[features]]
    name = "x"
    label = "X value"
    type = "integer"
    min = 0
    max = 10
    [[features]]
    name = "level"
    label = "Level"
    type = "ordinal"
    values = ["a", "b", "c", "d", "e"]
    """
)

MODELS = textwrap.dedent(
    """
    from tests.helpers.rule_models import TOY, RuleModel, toy_rule

    boundary = RuleModel(TOY, toy_rule, "boundary")
    far = RuleModel(TOY, toy_rule, "far")
    short = RuleModel(TOY, toy_rule, "short")
    """
)


def common(*args: str) -> list[str]:
    """pytest arguments for a run of the toy project: generated predictions, 10 examples."""
    return ["-p", "no:cacheprovider", "--sce-dataset", "toy.toml", "--sce-limit", "10", "--sce-prediction", "generate", *args]


def pytester_project(pytester, monkeypatch, tmp_path, task: str, task_toml: str, models: str):
    """A pytester folder holding the grid task ``<task>.toml`` and its models ``<task>_models.py``,
    a response cache of its own, and the repository importable by the runs it starts."""
    pytester.makefile(".toml", **{task: task_toml})
    pytester.makepyfile(**{f"{task}_models": models})
    monkeypatch.setenv("SCE_CHECKS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    return pytester


@contextmanager
def model_project(tmp_path: Path, monkeypatch, files: dict[str, str], module: str) -> Iterator[Path]:
    """A run's folder: ``files`` written, the folder current and importable (a run reaches its
    models as ``python:<module>:<name>``), a response cache of its own; the module forgotten
    after, so the next test imports its own copy."""
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("SCE_CHECKS_CACHE_DIR", str(tmp_path / "cache"))
    try:
        yield tmp_path
    finally:
        sys.modules.pop(module, None)
