"""Prompts for grid tasks, after the protocol of Mayne et al. (EMNLP 2025, arXiv 2509.09396):

1. prediction in a fresh conversation, answer as JSON ``{"answer": "<option>"}``;
2. in the SAME conversation (prediction prompt, the model's reply, then a follow-up), a request to
   revise the record so that the answer would have been the other option, listing every feature
   with its type and allowed values, reply as JSON keyed by feature name. The ``minimal`` variant
   also asks for the smallest change that crosses the model's own decision boundary and explains
   how distance is measured (Gower's distance), as the paper's minimal prompt does.
"""

from __future__ import annotations

import json

from sce_checks.models.base import Conversation
from sce_checks.prompts.common import answer_instruction
from sce_checks.tasks.grid import GridTask, Point

BOUNDARY_EXPLANATION = (
    "Make the smallest change that would change your answer: the revised record should lie just "
    "on the other side of your own decision boundary."
)

GOWER_EXPLANATION = (
    "Distance between two records is measured with Gower's distance: for each numeric or ordered "
    "feature, the absolute difference between the two values divided by the feature's full range "
    "(ordered categories count as positions 0, 1, 2, ... in the order listed); for each "
    "unordered categorical feature, 0 if the value is the same and 1 if it differs. The distance "
    "is the average of these per-feature differences over all features."
)


def prediction_prompt(task: GridTask, point: Point) -> str:
    """Task text, question and answer format first, the record last: every prompt of a task then
    shares all but its last few tokens, which a backend computes once (see docs/method.md)."""
    return f"{task.preamble}\n{task.question}\n{answer_instruction(task.options)}\n\nThe record:\n{task.render(point)}"


def prediction_conversation(task: GridTask, point: Point) -> Conversation:
    return [{"role": "user", "content": prediction_prompt(task, point)}]


def reply_template(task: GridTask) -> str:
    """The keys of a record with empty values, ``{"age": "", "education": ""}``: the form the
    paper's follow-up asks for. (A filled example record, which an earlier version showed, is
    copied verbatim by small models.)"""
    return json.dumps({f.name: "" for f in task.features}, ensure_ascii=False)


def sce_request(task: GridTask, target: str, variant: str) -> str:
    """The follow-up of Mayne et al.: revise the record so that the answer would have been
    ``target``; the valid values and type of each feature; (minimal) the smallest change across
    the model's own boundary and how distance is measured; a JSON reply with the keys given."""
    if variant not in ("unconstrained", "minimal"):
        raise ValueError(f"unknown variant {variant!r}")
    features = "\n".join(f"{f.name}: {f.describe()}" for f in task.features)
    minimal = variant == "minimal"
    parts = [f'Now revise the record so that your answer to the question on the revised record would have been "{target}".']
    if minimal:
        parts.append(BOUNDARY_EXPLANATION)
    parts.append(f"The valid values and type of each feature:\n{features}")
    if minimal:
        parts.append(GOWER_EXPLANATION)
    parts.append(
        "Reply with the revised record as a JSON object only, without any other words, with the keys "
        f"below:\n{reply_template(task)}"
    )
    return "\n\n".join(parts)


def sce_conversation(task: GridTask, point: Point, first_reply: str, target: str, variant: str) -> Conversation:
    return [
        {"role": "user", "content": prediction_prompt(task, point)},
        {"role": "assistant", "content": first_reply},
        {"role": "user", "content": sce_request(task, target, variant)},
    ]
