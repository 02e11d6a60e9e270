"""Declarative audit files, ``*.sce.toml``, collected by pytest as test items.

    model = "smollm2"                 # any model spec
    datasets = ["income", "sentiment"]
    variants = ["unconstrained", "minimal"]   # optional; both by default
    limit = 20                        # optional (default 20)
    seed = 0                          # optional
    prediction = "auto"               # optional: auto | score | generate
    elicitation = "free"              # optional: free | schema (replies constrained to their JSON schema)
    parsing = "lenient"               # optional: lenient | strict (how replies are read)
    baseline = "baselines/smollm2.json"   # optional: compared at the end of the run
    tolerance = 0.02                  # optional, for the baseline; or per metric:
                                      # tolerance = { "*" = 0.02, validity = 0.05 }
    baseline_mode = "paired"          # optional: paired | tolerance (docs/regression.md)
    alpha = 0.05                      # optional: the paired gate's significance level
    baseline_metrics = ["validity"]   # optional: the figures the baseline gate tests
    text_search_budget = 40           # optional: text tasks' reference minimal-edit search
    checks = ["sce", "inv", "phi_cct"]   # optional (default ["sce"]); any registered check
    perturbations = 4                 # optional: perturbed inputs / interventions per example
    attribution = "feature_ablation"  # optional: self_consistency's method

    [thresholds]                      # the SCE check (the per-variant check): every (dataset, variant)
    generation_rate = ">= 0.5"
    validity_lower = ">= 0.1"

    [thresholds.phi_cct]              # another check: every dataset
    phi = ">= 0.1"

    [[override]]                      # more thresholds for some datasets / variants / checks
    dataset = "income"
    variant = "minimal"               # or: check = "inv"
    thresholds = { mean_rcf_a = "<= 0.2" }
    xfail = "known gap, tracked in #12"   # optional: these items are expected to fail (strict:
                                          # one that starts passing fails, so the file is updated)

One test item per (dataset, unit, threshold), with ids like
``smollm2.sce.toml::income/minimal::validity_lower>=0.1`` or
``smollm2.sce.toml::sentiment/phi_cct::phi>=0.1`` (a unit is an SCE variant or another check).
Errors name the file and the key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sce_checks.checks import check_names, check_names_known, check_of, units, variant_check
from sce_checks.config import AUDIT_KEYS, BY_NAME, RunSpec, values_from_mapping
from sce_checks.errors import UserInputError
from sce_checks.models import parse_spec
from sce_checks.preflight import check_baseline_matches
from sce_checks.regression.files import check_comparable, load_baseline
from sce_checks.regression.tolerances import check_baseline_metrics, parse_tolerances
from sce_checks.stopping import check_sequential_tolerances, questions
from sce_checks.tasks import BUILTIN_TASKS, load_task
from sce_checks.tasks.text import DATA_SUFFIXES
from sce_checks.thresholds import Threshold
from sce_checks.userfiles import read_toml

_SPECIAL_KEYS = {"baseline", "tolerance", "thresholds", "override"}  # the audit-file syntax beyond the settings table
# how the audit's own baseline is compared (run settings, read here for this audit's baseline alone)
_GATE_KEYS = ("baseline_mode", "alpha", "baseline_metrics")
_OVERRIDE_KEYS = {"dataset", "variant", "check", "thresholds", "xfail"}


@dataclass
class AuditFile:
    path: Path
    spec: Any  # RunSpec of the audit's own settings (sce_checks/config.py AUDIT_KEYS; defaults where not given)
    baseline: str | None = None
    tolerance: dict = field(default_factory=lambda: {"*": 0.0})  # metric -> allowed worsening ("*": the rest)
    thresholds: dict[tuple[str, str], list[Threshold]] = field(default_factory=dict)  # (dataset, unit) -> gates
    names: dict[str, str] = field(default_factory=dict)  # dataset as run -> as written (item ids)
    xfails: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (dataset, unit, threshold) -> reason
    gate: dict = field(default_factory=dict)  # baseline_mode / alpha / baseline_metrics given in the file

    def name(self, dataset: str) -> str:
        return self.names.get(dataset, dataset)

    @property
    def units(self) -> list[str]:
        return units(self.spec.checks, self.spec.variants)

    def gates_of(self, dataset: str) -> tuple[str, ...]:
        """Every threshold of ``dataset``, each with its unit (``minimal:validity>=0.5``): the gates
        a sequential audit of the dataset decides before it stops."""
        return tuple(sorted({f"{unit}:{t.metric}{t.op}{t.value!r}" for (d, unit), gates in self.thresholds.items()
                             if d == dataset for t in gates}))

    def sequential_spec(self, spec: Any, dataset: str) -> Any:
        """``spec`` (from `over`) as a sequential audit of ``dataset`` needs it: the gates it
        decides before it stops, and this file's baseline, whose gated figures it decides too."""
        spec = spec.replace(thresholds=self.gates_of(dataset))
        if not self.baseline:
            return spec
        tolerances = tuple(f"{v!r}" if k == "*" else f"{k}={v!r}" for k, v in sorted(self.tolerance.items()))
        return spec.replace(baseline=self.baseline, tolerances=tolerances, **self.gate)

    def over(self, base: Any) -> Any:
        """The specification the audit computes with: its own settings (what is audited) over the
        session's (model options, cache, reports)."""

        return base.replace(**{k: getattr(self.spec, k) for k in AUDIT_KEYS})


def _err(path: Path, key: str, msg: str) -> UserInputError:
    return UserInputError(f"{path}: {key}: {msg}")


def _thresholds(path: Path, key: str, table: Any, check: str, tasks: list[Any]) -> list[Threshold]:
    """Gates on ``check``'s figures over ``tasks``; a metric it does not report there is refused
    here, naming the key."""
    if not isinstance(table, dict):
        raise _err(path, key, f"expected a table of metric = \">= value\", got {table!r}")
    out = []
    for metric, rule in table.items():
        if isinstance(rule, (int, float)) and not isinstance(rule, bool):
            rule = f">= {rule}"
        if not isinstance(rule, str):
            raise _err(path, f"{key}.{metric}", f"expected a string like \">= 0.8\", got {rule!r}")
        threshold = Threshold.parse(f"{metric}{rule}", f"{path}: {key}.{metric}")
        threshold.check_run([check], f"{path}: {key}.{metric}", tasks)
        out.append(threshold)
    return out


def load_audit_file(path: str | Path) -> AuditFile:
    path = Path(path)
    data = read_toml(path)
    accepted = sorted(set(AUDIT_KEYS) | _SPECIAL_KEYS | set(_GATE_KEYS))
    unknown = sorted(k for k in data if k not in accepted)
    if unknown:
        raise _err(path, unknown[0], f"unknown key; accepted: {', '.join(accepted)}")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise _err(path, "model", "missing or not a string (a model spec such as \"smollm2\" or \"hf:org/name\")")
    if "datasets" not in data:
        raise _err(path, "datasets", "missing (a list of names)")
    values = values_from_mapping({k: v for k, v in data.items() if k in AUDIT_KEYS}, f"{path}:", AUDIT_KEYS)
    try:
        spec = RunSpec(**values)
        check_names(spec.checks)
    except UserInputError as exc:
        where = "checks: " if "unknown check" in str(exc) else ""
        raise UserInputError(f"{path}: {where}{exc}") from None
    try:
        parse_spec(spec.model)
    except UserInputError as exc:
        raise _err(path, "model", str(exc)) from None
    written = list(spec.datasets)
    datasets = [_resolve_dataset(path, d) for d in written]
    tasks = _load_datasets(path, datasets)
    names = dict(zip(datasets, written))
    spec = spec.replace(datasets=tuple(datasets))
    checks, variants = list(spec.checks), list(spec.variants)

    tolerance = parse_tolerances(data.get("tolerance", 0.0), f"{path}: tolerance")
    gate = _gate(path, data)
    baseline = data.get("baseline")
    if baseline is not None and not isinstance(baseline, str):
        raise _err(path, "baseline", f"expected a path string, got {baseline!r}")
    all_units = units(checks, variants)

    table = {(d, u): [] for d in datasets for u in all_units}
    for unit, gates in _threshold_sections(path, data.get("thresholds", {}), checks, list(tasks.values())).items():
        for d in datasets:
            for u in all_units:
                if check_of(u) == unit:
                    table[(d, u)].extend(gates)
    xfails = _apply_overrides(path, data.get("override", []), table, written, checks, variants, tasks)
    if spec.sequential:
        for (dataset, unit), gates in table.items():
            try:
                questions(gates, [unit], spec.alpha, None)
            except UserInputError as exc:
                raise _err(path, "sequential", str(exc)) from None
    if spec.sequential and baseline and gate.get("baseline_mode", spec.baseline_mode) == "paired":
        check_sequential_tolerances(tolerance, gate.get("baseline_metrics", spec.baseline_metrics), f"{path}: tolerance")
    base = None
    if baseline:
        base = os.path.normpath(path.parent / baseline) if not Path(baseline).is_absolute() else baseline
        _check_baseline(path, base, spec, [tasks[d] for d in datasets])
    return AuditFile(path, spec, base, tolerance, table, names, xfails, gate)


def _gate(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """The baseline gate's settings the file gives, read as the settings table reads them."""

    out = {key: BY_NAME[key].read(data[key], f"{path}: {key}") for key in _GATE_KEYS if key in data}
    check_baseline_metrics(out.get("baseline_metrics", ()), f"{path}: baseline_metrics")
    return out


def _load_datasets(path: Path, datasets: list[str]) -> dict[str, Any]:
    """Every dataset loaded at collection, so a bad one stops the run before any model call
    (and gates are checked against the figures their tasks report): dataset -> task."""

    out = {}
    for i, dataset in enumerate(datasets):
        try:
            out[dataset] = load_task(dataset)
        except UserInputError as exc:
            raise _err(path, f"datasets[{i}]", str(exc)) from None
    return out


def _check_baseline(path: Path, baseline: str, spec: Any, tasks: list[Any]) -> None:
    """The audit's baseline read whole, its entries measured on the audit's own samples, and at
    least one of them a result of the audit under its elicitation (sce_checks/preflight.py), at
    collection (the comparison itself happens at the end of the run)."""

    try:
        data = load_baseline(baseline)
        check_comparable(data, spec, baseline)
        check_baseline_matches(data, spec, tasks, baseline, "elicitation =")
    except UserInputError as exc:
        raise _err(path, "baseline", str(exc)) from None


def _apply_overrides(path: Path, overrides: Any, table: dict[tuple[str, str], list[Threshold]], written: list[str],
                     checks: list[str], variants: list[str], tasks: dict[str, Any]) -> dict[tuple[str, str, str], str]:
    """``[[override]]`` tables: more thresholds for some datasets, variants or checks, added to
    ``table``; returns the known failures they declare (``xfail``), by (dataset, unit, threshold)."""

    owner = variant_check()  # the check the variants belong to (the SCE check), and the default one
    if not isinstance(overrides, list):
        raise _err(path, "override", "expected [[override]] tables")
    xfails: dict[tuple[str, str, str], str] = {}
    for i, ov in enumerate(overrides):
        key = f"override[{i}]"
        if not isinstance(ov, dict):
            raise _err(path, key, "expected a table")
        bad = sorted(set(ov) - _OVERRIDE_KEYS)
        if bad:
            raise _err(path, f"{key}.{bad[0]}", f"unknown key; accepted: {', '.join(sorted(_OVERRIDE_KEYS))}")
        ds, vs, cs = ov.get("dataset"), ov.get("variant"), ov.get("check")
        if ds is not None and ds not in written:
            raise _err(path, f"{key}.dataset", f"{ds!r} is not one of the audit's datasets ({', '.join(written)})")
        if ds is not None:
            ds = _resolve_dataset(path, ds)
        if vs is not None and (vs not in variants or owner not in checks):
            raise _err(path, f"{key}.variant", f"{vs!r} is not one of the audit's SCE variants ({', '.join(variants)})")
        if cs is not None and cs not in checks:
            raise _err(path, f"{key}.check", f"{cs!r} is not one of the audit's checks ({', '.join(checks)})")
        if vs is not None and cs not in (None, owner):
            raise _err(path, f"{key}.variant", f"variants belong to the {owner} check, not to {cs!r}")
        unit = vs or cs or owner
        if unit is None or (unit == owner and owner not in checks):
            raise _err(path, key, f"name the check these thresholds are for (check = \"...\"; the audit runs {', '.join(checks)})")
        gated = [tasks[ds]] if ds is not None else list(tasks.values())
        extra = _thresholds(path, f"{key}.thresholds", ov.get("thresholds", {}), check_of(unit), gated)
        reason = ov.get("xfail")
        if reason is not None and not (isinstance(reason, str) and reason.strip()):
            raise _err(path, f"{key}.xfail", "expected the reason, a non-empty string, why these thresholds are known to fail")
        for (d, u), lst in table.items():
            if (ds is None or d == ds) and (u == unit or check_of(u) == unit):
                lst.extend(extra)
                if reason:
                    xfails.update({(d, u, str(t)): reason for t in extra})
    return xfails


def _threshold_sections(path: Path, table: Any, checks: list[str], tasks: list[Any]) -> dict[str, list[Threshold]]:
    """``[thresholds]``: metric keys gate the check the variants belong to (the SCE check,
    `variant_check`); a sub-table named after another check (``[thresholds.phi_cct]``) gates
    that check."""

    if not isinstance(table, dict):
        raise _err(path, "thresholds", f"expected a table of metric = \">= value\", got {table!r}")
    flat = {k: v for k, v in table.items() if not isinstance(v, dict)}
    out: dict[str, list[Threshold]] = {}
    if flat:
        owner = variant_check()
        if owner is None or owner not in checks:
            first = next(iter(flat))
            raise _err(path, f"thresholds.{first}", f"top-level thresholds gate the {owner} check, which this audit does "
                       f"not run; put them under [thresholds.<check>] for one of: {', '.join(checks)}")
        out[owner] = _thresholds(path, "thresholds", flat, owner, tasks)
    for name, sub in table.items():
        if not isinstance(sub, dict):
            continue
        if name not in check_names_known():
            raise _err(path, f"thresholds.{name}", f"not a check (expected one of: {', '.join(check_names_known())}) "
                       "nor a metric rule")
        if name not in checks:
            raise _err(path, f"thresholds.{name}", f"the audit does not run {name!r} (checks = {checks!r})")
        out.setdefault(name, []).extend(_thresholds(path, f"thresholds.{name}", sub, name, tasks))
    return out


def _resolve_dataset(path: Path, dataset: str) -> str:
    """A dataset file named in an audit file is relative to the audit file, like its baseline, so
    an audit runs the same from any working directory; built-in names pass through."""
    if dataset in BUILTIN_TASKS or Path(dataset).is_absolute() or dataset.startswith("hf:"):
        return dataset
    if Path(dataset).suffix.lower() in (".toml", *DATA_SUFFIXES) or (path.parent / dataset).is_dir():
        return str(path.parent / dataset)  # a file, or a folder written by save_to_disk
    return dataset
