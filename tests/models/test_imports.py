"""How the modules of sce_checks/models/ import each other: one way (identity below hf below
smollm2, no circle), at the top of the module except the heavy libraries, and light enough that
importing the package or the opener brings in neither torch nor transformers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.helpers.projects import REPO

MODELS = REPO / "sce_checks" / "models"
# imported where used: the libraries a cached rerun or an openai/python run never needs, and the
# modules of ours that import them at their top
HEAVY = {"torch", "transformers", "llguidance", "gguf", "scipy", "huggingface_hub",
         "sce_checks.models.json_stop", "sce_checks.models.constrained", "sce_checks.models.sampling"}


def imports(path: Path) -> list[tuple[str, bool]]:
    """(module imported, whether outside every function) for every import in ``path``."""
    tree = ast.parse(path.read_text())
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    inner = {id(node) for f in functions for node in ast.walk(f) if node is not f}
    top = {id(node) for node in ast.walk(tree)} - inner
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from sce_checks.models import http``: the submodule, not the package
            sub = [f"{node.module}.{alias.name}" for alias in node.names
                   if node.module == "sce_checks.models" and (MODELS / f"{alias.name}.py").exists()]
            out += [(n, id(node) in top) for n in sub] or [(node.module, id(node) in top)]
    return out


def graph() -> dict[str, set[str]]:
    """Module name -> the sce_checks.models submodules it imports (anywhere in it)."""
    return {p.stem: {name.rsplit(".", 1)[1] for name, _ in imports(p)
                     if name.startswith("sce_checks.models.") and name.count(".") == 2}
            for p in MODELS.glob("*.py") if p.stem != "__init__"}


def test_identity_hf_and_smollm2_depend_one_way():
    edges = graph()
    assert "hf" not in edges["identity"] and "smollm2" not in edges["identity"]
    assert "smollm2" not in edges["hf"]
    assert {"hf", "identity"} <= edges["smollm2"]


def test_no_module_of_models_imports_itself_through_others():
    edges = graph()

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    assert [m for m in edges if m in reach(m)] == []


def test_imports_inside_functions_are_only_the_heavy_libraries():
    """models/__init__.py included: it reaches each backend's loader through the registry
    (sce_checks/registry.py), which imports the backend's module when its spec is loaded."""
    late = {(p.name, name) for p in MODELS.glob("*.py")
            for name, at_top in imports(p) if not at_top and name.split(".")[0] not in HEAVY and name not in HEAVY}
    assert late == set()


def test_the_package_the_opener_and_the_audit_import_neither_torch_nor_transformers():
    code = ("import sys, sce_checks.models, sce_checks.models.opening, sce_checks.models.identity, sce_checks.audit; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"
