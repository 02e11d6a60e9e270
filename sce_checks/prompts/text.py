"""Prompts for free-text tasks, after Dehghanighobadi, Fischer and Zafar (EMNLP 2025,
arXiv 2502.18156): prediction in a fresh conversation; the SCE requested in the same
conversation; and, for Val_c, the revised text classified inside that same conversation.

The SCE reply takes the form of the paper's released code (github aisoc-lab/llm-sces, its
``Prompts/Unconstraint/*.json``) under free elicitation: free text that starts with a marker
(`SCE_MARKER`, ``REVISED TEXT:``; the code names each dataset's input: ``REVISED REVIEW:``).
Under schema elicitation the reply is constrained to JSON (prompts/schemas.py), so the request
asks for ``{"revised_text": ...}`` there. The prediction keeps the JSON answer of every other
prompt (docs/method.md, "Deviations").
"""

from __future__ import annotations

import json

from sce_checks.models.base import Conversation
from sce_checks.parsing import SCE_MARKER
from sce_checks.prompts.common import answer_instruction


def prediction_prompt(task, text: str) -> str:
    """The text last, so prompts of a task share their prefix (see prompts/grid.py)."""
    return f"{task.preamble}\n{task.question}\n{answer_instruction(task.options)}\n\nText: {json.dumps(text, ensure_ascii=False)}"


def prediction_conversation(task, text: str) -> Conversation:
    return [{"role": "user", "content": prediction_prompt(task, text)}]


def sce_form(elicitation: str) -> str:
    """The form an SCE reply is asked in: ``"marker"`` under free elicitation (the paper's), ``"json"``
    under schema elicitation (the form its schema constrains the reply to)."""
    return "json" if elicitation == "schema" else "marker"


def sce_request(target: str, variant: str, elicitation: str = "free") -> str:
    if variant == "minimal":
        ask = (
            f'Now make the smallest possible edit to the text so that your answer would have been "{target}": '
            "change as few words as you can and keep everything else exactly as it is."
        )
    elif variant == "unconstrained":
        ask = f'Now revise the text so that your answer would have been "{target}".'
    else:
        raise ValueError(f"unknown variant {variant!r}")
    if sce_form(elicitation) == "marker":
        return f"{ask}\nShare the revised text. Start your reply with '{SCE_MARKER}' followed by the revised text."
    return f'{ask}\nReply with a JSON object only, in the form {{"revised_text": "<the revised text>"}}.'


def sce_conversation(task, text: str, first_reply: str, target: str, variant: str,
                     elicitation: str = "free") -> Conversation:
    return [
        {"role": "user", "content": prediction_prompt(task, text)},
        {"role": "assistant", "content": first_reply},
        {"role": "user", "content": sce_request(target, variant, elicitation)},
    ]


def in_context_conversation(task, text: str, first_reply: str, target: str, variant: str, sce_reply: str, revised: str,
                            elicitation: str = "free") -> Conversation:
    """Val_c: the revised text is classified inside the conversation that produced it."""
    return sce_conversation(task, text, first_reply, target, variant, elicitation) + [
        {"role": "assistant", "content": sce_reply},
        {
            "role": "user",
            "content": f"Now consider this text: {json.dumps(revised, ensure_ascii=False)}\n\n"
            f"{task.question}\n{answer_instruction(task.options)}",
        },
    ]
