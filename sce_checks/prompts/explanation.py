"""The free-text self-explanation request of the self-consistency check (Admoni et al. 2025,
arXiv 2506.07523; CC-SHAP, Parcalabescu and Frank 2023): after the model has answered, the same
conversation asks it to explain that answer. Short on purpose: a 135M model rambles, and every
explanation token is teacher-forced once per perturbation of the input.
"""

from __future__ import annotations

from sce_checks.models.base import Conversation

EXPLANATION_REQUEST = "Explain briefly why."


def explanation_conversation(prediction_conversation: Conversation, first_reply: str) -> Conversation:
    """The prediction conversation, the model's answer, then the request for an explanation."""
    return [
        *prediction_conversation,
        {"role": "assistant", "content": first_reply},
        {"role": "user", "content": EXPLANATION_REQUEST},
    ]
