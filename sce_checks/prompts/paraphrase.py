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
from dataclasses import dataclass
from typing import Any, Callable

from sce_checks.models.base import Conversation
from sce_checks.prompts.common import answer_instruction, options_line

__all__ = ["PARAPHRASES", "PARAPHRASE_NAMES", "paraphrases"]

Paraphrase = Callable[[Any, Any], Conversation]


def _user(content: str) -> Conversation:
    return [{"role": "user", "content": content}]


def _choice(task: Any) -> str:
    n = len(task.options)
    return f"{'Two' if n == 2 else n} labels are possible: {options_line(task.options)}."


# -- how each task kind names and shows its input ----------------------------------------------------


@dataclass(frozen=True)
class _Input:
    """The pieces of wording that differ between task kinds: what the input is called, and how it
    is shown first, to be labelled, and labelled plainly."""

    noun: str  # "record" / "text"
    above: str  # after the input shown first
    first: Callable[[Any, Any], str]
    to_label: Callable[[Any, Any], str]
    labelled: Callable[[Any, Any], str]


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


_INPUTS = {
    "grid": _Input("record", "The lines above describe one record.", lambda t, x: t.render(x),
                   lambda t, x: f"Record to label:\n{t.render(x)}", lambda t, x: f"Record:\n{t.render(x)}"),
    "text": _Input("text", "The line above is the text to consider.", lambda t, x: f"Text: {_quoted(x)}",
                   lambda t, x: f"Text to label: {_quoted(x)}", lambda t, x: f"Input: {_quoted(x)}"),
}


# -- the paraphrases: (task, input) -> Conversation ------------------------------------------------


def input_first(task: Any, x: Any) -> Conversation:
    i = _INPUTS[task.kind]
    return _user(
        f"{i.first(task, x)}\n\n{i.above} {task.preamble}\n"
        f"Based on that {i.noun}: {task.question}\n{answer_instruction(task.options)}"
    )


def annotator(task: Any, x: Any) -> Conversation:
    i = _INPUTS[task.kind]
    return _user(
        f"You are helping to label {i.noun}s. {task.preamble}\n\n{i.to_label(task, x)}\n\n"
        f"Question: {task.question}\n{answer_instruction(task.options)}"
    )


def options_first(task: Any, x: Any) -> Conversation:
    i = _INPUTS[task.kind]
    return _user(
        f"{_choice(task)} Pick the one that fits the {i.noun} below.\n{task.preamble} {task.question}\n\n"
        f"{i.labelled(task, x)}\n\n{answer_instruction(task.options)}"
    )


PARAPHRASE_NAMES: tuple[str, ...] = ("input_first", "annotator", "options_first")
PARAPHRASES: dict[str, Paraphrase] = {"input_first": input_first, "annotator": annotator, "options_first": options_first}


def paraphrases(task: Any) -> dict[str, Paraphrase]:
    """The paraphrases for ``task``'s kind (``"grid"`` or ``"text"``), by name, in a fixed order."""
    if task.kind not in _INPUTS:
        raise ValueError(f"no paraphrases for task kind {task.kind!r}; expected 'grid' or 'text'")
    return dict(PARAPHRASES)
