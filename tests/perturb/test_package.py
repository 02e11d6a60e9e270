"""The sce_checks.perturb package: light to import, and every public name reachable from the package."""

from __future__ import annotations

import subprocess
import sys


def test_import_stays_light() -> None:
    code = "import sys, sce_checks.perturb; print('lemminflect' in sys.modules, 'hypothesis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_package_re_exports_every_module_s_public_names() -> None:
    import sce_checks.perturb as package
    from sce_checks.perturb import edits, families, grid_moves, insertions, tagging, wordlists

    modules = (edits, wordlists, tagging, insertions, families, grid_moves)
    exported = [name for m in modules for name in m.__all__]
    assert sorted(exported) == sorted(package.__all__) and len(set(exported)) == len(exported)
    for m in modules:
        for name in m.__all__:
            assert getattr(package, name) is getattr(m, name), (m.__name__, name)
