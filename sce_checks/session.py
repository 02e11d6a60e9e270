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
        self._results: dict[tuple, Any] = {}  # (model, dataset, variant, limit, seed, prediction) -> CheckResult
        self._environments: dict[str, dict] = {}
        self._samples: dict[str, dict] = {}
        self.comparison_text: str | None = None
        self._audit_baselines: dict[str, Any] = {}  # baseline path -> AuditFile
        self.errors: list[str] = []

    # -- settings -------------------------------------------------------------------------------
    def option(self, name: str) -> Any:
        from sce_checks.plugin import sce_option

        return sce_option(self.config, name)

    def settings(self, marker: dict[str, Any], dataset: str | None, variant: str | None) -> dict[str, Any]:
        datasets = marker.get("dataset") or self.option("dataset")
        if dataset is None:
            dataset = datasets if isinstance(datasets, str) else datasets[0]
        variants = marker.get("variant") or self.option("variant")
        if variant is None:
            variant = variants if isinstance(variants, str) else variants[0]
        return {
            "model": marker.get("model") or self.option("model"),
            "dataset": dataset,
            "variant": variant,
            "limit": marker.get("limit", self.option("limit")),
            "seed": marker.get("seed", self.option("seed")),
            "prediction": marker.get("prediction") or self.option("prediction"),
            "variants": [variants] if isinstance(variants, str) else list(variants),
        }

    # -- models and results --------------------------------------------------------------------
    def model(self, spec: str | None):
        from sce_checks.audit import open_model
        from sce_checks.errors import UserInputError
        from sce_checks.models import ModelOptions

        spec = spec or self.option("model")
        if spec not in self._models:
            cache_dir = self.option("cache-dir")
            cache_path = f"{cache_dir}/responses.sqlite" if cache_dir else None
            try:
                self._models[spec] = open_model(spec, ModelOptions(), not self.option("no-cache"), cache_path)
            except UserInputError as exc:
                pytest.fail(f"sce-checks: {exc}", pytrace=False)
        return self._models[spec]

    def result(self, marker: dict[str, Any], dataset: str | None = None, variant: str | None = None, node=None):
        from sce_checks.audit import AuditConfig, run_audit
        from sce_checks.errors import UserInputError

        s = self.settings(marker, dataset, variant)
        key = (s["model"], s["dataset"], s["variant"], s["limit"], s["seed"], s["prediction"])
        if key not in self._results:
            variants = list(dict.fromkeys(s["variants"] + [s["variant"]]))
            config = AuditConfig(model=s["model"], datasets=[s["dataset"]], variants=variants,
                                 limit=s["limit"], seed=s["seed"], prediction=s["prediction"])
            try:
                run = run_audit(config, model=self.model(s["model"]), progress=self.progress)
            except UserInputError as exc:
                pytest.fail(f"sce-checks: {exc}", pytrace=False)
            for r in run.results:  # keyed by the dataset *spec* the user gave (a name or a path)
                self._results[(s["model"], s["dataset"], r.variant, s["limit"], s["seed"], s["prediction"])] = r
            self._environments[s["model"]] = run.environment
            self._samples.update(run.environment.get("samples", {}))
        result = self._results[key]
        if node is not None:
            for name in ("validity", "strict_validity", "generation_rate", "mean_rcf_a", "mean_distance"):
                if result.get(name) is not None:
                    node.user_properties.append((f"sce:{result.dataset}/{result.variant}:{name}", result.get(name)))
        return result

    def progress(self, message: str) -> None:
        """Progress of long model runs, shown live even while pytest captures output (the
        capture is suspended for the line, like pytest's own live logging); quiet with -q."""
        if self.config.getoption("verbose", 0) < 0:
            return
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        if tr is None:
            return
        if capman is not None:
            with capman.global_and_fixture_disabled():
                tr.write_line(f"[sce-checks] {message}")
        else:
            tr.write_line(f"[sce-checks] {message}")

    @property
    def results(self) -> list:
        return list(self._results.values())

    def environment(self) -> dict[str, Any]:
        from sce_checks.environment import collect_environment

        models = {m: e.get("model_identity") for m, e in self._environments.items()}
        first = next(iter(self._environments.values()), {})
        return collect_environment(
            model=", ".join(self._environments) or None,
            models=models,
            seed=first.get("seed"),
            limit=first.get("limit"),
            prediction=first.get("prediction"),
            samples=self._samples,
        )

    def add_audit_baseline(self, audit) -> None:
        self._audit_baselines[str(audit.baseline)] = {
            "model": audit.model, "datasets": list(audit.datasets), "variants": list(audit.variants),
            "tolerance": audit.tolerance,
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
            "samples": self._samples,
            "audit_baselines": self._audit_baselines,
        }, default=str)

    def absorb(self, payload: str) -> None:
        """Merge a worker's results; the same key computed on two workers is kept once."""
        import json

        from sce_checks.results import CheckResult

        data = json.loads(payload)
        for key, result in data["results"]:
            self._results.setdefault(tuple(key), CheckResult.from_dict(result))
        self._environments.update(data["environments"])
        self._samples.update(data["samples"])
        self._audit_baselines.update(data.get("audit_baselines", {}))

    # -- end of session ------------------------------------------------------------------------
    def finish(self, exitstatus: int) -> int | None:
        """Write reports and compare with a baseline; return a new exit status when the baseline
        comparison fails (merged, never masking an earlier failure). On an xdist worker, hand
        the results to the controller instead."""
        if self.is_worker:
            if self._results:
                self.config.workeroutput["sce_checks"] = self.export()
            return None
        results = self.results
        if not results:
            return None
        env = self.environment()
        json_path, md_path, html_path = self.option("json"), self.option("markdown"), self.option("html")
        if json_path:
            from sce_checks.report.json_report import write_json

            write_json(json_path, results, env)
        import os

        if md_path or os.environ.get("GITHUB_STEP_SUMMARY"):
            from sce_checks.report.markdown import write_markdown

            write_markdown(md_path, results, env)
        if html_path:
            from sce_checks.report.html import write_html

            write_html(html_path, results, env)
        if self.option("save-baseline"):
            from sce_checks.report.baseline import save_baseline

            save_baseline(self.option("save-baseline"), results, env)
        comparisons = []
        if self.option("baseline"):
            comparisons.append((self.option("baseline"), self.option("tolerance") or 0.0, results))
        for path, audit in self._audit_baselines.items():
            mine = [r for key, r in self._results.items()
                    if key[0] == audit["model"] and key[1] in audit["datasets"] and key[2] in audit["variants"]]
            comparisons.append((path, audit["tolerance"], mine))
        texts, regressed_any = [], False
        for path, tolerance, subset in comparisons:
            from sce_checks.errors import UserInputError
            from sce_checks.report.baseline import compare, load_baseline, render_comparison

            try:
                rows = compare(load_baseline(path), subset, env, tolerance, path)
            except UserInputError as exc:
                self.errors.append(str(exc))
                return exitstatus or pytest.ExitCode.USAGE_ERROR
            regressed = [c for c in rows if c.regressed]
            regressed_any |= bool(regressed)
            texts.append(f"baseline {path}: " + (f"{len(regressed)} regression(s)" if regressed else "no regressions")
                         + "\n" + render_comparison(rows))
        self.comparison_text = "\n\n".join(texts) or None
        if regressed_any and exitstatus == 0:
            return pytest.ExitCode.TESTS_FAILED
        return None

    def terminal_summary(self, tr) -> None:
        if self.is_worker:
            return
        results = self.results
        if not results and not self.errors:
            return
        from sce_checks.report.table import render_table

        tr.write_sep("=", "sce-checks")
        if results:
            tr.write_line(render_table(results))
        if self.comparison_text:
            tr.write_line("")
            tr.write_line(self.comparison_text)
        for err in self.errors:
            tr.write_line(f"sce-checks error: {err}", red=True)
