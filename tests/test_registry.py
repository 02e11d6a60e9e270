"""The registry (sce_checks/registry.py): the built-in declarations and their implementations agree,
each fact declared once; lookups import only what they need; a clash, a broken or a malformed
entry is one line where it is used and passed by in searches; the settings table is assembled
from the core rows and the declared ones."""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from sce_checks import config
from sce_checks.checks import Check, CheckEntry, Figure, check_entry, check_names_known, family_of, get_check
from sce_checks.errors import UserInputError
from sce_checks.models import ModelOptions, Spec, load_model, parse_spec
from sce_checks.registry import BACKENDS, CHECKS, PLOTS, Registry
from tests.helpers.plugin_packages import REPO, install

DECLARED = ("name", "question", "figures", "counts", "family", "plots", "units", "unit_of")


@pytest.mark.parametrize("name", CHECKS.names())
def test_each_builtin_check_reads_its_declaration_and_agrees_with_it(name):
    entry, check = check_entry(name), get_check(name)
    assert check.entry is entry and check.name == name and check.figures is entry.figures
    for cls in type(check).__mro__:  # no second copy of a declared fact in the implementation
        if cls is not Check and cls is not object:
            assert not set(DECLARED) & set(vars(cls)), (cls, set(DECLARED) & set(vars(cls)))
    directed = {f.name for f in entry.figures if f.better is not None}
    assert all(set(o.figures) <= directed for o in check.outcomes)
    assert all(p in PLOTS for p in entry.plots)
    assert all(config.BY_NAME[s.name] is s for s in entry.settings)  # its rows are the table's
    fields = {f.name for f in dataclasses.fields(check.settings)}
    assert all(s.name in fields or s.name in check.reads_settings for s in entry.settings), "a declared row it never reads"


def test_builtin_families_units_and_panels():
    from sce_checks.checks.counterfactual import CHECKS as COUNTERFACTUAL

    assert set(family_of("ct")) == set(COUNTERFACTUAL) == {"ct", "cct", "phi_cct"}
    assert [n for n in check_names_known() if check_entry(n).per_variant] == ["sce"]
    assert [n for n in check_names_known() if check_entry(n).panels] == ["sce"]


@pytest.mark.parametrize("name", BACKENDS.names())
def test_each_builtin_backend_loader_takes_a_spec_and_options(name):
    entry, loader = BACKENDS.declaration(name), BACKENDS.implementation(name)
    params = inspect.signature(loader).parameters
    assert list(params)[:2] == ["spec", "options"] and (("lazily" in params) == entry.lazy)
    assert all(config.BY_NAME[s.name] is s for s in entry.settings)


@pytest.mark.parametrize("name", PLOTS.names())
def test_each_builtin_plot_draws_nothing_from_no_results(name):
    assert PLOTS.implementation(name)([]) == []


def test_specs_parse_by_backend_name_and_a_parsed_spec_passes_through(tmp_path, monkeypatch):
    spec = parse_spec("openai:m@http://127.0.0.1:8000/v1/")
    assert spec == Spec("openai", "m", "http://127.0.0.1:8000/v1") and str(spec) == "openai:m@http://127.0.0.1:8000/v1"
    assert parse_spec(spec) is spec and parse_spec(" smollm2 ") == Spec("smollm2", "") and str(Spec("smollm2", "")) == "smollm2"
    for bad, message in [("hf", "expected 'hf:<hub id or local dir>'"), ("smollm2:x", "expected 'smollm2'"),
                         ("nope:x", "unknown model spec 'nope:x'; accepted model specs: 'hf:"), ("python:mod", "python:<module>:<attr>")]:
        with pytest.raises(UserInputError, match=message):
            parse_spec(bad)
    (tmp_path / "spec_models.py").write_text("def no(messages):\n    return 'no'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    model = load_model(Spec("python", "spec_models:no"))
    assert model.chat([[{"role": "user", "content": "?"}]], None) == ["no"]


def test_the_settings_table_holds_core_and_declared_rows_once():
    names = [s.name for s in config.SETTINGS]
    assert len(names) == len(set(names))
    for row in ("perturbations", "attribution", "text_search_budget", "xstar_budget", "dtype", "device",
                "trust_remote_code", "concurrency", "timeout", "max_retries"):
        assert row in names and row not in config._CORE_BY_NAME
    assert config.default("perturbations") == 4 and config.RunSpec().timeout == 60.0
    assert ModelOptions.from_spec(config.RunSpec(concurrency=3)).max_concurrency == 3


def test_lookups_import_only_declarations():
    code = ("import sys\n"
            "import sce_checks.plugin\n"
            "from sce_checks.config import SETTINGS\n"
            "from sce_checks.checks import check_of, family_of, known_units, units, unit_of\n"
            "from sce_checks.models import SPEC_HELP, parse_spec\n"
            "parse_spec('hf:org/model'); parse_spec('openai:m@http://x'); check_of('minimal'); known_units()\n"
            "family_of('ct'); units(['sce', 'inv'], ['minimal'])\n"
            "loaded = [m for m in sys.modules if m.startswith('sce_checks')]\n"
            "print(sorted(m for m in loaded if m.rpartition('.')[2] in ('sce', 'perturbation', 'stability', "
            "'counterfactual', 'self_consistency', 'hf', 'openai', 'python', 'plots', 'smollm2')))\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'matplotlib', 'numpy'}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "[]"]


def test_check_entries_refuse_malformed_declarations():
    ok = {"name": "x", "description": "?", "implementation": "m:C"}
    for change, message in [({"name": "a-b"}, "identifier"), ({"implementation": "m.C"}, "'module:Class'"),
                            ({"figures": (Figure("a"), Figure("a"))}, "declared twice"),
                            ({"counts": ("n",)}, "counts names 'n'"), ({"plots": "p"}, "tuple of plot names")]:
        with pytest.raises(ValueError, match=message):
            CheckEntry(**{**ok, **change})


# -- the registry itself, on a group of its own -------------------------------------------------------

GROUP = "sce_checks.test_things"


@pytest.fixture
def things(tmp_path, monkeypatch):
    """A registry of `CheckEntry` declarations in a test group, and three installed packages."""
    site = tmp_path / "site"
    good = "from sce_checks.checks import CheckEntry\nA = CheckEntry(name='a', description='?', implementation='m:C')\n"
    install(site, "one", {"one.py": good + "B = CheckEntry(name='b', description='?', implementation='nowhere:C')\n"
                                           "WRONG = CheckEntry(name='z', description='?', implementation='m:C')\n"
                                           "def good():\n    pass\n"},
            {GROUP: {"a": "one:A", "b": "one:B", "c": "one:WRONG", "d": "one:good"}})
    install(site, "two", {"two.py": good}, {GROUP: {"a": "two:A"}})
    install(site, "three", {"three.py": "raise ImportError('gone')\n"}, {GROUP: {"e": "three:E"}})
    monkeypatch.syspath_prepend(str(site))
    return Registry(GROUP, "thing", "sce_checks.checks.base:CheckEntry", own=None)


def test_registry_lookups_raise_one_line_and_searches_pass_them_by(things):
    assert things.names() == ("a", "b", "c", "d", "e")
    for name, message in [("a", "thing 'a' is registered twice, by one (one:A) and by two (two:A)"),
                          ("c", "declares the name 'z'; the entry point's name and the declared name must match"),
                          ("d", "names a function, not a CheckEntry"),
                          ("e", "thing 'e' (entry point three:E, distribution three) could not be loaded: ImportError: gone"),
                          ("f", "unknown thing 'f'; expected one of: a, b, c, d, e")]:
        with pytest.raises(UserInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
            things.declaration(name)
    assert things.declaration("b").name == "b"
    with pytest.raises(UserInputError, match=r"thing 'b' \(implementation nowhere:C, entry point one:B, distribution one\) "
                                             "could not be loaded: ModuleNotFoundError"):
        things.implementation("b")
    assert [e.name for e in things.usable()] == []  # b is broken now too
    with pytest.raises(UserInputError, match="registered twice"):
        things.entries()


def test_the_own_distribution_must_register_its_entries(tmp_path):
    stale = Registry("sce_checks.test_nothing", "thing", "sce_checks.checks.base:CheckEntry")
    with pytest.raises(UserInputError, match=r"the installed metadata of sce-checks \(.+\) registers no "
                                             "sce_checks.test_nothing entry points, so it is out of date; reinstall"):
        stale.names()


def test_docs_name_every_builtin_entry_point_in_pyproject():
    text = (REPO / "pyproject.toml").read_text()
    for registry in (CHECKS, BACKENDS, PLOTS):
        assert f'[project.entry-points."{registry.group}"]' in text
        for name in registry.names():
            assert f"\n{name} = " in text, name
    assert Path(REPO / "docs" / "writing-backends.md").is_file()


@pytest.mark.parametrize("rows, message", [
    ((config.Setting("quiet", "bool", False, "?"),), "a name sce-checks keeps for itself"),
    ((config.Setting("limit", "int", 3, "?"),), "the setting 'limit', which is already a different setting"),
    ((config.Setting("my_limit", "int", 3, "?", flag="limit"),), "whose flag --limit is already the flag of 'limit'"),
    ((config.Setting("x", "number", 3, "?"),), "a malformed setting 'x'"),
    ([config.Setting("x", "int", 3, "?")], "not a tuple of sce_checks.config.Setting rows"),
])
def test_a_declared_row_that_contradicts_the_table_is_refused(rows, message):
    table = dict(config.BY_NAME)
    assert message in config._row_problem(rows, table, {s.option: s.name for s in table.values()})
    assert config._row_problem((table["perturbations"],), table, {}) is None  # the same row again: shared
