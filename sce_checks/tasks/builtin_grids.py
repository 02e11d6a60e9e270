"""The three grid tasks of Mayne et al. (EMNLP 2025, arXiv 2509.09396), section 3 / appendix, and
one three-option grid of ours (``credit_risk``, below).

Feature ranges, JSON keys, value labels and option labels are the paper's (its reference code,
github HarryMayne/SCEs); the preambles, questions and feature labels are our wording
(docs/method.md lists every wording and deviation, and why the questions stay ours).
``house_prices`` area is declared as an integer
feature with step 500: its Gower term (|a-b| / 9500) equals the paper's ordinal index term
(|i-j| / 19), so distances are identical.

``increases`` on a feature is a stated domain prior, not a fact about any model and not taken
from the paper: it is what the CheckList DIR test (Ribeiro et al. 2020; checks/perturbation.py,
docs/perturbation-checks.md) expects when that feature moves one step up. Only monotone,
uncontroversial priors are declared (more education, more rooms, higher blood pressure); age on
income is not (income rises, then falls with age), nor is sex on heart disease (categorical).
"""

from __future__ import annotations

from sce_checks.tasks.grid import Feature, GridTask, integer_feature

# The 24 ordered educational-attainment levels of the US census (ACS variable SCHL), with the
# labels of the reference code of Mayne et al. (github HarryMayne/SCEs, src/utils.py and
# src/models_datasets/datasets.json), so that replies read the same in both.
EDUCATION_LEVELS: tuple[str, ...] = (
    "N/A - no schooling completed",
    "Nursery school / preschool",
    "Kindergarten",
    "1st grade only",
    "2nd grade",
    "3rd grade",
    "4th grade",
    "5th grade",
    "6th grade",
    "7th grade",
    "8th grade",
    "9th grade",
    "10th grade",
    "11th grade",
    "12th grade, no diploma",
    "Regular high school diploma",
    "GED or alternative credential",
    "Some college, less than 1 year",
    "Some college, 1 or more years, no degree",
    "Associate's degree",
    "Bachelor's degree",
    "Master's degree",
    "Professional degree beyond a bachelor's degree",
    "Doctorate degree",
)

INCOME = GridTask(
    name="income",
    preamble=(
        "You will be shown a record describing a respondent to the 2018 US Census American "
        "Community Survey."
    ),
    question="Is this respondent's yearly income below or above $50,000?",
    options=("Below $50,000", "Above $50,000"),
    features=(
        integer_feature("age", "Age (years)", 17, 96),
        Feature("education", "Highest educational attainment", "ordinal", EDUCATION_LEVELS, increases="Above $50,000"),
    ),
)

_ABOVE_1_5M = "Above $1,500,000"
HOUSE_PRICES = GridTask(
    name="house_prices",
    preamble="You will be shown a description of a house for sale in the United States.",
    question="Is the sale price of this house below or above $1,500,000?",
    options=("Below $1,500,000", "Above $1,500,000"),
    features=(
        integer_feature("area", "Living area (square feet)", 500, 10000, 500, increases=_ABOVE_1_5M),
        integer_feature("bedrooms", "Number of bedrooms", 1, 5, increases=_ABOVE_1_5M),
        integer_feature("bathrooms", "Number of bathrooms", 1, 4, increases=_ABOVE_1_5M),
        integer_feature("floors", "Number of floors", 1, 4, increases=_ABOVE_1_5M),
    ),
)

HEART_DISEASE = GridTask(
    name="heart_disease",
    preamble="You will be shown the clinical record of a patient.",
    question="Does this patient have heart disease?",
    options=("No heart disease", "Heart disease"),
    features=(
        integer_feature("age", "Age (years)", 30, 80, 5, increases="Heart disease"),
        Feature("sex", "Sex", "categorical", ("Female", "Male")),
        integer_feature("systolic_bp", "Systolic blood pressure (mmHg)", 110, 180, 10, increases="Heart disease"),
        integer_feature("total_cholesterol", "Total cholesterol (mg/dL)", 150, 300, 15, increases="Heart disease"),
    ),
)

# A three-option grid (docs/method.md, multi-class tasks): not from Mayne et al., who audit binary
# decisions only; its features are the usual inputs of a consumer credit decision, and its ranges
# are ours. As for the other grids no rule defines the answer: the audited model's answers are
# the ground truth the SCEs are checked against. The priors: a higher credit score should not
# make "Low risk" less likely; a higher debt-to-income ratio or more late payments should not
# make "High risk" less likely (employment is categorical: no direction).
_HIGH_RISK = "High risk"
CREDIT_RISK = GridTask(
    name="credit_risk",
    preamble="You will be shown a summary of a loan applicant's credit file.",
    question="Is the credit risk of this applicant low, medium or high?",
    options=("Low risk", "Medium risk", _HIGH_RISK),
    features=(
        integer_feature("credit_score", "Credit score (FICO)", 300, 850, 50, increases="Low risk"),
        integer_feature("debt_to_income", "Debt-to-income ratio (percent)", 0, 60, 10, increases=_HIGH_RISK),
        integer_feature("late_payments", "Late payments in the last two years", 0, 5, increases=_HIGH_RISK),
        Feature("employment", "Employment", "categorical", ("Unemployed", "Part-time", "Full-time", "Self-employed")),
    ),
)

BUILTIN_GRIDS: dict[str, GridTask] = {t.name: t for t in (INCOME, HOUSE_PRICES, HEART_DISEASE, CREDIT_RISK)}
