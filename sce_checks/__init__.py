"""sce-checks: audit language models' self-generated counterfactual explanations.

This module stays light (no torch, no transformers) because pytest imports the plugin at start-up.
"""

__version__ = "0.1.0"

from sce_checks.errors import SceError, UserInputError  # noqa: E402

__all__ = ["__version__", "SceError", "UserInputError"]
