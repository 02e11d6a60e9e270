"""Prompts for free-text tasks, after Dehghanighobadi, Fischer and Zafar (EMNLP 2025,
arXiv 2502.18156): prediction in a fresh conversation; the SCE requested in the same
conversation, as JSON ``{"revised_text": ...}``; and, for Val_c, the revised text classified
inside that same conversation.
"""

from __future__ import annotations

import json

from sce_checks.models.base import Conversation
from sce_checks.prompts.common import answer_instruction


def prediction_prompt(task, text: str) -> str:
    """The text last, so prompts of a task share their prefix (see prompts/grid.py)."""
    return f"{task.preamble}\n{task.question}\n{answer_instruction(task.options)}\n\nText: {json.dumps(text, ensure_ascii=False)}"


def prediction_conversation(task, text: str) -> Conversation:
    return [{"role": "user", "content": prediction_prompt(task, text)}]


def sce_request(target: str, variant: str) -> str:
    if variant == "minimal":
        ask = (
            f'Now make the smallest possible edit to the text so that your answer would have been "{target}": '
            "change as few words as you can and keep everything else exactly as it is."
        )
    elif variant == "unconstrained":
        ask = f'Now revise the text so that your answer would have been "{target}".'
    else:
        raise ValueError(f"unknown variant {variant!r}")
    return f'{ask}\nReply with a JSON object only, in the form {{"revised_text": "<the revised text>"}}.'


def sce_conversation(task, text: str, first_reply: str, target: str, variant: str) -> Conversation:
    return [
        {"role": "user", "content": prediction_prompt(task, text)},
        {"role": "assistant", "content": first_reply},
        {"role": "user", "content": sce_request(target, variant)},
    ]


def in_context_conversation(task, text: str, first_reply: str, target: str, variant: str, sce_reply: str, revised: str) -> Conversation:
    """Val_c: the revised text is classified inside the conversation that produced it."""
    return sce_conversation(task, text, first_reply, target, variant) + [
        {"role": "assistant", "content": sce_reply},
        {
            "role": "user",
            "content": f"Now consider this text: {json.dumps(revised, ensure_ascii=False)}\n\n"
            f"{task.question}\n{answer_instruction(task.options)}",
        },
    ]
