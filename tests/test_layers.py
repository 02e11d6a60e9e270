"""The package's layers import downwards only (docs/architecture.md, "Imports"): no import
circle between modules, no module importing one of a higher layer (LAYERS), imports at the top
of the module except the few named in LATE, each heavy library imported only by
sce_checks/optional.py, and no function over 80 lines. The checks, thresholds, assertions and
the regression engine import nothing from report/ (their cells, inert text and table layout are
sce_checks/cells.py, safe.py and layout.py), and report/ only renders: it imports no statistics
library and none of the regression engine's tests."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sce_checks"
BELOW_REPORT = [*sorted((PACKAGE / "checks").glob("*.py")), *sorted((PACKAGE / "regression").glob("*.py")),
                *(PACKAGE / name for name in ("thresholds.py", "assertions.py", "cells.py", "safe.py", "layout.py"))]
STATISTICS = ("scipy", "statsmodels", "sce_checks.regression.paired", "sce_checks.regression.planning",
              "sce_checks.metrics.stats")


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, wherever the import statement is."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


@pytest.mark.parametrize("path", BELOW_REPORT, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_layer_below_the_reports_imports_them(path):
    assert sorted(m for m in imported(path) if m == "sce_checks.report" or m.startswith("sce_checks.report.")) == []


@pytest.mark.parametrize("path", sorted((PACKAGE / "report").glob("*.py")), ids=lambda p: p.name)
def test_the_reports_compute_no_statistics(path):
    assert sorted(m for m in imported(path) if m.startswith(STATISTICS)) == []


# Bottom to top: a module imports modules of its own layer or of layers below, never above. A
# name is a module of sce_checks/ or a package (all its modules); "__init__" is sce_checks itself.
LAYERS = [
    ["__init__", "errors", "paths", "choices", "safe", "cells", "layout", "progress", "environment", "notices",
     "registry", "userfiles", "optional"],
    ["config"],
    ["tasks"],
    ["parsing", "metrics"],
    ["perturb", "models"],
    ["prompts", "search", "strategies"],
    ["results", "checks"],
    ["thresholds", "regression"],
    ["stopping"],
    ["audit"],
    ["report"],
    ["assertions", "preflight", "auditfile", "session", "collect", "closing"],
    ["plugin", "cli"],
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}
# the only imports inside a function: what the plugin (loaded by every pytest run) needs only in
# a run that uses sce-checks (the items, the audit, the preflight, the end of the session:
# docs/architecture.md measures why), and the hf backend's modules that load torch and
# transformers at their top
LATE = {("plugin", "sce_checks.collect"), ("plugin", "sce_checks.audit"), ("plugin", "sce_checks.preflight"),
        ("plugin", "sce_checks.closing"),
        ("models.hf", "sce_checks.models.json_stop"), ("models.hf", "sce_checks.models.constrained"),
        ("models.hf", "sce_checks.models.sampling")}
HEAVY = ("torch", "transformers", "huggingface_hub", "gguf", "llguidance", "captum", "lemminflect", "scipy",
         "matplotlib")


def module_name(path: Path) -> str:
    """``models.hf`` for sce_checks/models/hf.py, ``models`` for its __init__.py, ``__init__`` for the package's."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def import_nodes(path: Path) -> Iterator[tuple[ast.AST, bool]]:
    """Every import statement of ``path`` and whether it sits inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    inner = {id(node) for f in functions for node in ast.walk(f) if node is not f}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, id(node) in inner


def imported_names(node: ast.AST) -> list[str]:
    """The dotted names an import statement loads: the module, and for ``from package import x``
    also ``package.x`` (the submodule x, where x is one). sce_checks/ imports absolutely only."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    assert node.level == 0 and node.module, f"relative import at line {node.lineno}"
    return [node.module, *(f"{node.module}.{a.name}" for a in node.names)]


def ours(dotted: str) -> str | None:
    """The module of sce_checks/ a dotted name is, if it is one."""
    if dotted == "sce_checks":
        return "__init__"
    if dotted.startswith("sce_checks."):
        return dotted.removeprefix("sce_checks.") if dotted.removeprefix("sce_checks.") in MODULES else None
    return None


def graph() -> dict[str, set[str]]:
    """Module -> the modules of sce_checks/ it imports, anywhere in it."""
    return {name: {m for node, _ in import_nodes(path) for dotted in imported_names(node)
                   if (m := ours(dotted)) and m != name}
            for name, path in MODULES.items()}


def test_no_import_circle():
    edges = graph()

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in edges[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    assert sorted(m for m in edges if m in reach(m)) == []


def test_every_module_has_a_layer():
    assert sorted(m for m in MODULES if m.split(".")[0] not in LAYER) == []


def test_no_module_imports_a_higher_layer():
    upward = sorted((a, b) for a, targets in graph().items() for b in targets
                    if LAYER[b.split(".")[0]] > LAYER[a.split(".")[0]])
    assert upward == []


def test_imports_inside_functions_are_only_the_named_ones():
    late = sorted((name, dotted) for name, path in MODULES.items() for node, inside in import_nodes(path) if inside
                  for dotted in imported_names(node)[-1:]
                  if not any((name, d) in LATE for d in imported_names(node)))
    assert late == []


def test_each_heavy_library_is_imported_by_optional_only():
    heavy = sorted((name, dotted) for name, path in MODULES.items() if name != "optional"
                   for node, _ in import_nodes(path) for dotted in imported_names(node)
                   if dotted.split(".")[0] in HEAVY)
    assert heavy == []


def test_no_function_over_80_lines():
    long = sorted(f"{module_name(path)}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
                  for path in MODULES.values() for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                  if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 80)
    assert long == []
