"""What a check is, and the registry of checks.

A check is one class, in one module, that declares everything the rest of sce-checks needs to
know about it (lm-evaluation-harness' ``register_metric`` / ``register_model`` carry metadata the
same way):

* ``name`` and ``question`` (one line: what the check asks of the model);
* ``settings``: a dataclass; each field named like a setting of the run specification
  (sce_checks/config.py: ``seed``, ``prediction``, ``perturbations``, ...) gets that setting's
  value, the others keep their defaults;
* ``figures``: `Figure` declarations (direction, headline, Wilson interval), read by reports,
  thresholds and baselines;
* ``family``: checks that share their model work name the same family and are computed together
  (ct, cct and phi_cct share one set of interventions);
* ``applies(task, model, settings)``: why it cannot run here, asked before any model call;
* ``run(...)``: its stages, from examples to `CheckResult` objects;
* ``example_table(result, k)``: its failing examples for the reports.

Audit, reports, thresholds, baselines, the command line, the pytest options and audit files read
the registry and never name a check. Built-in checks live in this package; a check from another
package registers through the entry point group ``sce_checks.checks`` (docs/writing-checks.md):

    [project.entry-points."sce_checks.checks"]
    keyword = "my_package.checks:KeywordCheck"

Names are known without importing any check module (the built-ins' names are listed here, entry
points carry theirs), so the pytest plugin and ``--help`` stay light; the modules are imported on
the first real use.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Sequence

from sce_checks.errors import UserInputError

ENTRY_POINT_GROUP = "sce_checks.checks"

# name -> "module:class" of the built-in checks, in the order reports list them
BUILTIN: dict[str, str] = {
    "sce": "sce_checks.checks.sce:SCECheck",
    "inv": "sce_checks.checks.perturbation:InvarianceCheck",
    "dir": "sce_checks.checks.perturbation:DirectionalCheck",
    "stability": "sce_checks.checks.stability:StabilityCheck",
    "ct": "sce_checks.checks.counterfactual:CTCheck",
    "cct": "sce_checks.checks.counterfactual:CCTCheck",
    "phi_cct": "sce_checks.checks.counterfactual:PhiCCTCheck",
    "self_consistency": "sce_checks.checks.self_consistency:SelfConsistencyCheck",
}


FAILING_HEADERS = ["id", "input", "case", "answer", "detail"]  # the usual table of failing examples


@dataclass(frozen=True)
class Figure:
    """A figure a check reports. ``better``: "higher", "lower", or None (descriptive: shown,
    never compared against a baseline). ``headline``: shown first in reports and attached to
    pytest items. ``interval``: the result also holds ``<name>_ci``, a Wilson 95% interval, so
    thresholds can gate ``<name>_lower`` / ``<name>_upper``. ``baseline``: compared against a
    saved baseline (figures with a direction only). ``primary``: the check's pre-specified
    endpoint, a figure a paired baseline comparison gates by default (True, or the task kinds
    it is primary for: minimality is RCF_A on grids and the distance on text) (the others are tested and
    shown, and gate when named with --baseline-metric: every gated figure costs the others power
    under Holm's correction, docs/regression.md). ``tasks``: the task kinds whose results
    report it, so a threshold on a figure a task never reports is refused before any model call."""

    name: str
    better: str | None = "higher"
    headline: bool = False
    interval: bool = False
    baseline: bool = True  # compared against a saved baseline (when it has a direction)
    primary: bool | tuple[str, ...] = False  # gated by default in a paired comparison (True, or for these task kinds)
    tasks: tuple[str, ...] = ("grid", "text")

    def __post_init__(self) -> None:
        if self.better not in ("higher", "lower", None):
            raise ValueError(f"figure {self.name!r}: better must be 'higher', 'lower' or None, not {self.better!r}")


@dataclass(frozen=True)
class Outcome:
    """A per-example outcome a baseline stores and a paired comparison tests (sce_checks/
    regression/gate.py): the figures it underlies are compared example by example on the ids both
    runs share, a binary outcome with the exact McNemar test, a continuous one with the Wilcoxon
    signed-rank test (sce_checks/regression/paired.py). ``read`` takes an example's JSON record
    (`ExampleRecord.to_dict`: the record's fields with its ``extra`` keys beside them) and gives
    the value, or None where the example does not count for the figure (validity of an example
    without an SCE); by default the record's field called ``name``. A figure with a direction and
    no outcome is compared on its aggregate against the tolerance alone."""

    name: str
    kind: str  # "binary" | "continuous"
    figures: tuple[str, ...]
    read: Callable[[dict[str, Any]], Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("binary", "continuous"):
            raise ValueError(f"outcome {self.name!r}: kind must be 'binary' or 'continuous', not {self.kind!r}")

    def value(self, example: dict[str, Any]) -> Any:
        """The outcome of one example (a JSON record), as a bool or float, or None."""
        raw = self.read(example) if self.read is not None else example.get(self.name)
        if raw is None:
            return None
        if self.kind == "binary":
            return bool(raw)
        return float(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool) else None


class Check:
    """Base class of a check. Subclasses set the class attributes and implement `run`."""

    name: ClassVar[str]
    question: ClassVar[str]
    settings: ClassVar[type]
    figures: ClassVar[tuple[Figure, ...]] = ()
    family: ClassVar[str | None] = None  # checks of one family are computed together (see module)
    counts: ClassVar[tuple[str, ...]] = ()  # sample-size figures shown beside the headline ones
    reads_settings: ClassVar[tuple[str, ...]] = ()  # run settings read under another field name
    table_headers: ClassVar[list[str] | None] = None  # a results table of its own (else the shared one)
    plots: ClassVar[tuple[str, ...]] = ()  # plots of report/plots.py drawn for its results
    outcomes: ClassVar[tuple[Outcome, ...]] = ()  # per-example outcomes under its figures, for paired baselines

    # -- units: the rows of results a check reports for a dataset --------------------------------
    def units(self, variants: Sequence[str]) -> list[str]:
        """The units this check reports: its own name (the SCE check reports one per variant)."""
        return [self.name]

    def unit_of(self, result: Any) -> str:
        return self.name

    # -- configuration ----------------------------------------------------------------------------
    def settings_from(self, spec: Any, **fixed: Any) -> Any:
        """The check's settings: every field named like a run-specification setting gets that
        value; ``fixed`` (e.g. the variants the run asks for) wins; other fields keep their defaults."""
        values = {f.name: getattr(spec, f.name) for f in dataclasses.fields(self.settings) if hasattr(spec, f.name)}
        values.update(fixed)
        return self.settings(**values)

    def key_settings(self, spec: Any, unit: str) -> Any:
        """What one unit's result depends on beyond the model and the sample (hashable): the
        settings of the check. Two requests with equal keys share one computation."""
        return self.settings_from(spec)

    def applies(self, task: Any, model: Any, settings: Any) -> str | None:
        """Why this check cannot run on ``task`` with ``model`` (one line), or None. Asked before
        any model call; a check that cannot run is listed as not applicable in every report.
        Override this, or `require` where the check already raises `CheckNotApplicable`."""
        from sce_checks.errors import CheckNotApplicable

        try:
            self.require(task, model, settings)
        except CheckNotApplicable as exc:
            return str(exc)
        return None

    def require(self, task: Any, model: Any, settings: Any) -> None:
        """Raise `CheckNotApplicable` when the check cannot run here (see `applies`)."""

    # -- the work -----------------------------------------------------------------------------------
    def run(self, model: Any, model_name: str, task: Any, examples: Sequence[tuple[str, Any]], settings: Any,
            shared: dict[str, Any]) -> list[Any]:
        """The check's stages on one task: `CheckResult` objects, one per unit. ``shared`` is
        one dict per (audit, task) in which checks of a family keep the work they share."""
        raise NotImplementedError

    # -- reports ------------------------------------------------------------------------------------
    def figure_notes(self, result: Any) -> list[str]:
        """Extra parts of the result's one-line summary (e.g. phi-CCT's 2x2 counts)."""
        return []

    def table_row(self, result: Any) -> list[str]:
        """The result's row in the check's own table (`table_headers`)."""
        raise NotImplementedError

    def summary_line(self, result: Any) -> str | None:
        """One line for assertion messages, or None for the usual one (unit, sample size and
        headline figures: sce_checks/cells.py, `summary_line`)."""
        return None

    def example_table(self, result: Any, k: int) -> tuple[str, list[str], list[list[str]]] | None:
        """(title, headers, rows) of up to ``k`` examples worth showing (failures first), or None;
        rows of failing examples usually follow `FAILING_HEADERS`."""
        return None

    def __repr__(self) -> str:
        return f"<check {self.name}>"


# -- the registry ----------------------------------------------------------------------------------

_REGISTRY: dict[str, Check] = {}
_ENTRY_POINTS: dict[str, Any] | None = None


def register_check(check: Check | type[Check]) -> Check:
    """Add a check (a `Check` subclass or instance); its declarations are validated at once."""
    instance = check() if isinstance(check, type) else check
    _validate_check(instance)
    _REGISTRY[instance.name] = instance
    return instance


def _validate_check(check: Check) -> None:
    where = f"check {getattr(check, 'name', type(check).__name__)!r}"
    for attr in ("name", "question", "settings"):
        if not getattr(check, attr, None):
            raise UserInputError(f"{where} declares no {attr}")
    if not dataclasses.is_dataclass(check.settings):
        raise UserInputError(f"{where}: settings must be a dataclass, not {check.settings!r}")
    if not isinstance(check.name, str) or not check.name.isidentifier():
        raise UserInputError(f"{where}: its name must be an identifier (letters, digits, underscores)")
    names = [f.name for f in check.figures]
    if len(set(names)) != len(names):
        raise UserInputError(f"{where}: a figure is declared twice")
    directed = {f.name for f in check.figures if f.better is not None}
    for outcome in check.outcomes:
        for figure in outcome.figures:
            if figure not in directed:
                raise UserInputError(f"{where}: outcome {outcome.name!r} names {figure!r}, not a declared figure with a "
                                     "direction")
    if type(check).run is Check.run:
        raise UserInputError(f"{where} does not implement run()")


def _entry_points() -> dict[str, Any]:
    """Checks other packages register (``sce_checks.checks`` entry points), by name, not loaded."""
    global _ENTRY_POINTS
    if _ENTRY_POINTS is None:
        from importlib.metadata import entry_points

        _ENTRY_POINTS = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in BUILTIN}
    return _ENTRY_POINTS


def check_names_known() -> tuple[str, ...]:
    """Every check name that can be asked for, without importing any check module."""
    return tuple(dict.fromkeys([*BUILTIN, *_entry_points(), *_REGISTRY]))


def get_check(name: str) -> Check:
    """The registered check called ``name``, importing its module on first use."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    target = BUILTIN.get(name)
    if target is not None:
        module, _, attr = target.partition(":")
        return register_check(getattr(importlib.import_module(module), attr))
    ep = _entry_points().get(name)
    if ep is None:
        raise UserInputError(f"unknown check {name!r}; expected one of: {', '.join(check_names_known())}")
    try:
        loaded = ep.load()
    except Exception as exc:  # a user's package failing to import: one line, not a traceback
        raise UserInputError(f"check {name!r} (entry point {ep.value}) could not be loaded: "
                             f"{type(exc).__name__}: {exc}") from None
    check = register_check(loaded)
    if check.name != name:
        raise UserInputError(f"entry point {name!r} ({ep.value}) registers a check named {check.name!r}; the names must match")
    return check


def all_checks() -> list[Check]:
    return [get_check(n) for n in check_names_known()]


def check_names(checks: Sequence[str]) -> tuple[str, ...]:
    """Validated, de-duplicated check names, in the order given."""
    out = tuple(dict.fromkeys(checks))
    if not out:
        raise UserInputError("no check given; expected one or more of: " + ", ".join(check_names_known()))
    known = check_names_known()
    for c in out:
        if c not in known:
            raise UserInputError(f"unknown check {c!r}; expected one of: {', '.join(known)}")
    return out


def family_of(name: str) -> tuple[str, ...]:
    """The checks computed together with ``name`` (itself alone when it has no family), in
    registry order."""
    family = get_check(name).family
    if family is None:
        return (name,)
    return tuple(c.name for c in all_checks() if c.family == family)


def units(checks: Sequence[str], variants: Sequence[str]) -> list[str]:
    """The result rows of an audit, check by check, each once."""
    out: list[str] = []
    for c in checks:
        out.extend(get_check(c).units(variants))
    return list(dict.fromkeys(out))


def check_of(unit: str) -> str:
    """The check a unit belongs to (an SCE variant belongs to ``sce``)."""
    if unit in check_names_known():
        return unit
    for check in all_checks():
        if unit in check.units(_all_variants()):
            return check.name
    raise UserInputError(f"unknown check or variant {unit!r}")


def unit_of(result: Any) -> str:
    """The unit a `CheckResult` is reported under."""
    return get_check(result.check).unit_of(result)


def is_unit(name: str) -> bool:
    return name in known_units()


def known_units() -> tuple[str, ...]:
    """Every check name and every unit a check reports (the SCE variants)."""
    out = list(check_names_known())
    for check in all_checks():
        out.extend(check.units(_all_variants()))
    return tuple(dict.fromkeys(out))


def _all_variants() -> Sequence[str]:
    from sce_checks.config import VARIANTS

    return VARIANTS


def figure_of(check: str, name: str) -> Figure | None:
    return next((f for f in get_check(check).figures if f.name == name), None)


def compared_figures(check: str) -> tuple[str, ...]:
    """The figures of ``check`` a baseline compares: those with a direction."""
    return tuple(f.name for f in get_check(check).figures if f.better is not None and f.baseline)


def outcome_of(check: str, figure: str) -> Outcome | None:
    """The per-example outcome a baseline compares ``figure`` of ``check`` on, if it declares one."""
    return next((o for o in get_check(check).outcomes if figure in o.figures), None)


def primary_figures(check: str, reported: Sequence[str] = ()) -> tuple[str, ...]:
    """The figures of ``check`` a paired baseline comparison gates by default, for a result that
    reported ``reported`` (its task kinds are those every reported figure is declared for)."""
    figures = get_check(check).figures
    kinds = {"grid", "text"}
    for f in figures:
        if f.name in reported:
            kinds &= set(f.tasks)
    return tuple(f.name for f in figures if f.better is not None and f.primary
                 and (f.primary is True or kinds & set(f.primary)))


def headline(check: str) -> tuple[str, ...]:
    return tuple(f.name for f in get_check(check).figures if f.headline)


def lower_is_better(check: str, name: str) -> bool:
    figure = figure_of(check, name)
    return figure is not None and figure.better == "lower"
