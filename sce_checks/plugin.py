"""The pytest plugin (entry point ``pytest11``).

This module must stay light: pytest imports it at start-up for every run, so it imports nothing
heavy (no torch, no transformers) at module level; `pytest --help` stays fast.

Life cycle (one hook, one step):
- ``pytest_addoption``: the ``--sce-*`` options, also readable from ini / ``[tool.pytest.ini_options]``
  as ``sce_<name>``; the command line wins.
- ``pytest_configure``: marker registration; a session store for models and results.
- fixtures ``sce_model``, ``sce_audit``: lazy, shared, cached computations.
- ``pytest_terminal_summary``: the results table; JSON / Markdown / HTML reports and baselines.
"""

from __future__ import annotations

from typing import Any

import pytest

_OPTIONS: list[tuple[str, dict[str, Any]]] = [
    ("model", dict(help="model spec: hf:<id or dir> | openai:<model>@<url> | python:<module>:<attr> | smollm2")),
    ("dataset", dict(action="append", help="dataset name or path (repeatable)")),
    ("variant", dict(action="append", help="SCE variant: unconstrained | minimal (repeatable); stability uses the first")),
    ("check", dict(action="append", help="sce | inv | dir | stability | ct | cct | phi_cct | self_consistency (repeatable; "
                                         "default sce)")),
    ("perturbations", dict(type=int, help="perturbed inputs / interventions per example for inv, dir, stability, ct, cct, "
                                          "phi_cct (default 4)")),
    ("attribution", dict(help="self_consistency: feature_ablation | shapley_sampling")),
    ("limit", dict(type=int, help="examples per dataset (default 20; 0 = all)")),
    ("seed", dict(type=int, help="sampling seed (default 0)")),
    ("prediction", dict(help="auto | score | generate")),
    ("text-search-budget", dict(type=int, help="text tasks: model predictions per example for the reference minimal-edit search")),
    ("elicitation", dict(help="free (default) | schema: replies constrained to the JSON schema of what is asked")),
    ("parsing", dict(help="lenient (default) | strict: how replies are read")),
    ("run", dict(action="store_true", default=None,
                 help="collect the audit the --sce-* options describe as test items: one per --sce-threshold, or one per "
                      "dataset and variant (what sce-audit runs)")),
    ("threshold", dict(action="append", help="gate for --sce-run items, e.g. 'validity_lower>=0.6' or, for one check, "
                                             "'phi_cct:phi>=0.2' (repeatable)")),
    ("json", dict(help="write the JSON report here")),
    ("markdown", dict(help="write the Markdown report here")),
    ("html", dict(help="write the HTML report here")),
    ("baseline", dict(help="compare figures against this baseline file")),
    ("save-baseline", dict(help="save this run's figures as a baseline")),
    ("tolerance", dict(action="append", help="allowed worsening against the baseline: a number for every metric, or "
                                              "METRIC=NUMBER (repeatable)")),
    ("dtype", dict(help="hf backends: float32 | bfloat16 | float16")),
    ("device", dict(help="hf backends: cpu | cuda | cuda:1 | mps")),
    ("batch-size", dict(type=int, help="model batch size (default 8)")),
    ("trust-remote-code", dict(action="store_true", default=None, help="hf backends: allow the model repo's own code")),
    ("concurrency", dict(type=int, help="openai backends: requests in flight (default 8)")),
    ("timeout", dict(type=float, help="openai backends: seconds per request (default 60)")),
    ("max-retries", dict(type=int, help="openai backends (default 5)")),
    ("cache-dir", dict(help="response cache directory")),
    ("no-cache", dict(action="store_true", default=None, help="do not use the response cache")),
    ("clear-cache", dict(action="store_true", default=None, help="empty the response cache first")),
]

DEFAULTS: dict[str, Any] = {"model": "smollm2", "dataset": ["income"], "variant": ["unconstrained", "minimal"],
                            "check": ["sce"], "perturbations": 4, "attribution": "feature_ablation",
                            "limit": 20, "seed": 0, "prediction": "auto", "text_search_budget": 0, "run": False,
                            "elicitation": "free", "parsing": "lenient",
                            "threshold": [], "tolerance": ["0"], "batch_size": 8, "trust_remote_code": False,
                            "concurrency": 8, "timeout": 60.0, "max_retries": 5, "no_cache": False, "clear_cache": False}

MARKER_ARGS = ("model", "dataset", "variant", "check", "limit", "seed", "prediction", "text_search_budget", "perturbations",
               "attribution", "elicitation", "parsing")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sce-checks", "sce-checks: audit self-generated counterfactual explanations")
    for name, kwargs in _OPTIONS:
        dest = "sce_" + name.replace("-", "_")
        group.addoption(f"--sce-{name}", dest=dest, **kwargs)
        parser.addini(dest, help=f"default for --sce-{name}", type="linelist" if kwargs.get("action") == "append" else "string")


_TABLE_KEY = pytest.StashKey[dict]()


def _tool_table(config: pytest.Config) -> dict[str, Any]:
    """``[tool.sce-checks]`` of the pyproject.toml in pytest's root directory (read once)."""
    if _TABLE_KEY not in config.stash:
        table: dict[str, Any] = {}
        path = config.rootpath / "pyproject.toml"
        if path.is_file():
            from sce_checks.errors import UserInputError
            from sce_checks.tasks.grid_file import read_toml

            try:
                table = read_toml(path).get("tool", {}).get("sce-checks", {})
            except UserInputError as exc:
                raise pytest.UsageError(str(exc)) from None
            known = {n for n, _ in _OPTIONS} | {n.replace("-", "_") for n, _ in _OPTIONS}
            unknown = sorted(set(table) - known)
            if unknown:
                raise pytest.UsageError(f"{path}: [tool.sce-checks] {unknown[0]}: unknown key; accepted: "
                                        + ", ".join(n for n, _ in _OPTIONS))
        config.stash[_TABLE_KEY] = {k.replace("_", "-"): v for k, v in table.items()}
    return config.stash[_TABLE_KEY]


def sce_option(config: pytest.Config, name: str) -> Any:
    """An option's value: command line, then ini (``sce_<name>``), then ``[tool.sce-checks]`` in
    pyproject.toml, then the default."""
    dest = "sce_" + name.replace("-", "_")
    value = config.getoption(dest, default=None)
    if value is None or value == []:
        ini = config.getini(dest)
        if ini not in (None, "", []):
            kwargs = dict(_OPTIONS)[name]
            if kwargs.get("type") is int:
                value = int(ini)
            elif kwargs.get("type") is float:
                value = float(ini)
            elif kwargs.get("action") == "store_true":
                value = str(ini).strip().lower() in ("1", "true", "yes", "on")
            else:
                value = ini
    if value is None or value == []:
        value = _tool_table(config).get(name)
        if isinstance(value, (str, int, float)) and dict(_OPTIONS)[name].get("action") == "append":
            value = [str(value)]
    if value is None or value == []:
        value = DEFAULTS.get(name.replace("-", "_"))
    return value


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sce(model=..., dataset=..., variant=..., check=..., limit=..., seed=..., prediction=..., perturbations=...): "
        "settings for the sce_model / sce_audit / sce_example fixtures in this test",
    )
    from sce_checks.session import SCESession

    config.stash[SESSION_KEY] = session = SCESession(config)
    session.clear_cache_if_asked()
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(config), "sce-checks-xdist")


class _XdistHooks:
    """Registered only when pytest-xdist is there: results computed on workers travel to the
    controller in ``workeroutput`` and appear once in every report."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_testnodedown(self, node, error) -> None:
        payload = getattr(node, "workeroutput", {}).get("sce_checks")
        if payload:
            _session(self.config).absorb(payload)


SESSION_KEY = pytest.StashKey["Any"]()


def _session(config: pytest.Config):
    return config.stash[SESSION_KEY]


def _marker_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker("sce")
    if marker is None:
        return {}
    if marker.args:
        raise pytest.UsageError(f"{request.node.nodeid}: @pytest.mark.sce takes keyword arguments only ({', '.join(MARKER_ARGS)})")
    unknown = sorted(set(marker.kwargs) - set(MARKER_ARGS))
    if unknown:
        raise pytest.UsageError(
            f"{request.node.nodeid}: @pytest.mark.sce got unknown argument(s) {', '.join(unknown)}; accepted: {', '.join(MARKER_ARGS)}"
        )
    return dict(marker.kwargs)


@pytest.fixture
def sce_model(request: pytest.FixtureRequest):
    """The model under audit (from the test's ``sce`` marker, else ``--sce-model``), loaded once
    per session and wrapped in the response cache."""
    settings = _marker_settings(request)
    return _session(request.config).model(settings.get("model"))


@pytest.fixture
def sce_audit(request: pytest.FixtureRequest):
    """A function ``sce_audit(dataset=None, variant=None, check=None) -> CheckResult``: the SCE
    result of a variant, or the result of another check (``check="phi_cct"``). Each distinct
    (model, dataset, variant or check, limit, seed, ...) is computed once per session and shared
    by every test that asks for it; all SCE variants of a dataset are computed in one batched
    pass, ct / cct / phi_cct from one set of interventions. A check that cannot run on the task or
    backend (cct without option scores, inv on a grid) skips the test with the reason."""
    from sce_checks.checks import CHECKS

    settings = _marker_settings(request)
    session = _session(request.config)

    def get(dataset: str | None = None, variant: str | None = None, check: str | None = None):
        if check is not None and check not in CHECKS:
            raise pytest.UsageError(f"{request.node.nodeid}: sce_audit(check={check!r}): expected one of {', '.join(CHECKS)}")
        if variant is not None and check not in (None, "sce"):
            raise pytest.UsageError(f"{request.node.nodeid}: sce_audit: variant= belongs to check='sce', not {check!r}")
        unit = variant or (check if check not in (None, "sce") else None)
        if check == "sce" and unit is None:
            unit = session.settings(settings, None, None)["variants"][0]
        return session.result(settings, dataset=dataset, unit=unit, node=request.node)

    return get


@pytest.fixture
def sce_dataset(request: pytest.FixtureRequest):
    """The task under audit (from the test's ``sce`` marker, else ``--sce-dataset``; the first
    when several are given): its name, options, examples or grid."""
    from sce_checks.errors import UserInputError
    from sce_checks.tasks import load_task

    settings = _session(request.config).settings(_marker_settings(request), None, None)
    try:
        return load_task(settings["dataset"])
    except UserInputError as exc:
        pytest.fail(f"sce-checks: {exc}", pytrace=False)


@pytest.fixture
def sce_example(request: pytest.FixtureRequest):
    """One example's record (`ExampleRecord`) of the shared computation. A test that asks for it
    becomes one item per (dataset, unit, example) of its sample, with ids such as
    ``income/minimal/income-00042`` or ``sentiment/inv/sentiment-0007``, so single examples can be
    seen, selected with -k and marked."""
    dataset, unit, example_id = request.param
    result = _session(request.config).result(_marker_settings(request), dataset=dataset, unit=unit, node=request.node)
    for record in result.examples:
        if record.id == example_id:
            return record
    raise pytest.fail(f"sce-checks: example {example_id} is not in {result.dataset}/{unit}", pytrace=False)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``sce_example`` over the sample, known before any model runs: examples are
    drawn from (dataset, limit, seed) alone."""
    if "sce_example" not in metafunc.fixturenames:
        return
    from sce_checks.errors import UserInputError
    from sce_checks.tasks import load_task, task_examples

    marker = metafunc.definition.get_closest_marker("sce")
    # the settings the sce_example fixture will compute with, so the samples are the same
    try:
        s = _session(metafunc.config).settings(dict(marker.kwargs) if marker else {}, None, None)
    except UserInputError as exc:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: {exc}") from None
    params, ids = [], []
    for dataset in s["datasets"]:
        try:
            examples = task_examples(load_task(dataset), s["limit"], s["seed"])
        except UserInputError as exc:
            raise pytest.UsageError(f"{metafunc.definition.nodeid}: {exc}") from None
        for unit in s["units"]:
            for example_id, _ in examples:
                params.append((dataset, unit, example_id))
                ids.append(f"{dataset}/{unit}/{example_id}")
    metafunc.parametrize("sce_example", params, ids=ids, indirect=True)


def pytest_collect_file(file_path, parent):
    """Audit files: ``*.sce.toml`` (see sce_checks/auditfile.py)."""
    if file_path.name.endswith(".sce.toml"):
        from sce_checks.collect import AuditFileCollector

        return AuditFileCollector.from_parent(parent, path=file_path)
    return None


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """``--sce-run``: the audit described by the options, as items after the collected ones."""
    if sce_option(config, "run"):
        from sce_checks.collect import run_items

        items.extend(run_items(session))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.terminal_summary(terminalreporter)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    store = session.config.stash.get(SESSION_KEY, None)
    if store is not None:
        new_status = store.finish(exitstatus)
        if new_status is not None:
            session.exitstatus = new_status
