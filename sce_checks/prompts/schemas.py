"""JSON Schemas of the replies each request asks for, for structured elicitation.

Under ``elicitation = "schema"`` (docs/method.md, "Structured elicitation") a reply is
constrained to the schema of what its request asks for, so the model still chooses the content
but can no longer fail on format:

* a grid SCE: every feature's key, required, with its allowed values, no other key;
* a text SCE: ``{"revised_text": <string>}``;
* a generated answer: ``{"answer": <one of the options>}``.

The schemas are plain JSON Schema (draft 2020-12 keywords that every structured-output engine
understands: ``type``, ``enum``, ``minimum``/``maximum``, ``required``, ``additionalProperties``,
``minLength``), with the properties in the order the prompt lists them: a constrained decoder
writes the keys in that order.
"""

from __future__ import annotations

from typing import Any, Sequence

from sce_checks.tasks.grid import Feature, GridTask



def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def feature_schema(feature: Feature) -> dict[str, Any]:
    """The values a feature may take: an integer range when the grid steps by one, otherwise the
    list of allowed values (integers or labels)."""
    values = list(feature.values)
    if feature.type == "integer":
        if len(values) > 1 and values == list(range(values[0], values[-1] + 1)):
            return {"type": "integer", "minimum": values[0], "maximum": values[-1]}
        return {"type": "integer", "enum": values}
    return {"type": "string", "enum": values}


def grid_sce_schema(task: GridTask) -> dict[str, Any]:
    """A record of ``task``: every feature's key, required, with its allowed values."""
    return _object({f.name: feature_schema(f) for f in task.features})


def text_sce_schema() -> dict[str, Any]:
    """A revised text: ``{"revised_text": <non-empty string>}``."""
    return _object({"revised_text": {"type": "string", "minLength": 1}})


def answer_schema(options: Sequence[str]) -> dict[str, Any]:
    """A generated answer: ``{"answer": <one of the options>}``."""
    return _object({"answer": {"type": "string", "enum": list(options)}})

