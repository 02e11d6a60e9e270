"""The progress bar: what it prints on a terminal and in a log, and that it shows through
pytest's output capture while a model runs."""

from __future__ import annotations

import sce_checks.checks.sce  # noqa: F401  numpy imported once here: in-process pytester runs forget what they import
from sce_checks import progress
from sce_checks.progress import ProgressBar, showing, step


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_log_mode_prints_start_throttled_updates_and_end():
    lines, clock = [], Clock()
    bar = ProgressBar(lines.append, None, clock=clock, log_every_s=15.0, width=10)
    with showing(bar), step("income: predicting 40 inputs", 40):
        for _ in range(4):
            clock.now += 5.0
            progress.advance(10)  # at 5, 10, 15, 20 s: one update line, at 15 s
    assert lines == [
        "income: predicting 40 inputs ...",
        "income: predicting 40 inputs [########..] 30/40 (75%), 2.0/s, ~5s left",
        "income: predicting 40 inputs: done, 40 in 20s",
    ]


def test_terminal_mode_redraws_one_line_and_unknown_totals_count_up():
    drawn, lines, clock = [], [], Clock()
    bar = ProgressBar(lines.append, drawn.append, clock=clock, width=4)
    with showing(bar), step("search"):
        clock.now += 1.0
        progress.advance(3)
        clock.now += 60.0
        progress.advance(2)
    assert drawn == ["search: 0 done, starting, 0s", "search: 3 done, 3.0/s, 1s", "search: 5 done, 0.1/s, 1m01s",
                     "search: done, 5 in 1m01s"]
    assert lines == [""]  # the finished line is kept, the next output starts below it


def test_a_redrawn_line_shortens_its_label_to_the_width_and_a_log_line_stays_whole():
    label = "toy: searching the nearest target points of invalid SCEs (grid points predicted)"
    drawn, lines, clock = [], [], Clock()
    bar = ProgressBar(lines.append, drawn.append, clock=clock, width=4, line_width=40)
    with showing(bar), step(label, 8):
        clock.now += 2.0
        progress.advance(4)
    # 40 columns: the label keeps 40 - len(tail) - 1 characters, at least 8, then the line is cut at 40
    assert drawn == ["toy: searchin… [....] 0/8 (0%), starting",  # 13 + 1 + 26
                     "toy: sea… [##..] 4/8 (50%), 2.0/s, ~2s l",  # 8 + 1 + 34, cut at 40
                     "toy: searching the neare…: done, 4 in 2s"]  # 24 + 1 + 15
    logged = []
    with showing(ProgressBar(logged.append, None, clock=clock, line_width=40)), step(label, 8):
        progress.advance(8)
    assert logged == [f"{label} ...", f"{label}: done, 8 in 0s"]


def test_nothing_is_shown_without_a_bar(capsys):
    with step("quiet", 3):
        progress.advance(3)
    assert capsys.readouterr() == ("", "")  # nothing written to stdout or stderr


def test_progress_lines_show_through_pytest_capture(pytester, monkeypatch, tmp_path):
    from tests.helpers.projects import MODELS, TOY_TOML

    pytester.makefile(".toml", toy=TOY_TOML)
    pytester.makepyfile(toy_models=MODELS, test_x="""
        def test_a(sce_audit):
            print("captured output of the test")
            assert sce_audit().n == 6
    """)
    monkeypatch.setenv("SCE_CHECKS_CACHE_DIR", str(tmp_path / "cache"))
    result = pytester.runpytest("-p", "no:cacheprovider", "--sce-model", "python:toy_models:far", "--sce-dataset", "toy.toml",
                                "--sce-limit", "6", "--sce-prediction", "generate")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["[[]sce-checks[]] toy: predicting 6 examples ...",
                                 "[[]sce-checks[]] toy: predicting 6 examples: done, 6 in *s",
                                 "[[]sce-checks[]] toy: requesting 12 SCEs: done, 12 in *s"])
    assert "captured output of the test" not in result.stdout.str()  # capture itself still works
    quiet = pytester.runpytest("-q", "-q", "-p", "no:cacheprovider", "--sce-model", "python:toy_models:far",
                               "--sce-dataset", "toy.toml", "--sce-limit", "6", "--sce-prediction", "generate")
    assert "[sce-checks]" not in quiet.stdout.str()


TWO_TESTS = """
    def test_a(sce_audit):
        assert sce_audit().n == 6

    def test_b(sce_audit):
        assert sce_audit(variant="minimal").n == 6
"""
RUN = ["-p", "no:cacheprovider", "--sce-model", "python:toy_models:far", "--sce-dataset", "toy.toml",
       "--sce-limit", "6", "--sce-prediction", "generate"]


def test_progress_lines_never_share_a_line_with_pytests_dots_or_verdicts(project):
    """The progress lines stand on lines of their own, and the line pytest was writing before
    them is written again after them: the dots follow the file's name, PASSED the test's name."""
    project.makepyfile(test_x=TWO_TESTS)
    quiet = project.runpytest(*RUN)
    quiet.assert_outcomes(passed=2)
    lines = quiet.stdout.lines
    progress_lines = [line for line in lines if "[sce-checks]" in line]
    assert len(progress_lines) >= 4 and all(line.startswith("[sce-checks] toy: ") for line in progress_lines)
    dots = [line for line in lines if line.rstrip().endswith("[100%]")]
    assert len(dots) == 1 and dots[0].startswith("test_x.py ..")  # both dots after the name, on one line
    assert not [line for line in lines if line.strip() in (".", "..")]  # no dot alone on a line

    verbose = project.runpytest("-v", *RUN)
    verbose.assert_outcomes(passed=2)
    lines = verbose.stdout.lines
    assert all(line.startswith("[sce-checks] toy: ") for line in lines if "[sce-checks]" in line)
    passed = [i for i, line in enumerate(lines) if " PASSED" in line]
    assert [lines[i].split(" PASSED")[0] for i in passed] == ["test_x.py::test_a", "test_x.py::test_b"]
    assert lines[passed[0] - 1].startswith("[sce-checks] toy: ")  # progress right above, no blank line


def test_on_a_terminal_the_bar_redraws_one_line_within_the_width(project, monkeypatch):
    """A terminal (pytest's writer told it is one): every redrawn line is one column short of
    the terminal (60 here), so it never wraps, and the dots still follow the file's name."""
    project.makeconftest("""
        import pytest

        @pytest.hookimpl(trylast=True)
        def pytest_configure(config):
            config.pluginmanager.get_plugin("terminalreporter").isatty = lambda: True
    """)
    project.makepyfile(test_x=TWO_TESTS)
    monkeypatch.setenv("COLUMNS", "60")
    result = project.runpytest(*RUN)
    result.assert_outcomes(passed=2)
    drawn = [part for part in result.stdout.str().replace("\n", "\r").split("\r") if "[sce-checks]" in part]
    assert len(drawn) >= 4 and all(len(part) <= 59 for part in drawn), drawn
    assert any(part.startswith("[sce-checks] toy: requesting 12 SCEs: done") for part in drawn)
    assert any(line.startswith("test_x.py ..") for line in result.stdout.lines)


pytest_plugins = ["pytester"]
