"""The checks an audit can run, by name, and the *units* an audit reports.

A unit is one row of results for a dataset: each variant of the SCE check (``unconstrained``,
``minimal``), and each other check by its own name (``inv``, ``phi_cct``, ...). Items,
thresholds, reports and baselines are keyed by (dataset, unit), so SCE item ids stay
``income/minimal::validity>=0.8`` and a faithfulness gate reads ``sentiment/phi_cct::phi>=0.2``.

This module imports nothing heavy: the plugin reads the names at start-up.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from sce_checks.errors import UserInputError

VARIANTS = ("unconstrained", "minimal")  # the SCE check's variants (checks/sce.py)
CHECKS = ("sce", "inv", "dir", "stability", "ct", "cct", "phi_cct", "self_consistency")
COUNTERFACTUAL = ("ct", "cct", "phi_cct")  # computed together: one set of interventions and explanations
ATTRIBUTIONS = ("feature_ablation", "shapley_sampling")  # self_consistency's methods (checks/self_consistency.py)

DESCRIPTIONS = {
    "sce": "validity and minimality of self-generated counterfactual explanations (Mayne et al. 2025; Dehghanighobadi et al. 2025)",
    "inv": "CheckList INV: the prediction survives label-preserving edits (typos, case, punctuation, synonyms, neutral sentences)",
    "dir": "CheckList DIR: the prediction moves the expected way under directional edits",
    "stability": "SCE stability: SCEs of perturbed inputs, and predictions on counterfactuals under paraphrased prompts",
    "ct": "counterfactual test (Atanasova et al. 2023): do explanations mention an inserted word that flipped the prediction?",
    "cct": "correlational counterfactual test (Siegel et al. 2024): TVD of the option distribution vs mention",
    "phi_cct": "phi-CCT (Siegel et al. 2025): phi of (prediction changed) x (explanation mentions the inserted word)",
    "self_consistency": "decision and explanation attributed to the same input words (Admoni et al. 2025; captum)",
}

# Figures a report shows first for each check, and that the pytest items attach as properties.
HEADLINE = {
    "sce": ("validity", "strict_validity", "generation_rate", "mean_rcf_a", "mean_distance"),
    "inv": ("failure_rate", "perturbation_failure_rate"),
    "dir": ("failure_rate", "perturbation_failure_rate"),
    "stability": ("validity_agreement", "perturbed_validity", "prompt_consistency", "robust_validity"),
    "ct": ("unfaithfulness", "flip_rate"),
    "cct": ("cct", "mean_tvd_mentioned", "mean_tvd_not_mentioned"),
    "phi_cct": ("phi", "tpr", "fpr"),
    "self_consistency": ("mean_spearman", "mean_l1_dot"),
}


def check_names(checks: Iterable[str]) -> tuple[str, ...]:
    """Validated, de-duplicated check names, in the order given."""
    out = tuple(dict.fromkeys(checks))
    if not out:
        raise UserInputError("no check given; expected one or more of: " + ", ".join(CHECKS))
    for c in out:
        if c not in CHECKS:
            raise UserInputError(f"unknown check {c!r}; expected one of: {', '.join(CHECKS)}")
    return out


def units(checks: Sequence[str], variants: Sequence[str]) -> list[str]:
    """The result rows of an audit: the SCE variants where ``sce`` is among the checks, then the
    other checks, in the order given."""
    out: list[str] = []
    for c in checks:
        out.extend(variants if c == "sce" else [c])
    return list(dict.fromkeys(out))


def check_of(unit: str) -> str:
    return "sce" if unit in VARIANTS else unit


def unit_of(result) -> str:
    """The unit a `CheckResult` is reported under."""
    return (result.variant or "") if result.check == "sce" else result.check


def is_unit(name: str) -> bool:
    return name in VARIANTS or name in CHECKS
