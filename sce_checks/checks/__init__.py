"""The checks an audit can run, and the *units* an audit reports.

Each check is one class in one module of this package (sce_checks/checks/base.py says what a
check declares); the registry there finds them by name, and checks from other packages through
the ``sce_checks.checks`` entry point group.

A unit is one row of results for a dataset: each variant of the SCE check (``unconstrained``,
``minimal``), and each other check by its own name (``inv``, ``phi_cct``, ...). Items,
thresholds, reports and baselines are keyed by (dataset, unit), so SCE item ids stay
``income/minimal::validity>=0.8`` and a faithfulness gate reads ``sentiment/phi_cct::phi>=0.2``.

This module imports nothing heavy: the plugin reads the names at start-up.
"""

from __future__ import annotations

from sce_checks.checks.base import (
    BUILTIN,
    ENTRY_POINT_GROUP,
    Check,
    Figure,
    Outcome,
    all_checks,
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
)

from sce_checks.config import ATTRIBUTIONS, VARIANTS  # noqa: E402  (the SCE variants; self_consistency's methods)

CHECKS = tuple(BUILTIN)  # the built-in checks; `check_names_known()` adds those other packages register

__all__ = [
    "ATTRIBUTIONS",
    "CHECKS",
    "ENTRY_POINT_GROUP",
    "VARIANTS",
    "Check",
    "Figure",
    "Outcome",
    "all_checks",
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
]
