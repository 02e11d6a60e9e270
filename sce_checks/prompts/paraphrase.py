"""Paraphrases of the prediction prompt, for the stability check (checks/stability.py).

An SCE is only as meaningful as the prediction it is checked against: if the model's label on a
counterfactual changes when the prediction prompt is merely reworded, "valid" says as much about
the wording as about the model's decision boundary (prompt sensitivity is a known confound of
LLM evaluation; the SCE protocol of Mayne et al., EMNLP 2025, arXiv 2509.09396, and of
Dehghanighobadi et al., EMNLP 2025, arXiv 2502.18156, each fixes one wording).

Each paraphrase carries the same information as the canonical prompt (prompts/grid.py,
prompts/text.py): the task's preamble and question, the options, the input, and the same answer
format (`answer_instruction`, ``{"answer": "<option>"}``), so a reply is parsed exactly like a
canonical one. What changes is the framing and the layout: where the input sits, how it is
introduced, how the question is posed. Every paraphrase is one user message, like the canonical
prompt. The input keeps its canonical rendering (a grid record as ``- <label>: <value>`` lines, a
text as a JSON string) so that a paraphrase changes the wording around the input, never the input.

The three paraphrases have the same names for both kinds of task:

* ``input_first``: the input first, then the task, question and answer format;
* ``annotator``: a labelling-assistant framing, the question restated as "Question: ...";
* ``options_first``: the choice announced first ("Two labels are possible ..."), the input in the
  middle, the answer format last.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from sce_checks.models.base import Conversation
from sce_checks.prompts.common import answer_instruction, options_line

__all__ = ["GRID_PARAPHRASES", "PARAPHRASE_NAMES", "TEXT_PARAPHRASES", "paraphrases"]

Paraphrase = Callable[[Any, Any], Conversation]


def _user(content: str) -> Conversation:
    return [{"role": "user", "content": content}]


def _choice(task: Any) -> str:
    n = len(task.options)
    return f"{'Two' if n == 2 else n} labels are possible: {options_line(task.options)}."


# -- grid tasks: (GridTask, point) -> Conversation ------------------------------------------------


def grid_input_first(task: Any, point: Any) -> Conversation:
    return _user(
        f"{task.render(point)}\n\nThe lines above describe one record. {task.preamble}\n"
        f"Based on that record: {task.question}\n{answer_instruction(task.options)}"
    )


def grid_annotator(task: Any, point: Any) -> Conversation:
    return _user(
        f"You are helping to label records. {task.preamble}\n\nRecord to label:\n{task.render(point)}\n\n"
        f"Question: {task.question}\n{answer_instruction(task.options)}"
    )


def grid_options_first(task: Any, point: Any) -> Conversation:
    return _user(
        f"{_choice(task)} Pick the one that fits the record below.\n{task.preamble} {task.question}\n\n"
        f"Record:\n{task.render(point)}\n\n{answer_instruction(task.options)}"
    )


# -- text tasks: (TextTask, text) -> Conversation -------------------------------------------------


def text_input_first(task: Any, text: str) -> Conversation:
    return _user(
        f"Text: {json.dumps(text, ensure_ascii=False)}\n\nThe line above is the text to consider. "
        f"{task.preamble}\nBased on that text: {task.question}\n{answer_instruction(task.options)}"
    )


def text_annotator(task: Any, text: str) -> Conversation:
    return _user(
        f"You are helping to label texts. {task.preamble}\n\n"
        f"Text to label: {json.dumps(text, ensure_ascii=False)}\n\n"
        f"Question: {task.question}\n{answer_instruction(task.options)}"
    )


def text_options_first(task: Any, text: str) -> Conversation:
    return _user(
        f"{_choice(task)} Pick the one that fits the text below.\n{task.preamble} {task.question}\n\n"
        f"Input: {json.dumps(text, ensure_ascii=False)}\n\n{answer_instruction(task.options)}"
    )


PARAPHRASE_NAMES: tuple[str, ...] = ("input_first", "annotator", "options_first")
GRID_PARAPHRASES: dict[str, Paraphrase] = {
    "input_first": grid_input_first,
    "annotator": grid_annotator,
    "options_first": grid_options_first,
}
TEXT_PARAPHRASES: dict[str, Paraphrase] = {
    "input_first": text_input_first,
    "annotator": text_annotator,
    "options_first": text_options_first,
}


def paraphrases(task: Any) -> dict[str, Paraphrase]:
    """The paraphrases for ``task``'s kind (``"grid"`` or ``"text"``), by name, in a fixed order."""
    if task.kind == "grid":
        return dict(GRID_PARAPHRASES)
    if task.kind == "text":
        return dict(TEXT_PARAPHRASES)
    raise ValueError(f"no paraphrases for task kind {task.kind!r}; expected 'grid' or 'text'")
