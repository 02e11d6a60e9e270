"""The built-in checks, declared: what reports, thresholds, baselines, audit files and the settings
table read without importing a check module (sce_checks/checks/base.py, `CheckEntry`).

Each declaration is registered in pyproject.toml under ``[project.entry-points."sce_checks.checks"]``,
as a check of another package is; its implementation (``"module:Class"``) is imported the first
time the check is used and reads these facts from here. Light: it imports sce-checks' leaf
modules and the check base only, so the pytest plugin can read it at start-up.
"""

from __future__ import annotations

from sce_checks.checks.base import CheckEntry, Figure
from sce_checks.config import Setting

_GRID, _TEXT = ("grid",), ("text",)  # the task kinds whose results report a figure

ATTRIBUTIONS: tuple[str, ...] = ("feature_ablation", "shapley_sampling")  # self_consistency's methods (captum)

# -- settings rows the checks add to the run specification (sce_checks/config.py) ----------------------
TEXT_SEARCH_BUDGET = Setting("text_search_budget", "int", 0, "text tasks: model predictions per example for the "
                             "reference minimal-edit search (0 = off)", minimum=0, metavar="N")
XSTAR_BUDGET = Setting("xstar_budget", "int", 0, "grid tasks: at most N grid points predicted per exact search (the "
                       "nearest flip x*, and ICF_A's nearest target point); a search that stops at its budget gives "
                       "certified bounds, and a gate the bounds cannot decide fails as undecided (0 = no limit; "
                       "docs/scaling.md)", minimum=0, metavar="N")
PERTURBATIONS = Setting("perturbations", "int", 4, "perturbed inputs / interventions per example for inv, dir, "
                        "stability, ct, cct, phi_cct", minimum=1, metavar="N")  # one row, shared by those checks
ATTRIBUTION = Setting("attribution", "str", "feature_ablation", "self_consistency's attribution method",
                      choices=ATTRIBUTIONS)

# -- the SCE check -------------------------------------------------------------------------------------
SCE = CheckEntry(
    name="sce",
    description="validity and minimality of self-generated counterfactual explanations "
                "(Mayne et al. 2025; Dehghanighobadi et al. 2025)",
    implementation="sce_checks.checks.sce:SCECheck",
    per_variant=True,
    panels=True,
    plots=("validity_minimality", "minimality_distribution", "feature_changes"),
    settings=(TEXT_SEARCH_BUDGET, XSTAR_BUDGET),
    figures=(
        Figure("validity", "higher", headline=True, interval=True, primary=True),
        Figure("strict_validity", "higher", headline=True, interval=True),
        Figure("generation_rate", "higher", headline=True),
        Figure("mean_rcf_a", "lower", headline=True, tasks=_GRID, primary=True),
        Figure("mean_distance", "lower", headline=True, primary=("text",)),
        Figure("median_rcf", "lower", tasks=_GRID),
        Figure("mean_rcf", "lower", baseline=False, tasks=_GRID),
        Figure("mean_icf_a", "lower", tasks=_GRID),
        Figure("median_icf", "lower", tasks=_GRID),
        Figure("mean_icf", "lower", baseline=False, tasks=_GRID),
        Figure("tm", "lower", tasks=_GRID),
        Figure("tm_a", "lower", tasks=_GRID),
        Figure("exact_match", "higher", tasks=_GRID),
        Figure("mean_min_distance", None, tasks=_GRID),
        Figure("n_generated", None),
        Figure("n_valid", None),
        # under sampling (--temperature above 0; docs/sampling.md)
        Figure("expected_validity", "higher", interval=True),
        Figure("mean_distinct_sces", None),
        # text tasks (the last two with a text_search_budget)
        Figure("validity_in_context", "higher", interval=True, tasks=_TEXT),
        Figure("mean_word_distance", "lower", tasks=_TEXT),
        Figure("mean_distance_valid", "lower", baseline=False, tasks=_TEXT),
        Figure("accuracy", "higher", tasks=_TEXT),
        Figure("redundancy", "lower", baseline=False, tasks=_TEXT),
        Figure("mean_minimality_gap", "lower", baseline=False, tasks=_TEXT),
        Figure("reference_found_rate", None, tasks=_TEXT),
    ),
)

# -- CheckList INV and DIR -------------------------------------------------------------------------------
_FAILURE_FIGURES = (
    Figure("failure_rate", "lower", headline=True, interval=True, primary=True),
    Figure("perturbation_failure_rate", "lower", headline=True, interval=True),
    Figure("n_tested", None),
    Figure("n_failed", None),
    Figure("n_perturbations", None),
)

INV = CheckEntry(
    name="inv",
    description="CheckList INV: the prediction survives label-preserving edits (typos, case, punctuation, "
                "synonyms, neutral sentences)",
    implementation="sce_checks.checks.perturbation:InvarianceCheck",
    settings=(PERTURBATIONS,),
    counts=("n_tested",),
    figures=(*_FAILURE_FIGURES, Figure("mean_abs_prob_change", "lower", baseline=False)),
)

DIR = CheckEntry(
    name="dir",
    description="CheckList DIR: the prediction moves the expected way under directional edits",
    implementation="sce_checks.checks.perturbation:DirectionalCheck",
    settings=(PERTURBATIONS,),
    counts=("n_tested",),
    figures=(*_FAILURE_FIGURES, Figure("mean_expected_shift", "higher", baseline=False)),
)

# -- SCE stability -----------------------------------------------------------------------------------------
STABILITY = CheckEntry(
    name="stability",
    description="SCE stability: SCEs of perturbed inputs, and predictions on counterfactuals under paraphrased prompts",
    implementation="sce_checks.checks.stability:StabilityCheck",
    settings=(PERTURBATIONS,),
    counts=("n_pairs", "n_counterfactuals"),
    figures=(
        Figure("validity_agreement", "higher", headline=True, interval=True),
        Figure("perturbed_validity", "higher", headline=True, interval=True),
        Figure("prompt_consistency", "higher", headline=True, interval=True),
        Figure("robust_validity", "higher", headline=True, interval=True, primary=True),
        Figure("pair_validity", "higher", interval=True, baseline=False),
        Figure("validity_drop", "lower", baseline=False),
        Figure("validity", "higher", interval=True),
        Figure("original_prompt_consistency", "higher", interval=True, baseline=False),
        Figure("n_pairs", None),
        Figure("n_counterfactuals", None),
    ),
)

# -- faithfulness: CT, CCT, phi-CCT (one family: one set of interventions) ---------------------------------
COUNTERFACTUAL = "counterfactual"  # the family of ct, cct and phi_cct

CT = CheckEntry(
    name="ct",
    description="counterfactual test (Atanasova et al. 2023): do explanations mention an inserted word that "
                "flipped the prediction?",
    implementation="sce_checks.checks.counterfactual:CTCheck",
    family=COUNTERFACTUAL,
    settings=(PERTURBATIONS,),
    counts=("n_tested", "n_interventions"),
    figures=(
        Figure("unfaithfulness", "lower", headline=True, interval=True, primary=True),
        Figure("flip_rate", None, headline=True, interval=True),
        Figure("intervention_flip_rate", None, interval=True),
        Figure("n_tested", None), Figure("n_flipped", None), Figure("n_unfaithful", None), Figure("n_interventions", None),
    ),
)

CCT = CheckEntry(
    name="cct",
    description="correlational counterfactual test (Siegel et al. 2024): TVD of the option distribution vs mention",
    implementation="sce_checks.checks.counterfactual:CCTCheck",
    family=COUNTERFACTUAL,
    settings=(PERTURBATIONS,),
    counts=("n_interventions",),
    plots=("tvd_mention",),
    figures=(
        Figure("cct", "higher", headline=True, primary=True),
        Figure("mean_tvd_mentioned", None, headline=True),
        Figure("mean_tvd_not_mentioned", None, headline=True),
        Figure("mean_tvd", None),
        Figure("mention_rate", None, interval=True),
        Figure("n_mentioned", None), Figure("n_interventions", None),
    ),
)

PHI_CCT = CheckEntry(
    name="phi_cct",
    description="phi-CCT (Siegel et al. 2025): phi of (prediction changed) x (explanation mentions the inserted word)",
    implementation="sce_checks.checks.counterfactual:PhiCCTCheck",
    family=COUNTERFACTUAL,
    settings=(PERTURBATIONS,),
    counts=("n_interventions",),
    plots=("phi_table",),
    figures=(
        Figure("phi", "higher", headline=True, primary=True),
        Figure("tpr", "higher", headline=True, interval=True),
        Figure("fpr", "lower", headline=True, interval=True),
        Figure("mention_rate", None, interval=True),
        Figure("n11", None), Figure("n10", None), Figure("n01", None), Figure("n00", None), Figure("n_interventions", None),
    ),
)

# -- self-consistency ------------------------------------------------------------------------------------
SELF_CONSISTENCY = CheckEntry(
    name="self_consistency",
    description="decision and explanation attributed to the same input words (Admoni et al. 2025; captum)",
    implementation="sce_checks.checks.self_consistency:SelfConsistencyCheck",
    settings=(ATTRIBUTION,),
    counts=("n_scored",),
    figures=(
        Figure("mean_spearman", "higher", headline=True, primary=True),
        Figure("mean_l1_dot", "higher", headline=True),
        Figure("median_spearman", None),
        Figure("median_l1_dot", None),
        Figure("n_scored", None), Figure("n_skipped", None),
        Figure("n_l1_dot_undefined", None), Figure("n_spearman_undefined", None),
    ),
)
