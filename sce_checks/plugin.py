"""The pytest plugin (entry point ``pytest11``).

This module must stay light: pytest imports it at start-up for every run, so it imports nothing
heavy (no torch, no transformers) at module level; `pytest --help` stays fast.

Life cycle (one hook, one step):
- ``pytest_addoption``: the ``--sce-*`` options and ``sce_<name>`` ini keys, generated from the one
  table of settings (sce_checks/config.py).
- ``pytest_configure``: marker registration; the run specification resolved once (command line,
  sce-audit's specification, ini, ``[tool.sce-checks]``, defaults) and handed to the session
  store for models and results (sce_checks/session.py, which never imports this module).
- ``pytest_collection_modifyitems``: ``--sce-run`` items; then, when any item uses sce-checks,
  every input checked before the first model call (sce_checks/preflight.py).
- fixtures ``sce_model``, ``sce_audit``: lazy, shared, cached computations.
- ``pytest_terminal_summary``: the results table; JSON / Markdown / HTML reports and baselines.

Exit status (sce_checks/errors.py): 0 every gate holds, 1 a gate failed, 2 bad input (settings,
files, markers, audit files: one line naming the file and the key or line, before any model
call) or an unusable backend.
"""

from __future__ import annotations

import pathlib
from typing import Any, NoReturn

import pytest

from sce_checks.checks import check_names_known, get_check, units, variant_check
from sce_checks.config import (
    AUDIT_KEYS, BY_NAME, SETTINGS, add_pytest_options, resolve, spec_from_json, tool_table,
)
from sce_checks.errors import EXIT_BAD_INPUT, UserInputError
from sce_checks.session import SCESession, SESSION_KEY, session_of
from sce_checks.tasks import load_task, task_examples
from sce_checks.userfiles import read_user_text


# _AUDIT_MACHINERY: pytest loads this plugin in every session of a project that installed
# sce-checks. What only a run that uses sce-checks needs is imported where such a run reaches it:
# the items (collect.py), the audit, the preflight (they reach the sequential bounds: numpy) and
# the end of the session (closing.py: the report writers). Measured in docs/architecture.md.

def pytest_addoption(parser: pytest.Parser) -> None:
    add_pytest_options(parser)


def resolve_spec(config: pytest.Config) -> Any:
    """The run specification of this pytest run: each setting from the command line (``--sce-*``),
    else a specification written by sce-audit (``--sce-spec``), else the ini file (``sce_<name>``),
    else ``[tool.sce-checks]`` in pyproject.toml, else its default. Read and validated once."""

    command_line, ini = {}, {}
    for s in SETTINGS:
        raw = config.getoption(f"sce_{s.dest}", default=None)
        if raw not in (None, []):
            command_line[s.name] = s.read(raw, f"--sce-{s.option}")
        raw = config.getini(f"sce_{s.dest}")
        if raw not in (None, "", []):
            ini[s.name] = s.read(raw, f"ini sce_{s.dest}")
    layers = [command_line]
    spec_path = config.getoption("sce_spec", default=None)
    if spec_path:
        spec = spec_from_json(read_user_text(spec_path), spec_path)
        layers.append({s.name: getattr(spec, s.name) for s in SETTINGS})
    layers.append(ini)
    layers.append(tool_table(config.rootpath / "pyproject.toml"))
    return resolve(layers)


def pytest_configure(config: pytest.Config) -> None:
    marker_args = ", ".join(f"{BY_NAME[k].flag or k}=..." for k in AUDIT_KEYS)
    config.addinivalue_line("markers", f"sce({marker_args}): settings for the sce_model / sce_audit / sce_example "
                                       "fixtures in this test")

    try:
        spec = resolve_spec(config)
    except UserInputError as exc:
        if config.getoption("help", False) or config.getoption("markers", False):
            raise pytest.UsageError(f"sce-checks: {exc}") from None  # no session follows: pytest's usage error
        config.stash[_BAD_SETTINGS] = exc  # the run ends at session start (exit 2: `bad_input`)
        return
    config.stash[SESSION_KEY] = session = SCESession(config, spec)
    session.clear_cache_if_asked()
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(config), "sce-checks-xdist")


_BAD_SETTINGS = pytest.StashKey[Exception]()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Settings that could not be read end the run here, inside pytest's session, where an exit
    prints one line and keeps its status (in ``pytest_configure`` it would bypass the plugins
    configured after this one)."""
    exc = session.config.stash.get(_BAD_SETTINGS, None)
    if exc is not None:
        bad_input(exc)


def bad_input(exc: Exception) -> NoReturn:
    """End the run on bad input, before any item runs: exit status 2 and one line (the exit-code
    contract, sce_checks/errors.py), instead of pytest's usage error (4) or internal error (3)."""

    pytest.exit(f"sce-checks: {exc}", returncode=EXIT_BAD_INPUT)


class _XdistHooks:
    """Registered only when pytest-xdist is there: results computed on workers travel to the
    controller in ``workeroutput`` and appear once in every report."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_testnodedown(self, node, error) -> None:
        payload = getattr(node, "workeroutput", {}).get("sce_checks")
        if payload:
            _session(self.config).absorb(payload)


def _session(config: pytest.Config):
    return session_of(config)


def _marker_spec(node: Any, config: pytest.Config) -> Any:
    """The run specification of a test: its ``sce`` marker's settings over the options."""

    marker = node.get_closest_marker("sce")
    session = _session(config)
    if marker is None:
        return session.spec
    if marker.args:
        raise UserInputError(f"{node.nodeid}: @pytest.mark.sce takes keyword arguments only")
    accepted = [BY_NAME[k].flag or k for k in AUDIT_KEYS]
    unknown = sorted(k for k in marker.kwargs if k not in accepted and k not in AUDIT_KEYS)
    if unknown:
        raise UserInputError(f"{node.nodeid}: @pytest.mark.sce got unknown argument(s) {', '.join(unknown)}; "
                             f"accepted: {', '.join(accepted)}")
    return session.spec_for(dict(marker.kwargs), f"{node.nodeid}: @pytest.mark.sce")


def _test_spec(request: pytest.FixtureRequest) -> Any:
    """`_marker_spec` for a fixture: bad input fails the test with one line and the run exits 2
    (markers are checked at collection already; this is the fallback)."""

    try:
        return _marker_spec(request.node, request.config)
    except UserInputError as exc:
        _session(request.config).fail_input(exc)


@pytest.fixture
def sce_model(request: pytest.FixtureRequest):
    """The model under audit (from the test's ``sce`` marker, else ``--sce-model``), loaded once
    per session and wrapped in the response cache."""
    return _session(request.config).model(_test_spec(request))


@pytest.fixture
def sce_audit(request: pytest.FixtureRequest):
    """A function ``sce_audit(dataset=None, variant=None, check=None) -> CheckResult``: the SCE
    result of a variant, or the result of another check (``check="phi_cct"``). Each distinct
    (model, dataset, variant or check, limit, seed, ...) is computed once per session and shared
    by every test that asks for it; all SCE variants of a dataset are computed in one batched
    pass, ct / cct / phi_cct from one set of interventions. A check that cannot run on the task or
    backend (cct without option scores, inv on a grid) skips the test with the reason."""

    spec = _test_spec(request)
    session = _session(request.config)

    def get(dataset: str | None = None, variant: str | None = None, check: str | None = None):
        if check is not None and check not in check_names_known():
            session.fail_input(UserInputError(f"{request.node.nodeid}: sce_audit(check={check!r}): expected one of "
                                              f"{', '.join(check_names_known())}"))
        owner = get_check(check) if check is not None else None
        if variant is not None and owner is not None and variant not in owner.units(spec.variants + (variant,)):
            session.fail_input(UserInputError(f"{request.node.nodeid}: sce_audit: variant= belongs to check={variant_check()!r}, "
                                              f"not {check!r}"))
        unit = variant or (owner.units(spec.variants)[0] if owner is not None else None)
        from sce_checks.audit import run_audit  # see _AUDIT_MACHINERY

        return session.result(spec, dataset=dataset, unit=unit, node=request.node, run_audit=run_audit)

    return get


@pytest.fixture
def sce_dataset(request: pytest.FixtureRequest):
    """The task under audit (from the test's ``sce`` marker, else ``--sce-dataset``; the first
    when several are given): its name, options, examples or grid."""

    spec = _test_spec(request)
    try:
        return load_task(spec.datasets[0])
    except UserInputError as exc:
        _session(request.config).fail_input(exc)


@pytest.fixture
def sce_example(request: pytest.FixtureRequest):
    """One example's record (`ExampleRecord`) of the shared computation. A test that asks for it
    becomes one item per (dataset, unit, example) of its sample, with ids such as
    ``income/minimal/income-00042`` or ``sentiment/inv/sentiment-0007``, so single examples can be
    seen, selected with -k and marked."""
    dataset, unit, example_id = request.param
    spec = _test_spec(request)
    from sce_checks.audit import run_audit  # see _AUDIT_MACHINERY

    result = _session(request.config).result(spec, dataset=dataset, unit=unit, node=request.node, run_audit=run_audit)
    for record in result.examples:
        if record.id == example_id:
            return record
    stopped = result.info.get("sequential")
    if stopped:  # --sequential audited a prefix of the sample
        pytest.skip(f"sce-checks: example {example_id} not audited: the sequential audit of {result.dataset} stopped "
                    f"after {stopped['stopped_after']} of {stopped['limit']} examples")
    raise pytest.fail(f"sce-checks: example {example_id} is not in {result.dataset}/{unit}", pytrace=False)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``sce_example`` over the sample, known before any model runs: examples are
    drawn from (dataset, limit, seed) alone."""
    if "sce_example" not in metafunc.fixturenames:
        return

    # the specification the sce_example fixture will compute with, so the samples are the same
    params, ids = [], []
    try:
        spec = _marker_spec(metafunc.definition, metafunc.config)
        for dataset in spec.datasets:
            examples = task_examples(load_task(dataset), spec.limit or None, spec.seed)
            for unit in units(spec.checks, spec.variants):
                for example_id, _ in examples:
                    params.append((dataset, unit, example_id))
                    ids.append(f"{dataset}/{unit}/{example_id}")
    except UserInputError as exc:  # a collection error of one line: the run exits 2 (interrupted)
        raise pytest.Collector.CollectError(f"sce-checks: {metafunc.definition.nodeid}: {exc}") from None
    metafunc.parametrize("sce_example", params, ids=ids, indirect=True)


def pytest_collect_file(file_path, parent):
    """Audit files: ``*.sce.toml`` (see sce_checks/auditfile.py); and under ``--sce-run`` the
    specification file named by ``--sce-spec`` when it is given as a path to collect."""
    if file_path.name.endswith(".sce.toml"):
        from sce_checks.collect import AuditFileCollector  # see _AUDIT_MACHINERY

        return AuditFileCollector.from_parent(parent, path=file_path)
    config = parent.config
    spec_file = config.getoption("sce_spec", None)
    if config.getoption("sce_run", False) and spec_file and file_path == pathlib.Path(spec_file).resolve():
        from sce_checks.collect import RunCollector  # see _AUDIT_MACHINERY

        return RunCollector.from_parent(parent, path=file_path)
    return None


# The fixtures that make a test use sce-checks (and so the run specification).
FIXTURES: tuple[str, ...] = ("sce_model", "sce_audit", "sce_dataset", "sce_example")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """``--sce-run``: the audit described by the options, as items after the collected ones.
    Then, before any item runs, every input the sce items will use is checked (`_check_inputs`):
    bad input ends the run with exit status 2 before the first model call."""

    try:
        if config.getoption("sce_run"):
            from sce_checks.collect import RunCollector, run_items  # see _AUDIT_MACHINERY

            if not any(isinstance(item.parent, RunCollector) for item in items):
                items.extend(run_items(session))
        _check_inputs(config, items)
    except UserInputError as exc:
        store = config.stash.get(SESSION_KEY, None)
        if store is None or not store.is_worker:
            bad_input(exc)
        store.refuse_on_worker(exc)
        items[:] = []  # nothing runs; the controller reports the error and exits 2


def _check_inputs(config: pytest.Config, items: list) -> None:
    """Run the preflight (sce_checks/preflight.py) when an item uses sce-checks: the options'
    specification (its baseline's samples too under ``--sce-run``, whose results are that
    specification's) and the datasets of every ``@pytest.mark.sce``. Under pytest-xdist the
    workers collect, so each checks (the controller collects nothing)."""

    store = _session(config)
    users = [item for item in items if set(getattr(item, "fixturenames", ())) & set(FIXTURES)]
    if not users:  # threshold items come only from an audit file or --sce-run
        if not (config.getoption("sce_run") or any(item.path.name.endswith(".sce.toml") for item in items)):
            return
        from sce_checks.collect import ThresholdItem  # see _AUDIT_MACHINERY

        if not any(isinstance(item, ThresholdItem) for item in items):
            return
    from sce_checks.preflight import preflight  # see _AUDIT_MACHINERY

    preflight(store.spec, "--sce-", same_sample=bool(config.getoption("sce_run")))
    datasets = {d: None for item in users for d in _marker_spec(item, config).datasets}
    for dataset in datasets:
        load_task(dataset)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Bad input met inside a test that uses sce-checks (``assert_threshold(r, "vality>=0.5")``,
    found only once the test names it): the test fails with one line and the run exits 2, as for
    every other bad input, not 1 as a failed gate."""

    try:
        return (yield)
    except UserInputError as exc:
        if not set(getattr(item, "fixturenames", ())) & set(FIXTURES):
            raise
        _session(item.config).fail_input(exc)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is not None and session.used:
        from sce_checks import closing  # see _AUDIT_MACHINERY

        closing.terminal_summary(session, terminalreporter)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    store = session.config.stash.get(SESSION_KEY, None)
    if store is not None and store.used:
        from sce_checks import closing  # see _AUDIT_MACHINERY

        new_status = closing.finish(store, exitstatus)
        if new_status is not None:
            session.exitstatus = new_status
