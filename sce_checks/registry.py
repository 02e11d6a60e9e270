"""One registry kind for what packages add to sce-checks: checks, model backends and plots.

Each kind is an entry-point group: ``sce_checks.checks``, ``sce_checks.backends``,
``sce_checks.plots``. sce-checks registers its own entries in its pyproject.toml exactly as any
other package does. An entry point names a *declaration*: a small object in a light module (an
`Entry`: `CheckEntry`, `BackendEntry`, `PlotEntry`) holding what the rest of sce-checks reads
without running the entry (its name, one line on what it is, the settings rows it adds to the
run specification, and per kind its figures, its spec syntax, ...), and naming its
implementation as ``"module:attr"``, imported the first time the entry is really used. So:

* names are known from the installed metadata alone (``--help`` and pytest start-up stay light);
* looking up one entry imports its declaration, and using it its implementation, nothing else;
* a name two distributions register (a plugin named like a built-in included) is an error naming
  both, raised where the name is used;
* an entry whose declaration or implementation fails to import fails where it is used, in one
  line naming the entry point and its distribution; every other entry keeps working.

Two ways through a registry: by name (`Registry.declaration`, `Registry.implementation`: they
raise for an unknown name, a clash or a broken entry), or over all entries: `Registry.usable`
(the entries that work, for searches an unrelated broken plugin must not stop: which check
reports a unit, the settings table) and `Registry.entries` (every one, raising like a lookup,
for listings that need them all). Like lm-evaluation-harness' ``register_model``, but lazy and
with its state in `Registry` objects (one per kind, below), not module-level dictionaries.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from importlib.metadata import distribution, entry_points, PackageNotFoundError
from typing import Any, Callable, Iterator

from sce_checks.errors import UserInputError

OWN_DISTRIBUTION = "sce-checks"
IN_CODE = "(registered in code)"  # the distribution of an entry added with `Registry.add`


@dataclass(frozen=True, kw_only=True)
class Entry:
    """What every entry declares. ``implementation``: ``"module:attr"``, imported on first use.
    ``settings``: rows (`sce_checks.config.Setting`) the entry adds to the run specification: a
    flag, a pytest option, an ini key (and an audit-file key where the row says so)."""

    name: str
    description: str
    implementation: str
    settings: tuple[Any, ...] = ()


@dataclass(frozen=True)
class _Source:
    """Where one registration of a name comes from."""

    distribution: str
    value: str  # what the entry point names ("module:attr")
    load: Callable[[], Any]

    def where(self) -> str:
        return f"entry point {self.value}, distribution {self.distribution}"


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as one line: its type and message, whitespace collapsed, cut at ``limit``."""
    text = re.sub(r"\s+", " ", f"{type(exc).__name__}: {exc}").strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def import_object(target: str) -> Any:
    """The object ``"module:attr"`` names (``attr`` may be dotted)."""
    module, colon, attr = target.partition(":")
    if not colon or not module or not attr:
        raise ValueError(f"expected 'module:attr', got {target!r}")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class Registry:
    """The entries of one entry-point ``group``. ``kind`` names them in messages ("check");
    ``entry_type`` (``"module:attr"``) is the `Entry` subclass their declarations must be."""

    def __init__(self, group: str, kind: str, entry_type: str, own: str | None = OWN_DISTRIBUTION) -> None:
        self.group = group
        self.kind = kind
        self._entry_type = entry_type
        self._own = own
        self._sources: dict[str, list[_Source]] | None = None
        self._declarations: dict[str, Any] = {}
        self._implementations: dict[str, Any] = {}
        self._failures: dict[str, str] = {}

    # -- discovery ----------------------------------------------------------------------------------
    def _all(self) -> dict[str, list[_Source]]:
        """Every registration by name, read once from the installed metadata: sce-checks' own
        first (in its pyproject.toml's order), then other distributions'; nothing imported."""
        if self._sources is None:
            found: dict[str, list[_Source]] = {}
            eps = list(entry_points(group=self.group))
            eps.sort(key=lambda ep: self._distribution(ep) != self._own)
            for ep in eps:
                found.setdefault(ep.name, []).append(_Source(self._distribution(ep), ep.value, ep.load))
            self._sources = found
        if self._own is not None and not any(s.distribution == self._own for srcs in self._sources.values()
                                             for s in srcs):
            raise UserInputError(f"the installed metadata of sce-checks{self._own_metadata()} registers no {self.group} "
                                 "entry points, so it is out of date; reinstall sce-checks (pip install -e <its folder>, "
                                 "or pip install sce-checks)")
        return self._sources

    def _own_metadata(self) -> str:
        """Where the metadata of sce-checks was found (a stale ``*.egg-info`` early on the path
        shadows the installed one), for the message above."""

        try:
            path = getattr(distribution(self._own), "_path", None)
        except PackageNotFoundError:
            return " (none found)"
        return f" ({path})" if path else ""

    def _distribution(self, ep: Any) -> str:
        dist = getattr(ep, "dist", None)
        name = getattr(dist, "name", None) if dist is not None else None
        if not name:
            return "an unknown distribution"
        return self._own if self._own is not None and _canonical(name) == _canonical(self._own) else name

    def names(self) -> tuple[str, ...]:
        """Every registered name, from the metadata alone (nothing imported, nothing raised for
        clashes or broken entries: those fail where they are used)."""
        return tuple(self._all())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._all()

    # -- by name ------------------------------------------------------------------------------------
    def _source(self, name: str) -> _Source:
        sources = self._all().get(name)
        if not sources:
            raise UserInputError(f"unknown {self.kind} {name!r}; expected one of: {', '.join(self.names())}")
        if len(sources) > 1:
            a, b = sources[0], sources[1]
            raise UserInputError(f"{self.kind} {name!r} is registered twice, by {a.distribution} ({a.value}) and by "
                                 f"{b.distribution} ({b.value}); uninstall one of them or rename its entry point")
        if name in self._failures:
            raise UserInputError(self._failures[name])
        return sources[0]

    def _fail(self, name: str, message: str) -> UserInputError:
        """Record why ``name`` is unusable: every later use raises the same line."""
        self.fail(name, message)
        return UserInputError(self._failures[name])

    def declaration(self, name: str) -> Any:
        """The declaration of ``name``, importing only its (light) module; `UserInputError`, one
        line, for an unknown name, a clash or a declaration that cannot be loaded."""
        if name in self._declarations:
            return self._declarations[name]
        source = self._source(name)
        try:
            declared = source.load()
        except Exception as exc:  # a package failing to import: one line, not a traceback
            raise self._fail(name, f"{self.kind} {name!r} ({source.where()}) could not be loaded: {one_line(exc)}") from None
        entry_type = import_object(self._entry_type)
        if not isinstance(declared, entry_type):
            what = f"the class {declared.__name__}" if isinstance(declared, type) else f"a {type(declared).__name__}"
            raise self._fail(name, f"{self.kind} {name!r} ({source.where()}) names {what}, not a {entry_type.__name__}: "
                                   f"the entry point names the {self.kind}'s declaration, which names its implementation")
        if declared.name != name:
            raise self._fail(name, f"{self.kind} {name!r} ({source.where()}) declares the name {declared.name!r}; "
                                   "the entry point's name and the declared name must match")
        self._declarations[name] = declared
        return declared

    def implementation(self, name: str) -> Any:
        """The object the declaration of ``name`` names as its implementation, imported once."""
        if name in self._implementations:
            return self._implementations[name]
        declared = self.declaration(name)
        try:
            loaded = import_object(declared.implementation)
        except Exception as exc:
            where = self._source(name).where()
            raise self._fail(name, f"{self.kind} {name!r} (implementation {declared.implementation}, {where}) could not "
                                   f"be loaded: {one_line(exc)}") from None
        self._implementations[name] = loaded
        return loaded

    def where(self, name: str) -> str:
        """Where ``name`` is registered, for messages: its entry point(s) and distribution(s)."""
        return "; ".join(s.where() for s in self._all().get(name, ()))

    def fail(self, name: str, message: str) -> None:
        """Mark ``name`` unusable (its declaration contradicts another's): using it raises
        ``message``; searches over `usable` pass it by."""
        self._failures.setdefault(name, message)
        self._declarations.pop(name, None)

    # -- over all entries ---------------------------------------------------------------------------
    def usable(self) -> Iterator[Any]:
        """The declarations that load and whose name is registered once, in registry order;
        the others are passed by here (and fail where they are used)."""
        for name in self.names():
            try:
                yield self.declaration(name)
            except UserInputError:
                continue

    def entries(self) -> list[Any]:
        """Every declaration, for a listing that needs all of them: raises like a lookup."""
        return [self.declaration(name) for name in self.names()]

    def add(self, declaration: Any, implementation: Any = None) -> Any:
        """Register ``declaration`` from code (tests, scripts; packages use entry points), with
        its ``implementation`` given instead of imported when it is not None."""
        existing = self._all().get(declaration.name)
        if existing and self._declarations.get(declaration.name) is not declaration:
            raise UserInputError(f"{self.kind} {declaration.name!r} is already registered by "
                                 f"{existing[0].distribution} ({existing[0].value})")
        self._all()[declaration.name] = [_Source(IN_CODE, "<python>", lambda: declaration)]
        self._declarations[declaration.name] = declaration
        if implementation is not None:
            self._implementations[declaration.name] = implementation
        return declaration


CHECKS = Registry("sce_checks.checks", "check", "sce_checks.checks.base:CheckEntry")
BACKENDS = Registry("sce_checks.backends", "model backend", "sce_checks.models.base:BackendEntry")
PLOTS = Registry("sce_checks.plots", "plot", "sce_checks.report.plot_catalog:PlotEntry")
REGISTRIES: tuple[Registry, ...] = (CHECKS, BACKENDS, PLOTS)
