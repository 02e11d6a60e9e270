"""The allowed values of settings that several layers check, each written once.

The settings table (sce_checks/config.py) offers them as choices, and the code that acts on a
value checks it against the same tuple: predictions (checks/predict.py), elicitation
(prompts/schemas.py), parsing (sce_checks/parsing.py), the baseline gate (regression/gate.py),
the hf backend's dtype (models/identity.py) and the SCE variants (checks/sce.py, stability.py).
A leaf module (standard library only), so the lowest layer that needs a tuple can import it.
"""

from __future__ import annotations

PREDICTIONS: tuple[str, ...] = ("auto", "score", "generate")
ELICITATIONS: tuple[str, ...] = ("free", "schema")
PARSINGS: tuple[str, ...] = ("lenient", "strict")
BASELINE_MODES: tuple[str, ...] = ("paired", "tolerance")
DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16")
VARIANTS: tuple[str, ...] = ("unconstrained", "minimal")  # the SCE check's variants, one unit each
