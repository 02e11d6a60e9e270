"""Session state of the pytest plugin: the run specification resolved once, results computed
once and shared, the run's warnings collected. Models are opened by the audit side: the session
holds one `ModelOpener` (sce_checks/models/opening.py) and hands it to every `run_audit`, so
each model is opened once per session. The end of the session (reports, baselines, the summary)
is sce_checks/closing.py. Kept apart from plugin.py and from closing.py, so what pytest imports
at configure time stays light (no report writer, no regression engine), and it never imports
the plugin: the specification it is handed is all it reads."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, NoReturn

import pytest

from sce_checks.checks import check_of, family_of, get_check, unit_of, units
from sce_checks.config import AUDIT_KEYS, RunSpec, values_from_mapping
from sce_checks.environment import collect_environment
from sce_checks.errors import BackendError, UserInputError
from sce_checks.models.opening import ModelOpener
from sce_checks.notices import Notices, collecting
from sce_checks.progress import ProgressBar, showing
from sce_checks.results import CheckResult

SESSION_KEY = pytest.StashKey["SCESession"]()


def session_of(config: pytest.Config) -> "SCESession":
    """The session of a pytest run (set up by the plugin's ``pytest_configure``)."""
    return config.stash[SESSION_KEY]


class SCESession:
    def __init__(self, config: pytest.Config, spec: RunSpec) -> None:
        self.config = config
        self.spec = spec  # the options (command line, sce-audit's spec, ini, pyproject.toml), resolved
        self.notices = Notices()  # warnings for the summary and the reports (sce_checks/notices.py)
        self.models = ModelOpener.for_run(spec, self.notices)  # each model opened once, on first use
        # (model, dataset, unit, limit, seed, the check's settings) -> CheckResult; a unit is an SCE
        # variant or another check (sce_checks/checks/__init__.py)
        self._results: dict[tuple, Any] = {}
        self._spare: dict[tuple, Any] = {}  # computed with a requested result (ct with phi_cct), not yet asked for
        self._skips: dict[tuple, list[str]] = {}  # result key -> [task/check, why that check cannot run here]
        self._failures: dict[Any, str] = {}  # result key (or bad input) -> why it could not be computed
        self._environments: dict[str, dict] = {}
        self._wall: dict[Any, float] = {}  # result key -> seconds its audit took
        self._samples: dict[str, dict] = {}
        self.comparison_reports: list = []  # regression/gate.py: ComparisonReport, shown at the end
        self._audit_baselines: dict[str, Any] = {}  # baseline path -> AuditFile
        self.errors: list[str] = []
        self.input_errors: list[str] = []  # bad model spec, dataset, server...: the run exits 2
        self.preflight_errors: list[str] = []  # bad input an xdist worker found before any item ran

    # -- settings -------------------------------------------------------------------------------
    def spec_for(self, marker: dict[str, Any], where: str = "@pytest.mark.sce") -> RunSpec:
        """The specification a test computes with: its ``sce`` marker's settings over the options."""
        if not marker:
            return self.spec
        return self.spec.replace(**values_from_mapping(marker, f"{where}:", AUDIT_KEYS))

    def clear_cache_if_asked(self) -> None:
        """``--sce-clear-cache``: once, on the controller (never by a worker mid-run)."""
        if self.spec.clear_cache and not self.spec.no_cache and not self.is_worker:
            try:
                with collecting(self.notices):  # the run's cache, which its models then use
                    self.models.response_cache().clear()
            except UserInputError as exc:  # one line and a usage error, not a traceback
                raise pytest.UsageError(str(exc)) from None

    def fail_input(self, exc: Exception) -> NoReturn:
        """Bad input met while a test runs (a fixture's arguments): the test fails with one line
        and the run exits 2."""
        self._fail(("input", str(exc)), exc)

    def refuse_on_worker(self, exc: Exception) -> None:
        """Bad input found at collection on an xdist worker, which cannot end the run itself (an
        exit there reads as a crash and is retried): the controller reports it and exits 2."""
        self.preflight_errors.append(str(exc))
        self.input_errors.append(str(exc))

    def _fail(self, key: Any, exc: Exception) -> NoReturn:
        """A bad model spec, dataset or server: the item fails with one line (no traceback), later
        items asking for the same thing fail at once, and the run exits 2."""
        message = f"sce-checks: {exc}"
        self._failures[key] = message
        if str(exc) not in self.input_errors:  # a model that cannot be opened fails every result it serves
            self.input_errors.append(str(exc))
        pytest.fail(message, pytrace=False)

    # -- models and results --------------------------------------------------------------------
    def model(self, spec: RunSpec):
        """The model ``spec`` names (the ``sce_model`` fixture), opened once per session behind
        the response cache."""
        try:
            return self.models.open(spec.model)
        except (UserInputError, BackendError) as exc:
            self._fail(("model", spec.model), exc)

    def _key(self, spec: RunSpec, dataset: str, unit: str) -> tuple:
        # a sequential audit stops where its gates are decided: its results depend on them
        gates = ("sequential", tuple(sorted(spec.thresholds)), spec.baseline, spec.tolerances, spec.baseline_mode,
                 spec.alpha, spec.baseline_metrics) if spec.sequential else ()
        return (spec.model, dataset, unit, spec.limit, spec.seed, get_check(check_of(unit)).key_settings(spec, unit), *gates)

    def result(self, spec: RunSpec, dataset: str | None = None, unit: str | None = None, node=None, *,
               run_audit: Callable[..., Any]):
        """The shared result of one (dataset, unit) under ``spec``, computed on first request: all
        SCE variants in one pass, the checks of a family (ct, cct, phi_cct) from one set of
        interventions. A check that cannot run here skips the asking test with the reason.
        ``run_audit`` (sce_checks.audit.run_audit) is passed in by the items and fixtures that
        compute, so this module, imported by every pytest run, does not load the audit's
        machinery (sequential bounds: numpy)."""
        dataset = dataset or spec.datasets[0]
        unit = unit or units(spec.checks, spec.variants)[0]
        try:
            key = self._key(spec, dataset, unit)
        except UserInputError as exc:
            self._fail(("settings", str(exc)), exc)
        if key in self._failures:
            pytest.fail(self._failures[key], pytrace=False)
        if key in self._skips:
            pytest.skip(self._skips[key][1])
        if key in self._spare:
            self._results[key] = self._spare.pop(key)
        if key not in self._results:
            check = get_check(check_of(unit))
            variants = spec.variants if unit in check.units(spec.variants) else (*spec.variants, unit)
            run_spec = spec.replace(datasets=(dataset,), checks=family_of(check.name), variants=variants)
            try:
                with self.progress():
                    run = run_audit(run_spec, models=self.models)
            except (UserInputError, BackendError) as exc:
                self._fail(key, exc)
            for r in run.results:  # keyed by the dataset *spec* the user gave (a name or a path)
                k = self._key(spec, dataset, unit_of(r))
                (self._results if r.check == check.name or k == key else self._spare)[k] = r
            for skip in run.skipped:
                for u in get_check(skip["check"]).units(variants):
                    self._skips[self._key(spec, dataset, u)] = [f"{skip['dataset']}/{skip['check']}", skip["reason"]]
            self._environments[spec.model] = run.environment
            self._wall[key] = run.environment.get("wall_seconds") or 0.0
            self._samples.update(run.environment.get("samples", {}))
            if key in self._skips:
                pytest.skip(self._skips[key][1])
        result = self._results[key]
        if node is not None:
            for figure in get_check(result.check).figures:
                if figure.headline and result.get(figure.name) is not None:
                    node.user_properties.append((f"sce:{result.dataset}/{unit_of(result)}:{figure.name}", result.get(figure.name)))
        return result

    @property
    def skipped(self) -> list[str]:
        """Checks that could not run, one line each, for the summary."""
        return sorted({f"{where}: {reason}" for where, reason in self._skips.values()})

    @contextmanager
    def progress(self) -> Iterator[None]:
        """Progress of the model runs inside the block, shown live although pytest captures
        output (the capture is suspended while it draws, as for pytest's own live logging), on
        lines of its own: on a terminal one line redrawn per step, in a log (CI) a line when a
        step starts, every 15 s and when it ends; nothing with -q. The line pytest was writing
        (``test_x.py ..`` or ``test_x.py::test_a``) is written again after it, so the test's
        status lands after its name, not alone on a line."""

        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        if tr is None or self.config.getoption("verbose", 0) < 0:
            yield
            return
        pending: list[Any] = []  # pytest's current line, set aside by the first drawing

        def uncaptured(write):
            def run(*args: Any) -> None:
                if capman is None:
                    write(*args)
                else:
                    with capman.global_and_fixture_disabled():
                        write(*args)
            return run

        def drawing(draw):
            def run(text: str) -> None:
                if not pending:
                    pending.append(getattr(tr, "currentfspath", None))
                    tr.ensure_newline()
                draw(text)
            return uncaptured(run)

        def rewrite(text: str) -> None:
            tr.rewrite(f"[sce-checks] {text}", erase=True)

        # a redrawn line that wrapped could not be redrawn: one column short of the terminal
        width = tr.config.get_terminal_writer().fullwidth - 1 - len("[sce-checks] ")
        bar = ProgressBar(drawing(lambda text: tr.write_line(f"[sce-checks] {text}" if text else "")),
                          drawing(rewrite) if tr.isatty else None, line_width=width)
        try:
            with showing(bar):
                yield
        finally:
            if pending:
                uncaptured(self._resume_line)(tr, pending[0])

    @staticmethod
    def _resume_line(tr, current: Any) -> None:
        """Write again the start of the line pytest was writing before the progress lines: a
        file's name (its tests' dots follow) or, with -v, a test's name (its PASSED follows)."""

        if isinstance(current, Path):
            tr.write(os.path.relpath(current, tr.startpath) + " ")
        elif isinstance(current, str) and current:
            tr.write(current)
        else:
            return
        tr.currentfspath = current

    @property
    def results(self) -> list:
        return list(self._results.values())

    @property
    def used(self) -> bool:
        """Whether this run met sce-checks at all (results, skips, errors or warnings): only then
        has the end of the session (sce_checks/closing.py) anything to write, hand over or show."""
        return bool(self._results or self._skips or self.errors or self.input_errors or self.preflight_errors
                    or self.notices)

    def environment(self) -> dict[str, Any]:
        """One model: that model's run environment (identity, dtype, batch size, model calls),
        with the samples of every dataset and the wall time of all runs. Several models: the
        settings they share and each model's identity under ``models``. Either way the warnings
        of the whole session (every worker's), one line each, under ``warnings``."""

        envs = self._environments
        if len(envs) == 1:
            env = dict(next(iter(envs.values())))
            env["samples"] = dict(self._samples)
            env["wall_seconds"] = round(sum(self._wall.values()), 3)
            env["warnings"] = self.notices.lines
            return env
        first = next(iter(envs.values()), {})
        return collect_environment(
            model=", ".join(envs) or None,
            models={m: e.get("model_identity") for m, e in envs.items()},
            seed=first.get("seed"),
            limit=first.get("limit"),
            prediction=first.get("prediction"),
            elicitation=first.get("elicitation"),
            parsing=first.get("parsing"),
            samples=self._samples,
            wall_seconds=round(sum(self._wall.values()), 3),
            warnings=self.notices.lines,
        )

    def add_audit_baseline(self, audit) -> None:
        self._audit_baselines[str(audit.baseline)] = {
            "model": audit.spec.model, "datasets": list(audit.spec.datasets), "units": audit.units,
            "tolerance": audit.tolerance, "gate": audit.gate,
        }

    # -- pytest-xdist -------------------------------------------------------------------------
    @property
    def is_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

    def export(self) -> str:
        return json.dumps({
            "results": [[[str(part) for part in k], r.to_dict()] for k, r in self._results.items()],
            "environments": self._environments,
            "wall": [[[str(part) for part in k], v] for k, v in self._wall.items()],
            "samples": self._samples,
            "audit_baselines": self._audit_baselines,
            "input_errors": self.input_errors,
            "preflight_errors": self.preflight_errors,
            "skips": [[[str(part) for part in k], v] for k, v in self._skips.items()],
            "warnings": self.notices.lines,
        }, default=str)

    def absorb(self, payload: str) -> None:
        """Merge a worker's results; the same key computed on two workers is kept once."""


        data = json.loads(payload)
        for key, result in data["results"]:
            incoming = CheckResult.from_dict(result)
            kept = self._results.setdefault(tuple(key), incoming)
            for v in incoming.info.get("thresholds") or []:  # verdicts judged on other workers
                kept.record_verdict(v["threshold"], v["actual"], v["passed"], v.get("expected_failure", False))
        self._environments.update(data["environments"])
        self._wall.update((tuple(k), v) for k, v in data.get("wall", []))
        self._samples.update(data["samples"])
        self._audit_baselines.update(data.get("audit_baselines", {}))
        self.input_errors.extend(e for e in data.get("input_errors", []) if e not in self.input_errors)
        self.preflight_errors.extend(e for e in data.get("preflight_errors", []) if e not in self.preflight_errors)
        self._skips.update((tuple(k), v) for k, v in data.get("skips", []))
        self.notices.extend(data.get("warnings", []))

