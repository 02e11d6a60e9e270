"""The progress bar: what it prints on a terminal and in a log, and that it shows through
pytest's output capture while a model runs."""

from __future__ import annotations

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


pytest_plugins = ["pytester"]
