"""Fixtures shared by the test modules: the toy project (tests/helpers/projects.py) laid out in a
working directory for the CLI (`workdir`) or in a pytester folder for the plugin (`project`)."""

from __future__ import annotations

import pytest
import scipy.stats  # noqa: F401  in-process pytester runs restore sys.modules after each run, and numpy's
# extension modules (numpy.fft, which scipy.stats imports for the paired baseline tests) refuse a
# second import in one process: imported once here, before any of those runs

from tests.helpers.projects import MODELS, TOY_TOML, pytester_project


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    (tmp_path / "toy.toml").write_text(TOY_TOML)
    (tmp_path / "toy_models.py").write_text(MODELS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCE_CHECKS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture
def project(pytester, monkeypatch, tmp_path):
    return pytester_project(pytester, monkeypatch, tmp_path, "toy", TOY_TOML, MODELS)

