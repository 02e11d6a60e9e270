"""Plugin packages as pip installs them, built in a temporary folder: modules, and a ``.dist-info``
folder (METADATA, entry_points.txt) beside them, on a site folder a subprocess finds through
PYTHONPATH. The worked examples of docs/writing-checks.md and docs/writing-backends.md are read
from the pages themselves (their ``# path.py`` code blocks and ``pyproject.toml`` tables), so
the examples the docs show are the ones tested. Each run is a fresh process, as a user's would
be: the registries read the installed metadata once per process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
DOCS = (REPO / "docs" / "writing-checks.md", REPO / "docs" / "writing-backends.md")


def doc_files() -> dict[str, str]:
    """``path -> source`` of every Python block of the docs that starts with ``# <path>.py``."""
    out = {}
    for doc in DOCS:
        for block in re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), re.DOTALL):
            first = block.splitlines()[0]
            if re.fullmatch(r"# [\w/]+\.py", first):
                out[first[2:]] = block
    return out


def doc_entry_points() -> dict[str, dict[str, str]]:
    """``group -> {name: value}`` of the ``[project.entry-points."..."]`` tables of the docs."""
    out: dict[str, dict[str, str]] = {}
    for doc in DOCS:
        for block in re.findall(r"```toml\n(.*?)```", doc.read_text(encoding="utf-8"), re.DOTALL):
            for group, eps in tomllib.loads(block).get("project", {}).get("entry-points", {}).items():
                out.setdefault(group, {}).update(eps)
    return out


def install(site: Path, distribution: str, files: dict[str, str], entry_points: dict[str, dict[str, str]]) -> None:
    """Write ``files`` (packages get an ``__init__.py``) and the distribution's metadata."""
    for path, text in files.items():
        target = site / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.parent != site and not (target.parent / "__init__.py").exists():
            (target.parent / "__init__.py").write_text("")
        target.write_text(text)
    info = site / f"{distribution.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1\n")
    lines = []
    for group, eps in entry_points.items():
        lines.append(f"[{group}]")
        lines.extend(f"{name} = {value}" for name, value in eps.items())
        lines.append("")
    (info / "entry_points.txt").write_text("\n".join(lines))


def install_doc_examples(site: Path) -> None:
    """The docs' examples as two distributions: my-checks (the accuracy check and its plot) and
    my-backends (the keywords backend), each with the entry points naming its modules."""
    files, eps = doc_files(), doc_entry_points()
    for distribution, package in (("my-checks", "my_checks"), ("my-backends", "my_backends")):
        mine = {g: {n: v for n, v in table.items() if v.startswith(package + ".")} for g, table in eps.items()}
        install(site, distribution, {p: t for p, t in files.items() if p.startswith(package + "/")},
                {g: table for g, table in mine.items() if table})


class Runner:
    """``python -m ...`` in ``work`` with the site folders first on the path."""

    def __init__(self, work: Path, sites: list[Path], cache: Path) -> None:
        self.work = work
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join([*map(str, sites), str(work), str(REPO)]),
                        SCE_CHECKS_CACHE_DIR=str(cache))

    def __call__(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", *args], cwd=self.work, env=self.env, capture_output=True, text=True,
                              timeout=300)

    def python(self, code: str) -> subprocess.CompletedProcess:
        """``python -c code`` in the same environment."""
        return subprocess.run([sys.executable, "-c", code], cwd=self.work, env=self.env, capture_output=True, text=True,
                              timeout=300)
