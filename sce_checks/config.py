"""The run specification: every setting of an audit, declared once.

`SETTINGS` is the one table (name, type, default, help, validation): the core rows below, then
the rows the registered checks and backends declare (sce_checks/registry.py; assembled by `table`
on first use). From it come:

* the ``sce-audit`` flags (`add_cli_arguments`: ``--limit``, ``--dataset`` repeatable, ...);
* the pytest options and ini keys (`add_pytest_options`: ``--sce-limit``, ini ``sce_limit``);
* the ``[tool.sce-checks]`` table of pyproject.toml and the keys of audit files (`AUDIT_KEYS`),
  read with `values_from_mapping`;
* the `RunSpec` dataclass itself, whose fields are the table's names (``RunSpec(limit=50)``;
  `sce_checks.audit.AuditConfig` is the same class, for the Python API).

Values from every source are converted and validated by the same code (`Setting.read`), so a
flag, an ini line, a TOML value and a keyword argument are held to one rule, and an error names
where the value came from (``--limit``, ``audit.sce.toml: limit``, ``[tool.sce-checks] limit``).
`resolve` merges sources in precedence order (command line, then ini, then pyproject.toml, then
the defaults) into one validated `RunSpec`. Adding a setting is one row: here when sce-checks
itself reads it, else in the declaration of the check or backend that does (and, if a check
reads it, a field of that check's settings with ``default("name")``). The allowed values of
choices several layers check are in sce_checks/choices.py.

This module imports nothing heavy, and nothing of sce-checks but its leaf modules (errors,
choices) at import: the pytest plugin reads it at start-up, and the declarations import it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from sce_checks.choices import BASELINE_MODES, ELICITATIONS, PARSINGS, PREDICTIONS, VARIANTS
from sce_checks.errors import UserInputError
from sce_checks.registry import BACKENDS, CHECKS, REGISTRIES
from sce_checks.userfiles import read_json, read_toml

# Settings are shown in these groups (argparse groups, pytest --help, docs).
GROUPS = {
    "audit": "what is audited",
    "report": "reports, gates and baselines",
    "model": "model options",
    "cache": "response cache",
}


@dataclass(frozen=True)
class Setting:
    """One setting. ``name`` is the `RunSpec` field and audit-file key; ``flag`` the command-line
    name (``--<flag>``, ``--sce-<flag>``) and ini / ``[tool.sce-checks]`` key when it differs
    (``datasets`` -> ``dataset``, repeatable)."""

    name: str
    kind: str  # "str" | "int" | "float" | "bool" | "list" | "path"
    default: Any
    help: str
    group: str = "audit"
    flag: str | None = None
    choices: Sequence[str] | Callable[[], Sequence[str]] | None = None
    minimum: float | None = None
    metavar: str | None = None
    audit_file: bool = True  # a key of *.sce.toml files and of @pytest.mark.sce
    nonzero: bool = False  # float settings: must be > minimum
    maximum: int = 2**63 - 1  # int and float settings: what C-level code (ranges, sockets) holds; --timeout: a day
    none: Any = None  # what None stands for, where it is accepted (limit=None: every example, as 0)

    @property
    def option(self) -> str:
        return (self.flag or self.name).replace("_", "-")

    @property
    def dest(self) -> str:
        return self.option.replace("-", "_")

    def allowed(self) -> Sequence[str] | None:
        return self.choices() if callable(self.choices) else self.choices

    def read(self, raw: Any, where: str) -> Any:
        """``raw`` (a string from a flag or ini line, or a TOML / Python value) as this setting's
        type, validated; `UserInputError` naming ``where`` otherwise."""
        def bad(why: str) -> UserInputError:
            return UserInputError(f"{where}: {why}")

        if raw is None:
            return None
        kind = self.kind
        if kind == "list":
            items = [raw] if isinstance(raw, str) else raw
            if not isinstance(items, (list, tuple)) or not all(isinstance(v, str) for v in items):
                raise bad(f"expected a list of strings, got {raw!r}")
            items = [v.strip() for v in items]
            if any(not v for v in items):
                raise bad(f"empty name in {list(raw) if not isinstance(raw, str) else raw!r}")
            allowed = self.allowed()
            for v in items:
                if allowed is not None and v not in allowed:
                    raise bad(f"unknown {self.flag or self.name} {v!r}; expected one of: {', '.join(allowed)}")
            return tuple(dict.fromkeys(items))
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.strip().lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                return raw.strip().lower() in ("1", "true", "yes", "on")
            raise bad(f"expected true or false, got {raw!r}")
        if kind in ("int", "float"):
            value = _number(raw, kind)
            wanted = {"int": {None: "an integer", 0: "a non-negative integer", 1: "a positive integer"},
                      "float": {None: "a number", 0: "a positive number" if self.nonzero else "a non-negative number"}}
            what = wanted[kind].get(self.minimum) or f"a number >= {self.minimum:g}"
            if value is None or (self.minimum is not None and (value < self.minimum or (self.nonzero and value == self.minimum))):
                raise bad(f"expected {what}, got {_shown(raw)}")
            if abs(value) > self.maximum:
                raise bad(f"expected {what} of at most {self.maximum:,}, got {_shown(raw)}")
            return value
        allowed = self.allowed()
        value = raw.strip() if isinstance(raw, str) else raw
        if allowed is not None and value not in allowed:
            raise bad(f"expected {_either(allowed)}, got {raw!r}")
        if not isinstance(value, str):
            raise bad(f"expected a string, got {raw!r}")
        if not value:
            raise bad("empty value")
        return value


def _shown(raw: Any) -> str:
    """A value in a message, cut short (a 5,000-digit number stays one readable line)."""
    text = repr(raw)
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text)} characters)"


def _either(allowed: Sequence[str]) -> str:
    """``a or b``, ``a, b or c``."""
    items = list(allowed)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _number(raw: Any, kind: str) -> int | float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        text = raw.strip()
        try:
            raw = int(text) if kind == "int" else float(text)
        except ValueError:
            return None
    if kind == "int":
        return raw if isinstance(raw, int) else None
    if isinstance(raw, (int, float)) and math.isfinite(raw):
        return float(raw)
    return None


# The core rows: settings sce-checks itself reads, whichever checks and backends run. Checks and
# backends add their own rows in their declarations (sce_checks/registry.py): the SCE check its
# search budgets, the perturbation checks ``perturbations``, self_consistency ``attribution``, the
# hf backend ``dtype`` / ``device`` / ``trust_remote_code``, the openai backend ``concurrency`` /
# ``timeout`` / ``max_retries``; `table` assembles them.
CORE: tuple[Setting, ...] = (
    # -- what is audited: also audit-file keys and @pytest.mark.sce arguments ---------------------
    Setting("model", "str", "smollm2", "a model spec (the registered backends' syntax is filled in by `table`)",
            metavar="SPEC"),
    Setting("datasets", "list", ("income",), "income | house_prices | heart_disease | credit_risk | sentiment | sentiment3 | a grid .toml | "
            "a text .csv/.jsonl/.parquet/.toml, a datasets save_to_disk folder or hf:NAME[:SPLIT] from the local "
            "datasets cache (repeatable)", flag="dataset", metavar="NAME_OR_PATH"),
    Setting("checks", "list", ("sce",), "what to audit (repeatable; the registered checks are filled in by `table`)",
            flag="check", metavar="CHECK"),
    Setting("variants", "list", VARIANTS, "SCE variant, unconstrained | minimal (repeatable; both by default); the "
            "stability check uses the first listed", flag="variant", choices=VARIANTS, metavar="VARIANT"),
    Setting("limit", "int", 20, "examples per dataset, sampled with the seed (0 = all)", minimum=0, metavar="N", none=0),
    Setting("seed", "int", 0, "sampling seed (examples, perturbations, targets)", metavar="N"),
    Setting("prediction", "str", "auto", "how answers are read: option log-probabilities when the backend has them "
            "(auto; undecided ones generated), score, or generated JSON (generate)", choices=PREDICTIONS),
    Setting("elicitation", "str", "free", "free: the papers' protocol, replies read as given; schema: every reply "
            "constrained to the JSON schema of what is asked (grammar-constrained decoding on hf models, "
            "response_format on servers), so the model chooses the content but cannot fail on format",
            choices=ELICITATIONS),
    Setting("parsing", "str", "lenient", "lenient: read replies as the paper's code does where unambiguous (numeric "
            "strings, label case and punctuation, the first of several JSON objects), counted in the report; "
            "strict: none of that", choices=PARSINGS),
    Setting("temperature", "float", 0.0, "sampling temperature of the sce check's replies (answers, SCEs, "
            "re-predictions; the other checks decode greedily); 0: greedy, the default; above 0 each reply is "
            "sampled with its own seed derived from --seed (docs/sampling.md)", minimum=0, maximum=100, metavar="T"),
    Setting("top_p", "float", 1.0, "nucleus sampling: keep the smallest set of tokens whose probability reaches P "
            "(with --temperature above 0)", minimum=0, nonzero=True, maximum=1, metavar="P"),
    Setting("samples", "int", 1, "SCEs sampled per example and target (with --temperature above 0); each has its "
            "own seed", minimum=1, maximum=1000, metavar="K"),
    Setting("targets", "str", "all", "which targets an SCE is requested for, where a task has more than two "
            "options: all (one SCE per option other than the answer), random (one of them, drawn with --seed, as the "
            "text paper's code does) or an option LABEL (examples already answered LABEL are skipped and counted); "
            "with two options all three are the same (docs/method.md)", metavar="all|random|LABEL"),
    Setting("prediction_samples", "int", 1, "re-predictions sampled per SCE when answers are generated rather than "
            "scored (with --temperature above 0)", minimum=1, maximum=1000, metavar="M"),
    Setting("sequential", "bool", False, "audit each dataset's examples in a seeded random order, --batch-size at a "
            "time, and stop as soon as an anytime-valid confidence sequence decides every gate (an undecided gate "
            "fails at --limit; docs/sequential.md)"),
    # -- reports, gates and baselines ---------------------------------------------------------------
    Setting("thresholds", "list", (), "gate, e.g. 'validity>=0.8', 'mean_rcf_a<=0.05', 'validity_lower>=0.5'; with "
            "several checks, prefix the check: 'inv:failure_rate<=0.1' (repeatable)", group="report",
            flag="threshold", metavar="[CHECK:]METRIC>=X", audit_file=False),
    Setting("json", "path", None, "write the JSON report here", group="report", metavar="PATH", audit_file=False),
    Setting("markdown", "path", None, "write the Markdown report here", group="report", metavar="PATH", audit_file=False),
    Setting("html", "path", None, "write the HTML report here", group="report", metavar="PATH", audit_file=False),
    Setting("baseline", "path", None, "compare against this saved baseline; fail on regressions", group="report",
            metavar="PATH", audit_file=False),
    Setting("save_baseline", "path", None, "save this run's figures and per-example outcomes as a baseline", group="report", metavar="PATH",
            audit_file=False),
    Setting("tolerances", "list", ("0",), "allowed worsening against the baseline (the smallest change that counts as a regression): X for every metric, METRIC=X for "
            "one (repeatable)", group="report", flag="tolerance", metavar="X|METRIC=X", audit_file=False),
    Setting("baseline_mode", "str", "paired", "paired: a figure regresses when the paired test on the examples both "
            "runs share is significant at --alpha (Holm-corrected) and it worsened by more than its tolerance; "
            "tolerance: when it worsened by more than its tolerance (docs/regression.md)", group="report",
            choices=BASELINE_MODES, audit_file=False),
    Setting("alpha", "float", 0.05, "significance level of the paired baseline gate, one-sided, Holm-corrected "
            "across the gated figures; under --sequential, the level of every confidence sequence (docs/sequential.md)",
            group="report", minimum=0, nonzero=True, maximum=1, metavar="A",
            audit_file=False),
    Setting("baseline_metrics", "list", (), "the figures the paired baseline gate tests (repeatable; default: each "
            "check's primary figure, e.g. validity); fewer figures, a smaller Holm correction", group="report", flag="baseline-metric",
            metavar="METRIC", audit_file=False),
    # -- model options: every backend's (a backend's own rows are in its declaration) ---------------
    Setting("batch_size", "int", 8, "model batch size", group="model", minimum=1, metavar="N", audit_file=False),
    # -- response cache -------------------------------------------------------------------------------
    Setting("cache_dir", "path", None, "response cache directory (default: $SCE_CHECKS_CACHE_DIR or the user cache "
            "directory)", group="cache", metavar="DIR", audit_file=False),
    Setting("no_cache", "bool", False, "do not read or write the response cache", group="cache", audit_file=False),
    Setting("clear_cache", "bool", False, "empty the response cache first", group="cache", audit_file=False),
)
_CORE_BY_NAME: dict[str, Setting] = {s.name: s for s in CORE}


def default(name: str) -> Any:
    """The default of setting ``name``: what a check's settings field uses, so no default is
    written twice. A core row's is read without assembling the table (declaration modules and
    ``ModelOptions`` read them while the table is being assembled)."""
    row = _CORE_BY_NAME.get(name)
    return row.default if row is not None else table().by_name[name].default


@dataclass(frozen=True)
class Table:
    """The assembled settings table and what is generated from it (module docstring)."""

    settings: tuple[Setting, ...]
    by_name: dict[str, Setting]
    by_option: dict[str, Setting]
    audit_keys: tuple[str, ...]  # keys of audit files and @pytest.mark.sce arguments: what is audited
    spec_type: type  # `RunSpec`


_TABLE: Table | None = None
_ASSEMBLING = False


def table() -> Table:
    """The settings table: the core rows, then the rows the registered checks, backends and
    plots declare (each declared once; one several entries share, such as ``perturbations``,
    is the same row). An entry whose row contradicts another row is marked unusable (it fails
    with the reason where it is used) and adds nothing: a bad plugin cannot break other runs."""
    global _TABLE, _ASSEMBLING
    if _TABLE is None:
        if _ASSEMBLING:
            raise RuntimeError("the settings table was asked for while it is being assembled: a declaration module "
                               "must not read a declared setting's default at import (use the Setting row itself)")
        _ASSEMBLING = True
        try:
            _TABLE = _assemble()
        finally:
            _ASSEMBLING = False
    return _TABLE


def _assemble() -> Table:
    rows: dict[str, Setting] = dict(_CORE_BY_NAME)
    options = {s.option: s.name for s in CORE}
    for registry in REGISTRIES:
        for entry in list(registry.usable()):
            problem = _row_problem(entry.settings, rows, options)
            if problem:
                registry.fail(entry.name, f"{registry.kind} {entry.name!r} ({registry.where(entry.name)}) declares {problem}")
                continue
            for s in entry.settings:
                rows[s.name] = s
                options[s.option] = s.name
    model = rows["model"]
    rows["model"] = dataclasses.replace(model, help=" | ".join(b.syntax for b in BACKENDS.usable()))
    rows["checks"] = dataclasses.replace(rows["checks"], help="what to audit (repeatable): " + ", ".join(CHECKS.names())
                                         + " (packages register more: docs/writing-checks.md)")
    settings = tuple(rows.values())
    return Table(settings, dict(rows), {s.option: s for s in settings}, tuple(s.name for s in settings if s.audit_file),
                 _spec_type(settings))


def _row_problem(declared: Any, rows: dict[str, Setting], options: dict[str, str]) -> str | None:
    """Why an entry's settings rows cannot join the table, or None."""
    if not isinstance(declared, tuple) or not all(isinstance(s, Setting) for s in declared):
        return f"settings {declared!r}, not a tuple of sce_checks.config.Setting rows"
    for s in declared:
        if not s.name.isidentifier() or s.kind not in _ANNOTATIONS or s.group not in GROUPS:
            return (f"a malformed setting {s.name!r} (name: an identifier; kind: one of {', '.join(_ANNOTATIONS)}; "
                    f"group: one of {', '.join(GROUPS)})")
        if s.name in _RESERVED:
            return f"the setting {s.name!r}, a name sce-checks keeps for itself ({', '.join(sorted(_RESERVED))})"
        if s.name in rows and rows[s.name] != s:
            return f"the setting {s.name!r}, which is already a different setting of the run specification"
        if options.get(s.option, s.name) != s.name:
            return f"the setting {s.name!r}, whose flag --{s.option} is already the flag of {options[s.option]!r}"
    return None


# Names a declared row may not take: flags sce-audit and the plugin define beside the table
# (cli.build_parser, add_pytest_options) and the methods of `RunSpec`.
_RESERVED = frozenset({"help", "quiet", "compare", "plan_sample_size", "run", "spec", "cache_path", "replace",
                       "audit_values"})


def __getattr__(name: str) -> Any:
    """``SETTINGS``, ``BY_NAME``, ``BY_OPTION``, ``AUDIT_KEYS`` and ``RunSpec``: the assembled
    table's, built on first use (module-level, so importing this module assembles nothing)."""
    fields = {"SETTINGS": "settings", "BY_NAME": "by_name", "BY_OPTION": "by_option", "AUDIT_KEYS": "audit_keys",
              "RunSpec": "spec_type"}
    if name in fields:
        return getattr(table(), fields[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _validate(spec: Any) -> None:
    """Every field read (converted and checked) once, whatever made the spec."""
    for s in table().settings:
        value = getattr(spec, s.name)
        if value is None and s.none is not None:
            value = s.none
        if value is None and s.default is None:
            continue
        if value is None:
            raise UserInputError(f"{s.name}: missing")
        checked = s.read(value, s.name)
        object.__setattr__(spec, s.name, checked)
    if not spec.datasets:
        raise UserInputError("datasets: no dataset given")
    if not spec.checks:
        raise UserInputError("checks: no check given")
    if not spec.variants:
        raise UserInputError("variants: no variant given")


def _cache_path(self: Any) -> str | None:
    return f"{self.cache_dir}/responses.sqlite" if self.cache_dir else None


def _replace(self: Any, **changes: Any) -> Any:
    return dataclasses.replace(self, **changes)


def _audit_values(self: Any) -> tuple:
    """The settings a result depends on, as a hashable tuple (the session's result key)."""
    return tuple((name, getattr(self, name)) for name in table().audit_keys if name not in ("datasets",))


_ANNOTATIONS = {"str": "str", "int": "int", "float": "float", "bool": "bool", "list": "tuple[str, ...]", "path": "str | None"}


def _spec_type(settings: Sequence[Setting]) -> type:
    """`RunSpec`: a frozen dataclass with one field per row."""
    spec_type = dataclasses.make_dataclass(
        "RunSpec",
        [(s.name, _ANNOTATIONS[s.kind] if s.default is not None or s.kind == "path" else f"{_ANNOTATIONS[s.kind]} | None",
          dataclasses.field(default=s.default)) for s in settings],
        frozen=True,
        namespace={
            "__doc__": "Every setting of an audit, validated (see the module docstring; fields: `SETTINGS`).",
            "__post_init__": _validate,
            "cache_path": _cache_path,
            "replace": _replace,
            "audit_values": _audit_values,
        },
    )
    spec_type.__module__ = __name__
    return spec_type


def values_from_mapping(data: Mapping[str, Any], where: str, keys: Iterable[str] | None = None) -> dict[str, Any]:
    """Settings from a TOML table or a marker's keywords: names (``datasets``) or flag spellings
    (``dataset``, with dashes or underscores), each read as its setting's type. ``keys`` limits
    what is accepted (audit files: `AUDIT_KEYS`); anything else is refused with the list."""
    by_name = table().by_name
    allowed = {by_name[k] for k in (keys if keys is not None else by_name)}
    lookup: dict[str, Setting] = {}
    for s in allowed:
        for spelling in (s.name, s.option, s.dest):
            lookup[spelling] = s
    out: dict[str, Any] = {}
    for key, raw in data.items():
        s = lookup.get(str(key))
        if s is None:
            accepted = ", ".join(sorted(s.name for s in allowed))
            raise UserInputError(f"{where} {key}: unknown key; accepted: {accepted}")
        if s.name in out:
            raise UserInputError(f"{where} {key}: given twice (as {s.name} and {s.option})")
        out[s.name] = s.read(raw, f"{where} {key}".strip())
    return out


def tool_table(path: Any) -> dict[str, Any]:
    """``[tool.sce-checks]`` of a pyproject.toml, read as settings (nothing when there is none)."""

    path = Path(path)
    if not path.is_file():
        return {}

    table = read_toml(path).get("tool", {}).get("sce-checks", {})
    return values_from_mapping(table, f"{path}: [tool.sce-checks]")


def resolve(layers: Sequence[Mapping[str, Any]], **fixed: Any) -> Any:
    """One `RunSpec` from layers of already-read values, the first layer winning (command line,
    ini, pyproject.toml, ...); ``fixed`` values win over all of them."""
    merged: dict[str, Any] = {}
    for layer in reversed(layers):
        merged.update({k: v for k, v in layer.items() if v is not None and v != ()})
    merged.update(fixed)
    return table().spec_type(**merged)


# -- generated interfaces -----------------------------------------------------------------------------


def add_cli_arguments(parser: Any) -> None:
    """The ``sce-audit`` flags, one per setting, in their groups. Defaults are left to `resolve`
    (argparse records None), so ``[tool.sce-checks]`` can fill what the command line does not give."""
    groups = {g: (parser if g == "audit" else parser.add_argument_group(title)) for g, title in GROUPS.items()}
    for s in table().settings:
        kwargs: dict[str, Any] = {"dest": s.name, "default": None, "help": _help(s)}
        if s.kind == "bool":
            kwargs["action"] = "store_true"
        else:
            if s.kind == "list":
                kwargs["action"] = "append"
            static = s.choices if isinstance(s.choices, (tuple, list)) else None
            kwargs["metavar"] = s.metavar or ("{" + ",".join(static) + "}" if static else s.option.upper().replace("-", "_"))
        groups[s.group].add_argument(f"--{s.option}", **kwargs)


def add_pytest_options(parser: Any) -> None:
    """``--sce-<flag>`` options and ``sce_<flag>`` ini keys, one per setting, plus the two that
    only pytest has: ``--sce-run`` (collect the audit the options describe as items) and
    ``--sce-spec`` (a resolved specification written by ``sce-audit``)."""
    group = parser.getgroup("sce-checks", "sce-checks: audit self-generated counterfactual explanations")
    for s in table().settings:
        kwargs: dict[str, Any] = {"dest": f"sce_{s.dest}", "help": _help(s)}
        if s.kind == "bool":
            kwargs.update(action="store_true", default=None)
        elif s.kind == "list":
            kwargs["action"] = "append"
        group.addoption(f"--sce-{s.option}", **kwargs)
        parser.addini(f"sce_{s.dest}", help=f"default for --sce-{s.option}", type="linelist" if s.kind == "list" else "string")
    group.addoption("--sce-run", dest="sce_run", action="store_true", default=False,
                    help="collect the audit the --sce-* options describe as test items: one per --sce-threshold, or one "
                         "per dataset and variant (what sce-audit runs)")
    group.addoption("--sce-spec", dest="sce_spec", default=None, help="a run specification (JSON) written by sce-audit")


def _help(s: Setting) -> str:
    shown = s.default
    if s.kind == "list":
        shown = ", ".join(s.default) if s.default else None
    return s.help + (f" (default: {shown})" if shown not in (None, False, "") else "")


def spec_to_json(spec: Any) -> str:
    return json.dumps({s.name: (list(v) if isinstance(v := getattr(spec, s.name), tuple) else v) for s in table().settings})


def spec_from_json(text: str, where: str) -> Any:
    data = read_json(text, where)
    if not isinstance(data, dict):
        raise UserInputError(f"{where}: not a run specification")
    return table().spec_type(**values_from_mapping(data, where))
