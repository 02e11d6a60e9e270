"""Grammar-constrained decoding on the ``hf`` backend (llguidance): tiny random Llamas on the REAL
SmolLM2 tokenizer, so the token masks are those of the real vocabulary.

The acceptance test of the issue: "Constrained decoding on a tiny model built from the SmolLM2
tokenizer: 100% of replies are schema-valid records, whatever the weights." Random weights (three
seeds) and an adversarial model that would rather stop at once or write whitespace than anything
else; batched with left padding; greedy and sampled.
"""

from __future__ import annotations

import json
import sys
import textwrap
from functools import lru_cache

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("llguidance")
jsonschema = pytest.importorskip("jsonschema")

from sce_checks.errors import BackendError, UserInputError  # noqa: E402
from sce_checks.models import Decoding  # noqa: E402
from sce_checks.models.hf import HFChatModel  # noqa: E402
from sce_checks.prompts.schemas import answer_schema, grid_sce_schema, text_sce_schema  # noqa: E402
from sce_checks.tasks import load_task  # noqa: E402
from sce_checks.tasks.builtin_grids import BUILTIN_GRIDS  # noqa: E402
from tests.helpers.tiny_llama import build_tiny_llama, tiny_llama  # noqa: E402

# Four conversations of different lengths: one chunk of batch_size 4, so left padding matters.
CONVERSATIONS = [
    [{"role": "user", "content": "Hi"}],
    [{"role": "user", "content": "Is this respondent's yearly income below or above $50,000? Age 40."}],
    [
        {"role": "system", "content": "You are a careful assistant that answers in JSON."},
        {"role": "user", "content": "Record:\n- Age (years): 33\n- Education: Bachelor's degree\nIncome?"},
    ],
    [
        {"role": "user", "content": "Predict the label of this record: age 50, doctorate."},
        {"role": "assistant", "content": '{"answer": "Above $50,000"}'},
        {"role": "user", "content": "Now revise the record so that your answer would have been Below."},
    ],
]

USER_GRID = """\
name = "loan"
question = "Will this loan application be approved?"
preamble = "You will be given a loan application."
options = ["Rejected", "Approved"]

[[features]]
name = "income"
label = "Yearly income (thousand dollars)"
type = "integer"
min = 10
max = 200
step = 10

[[features]]
name = "credit"
label = "Credit rating"
type = "ordinal"
values = ["poor", "fair", "good", "excellent"]

[[features]]
name = "region"
label = "Region"
type = "categorical"
values = ["north", "south", "east", "west"]

[[features]]
name = "years"
label = "Years at the current address"
type = "integer"
min = -3
max = 40
"""


def short_text_schema() -> dict:
    schema = text_sce_schema()
    schema["properties"]["revised_text"]["maxLength"] = 12
    return schema


def schemas(user_grid_path) -> dict[str, dict]:
    out = {name: grid_sce_schema(task) for name, task in BUILTIN_GRIDS.items()}
    out["user-grid"] = grid_sce_schema(load_task(user_grid_path))
    out["answer"] = answer_schema(["Below $50,000", "Above $50,000"])
    out["text"] = short_text_schema()
    return out


@lru_cache(maxsize=None)
def random_model(seed: int) -> HFChatModel:
    return tiny_llama(seed, batch_size=4)


@lru_cache(maxsize=None)
def adversarial_model() -> HFChatModel:
    """A tiny Llama whose output layer adds a large bias to the stop token and to whitespace
    tokens: unconstrained, it stops at once or writes blanks; constrained, it must still write a
    whole, compact record."""
    model, tokenizer = build_tiny_llama(7)
    old = model.lm_head
    head = torch.nn.Linear(old.in_features, old.out_features, bias=True)
    with torch.no_grad():
        head.weight.copy_(old.weight)
        head.bias.zero_()
        blanks = [i for t, i in tokenizer.get_vocab().items() if tokenizer.convert_tokens_to_string([t]).isspace()]
        head.bias[blanks] = 40.0
        head.bias[tokenizer.eos_token_id] = 60.0
    model.lm_head = head
    return HFChatModel(model, tokenizer, name="tiny-adversarial", batch_size=4)


def outside_strings(text: str) -> str:
    """The characters of JSON ``text`` that are not inside a string literal."""
    out, in_string, escaped = [], False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        else:
            out.append(char)
    return "".join(out)


def assert_valid(replies: list[str], schema: dict) -> None:
    for reply in replies:
        record = json.loads(reply)
        jsonschema.validate(record, schema)
        assert not any(c.isspace() for c in outside_strings(reply)), reply  # compact JSON


@pytest.fixture(scope="module")
def user_grid_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("grid") / "loan.grid.toml"
    path.write_text(textwrap.dedent(USER_GRID), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "model_key, temperature",
    [("seed-0", 0.0), ("seed-1", 0.0), ("adversarial", 0.0), ("seed-2", 1.0), ("adversarial", 1.0)],
    ids=["greedy-seed-0", "greedy-seed-1", "greedy-adversarial", "sampled-seed-2", "sampled-adversarial"],
)
def test_every_reply_is_a_schema_valid_record_whatever_the_weights(model_key, temperature, user_grid_path):
    model = adversarial_model() if model_key == "adversarial" else random_model(int(model_key[-1]))
    before = dict(model.stats.extra)
    checked = 0
    for name, schema in schemas(user_grid_path).items():
        decoding = Decoding(temperature=temperature, seed=11, max_new_tokens=256).with_schema(schema)
        replies = model.chat(CONVERSATIONS, decoding)
        assert len(replies) == len(CONVERSATIONS)
        assert_valid(replies, schema)
        checked += len(replies)
    extra = model.stats.extra
    assert extra["constrained_replies"] - before.get("constrained_replies", 0) == checked
    assert extra.get("constrained_unfinished", 0) == before.get("constrained_unfinished", 0)


def test_adversarial_model_is_not_valid_unconstrained():
    """The adversarial model really needs the constraint: free, it writes nothing at all."""
    replies = adversarial_model().chat(CONVERSATIONS, Decoding(max_new_tokens=8))
    assert replies == [""] * len(CONVERSATIONS)


def test_batched_constrained_replies_equal_one_by_one():
    batched_model = random_model(1)
    single = HFChatModel(batched_model.model, batched_model.tokenizer, name="tiny-llama", batch_size=1)
    schema = grid_sce_schema(BUILTIN_GRIDS["heart_disease"])
    decoding = Decoding(max_new_tokens=128).with_schema(schema)
    batched = batched_model.chat(CONVERSATIONS, decoding)
    assert batched == [single.chat([c], decoding)[0] for c in CONVERSATIONS]
    assert_valid(batched, schema)


def test_without_a_schema_nothing_changes(monkeypatch):
    """No schema: llguidance is never needed (imports of it fail here), no logits processor is
    passed to generate, and the replies are those of a plain run (test_hf checks those against a
    naive greedy loop), before and after a constrained request on the same model."""
    base = random_model(0)
    model = HFChatModel(base.model, base.tokenizer, name="tiny-llama", batch_size=4)
    free = Decoding(max_new_tokens=12)
    assert free.json_schema is None and "json_schema" not in free.as_dict()
    seen: list[dict] = []
    generate = model.model.generate

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return generate(*args, **kwargs)

    monkeypatch.setattr(model.model, "generate", spy)
    with monkeypatch.context() as blocked:
        blocked.setitem(sys.modules, "llguidance", None)
        first = model.chat(CONVERSATIONS, free)
    assert seen and all("logits_processor" not in kwargs for kwargs in seen)
    assert "constrained_replies" not in model.stats.extra and model._constrainer is None
    assert sum(1 for reply in first if reply) >= 2
    constrained = model.chat(CONVERSATIONS[:2], free.with_schema(answer_schema(["Yes", "No"])))
    assert constrained != first[:2]
    assert model.chat(CONVERSATIONS, free) == first


def test_sampling_under_the_constraint_is_reproducible_from_the_seed():
    model = random_model(2)
    schema = grid_sce_schema(BUILTIN_GRIDS["income"])
    decoding = Decoding(temperature=1.0, seed=5, max_new_tokens=128).with_schema(schema)
    assert model.chat(CONVERSATIONS, decoding) == model.chat(CONVERSATIONS, decoding)


def test_sampling_under_the_constraint_draws_per_row_batched_as_one_by_one():
    """The seeded sampler runs after the constraint (models/sampling.py): each row draws among
    the tokens its schema allows with its own generator, so the batch does not change a reply."""
    batched_model = random_model(2)
    single = HFChatModel(batched_model.model, batched_model.tokenizer, name="tiny-llama", batch_size=1)
    schema = grid_sce_schema(BUILTIN_GRIDS["income"])
    decoding = Decoding(temperature=1.0, seed=5, max_new_tokens=128).with_schema(schema)
    batched = batched_model.chat(CONVERSATIONS, decoding)
    assert batched == [single.chat([c], decoding)[0] for c in CONVERSATIONS]
    assert_valid(batched, schema)
    greedy = batched_model.chat(CONVERSATIONS, Decoding(max_new_tokens=128).with_schema(schema))
    assert batched != greedy


def test_tokenizer_wrapper_is_built_once_and_grammars_compiled_once_per_schema(monkeypatch):
    from sce_checks.models.constrained import Constrainer

    model = HFChatModel(random_model(0).model, random_model(0).tokenizer, name="tiny-llama", batch_size=4)
    compiled: list[str] = []
    compile_ = Constrainer._compile

    def counting(self, text):
        compiled.append(text)
        return compile_(self, text)

    monkeypatch.setattr(Constrainer, "_compile", counting)
    answer = Decoding(max_new_tokens=64).with_schema(answer_schema(["Yes", "No"]))
    grid = Decoding(max_new_tokens=64).with_schema(grid_sce_schema(BUILTIN_GRIDS["income"]))
    model.chat(CONVERSATIONS[:2], answer)
    constrainer = model.constrainer()
    model.chat(CONVERSATIONS[2:], answer)
    model.chat(CONVERSATIONS[:1], grid)
    model.chat(CONVERSATIONS[1:], answer)
    assert model.constrainer() is constrainer
    assert compiled == [answer.json_schema, grid.json_schema]


def test_whitespace_options_in_the_schema_cannot_loosen_compact_json():
    model = random_model(0)
    schema = answer_schema(["Yes", "No"])
    schema["x-guidance"] = {"whitespace_flexible": True, "whitespace_pattern": "[ \n]*", "item_separator": ", "}
    matcher = model.constrainer().matcher(Decoding().with_schema(schema).json_schema)
    tokens = model.tokenizer('{ "answer": "Yes"}', add_special_tokens=False)["input_ids"]
    assert matcher.try_consume_tokens(tokens) < len(tokens)
    matcher.reset()
    tokens = model.tokenizer('{"answer":"Yes"}', add_special_tokens=False)["input_ids"]
    assert matcher.try_consume_tokens(tokens) == len(tokens) and matcher.is_stopped()


def test_missing_llguidance_is_a_one_line_user_error(monkeypatch):
    base = random_model(0)
    model = HFChatModel(base.model, base.tokenizer, name="tiny-llama", batch_size=4)  # no llguidance state yet
    monkeypatch.setitem(sys.modules, "llguidance", None)
    monkeypatch.setitem(sys.modules, "llguidance.hf", None)
    with pytest.raises(UserInputError) as info:
        model.chat(CONVERSATIONS[:1], Decoding().with_schema(answer_schema(["Yes", "No"])))
    message = str(info.value)
    assert "\n" not in message and "needs llguidance" in message and "pip install llguidance" in message


@pytest.mark.parametrize(
    "schema, problem",
    [
        ({"type": "object", "properties": {"a": {"type": "integer", "minimum": 5, "maximum": 2}}, "required": ["a"]}, "unsatisfiable"),
        ({"type": "frobnicate"}, "frobnicate"),
        ({"type": "string", "format": "no-such-format"}, "no-such-format"),
    ],
)
def test_schema_llguidance_cannot_compile_is_a_one_line_user_error(schema, problem):
    model = random_model(0)
    with pytest.raises(UserInputError) as info:
        model.chat(CONVERSATIONS[:1], Decoding().with_schema(schema))
    message = str(info.value)
    assert "\n" not in message and "JSON schema" in message and problem in message.lower()


def test_a_refused_token_mid_generation_is_a_one_line_backend_error():
    model = random_model(0)
    schema = Decoding().with_schema(answer_schema(["Yes", "No"])).json_schema
    processor = model.constrainer().processor(schema, rows=1, prompt_width=3)
    scores = torch.zeros((1, model.model.config.vocab_size))
    processor(torch.tensor([[5, 6, 7]]), scores.clone())  # the first step: only '{' is allowed
    letter = model.tokenizer("x", add_special_tokens=False)["input_ids"][0]
    with pytest.raises(BackendError) as info:
        processor(torch.tensor([[5, 6, 7, letter]]), scores.clone())
    assert "\n" not in str(info.value) and "constrained decoding failed" in str(info.value)


def test_a_reply_cut_by_max_new_tokens_is_counted_unfinished():
    model = HFChatModel(random_model(0).model, random_model(0).tokenizer, name="tiny-llama", batch_size=4)
    replies = model.chat(CONVERSATIONS[:2], Decoding(max_new_tokens=3).with_schema(grid_sce_schema(BUILTIN_GRIDS["income"])))
    assert all(r.startswith("{") for r in replies)
    assert model.stats.extra["constrained_replies"] == 2 and model.stats.extra["constrained_unfinished"] == 2


@pytest.mark.real_model
def test_embedded_model_writes_a_schema_valid_grid_sce():
    from sce_checks.models import ModelOptions
    from sce_checks.models.smollm2 import load_smollm2
    from sce_checks.prompts.grid import sce_conversation

    task = BUILTIN_GRIDS["income"]
    schema = grid_sce_schema(task)
    model = load_smollm2(ModelOptions())
    conversations = [
        sce_conversation(task, task.point_at(index), '{"answer": "Below $50,000"}', "Above $50,000", "unconstrained")
        for index in (100, 1000)
    ]
    replies = model.chat(conversations, Decoding(max_new_tokens=64).with_schema(schema))
    for reply in replies:
        jsonschema.validate(json.loads(reply), schema)
    assert model.stats.extra["constrained_replies"] == 2 and "constrained_unfinished" not in model.stats.extra
