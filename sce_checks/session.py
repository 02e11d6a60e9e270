"""Session state of the pytest plugin: models loaded once, results computed once and shared, and
the reports written at the end. Kept apart from plugin.py so the plugin module stays light (this
module is imported at configure time but imports nothing heavy itself)."""

from __future__ import annotations

from typing import Any

import pytest


class SCESession:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._models: dict[str, Any] = {}
        # (model, dataset, unit, limit, seed, prediction, text_search_budget, perturbations, attribution,
        #  elicitation, parsing)
        # -> CheckResult; a unit is an SCE variant or another check (sce_checks/checks/__init__.py)
        self._results: dict[tuple, Any] = {}
        self._spare: dict[tuple, Any] = {}  # computed with a requested result (ct with phi_cct), not yet asked for
        self._skips: dict[tuple, list[str]] = {}  # result key -> [task/check, why that check cannot run here]
        self._failures: dict[Any, str] = {}  # model spec or result key -> why it could not be computed
        self._environments: dict[str, dict] = {}
        self._wall: dict[Any, float] = {}  # result key -> seconds its audit took
        self._samples: dict[str, dict] = {}
        self.comparison_text: str | None = None
        self._audit_baselines: dict[str, Any] = {}  # baseline path -> AuditFile
        self.errors: list[str] = []
        self.input_errors: list[str] = []  # bad model spec, dataset, server...: the run exits as a usage error

    # -- settings -------------------------------------------------------------------------------
    def option(self, name: str) -> Any:
        from sce_checks.plugin import sce_option

        return sce_option(self.config, name)

    def settings(self, marker: dict[str, Any], dataset: str | None, unit: str | None) -> dict[str, Any]:
        """What a test or item computes with: its marker (or audit file) first, then the options.
        ``unit`` defaults to the first SCE variant when the checks include ``sce``, else to the
        first check."""
        from sce_checks.checks import check_names, units

        def listed(name: str, option: str) -> list:
            value = marker.get(name) or self.option(option)
            return [value] if isinstance(value, str) else list(value)

        datasets, variants = listed("dataset", "dataset"), listed("variant", "variant")
        checks = list(check_names(listed("check", "check")))
        limit = marker.get("limit", self.option("limit"))
        return {
            "model": marker.get("model") or self.option("model"),
            "dataset": dataset or datasets[0],
            "unit": unit or units(checks, variants)[0],
            "limit": limit or None,  # 0: every example
            "seed": marker.get("seed", self.option("seed")),
            "prediction": marker.get("prediction") or self.option("prediction"),
            "elicitation": marker.get("elicitation") or self.option("elicitation"),
            "parsing": marker.get("parsing") or self.option("parsing"),
            "text_search_budget": marker.get("text_search_budget", self.option("text-search-budget")),
            "perturbations": marker.get("perturbations", self.option("perturbations")),
            "attribution": marker.get("attribution") or self.option("attribution"),
            "variants": variants,
            "datasets": datasets,
            "checks": checks,
            "units": units(checks, variants),
        }

    def model_options(self):
        from sce_checks.errors import UserInputError
        from sce_checks.models import ModelOptions

        o = self.option
        if o("batch-size") < 1:
            raise UserInputError(f"--sce-batch-size must be >= 1, not {o('batch-size')}")
        return ModelOptions(dtype=o("dtype"), device=o("device"), batch_size=o("batch-size"),
                            trust_remote_code=bool(o("trust-remote-code")), max_concurrency=o("concurrency"),
                            timeout_s=o("timeout"), max_retries=o("max-retries"))

    def cache_path(self) -> str | None:
        cache_dir = self.option("cache-dir")
        return f"{cache_dir}/responses.sqlite" if cache_dir else None

    def clear_cache_if_asked(self) -> None:
        """``--sce-clear-cache``: once, on the controller (never by a worker mid-run)."""
        if self.option("clear-cache") and not self.option("no-cache") and not self.is_worker:
            from pathlib import Path

            from sce_checks.models.cache import ResponseCache

            path = self.cache_path()
            with ResponseCache(Path(path) if path else None) as cache:
                cache.clear()

    def _fail(self, key: Any, exc: Exception) -> None:
        """A bad model spec, dataset or server: the item fails with one line (no traceback), later
        items asking for the same thing fail at once, and the run ends as a usage error."""
        message = f"sce-checks: {exc}"
        self._failures[key] = message
        self.input_errors.append(str(exc))
        pytest.fail(message, pytrace=False)

    # -- models and results --------------------------------------------------------------------
    def model(self, spec: str | None):
        from sce_checks.audit import open_model
        from sce_checks.errors import BackendError, UserInputError

        spec = spec or self.option("model")
        if spec in self._failures:
            pytest.fail(self._failures[spec], pytrace=False)
        if spec not in self._models:
            try:
                self._models[spec] = open_model(spec, self.model_options(), not self.option("no-cache"), self.cache_path())
            except (UserInputError, BackendError) as exc:
                self._fail(spec, exc)
        return self._models[spec]

    def result(self, marker: dict[str, Any], dataset: str | None = None, unit: str | None = None, node=None):
        """The shared result of one (dataset, unit) under ``marker``'s settings, computed on first
        request: all SCE variants in one pass, ct / cct / phi_cct from one set of interventions.
        A check that cannot run here skips the asking test with the reason."""
        from sce_checks.audit import AuditConfig, run_audit
        from sce_checks.checks import COUNTERFACTUAL, HEADLINE, check_of, unit_of
        from sce_checks.errors import BackendError, UserInputError

        try:
            s = self.settings(marker, dataset, unit)
        except UserInputError as exc:
            self._fail(("settings", str(exc)), exc)
        rest = (s["limit"], s["seed"], s["prediction"], s["text_search_budget"], s["perturbations"], s["attribution"],
                s["elicitation"], s["parsing"])

        def key_of(unit: str) -> tuple:
            # the stability check requests its SCEs in the first variant listed
            return (s["model"], s["dataset"], unit, *rest, (s["variants"] or [None])[0] if unit == "stability" else None)

        key = key_of(s["unit"])
        if key in self._failures:
            pytest.fail(self._failures[key], pytrace=False)
        if key in self._skips:
            pytest.skip(self._skips[key][1])
        if key in self._spare:
            self._results[key] = self._spare.pop(key)
        if key not in self._results:
            check = check_of(s["unit"])
            variants = list(dict.fromkeys(s["variants"] + ([s["unit"]] if check == "sce" else [])))
            checks = COUNTERFACTUAL if check in COUNTERFACTUAL else (check,)
            config = AuditConfig(model=s["model"], datasets=[s["dataset"]], variants=variants, limit=s["limit"],
                                 seed=s["seed"], prediction=s["prediction"], text_search_budget=s["text_search_budget"],
                                 model_options=self.model_options(), checks=checks, perturbations=s["perturbations"],
                                 attribution=s["attribution"], elicitation=s["elicitation"], parsing=s["parsing"])
            from sce_checks.progress import showing

            try:
                with showing(self.progress_bar()):
                    run = run_audit(config, model=self.model(s["model"]))
            except (UserInputError, BackendError) as exc:
                self._fail(key, exc)
            for r in run.results:  # keyed by the dataset *spec* the user gave (a name or a path)
                k = key_of(unit_of(r))
                (self._results if r.check == "sce" or k == key else self._spare)[k] = r
            for skip in run.skipped:
                self._skips[key_of(skip["check"])] = [f"{skip['dataset']}/{skip['check']}", skip["reason"]]
            self._environments[s["model"]] = run.environment
            self._wall[key] = run.environment.get("wall_seconds") or 0.0
            self._samples.update(run.environment.get("samples", {}))
            if key in self._skips:
                pytest.skip(self._skips[key][1])
        result = self._results[key]
        if node is not None:
            for name in HEADLINE.get(result.check, ()):
                if result.get(name) is not None:
                    node.user_properties.append((f"sce:{result.dataset}/{unit_of(result)}:{name}", result.get(name)))
        return result

    @property
    def skipped(self) -> list[str]:
        """Checks that could not run, one line each, for the summary."""
        return sorted({f"{where}: {reason}" for where, reason in self._skips.values()})

    def progress_bar(self):
        """A progress bar for long model runs that shows live although pytest captures output:
        the capture is suspended while it draws, as for pytest's own live logging. It redraws
        one line on a terminal and prints a line every 15 s in a log; nothing with -q."""
        from sce_checks.progress import ProgressBar

        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        if tr is None or self.config.getoption("verbose", 0) < 0:
            return None

        def drawing(draw):
            def run(text: str) -> None:
                if capman is None:
                    draw(text)
                else:
                    with capman.global_and_fixture_disabled():
                        draw(text)
            return run

        def rewrite(text: str) -> None:
            tr.ensure_newline()
            tr.rewrite(f"[sce-checks] {text}")

        return ProgressBar(drawing(lambda text: tr.write_line(f"[sce-checks] {text}" if text else "")),
                           drawing(rewrite) if tr.isatty else None)

    @property
    def results(self) -> list:
        return list(self._results.values())

    def environment(self) -> dict[str, Any]:
        """One model: that model's run environment (identity, dtype, batch size, model calls),
        with the samples of every dataset and the wall time of all runs. Several models: the
        settings they share and each model's identity under ``models``."""
        from sce_checks.environment import collect_environment

        envs = self._environments
        if len(envs) == 1:
            env = dict(next(iter(envs.values())))
            env["samples"] = dict(self._samples)
            env["wall_seconds"] = round(sum(self._wall.values()), 3)
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
        )

    def add_audit_baseline(self, audit) -> None:
        self._audit_baselines[str(audit.baseline)] = {
            "model": audit.model, "datasets": list(audit.datasets), "units": audit.units, "tolerance": audit.tolerance,
        }

    # -- pytest-xdist -------------------------------------------------------------------------
    @property
    def is_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

    def export(self) -> str:
        import json

        return json.dumps({
            "results": [[list(k), r.to_dict()] for k, r in self._results.items()],
            "environments": self._environments,
            "wall": [[list(k), v] for k, v in self._wall.items()],
            "samples": self._samples,
            "audit_baselines": self._audit_baselines,
            "input_errors": self.input_errors,
            "skips": [[list(k), v] for k, v in self._skips.items()],
        }, default=str)

    def absorb(self, payload: str) -> None:
        """Merge a worker's results; the same key computed on two workers is kept once."""
        import json

        from sce_checks.results import CheckResult

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
        self._skips.update((tuple(k), v) for k, v in data.get("skips", []))

    # -- end of session ------------------------------------------------------------------------
    def finish(self, exitstatus: int) -> int | None:
        """Write reports and compare with a baseline; return a new exit status when the baseline
        comparison fails (merged, never masking an earlier failure). On an xdist worker, hand
        the results to the controller instead."""
        if self.is_worker:
            if self._results or self.input_errors:
                self.config.workeroutput["sce_checks"] = self.export()
            return None
        usage = pytest.ExitCode.USAGE_ERROR if self.input_errors and exitstatus == pytest.ExitCode.TESTS_FAILED else None
        results = self.results
        if not results and not self.skipped:
            return usage
        env = self.environment()
        json_path, md_path, html_path = self.option("json"), self.option("markdown"), self.option("html")
        if json_path:
            from sce_checks.report.json_report import write_json

            write_json(json_path, results, env, self.skipped)
        import os

        if md_path or os.environ.get("GITHUB_STEP_SUMMARY"):
            from sce_checks.report.markdown import write_markdown

            write_markdown(md_path, results, env, self.skipped)
        if html_path:
            from sce_checks.report.html import write_html

            write_html(html_path, results, env, skipped=self.skipped)
        if self.option("save-baseline"):
            from sce_checks.report.baseline import save_baseline

            save_baseline(self.option("save-baseline"), results, env)
        comparisons = []
        if self.option("baseline"):
            comparisons.append((self.option("baseline"), self.option("tolerance"), results))
        for path, audit in self._audit_baselines.items():
            mine = [r for key, r in self._results.items()
                    if key[0] == audit["model"] and key[1] in audit["datasets"] and key[2] in audit["units"]]
            comparisons.append((path, audit["tolerance"], mine))
        texts, regressed_any = [], False
        for path, tolerance, subset in comparisons:
            from sce_checks.errors import UserInputError
            from sce_checks.report.baseline import compare, load_baseline, parse_tolerances, render_comparison

            try:
                rows = compare(load_baseline(path), subset, env, parse_tolerances(tolerance, "--sce-tolerance"), path)
            except UserInputError as exc:
                self.errors.append(str(exc))
                self.input_errors.append(str(exc))
                return exitstatus or pytest.ExitCode.USAGE_ERROR
            regressed = [c for c in rows if c.regressed]
            regressed_any |= bool(regressed)
            texts.append(f"baseline {path}: " + (f"{len(regressed)} regression(s)" if regressed else "no regressions")
                         + "\n" + render_comparison(rows))
        self.comparison_text = "\n\n".join(texts) or None
        if regressed_any and exitstatus == 0:
            return pytest.ExitCode.TESTS_FAILED
        return usage

    def terminal_summary(self, tr) -> None:
        if self.is_worker:
            return
        results = self.results
        if not results and not self.errors and not self.skipped:
            return
        from sce_checks.report.table import render_table

        tr.write_sep("=", "sce-checks")
        tr.write_line(render_table(results, skipped=self.skipped))
        if self.comparison_text:
            tr.write_line("")
            tr.write_line(self.comparison_text)
        for err in self.errors:
            tr.write_line(f"sce-checks error: {err}", red=True)
