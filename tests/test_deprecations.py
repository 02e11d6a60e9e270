"""No deprecated API in our own calls (issue 15): a deprecation a library announces today is an
error in its next major version, and a warning printed on every run buries the report.

* ``sce-audit`` on a Python model, with every report (JSON, Markdown, HTML with its matplotlib
  plots) and two checks, run by an interpreter that turns DeprecationWarning, PendingDeprecation-
  Warning and FutureWarning into errors (``-W error::...``) wherever they come from; the same
  run with a model that announces a deprecation at the call our code makes fails, so the check
  can fail.
* The transformers backend on a tiny random Llama (tests/helpers/tiny_llama.py), loaded as users
  load a model (``hf:<dir>``) and audited on a grid task with structured elicitation (scoring,
  generation, grammar-constrained decoding): no deprecation warning is raised, and none is
  logged (transformers announces some through its logger, on stderr).
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest

from tests.helpers.projects import REPO

DEPRECATIONS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
STRICT = ["-W", "error::DeprecationWarning", "-W", "error::PendingDeprecationWarning", "-W", "error::FutureWarning"]

ANNOUNCING = """
import warnings

from tests.helpers.rule_models import TOY, RuleModel, toy_rule


class Announcing(RuleModel):
    def chat(self, conversations, decoding):
        warnings.warn("chat(conversations) is deprecated", DeprecationWarning, stacklevel=2)  # at our call
        return super().chat(conversations, decoding)


announcing = Announcing(TOY, toy_rule, "boundary")
"""


def strict_audit(workdir, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join([str(REPO), str(workdir)]),
           "COLUMNS": "120"}
    env.pop("PYTHONWARNINGS", None)
    return subprocess.run([sys.executable, *STRICT, "-m", "sce_checks.cli", "--dataset", "toy.toml", "--limit", "4",
                           "--prediction", "generate", "--check", "sce", "--check", "stability", *args],
                          env=env, capture_output=True, text=True, timeout=300)


def test_a_python_model_audit_with_every_report_raises_no_deprecation(workdir):
    done = strict_audit(workdir, "--model", "python:toy_models:boundary", "--json", "r.json", "--markdown", "r.md",
                        "--html", "r.html")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout + done.stderr
    assert all((workdir / name).stat().st_size > 0 for name in ("r.json", "r.md", "r.html"))

    (workdir / "announcing_models.py").write_text(ANNOUNCING)
    failed = strict_audit(workdir, "--model", "python:announcing_models:announcing")
    assert failed.returncode != 0 and "chat(conversations) is deprecated" in failed.stdout + failed.stderr


def test_the_transformers_backend_raises_and_logs_no_deprecation(tmp_path, capfd):
    pytest.importorskip("torch")
    pytest.importorskip("llguidance")
    from tests.helpers.projects import TOY_TOML
    from tests.helpers.tiny_llama import build_tiny_llama

    model, tokenizer = build_tiny_llama(1234)
    model.save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    (tmp_path / "toy.toml").write_text(TOY_TOML)
    capfd.readouterr()  # what saving printed
    from sce_checks.audit import AuditConfig, run_audit

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = run_audit(AuditConfig(model=f"hf:{tmp_path / 'tiny'}", datasets=[str(tmp_path / "toy.toml")],
                                    checks=["sce"], variants=["minimal"], limit=1, elicitation="schema",
                                    no_cache=True))
    calls = run.environment["model_calls"]
    assert calls["chat_calls"] >= 1 and calls["score_calls"] >= 1  # generated (constrained) and scored
    announced = [f"{w.category.__name__} {w.filename}:{w.lineno}: {w.message}" for w in caught
                 if issubclass(w.category, DEPRECATIONS)]
    assert announced == []
    logged = capfd.readouterr().err
    assert "deprecat" not in logged.lower(), logged
