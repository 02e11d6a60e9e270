"""Replies ended at their JSON object (``Decoding.stop_after_json``, sce_checks/models/json_stop.py).

A scripted Llama (the real SmolLM2 tokenizer; its logits replaced by a script chosen by the
prompt's length) writes known text, so the point where the reply must stop is known: the first
prefix of the script whose reading (sce_checks/parsing.py, an independent reader) is the full
reply's first object. Batched generation must equal one conversation at a time.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from sce_checks.models import Decoding  # noqa: E402
from sce_checks.models.hf import HFChatModel  # noqa: E402
from sce_checks.models.json_stop import JsonObjectScanner  # noqa: E402
from sce_checks.parsing import parse_json_object  # noqa: E402
from tests.helpers.tiny_llama import build_tiny_llama  # noqa: E402

SCRIPTS = [
    # an unreadable span first, then an object whose string holds a brace, single-quoted key
    "Note {not json} then {\"age\": \"4}\", 'k': 1} tail {\"b\": 2} end",
    # an escaped quote and a brace inside the string, nested object, then more text
    'Sure: {"a": "x\\"}", "n": {"m": [1, {"z": 0}]}} and {"b": 2} more words here',
    # no object at all: runs to its end
    "I cannot answer that in JSON, sorry.",
]
CONVERSATIONS = [[{"role": "user", "content": "Hi" + " there" * k}] for k in range(6)]


def scripted_model(batch_size: int) -> HFChatModel:
    """A tiny Llama whose next token is the script's next one (the script picked by the row's
    real prompt length), then the end-of-turn token."""
    from transformers import LlamaForCausalLM

    model, tokenizer = build_tiny_llama(7)
    scripts = [tokenizer(s, add_special_tokens=False)["input_ids"] for s in SCRIPTS]
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")

    class Scripted(LlamaForCausalLM):
        def forward(self, input_ids=None, attention_mask=None, **kwargs):
            out = super().forward(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
            if input_ids.shape[1] > 1:  # a prefill: each row's script from its real length
                lengths = attention_mask.sum(-1).tolist() if attention_mask is not None else [input_ids.shape[1]] * len(input_ids)
                self.rows = [[scripts[n % len(scripts)], 0] for n in lengths]
            logits = torch.full_like(out.logits[:, -1], -1e4)
            for b, row in enumerate(self.rows):
                script, done = row
                logits[b, script[done] if done < len(script) else end] = 0.0
                row[1] += 1
            out.logits[:, -1] = logits
            return out

    scripted = Scripted(model.config)
    scripted.load_state_dict(model.state_dict())
    return HFChatModel(scripted, tokenizer, name="scripted", batch_size=batch_size, fingerprint="scripted")


def expected_stop(text: str, tokenizer) -> str:
    """The shortest token prefix of ``text`` whose reading is the full text's first object."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    full = parse_json_object(text)
    if not full.ok:
        return text
    for k in range(1, len(ids) + 1):
        head = tokenizer.decode(ids[:k]).strip()
        read = parse_json_object(head)  # a prefix the reader must close itself is not a stop
        if read.ok and read.value == full.value and "unclosed_object" not in read.lenient:
            return head
    raise AssertionError("the full text's object was never read")


def test_replies_stop_at_their_first_readable_object_batched_and_one_by_one():
    model = scripted_model(batch_size=4)
    free = model.chat(CONVERSATIONS, Decoding(max_new_tokens=64))
    assert set(free) == set(SCRIPTS)  # the script is what the model writes, every script used
    stop = Decoding(max_new_tokens=64, stop_after_json=True)
    batched = model.chat(CONVERSATIONS, stop)
    singles = [model.chat([c], stop)[0] for c in CONVERSATIONS]
    assert batched == singles
    assert batched == [expected_stop(r, model.tokenizer) for r in free]
    assert batched[free.index(SCRIPTS[0])] == "Note {not json} then {\"age\": \"4}\", 'k': 1}"
    assert batched[free.index(SCRIPTS[2])] == SCRIPTS[2]  # nothing to stop at
    assert [parse_json_object(a).value for a in batched] == [parse_json_object(b).value for b in free]
    assert model.stats.extra["json_stopped_replies"] == 2 * 4  # twice 4 replies with an object


def test_the_stop_is_part_of_the_request_key_only_when_set():
    assert "stop_after_json" not in Decoding().as_dict()  # the keys of earlier requests
    assert Decoding(stop_after_json=True).as_dict()["stop_after_json"] is True


@pytest.mark.parametrize("text, stop_at", [
    ('{"a": 1}', 8),
    ('x {"a": "}"} y', 12),
    ("{'a': 'it\\'s'} y", 14),
    ('{"a": {"b": 1}} {"c": 2}', 15),
    ("{not json} {\"a\": 1}", 19),
    ('{"a": 1', None),
    ("no object at all", None),
])
def test_scanner_stops_where_the_first_readable_object_closes(text, stop_at):
    """Fed one character at a time; ``stop_at``: characters read when it stops (None: never)."""
    scanner = JsonObjectScanner()
    stopped = next((i + 1 for i, ch in enumerate(text) if scanner.feed(ch)), None)
    assert stopped == stop_at
    if stop_at is not None:
        assert parse_json_object(text[:stop_at]).value == parse_json_object(text).value


def test_schema_constrained_replies_are_unchanged_by_the_stop():
    """Under a schema the grammar already ends the reply at the value's end: with the stop the
    replies are the same, ended one step earlier, and the constraint still counts them complete."""
    pytest.importorskip("llguidance")
    from sce_checks.prompts.schemas import grid_sce_schema
    from sce_checks.tasks.builtin_grids import INCOME
    from tests.helpers.tiny_llama import tiny_llama

    model = tiny_llama(seed=5, batch_size=4)
    schema = Decoding(max_new_tokens=96).with_schema(grid_sce_schema(INCOME))
    plain = model.chat(CONVERSATIONS, schema)
    stopped = model.chat(CONVERSATIONS, Decoding(max_new_tokens=96, stop_after_json=True).with_schema(grid_sce_schema(INCOME)))
    assert stopped == plain
    assert model.stats.extra.get("constrained_unfinished", 0) == 0
    assert model.stats.extra["json_stopped_replies"] == len(CONVERSATIONS)
