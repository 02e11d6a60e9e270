"""Pieces shared by every prompt: how options are listed and the JSON reply the model must give."""

from __future__ import annotations

import json
from typing import Sequence


def options_line(options: Sequence[str]) -> str:
    quoted = [json.dumps(o, ensure_ascii=False) for o in options]
    if len(quoted) == 2:
        return f"{quoted[0]} or {quoted[1]}"
    return ", ".join(quoted[:-1]) + f" or {quoted[-1]}"


def answer_instruction(options: Sequence[str]) -> str:
    return (
        f"Answer with exactly one of these options: {options_line(options)}.\n"
        'Reply with a JSON object only, in the form {"answer": "<option>"}.'
    )


def canonical_answer(option: str) -> str:
    """The reply a model following the format gives; also the string scored as the reply when a
    backend offers option scoring."""
    return json.dumps({"answer": option}, ensure_ascii=False)
