"""The checks an audit can run, and the *units* an audit reports.

Each check is a declaration (`CheckEntry`, in a light module: the built-ins' are in
sce_checks/checks/catalog.py) and an implementation (a `Check` subclass, one module per check);
sce_checks/checks/base.py says what each holds. Checks are found by name through the entry point
group ``sce_checks.checks`` (sce_checks/registry.py), the built-ins as a plugin's.

A unit is one row of results for a dataset: each variant of the SCE check (``unconstrained``,
``minimal``), and each other check by its own name (``inv``, ``phi_cct``, ...). Items,
thresholds, reports and baselines are keyed by (dataset, unit), so SCE item ids stay
``income/minimal::validity>=0.8`` and a faithfulness gate reads ``sentiment/phi_cct::phi>=0.2``.

This module imports nothing heavy: the plugin reads the names at start-up.
"""

from __future__ import annotations

from sce_checks.checks.base import (
    ENTRY_POINT_GROUP,
    Check,
    CheckEntry,
    Figure,
    Outcome,
    all_checks,
    check_entry,
    check_names,
    check_names_known,
    check_of,
    family_of,
    get_check,
    is_unit,
    known_units,
    register_check,
    unit_of,
    units,
    variant_check,
)
from sce_checks.choices import VARIANTS

__all__ = [
    "ENTRY_POINT_GROUP",
    "VARIANTS",
    "Check",
    "CheckEntry",
    "Figure",
    "Outcome",
    "all_checks",
    "check_entry",
    "check_names",
    "check_names_known",
    "check_of",
    "family_of",
    "get_check",
    "is_unit",
    "known_units",
    "register_check",
    "unit_of",
    "units",
    "variant_check",
]
