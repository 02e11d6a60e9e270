"""The HTML report opened in a real headless browser (Debian's Chromium): it loads offline,
its DOM has the tables and inline SVG plots, and the rendered page is not blank. Skipped when
Chromium is not installed, except in CI (.ci/run installs it), where a missing browser fails."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from sce_checks.cli import main
from tests.helpers.projects import MODELS, TOY_TOML

pytestmark = pytest.mark.browser


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI: headless Chromium is missing (.ci/run installs the Debian package 'chromium')")
        pytest.skip("headless Chromium not installed (apt-get install chromium)")
    return path


def _run(browser: str, *args: str, cwd) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             f"--user-data-dir={cwd / 'profile'}", "--window-size=1200,1600"]
    return subprocess.run([browser, *flags, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_html_report_renders_in_headless_chromium(tmp_path, monkeypatch):
    browser = _chromium()
    (tmp_path / "toy.toml").write_text(TOY_TOML)
    (tmp_path / "toy_models.py").write_text(MODELS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCE_CHECKS_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["--dataset", "toy.toml", "--limit", "12", "--seed", "3", "--prediction", "generate", "-q",
                 "--model", "python:toy_models:far", "--html", "r.html"]) == 0
    url = (tmp_path / "r.html").as_uri()

    dom = _run(browser, "--dump-dom", url, cwd=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = dom.stdout
    assert page.count("<svg") >= 2  # the validity-vs-minimality scatter and the per-dataset bars
    assert "<table" in page and "python:toy_models:far" in page and "toy-00034" in page  # a worst example

    shot = _run(browser, f"--screenshot={tmp_path / 'shot.png'}", url, cwd=tmp_path)
    assert shot.returncode == 0 and (tmp_path / "shot.png").is_file(), shot.stderr[-2000:]
    import matplotlib.image

    pixels = matplotlib.image.imread(tmp_path / "shot.png")[..., :3]
    assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 1000
    colours = {tuple(p) for p in (pixels[::8, ::8].reshape(-1, 3) * 255).astype(int).tolist()}
    assert len(colours) > 20  # text, table borders, plot marks: a rendered page, not a blank one
