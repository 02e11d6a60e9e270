"""Structured elicitation: the schemas of every request, and the schema reaching each kind of
Python model, the cache key and the report. (The hf backend's constrained decoding is tested in
tests/models/test_constrained.py, the openai backend's response_format in tests/models/test_openai.py.)"""

from __future__ import annotations

import json
import sys
import textwrap

import jsonschema
import pytest

from sce_checks.audit import AuditConfig, run_audit
from sce_checks.checks.sce import SCESettings, run_grid_sce, run_text_sce
from sce_checks.models.base import Decoding
from sce_checks.models.cache import CachedModel, ResponseCache
from sce_checks.models.python import FunctionModel
from sce_checks.prompts.schemas import answer_schema, grid_sce_schema, text_sce_schema
from sce_checks.tasks import load_task
from sce_checks.tasks.builtin_grids import BUILTIN_GRIDS
from tests.helpers.rule_models import TOY, RuleModel, toy_rule

LOAN = "audits/examples/loan.grid.toml"


def grid_tasks():
    return [*BUILTIN_GRIDS.values(), load_task(LOAN)]


@pytest.mark.parametrize("task", grid_tasks(), ids=lambda t: t.name)
def test_grid_schema_admits_exactly_the_grid(task):
    schema = grid_sce_schema(task)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert list(schema["properties"]) == [f.name for f in task.features]  # the prompt's order
    for index in range(0, task.size, max(1, task.size // 200)):
        assert validator.is_valid(task.as_dict(task.point_at(index)))
    record = task.as_dict(task.point_at(0))
    first = task.features[0]
    bad = [
        {k: v for k, v in record.items() if k != first.name},  # a key missing
        {**record, "note": "x"},  # an extra key
        {**record, first.name: str(record[first.name])},  # a number as a string
    ]
    for f in task.features:
        if f.type == "integer":
            bad += [{**record, f.name: f.values[-1] + 1}, {**record, f.name: f.values[0] - 1}]
            if len(f.values) > 1 and f.values[1] - f.values[0] > 1:
                bad.append({**record, f.name: f.values[0] + 1})  # between grid points
        else:
            bad.append({**record, f.name: f.values[0].upper() + "!"})
    assert not any(validator.is_valid(b) for b in bad)


def test_answer_and_text_schemas():
    for schema in (answer_schema(("No", "Yes")), text_sce_schema()):
        jsonschema.Draft202012Validator.check_schema(schema)
    answer = jsonschema.Draft202012Validator(answer_schema(("No", "Yes")))
    assert answer.is_valid({"answer": "Yes"}) and not answer.is_valid({"answer": "yes"})
    assert not answer.is_valid({"answer": "Yes", "why": "x"})
    text = jsonschema.Draft202012Validator(text_sce_schema())
    assert text.is_valid({"revised_text": "a"}) and not text.is_valid({"revised_text": ""})


def test_decoding_carries_the_schema_and_keys_the_cache(tmp_path):
    free = Decoding(max_new_tokens=64)
    constrained = free.with_schema(answer_schema(("No", "Yes")))
    assert free.schema is None and "json_schema" not in free.as_dict()
    assert constrained.schema == answer_schema(("No", "Yes")) and constrained.as_dict()["json_schema"]

    calls = []

    def model(messages, decoding):
        calls.append(decoding.schema)
        return '{"answer": "Yes"}'

    cached = CachedModel(FunctionModel(model, "python:m:f", {"backend": "python"}), ResponseCache(tmp_path / "c.sqlite"))
    conv = [[{"role": "user", "content": "q"}]]
    cached.chat(conv, free)
    cached.chat(conv, constrained)
    cached.chat(conv, constrained)
    assert calls == [None, answer_schema(("No", "Yes"))]  # two requests, the third answered by the cache


class SchemaModel(RuleModel):
    """Follows the schema when it gets one (as a constrained decoder would), rambles when it does not:
    predictions by the rule, SCEs on the boundary, and records which schemas it was sent."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.schemas = []

    def chat(self, conversations, decoding):
        self.schemas.append(decoding.schema)
        clean = super().chat(conversations, decoding)
        if decoding.schema is None:
            return ["Let me think about it. " + r.replace("{", "(").replace("}", ")") for r in clean]
        return [r if r.startswith("{") else r.split("```json\n")[1].split("\n```")[0] for r in clean]


def test_schema_elicitation_end_to_end_on_a_python_model():
    examples = [("A", (2, "a")), ("B", (7, "d"))]
    free = SchemaModel(TOY, toy_rule)
    (r_free,) = run_grid_sce(free, "m", TOY, examples, SCESettings(variants=("minimal",), prediction="generate"))
    assert r_free.info["n_prediction_unparsed"] == 2 and r_free["generation_rate"] == 0.0
    constrained = SchemaModel(TOY, toy_rule)
    (r,) = run_grid_sce(constrained, "m", TOY, examples,
                        SCESettings(variants=("minimal",), prediction="generate", elicitation="schema"))
    assert r["generation_rate"] == 1.0 and r["validity"] == 1.0 and r["exact_match"] == 1.0
    assert r.info["elicitation"] == "schema"
    assert answer_schema(TOY.options) in constrained.schemas and grid_sce_schema(TOY) in constrained.schemas
    assert None not in constrained.schemas  # every request of the audit was constrained


class TextSchemaModel:
    """Answers 'positive' unless the text says 'dull'; revises by replacing the first word with 'dull'."""

    def __init__(self):
        self.decodings = []

    def chat(self, conversations, decoding):
        self.decodings.append(decoding)
        out = []
        for conv in conversations:
            if len(conv) == 1:
                out.append(json.dumps({"answer": "negative" if "dull" in conv[0]["content"] else "positive"}))
            else:
                text = json.loads(conv[0]["content"].split("Text: ", 1)[1])
                out.append(json.dumps({"revised_text": "dull " + text.split(" ", 1)[1]}))
        return out


def test_text_sce_schema_bounds_the_revision_and_its_tokens():
    task = load_task("sentiment")
    examples = [(e.id, e.text) for e in task.examples[:3]]
    model = TextSchemaModel()
    run_text_sce(model, "m", task, examples, SCESettings(variants=("unconstrained",), prediction="generate",
                                                         elicitation="schema"))
    sce = [d for d in model.decodings if d.schema and "revised_text" in d.schema["properties"]]
    assert len(sce) == 1
    longest = max(len(t) for _, t in examples)
    assert sce[0].schema["properties"]["revised_text"]["maxLength"] == 2 * longest + 50
    assert sce[0].max_new_tokens >= 2 * longest + 50


MODULE = '''
import json, re

def classify(messages, decoding=None):
    """Honours the schema it is handed: a free reply rambles, a constrained one is the JSON."""
    if decoding is None or decoding.schema is None:
        return "I think it is positive."
    if "answer" in decoding.schema["properties"]:
        return json.dumps({"answer": decoding.schema["properties"]["answer"]["enum"][-1]})
    return json.dumps({"revised_text": "A dull film."})
'''


def test_function_models_get_the_decoding_when_they_ask(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "schema_user_model.py").write_text(textwrap.dedent(MODULE))
    try:
        base = dict(model="python:schema_user_model:classify", datasets=["sentiment"], variants=["unconstrained"],
                    limit=2, no_cache=True)
        free = run_audit(AuditConfig(**base))
        schema = run_audit(AuditConfig(**base, elicitation="schema"))
    finally:
        sys.modules.pop("schema_user_model", None)
    (rf,), (rs,) = free.results, schema.results
    assert rf.info["n_prediction_unparsed"] == 2 and rs.info["n_prediction_unparsed"] == 0
    assert rs["generation_rate"] == 1.0 and rs.info["elicitation"] == "schema"
    assert schema.environment["elicitation"] == "schema" and free.environment["elicitation"] == "free"
    assert schema.environment["parsing"] == "lenient"


def test_bad_settings_are_refused_before_any_model_call():
    from sce_checks.errors import UserInputError

    with pytest.raises(UserInputError, match="elicitation: expected free or schema, got 'json'"):
        run_audit(AuditConfig(model="python:nowhere:x", elicitation="json"))
    with pytest.raises(UserInputError, match="parsing: expected lenient or strict"):
        run_audit(AuditConfig(model="python:nowhere:x", parsing="loose"))



# -- the text SCE's reply form: the paper's marker under free elicitation, JSON under schema ----------


def test_the_text_sce_request_asks_for_the_form_of_its_elicitation():
    from sce_checks.parsing import SCE_MARKER
    from sce_checks.prompts import text as text_prompts

    for variant in ("unconstrained", "minimal"):
        free = text_prompts.sce_request("positive", variant)
        schema = text_prompts.sce_request("positive", variant, "schema")
        assert f"'{SCE_MARKER}'" in free and "JSON" not in free
        assert '{"revised_text": ' in schema and SCE_MARKER not in schema
    assert text_prompts.sce_form("free") == "marker" and text_prompts.sce_form("schema") == "json"


def test_a_marker_reply_is_read_end_to_end():
    """A model that writes its revision after 'REVISED TEXT:' (and answers after it, as the paper's
    models do) gets, under free elicitation and strict parsing, the figures a model writing the
    same revision as JSON gets under schema elicitation; a JSON reply to the marker request is read
    only leniently (``other_form``)."""
    from sce_checks.parsing import SCE_MARKER
    from tests.helpers.text_models import MINI_EXAMPLES, MINI_TASK, TextRuleModel

    class MarkerRuleModel(TextRuleModel):
        def chat(self, conversations, decoding):
            out = []
            for conv, reply in zip(conversations, super().chat(conversations, decoding)):
                if SCE_MARKER in conv[-1]["content"]:
                    reply = f'{SCE_MARKER} "{json.loads(reply)["revised_text"]}"\n\nANSWER: positive'
                out.append(reply)
            return out

    def run(model, **settings):
        (r,) = run_text_sce(model, "m", MINI_TASK, MINI_EXAMPLES,
                            SCESettings(variants=("minimal",), prediction="generate", **settings))
        return r

    marker = run(MarkerRuleModel("swap"), elicitation="free", parsing="strict")
    as_json = run(TextRuleModel("swap"), elicitation="schema", parsing="strict")
    assert marker["generation_rate"] == 1.0 and marker["validity"] == 1.0
    assert marker.figures == as_json.figures
    assert [e.counterfactual for e in marker.examples] == ["a good film", "a bad film"]
    assert run(TextRuleModel("swap"), elicitation="free", parsing="strict")["generation_rate"] == 0.0
    lenient = run(TextRuleModel("swap"), elicitation="free")
    assert lenient.figures == as_json.figures and lenient.info["sce_leniency"] == {"other_form": 2}
