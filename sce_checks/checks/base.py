"""What a check is, and how checks are found by name.

A check comes in two parts (sce_checks/registry.py):

* its *declaration*, a `CheckEntry` in a light module (the built-ins': sce_checks/checks/
  catalog.py), holding what the rest of sce-checks reads without running it: ``name``,
  ``description`` (one line: what the check asks of the model), ``figures`` (`Figure`
  declarations: direction, headline, Wilson interval, read by reports, thresholds and
  baselines), ``counts``, ``family`` (checks that share their model work name the same family
  and are computed together: ct, cct and phi_cct share one set of interventions),
  ``per_variant`` (one result per SCE variant), ``panels``, ``plots``, and the settings rows it
  adds to the run specification; and ``implementation``, ``"module:Class"``;
* its *implementation*, a `Check` subclass, imported the first time the check is used. It reads
  every declared fact from its declaration (``self.entry``; ``check.figures`` is
  ``check.entry.figures``), and adds the code: ``settings`` (a dataclass; each field named like
  a setting of the run specification, sce_checks/config.py, gets that setting's value),
  ``applies(task, model, settings)`` (why it cannot run here, asked before any model call),
  ``run(...)`` (its stages, from examples to `CheckResult` objects), ``outcomes`` (per-example
  outcomes for paired baselines) and ``example_table(result, k)``.

Audit, reports, thresholds, baselines, the command line, the pytest options and audit files ask
the functions below and never name a check. Built-in checks register through the entry point
group ``sce_checks.checks`` exactly as a check of another package does (docs/writing-checks.md):

    [project.entry-points."sce_checks.checks"]
    accuracy = "my_checks.catalog:ACCURACY"

Looking a check up imports its declaration module and, when it runs or reports, its
implementation module: nothing of the other checks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Sequence

from sce_checks.choices import VARIANTS
from sce_checks.errors import CheckNotApplicable, UserInputError
from sce_checks.registry import CHECKS, Entry

ENTRY_POINT_GROUP = CHECKS.group


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
    no outcome is compared on its aggregate against the tolerance alone. ``unit_mean``: each
    figure it underlies is the plain mean of its values, which lie in [0, 1] (a Gower distance,
    RCF_A), so ``--sequential`` can gate it with a confidence sequence (sce_checks/stopping.py);
    a binary outcome's figures are rates, such means already."""

    name: str
    kind: str  # "binary" | "continuous"
    figures: tuple[str, ...]
    read: Callable[[dict[str, Any]], Any] | None = None
    unit_mean: bool = False

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


@dataclass(frozen=True, kw_only=True)
class CheckEntry(Entry):
    """The declaration of a check (module docstring): what reports, thresholds, baselines, audit
    files and the settings table read without importing the check. Checked when it is built, so
    a malformed declaration is a broken entry (one line where the check is used).

    ``figures``: what its results report. ``counts``: figures shown as sample sizes beside the
    headline ones. ``family``: checks of one family are computed together. ``per_variant``: one
    result per SCE variant of the run, its unit named after the variant (the SCE check), instead
    of one named after the check. ``panels``: its example records are SCE records (results.py:
    `ExampleRecord`'s contract fields), drawn as one panel per example in the HTML report.
    ``plots``: names of registered plots (``sce_checks.plots``) drawn over its results."""

    figures: tuple[Figure, ...] = ()
    counts: tuple[str, ...] = ()
    family: str | None = None
    per_variant: bool = False
    panels: bool = False
    plots: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        where = f"check {self.name!r}"
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"{where}: its name must be an identifier (letters, digits, underscores)")
        if not isinstance(self.description, str) or not self.description.strip():
            raise ValueError(f"{where} declares no description")
        if not isinstance(self.implementation, str) or self.implementation.count(":") != 1:
            raise ValueError(f"{where}: implementation must be 'module:Class', not {self.implementation!r}")
        if not all(isinstance(f, Figure) for f in self.figures):
            raise ValueError(f"{where}: figures must be Figure declarations")
        names = [f.name for f in self.figures]
        if len(set(names)) != len(names):
            raise ValueError(f"{where}: a figure is declared twice")
        unknown = [c for c in self.counts if c not in names]
        if unknown:
            raise ValueError(f"{where}: counts names {unknown[0]!r}, not a declared figure")
        if isinstance(self.plots, str) or not all(isinstance(p, str) for p in self.plots):
            raise ValueError(f"{where}: plots must be a tuple of plot names")

    def units(self, variants: Sequence[str]) -> list[str]:
        """The units this check reports: its own name, or with ``per_variant`` the variants."""
        return list(variants) if self.per_variant else [self.name]

    def unit_of(self, result: Any) -> str:
        """The unit a `CheckResult` of this check is reported under."""
        return (result.variant or "") if self.per_variant else self.name

    def figure(self, name: str) -> Figure | None:
        return next((f for f in self.figures if f.name == name), None)


class Check:
    """Base class of a check's implementation. The registry builds it with its declaration
    (``entry``), from which it reads every declared fact; subclasses set ``settings`` (and
    ``outcomes``, ``reads_settings``, ``table_headers`` where they have them) and implement `run`."""

    settings: ClassVar[type]
    reads_settings: ClassVar[tuple[str, ...]] = ()  # run settings read under another field name
    table_headers: ClassVar[list[str] | None] = None  # a results table of its own (else the shared one)
    outcomes: ClassVar[tuple[Outcome, ...]] = ()  # per-example outcomes under its figures, for paired baselines

    def __init__(self, entry: CheckEntry) -> None:
        self.entry = entry

    # -- what its declaration says -----------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def question(self) -> str:
        """One line: what the check asks of the model (its declaration's description)."""
        return self.entry.description

    @property
    def figures(self) -> tuple[Figure, ...]:
        return self.entry.figures

    @property
    def counts(self) -> tuple[str, ...]:
        return self.entry.counts

    @property
    def family(self) -> str | None:
        return self.entry.family

    @property
    def plots(self) -> tuple[str, ...]:
        return self.entry.plots

    # -- units: the rows of results a check reports for a dataset --------------------------------
    def units(self, variants: Sequence[str]) -> list[str]:
        return self.entry.units(variants)

    def unit_of(self, result: Any) -> str:
        return self.entry.unit_of(result)

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


# -- looking checks up ------------------------------------------------------------------------------

_BUILT: dict[str, Check] = {}  # name -> the implementation, built once with its declaration


def check_entry(name: str) -> CheckEntry:
    """The declaration of check ``name`` (its light module only); `UserInputError`, one line,
    for an unknown name, a name two distributions register, or a declaration that cannot load."""
    return CHECKS.declaration(name)


def get_check(name: str) -> Check:
    """The check called ``name``, its implementation imported on first use (and nothing else)."""
    if name in _BUILT:
        return _BUILT[name]
    entry = check_entry(name)
    implementation = CHECKS.implementation(name)
    problem = _implementation_problem(entry, implementation)
    if problem:
        CHECKS.fail(name, f"check {name!r} (implementation {entry.implementation}): {problem}")
        check_entry(name)  # raises the message just recorded
    _BUILT[name] = implementation(entry)
    return _BUILT[name]


def register_check(entry: CheckEntry, implementation: type[Check]) -> Check:
    """Register a check from code (tests, scripts; packages use the entry point group), its
    implementation checked at once."""
    problem = _implementation_problem(entry, implementation)
    if problem:
        raise UserInputError(f"check {entry.name!r}: {problem}")
    CHECKS.add(entry, implementation)
    return get_check(entry.name)


def _implementation_problem(entry: CheckEntry, implementation: Any) -> str | None:
    """Why ``implementation`` cannot be the check ``entry`` declares, or None."""
    if not (isinstance(implementation, type) and issubclass(implementation, Check)):
        return f"{implementation!r} is not a subclass of sce_checks.checks.Check"
    settings = getattr(implementation, "settings", None)
    if not (isinstance(settings, type) and dataclasses.is_dataclass(settings)):
        return f"its settings must be a dataclass, not {settings!r}"
    if implementation.run is Check.run:
        return "it does not implement run()"
    directed = {f.name for f in entry.figures if f.better is not None}
    for outcome in implementation.outcomes:
        for figure in outcome.figures:
            if figure not in directed:
                return f"outcome {outcome.name!r} names {figure!r}, not a declared figure with a direction"
    return None


def check_names_known() -> tuple[str, ...]:
    """Every check name that can be asked for, from the installed metadata (nothing imported)."""
    return CHECKS.names()


def all_checks() -> list[Check]:
    """Every registered check, loaded: a listing that needs them all, so it raises, one line,
    for a clash or a broken check (a run that names neither is not affected by them)."""
    return [get_check(n) for n in CHECKS.names()]


def check_names(checks: Sequence[str]) -> tuple[str, ...]:
    """Validated, de-duplicated check names, in the order given; each check is loaded, so a
    clash or a broken check stops the run here, before any model call."""
    out = tuple(dict.fromkeys(checks))
    if not out:
        raise UserInputError("no check given; expected one or more of: " + ", ".join(check_names_known()))
    for c in out:
        get_check(c)
    return out


def family_of(name: str) -> tuple[str, ...]:
    """The checks computed together with ``name`` (itself alone when it has no family), in
    registry order."""
    family = check_entry(name).family
    if family is None:
        return (name,)
    return tuple(e.name for e in CHECKS.usable() if e.family == family)


def units(checks: Sequence[str], variants: Sequence[str]) -> list[str]:
    """The result rows of an audit, check by check, each once."""
    out: list[str] = []
    for c in checks:
        out.extend(check_entry(c).units(variants))
    return list(dict.fromkeys(out))


def variant_check() -> str | None:
    """The check whose units are the SCE variants (``per_variant``), if one is registered."""
    return next((e.name for e in CHECKS.usable() if e.per_variant), None)


def check_of(unit: str) -> str:
    """The check a unit belongs to (an SCE variant belongs to the `variant_check`)."""
    if unit in CHECKS:
        return unit
    for entry in CHECKS.usable():
        if unit in entry.units(VARIANTS):
            return entry.name
    raise UserInputError(f"unknown check or variant {unit!r}")


def unit_of(result: Any) -> str:
    """The unit a `CheckResult` is reported under."""
    return check_entry(result.check).unit_of(result)


def is_unit(name: str) -> bool:
    return name in known_units()


def known_units() -> tuple[str, ...]:
    """Every check name and every unit a check reports (the SCE variants)."""
    out = list(check_names_known())
    for entry in CHECKS.usable():
        out.extend(entry.units(VARIANTS))
    return tuple(dict.fromkeys(out))


def figure_of(check: str, name: str) -> Figure | None:
    return check_entry(check).figure(name)


def compared_figures(check: str) -> tuple[str, ...]:
    """The figures of ``check`` a baseline compares: those with a direction."""
    return tuple(f.name for f in check_entry(check).figures if f.better is not None and f.baseline)


def outcome_of(check: str, figure: str) -> Outcome | None:
    """The per-example outcome a baseline compares ``figure`` of ``check`` on, if it declares one."""
    return next((o for o in get_check(check).outcomes if figure in o.figures), None)


def primary_figures(check: str, reported: Sequence[str] = ()) -> tuple[str, ...]:
    """The figures of ``check`` a paired baseline comparison gates by default, for a result that
    reported ``reported`` (its task kinds are those every reported figure is declared for)."""
    figures = check_entry(check).figures
    kinds = {"grid", "text"}
    for f in figures:
        if f.name in reported:
            kinds &= set(f.tasks)
    return tuple(f.name for f in figures if f.better is not None and f.primary
                 and (f.primary is True or kinds & set(f.primary)))


def lower_is_better(check: str, name: str) -> bool:
    figure = figure_of(check, name)
    return figure is not None and figure.better == "lower"
