"""The transformers backend on a tiny random Llama with the real SmolLM2 tokenizer (conftest)."""

from __future__ import annotations

import importlib.util
import math
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from sce_checks.errors import UserInputError  # noqa: E402
from sce_checks.models import Decoding, ModelOptions, load_model, supports_scoring  # noqa: E402
from sce_checks.models.fingerprint import folder_fingerprint  # noqa: E402
from sce_checks.models.hf import HFChatModel  # noqa: E402

SHORT = [{"role": "user", "content": "Hi"}]
MEDIUM = [{"role": "user", "content": "Is this respondent's yearly income below or above $50,000? Age 40."}]
LONG = [
    {"role": "system", "content": "You are a careful assistant that answers in JSON."},
    {"role": "user", "content": "Record:\n- Age (years): 33\n- Education: Bachelor's degree\nIncome?"},
]
MULTI_TURN = [
    {"role": "user", "content": "Predict the label of this record: age 50, doctorate."},
    {"role": "assistant", "content": '{"answer": "Above $50,000"}'},
    {"role": "user", "content": "Now revise the record so that your answer would have been Below."},
]
CONVERSATIONS = [MEDIUM, SHORT, LONG, MULTI_TURN, [{"role": "user", "content": "Tell me a story about a cat."}]]


def naive_greedy(model: HFChatModel, conversation, max_new_tokens: int) -> str:
    """Greedy decoding by hand: one full, unpadded forward per new token."""
    ids = model.prompt_ids(conversation)
    start, stops = len(ids), set(model.stop_ids())
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model.model(torch.tensor([ids])).logits[0, -1]
            token = int(logits.argmax())
            if token in stops:
                break
            ids.append(token)
    return model.tokenizer.decode(ids[start:], skip_special_tokens=True).strip()


def naive_option_logprob(model: HFChatModel, conversation, option: str) -> float:
    """log p(option as the whole reply): template the assistant turn, keep the tokens after the
    generation prompt up to and including <|im_end|>, sum their log-probs from one full forward."""
    tok = model.tokenizer
    prompt_text = tok.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    full_text = tok.apply_chat_template(conversation + [{"role": "assistant", "content": option}], tokenize=False)
    prompt = tok(prompt_text, add_special_tokens=False)["input_ids"]
    full = tok(full_text, add_special_tokens=False)["input_ids"]
    assert full[: len(prompt)] == prompt
    end = tok.convert_tokens_to_ids("<|im_end|>")
    cont = full[len(prompt) :]
    cont = cont[: cont.index(end) + 1]
    with torch.no_grad():
        logits = model.model(torch.tensor([prompt + cont])).logits[0].double()
    logp = torch.log_softmax(logits, dim=-1)
    return sum(float(logp[len(prompt) - 1 + k, t]) for k, t in enumerate(cont))


def test_batched_generation_equals_one_by_one_and_a_naive_greedy_loop(tiny_model):
    decoding = Decoding(max_new_tokens=10)
    batched = tiny_model.chat(CONVERSATIONS, decoding)  # batch_size 4: two chunks, mixed lengths
    singles = [tiny_model.chat([c], decoding)[0] for c in CONVERSATIONS]
    assert batched == singles
    assert batched == [naive_greedy(tiny_model, c, 10) for c in CONVERSATIONS]
    assert sum(1 for r in batched if r) >= 3  # the comparison is not between empty strings
    assert len(set(batched)) > 1  # different prompts, different replies: order was restored


def test_chat_counts_work_and_handles_an_empty_batch(tiny_model_dir):
    model = load_model(f"hf:{tiny_model_dir}")
    assert model.chat([], Decoding()) == []
    model.chat([SHORT, MEDIUM], Decoding(max_new_tokens=3))
    assert model.stats.chat_calls == 1 and model.stats.chat_conversations == 2
    assert 0 < model.stats.extra["generated_tokens"] <= 6


def test_sampling_is_reproducible_from_the_seed(tiny_model):
    first = tiny_model.chat(CONVERSATIONS, Decoding(temperature=1.0, max_new_tokens=8, seed=7))
    again = tiny_model.chat(CONVERSATIONS, Decoding(temperature=1.0, max_new_tokens=8, seed=7))
    other = tiny_model.chat(CONVERSATIONS, Decoding(temperature=1.0, max_new_tokens=8, seed=8))
    assert first == again
    assert first != other


OPTIONS = [
    '{"answer": "Below $50,000"}',
    '{"answer": "Above $50,000"}',
    '{"answer": "Below"}',  # shorter, same prefix
    "Yes",  # shares nothing
]


@pytest.mark.parametrize("batch_size", [1, 16])
def test_option_scores_equal_a_naive_full_forward_per_option(tiny_model_dir, batch_size):
    model = load_model(f"hf:{tiny_model_dir}", ModelOptions(batch_size=batch_size))
    scores = model.score_options(CONVERSATIONS, OPTIONS)
    expected = [[naive_option_logprob(model, c, o) for o in OPTIONS] for c in CONVERSATIONS]
    # fp32 forward passes against a float64 softmax: rounding grows with the size of the sum
    assert torch.allclose(torch.tensor(scores, dtype=torch.float64), torch.tensor(expected, dtype=torch.float64), atol=1e-4, rtol=1e-6)
    assert all(math.isfinite(s) and s < 0 for row in scores for s in row)
    assert model.stats.score_calls == 1 and model.stats.score_conversations == len(CONVERSATIONS)


def test_option_continuation_is_the_reply_and_the_end_of_turn_token(tiny_model):
    prompt = tiny_model.prompt_ids(SHORT)
    cont = tiny_model.continuation_ids(SHORT, '{"answer": "Below"}', prompt)
    assert tiny_model.tokenizer.decode(cont) == '{"answer": "Below"}<|im_end|>'
    assert tiny_model.stop_ids() == [tiny_model.tokenizer.convert_tokens_to_ids("<|im_end|>")]


def test_identical_options_and_single_token_options_score_alike(tiny_model):
    single = tiny_model.score_options([SHORT, LONG], ["A", "A", "B"])
    for row, conv in zip(single, [SHORT, LONG]):
        assert row[0] == pytest.approx(row[1], abs=1e-6)
        assert row[2] == pytest.approx(naive_option_logprob(tiny_model, conv, "B"), abs=1e-4)


def test_scoring_is_offered(tiny_model):
    assert supports_scoring(tiny_model)
    assert tiny_model.score_options([], ["a"]) == []


def test_missing_folder_is_a_user_error(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(UserInputError) as info:
        load_model(f"hf:{missing}")
    message = str(info.value)
    assert str(missing) in message and "neither a local folder" in message and "hf download" in message
    assert "\n" not in message


def test_unknown_hub_id_offline_is_a_user_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserInputError, match=r"hf:sce-checks-tests/no-such-model.*neither a local folder"):
        load_model("hf:sce-checks-tests/no-such-model")


def test_folder_without_weights_is_a_user_error(tiny_model_dir, tmp_path):
    folder = tmp_path / "no-weights"
    shutil.copytree(tiny_model_dir, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    with pytest.raises(UserInputError, match="neither a local folder with model weights"):
        load_model(f"hf:{folder}")


def test_trust_remote_code_is_passed_as_the_user_set_it(tiny_model_dir, monkeypatch):
    import transformers

    seen: list[tuple[str, object]] = []
    for cls in (transformers.AutoTokenizer, transformers.AutoModelForCausalLM):
        real = cls.from_pretrained

        def spy(*args, _real=real, _name=cls.__name__, **kwargs):
            seen.append((_name, kwargs.get("trust_remote_code", "absent")))
            return _real(*args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", spy)
    load_model(f"hf:{tiny_model_dir}")
    assert seen == [("AutoTokenizer", False), ("AutoModelForCausalLM", False)]
    seen.clear()
    load_model(f"hf:{tiny_model_dir}", ModelOptions(trust_remote_code=True))
    assert seen == [("AutoTokenizer", True), ("AutoModelForCausalLM", True)]


def test_model_without_chat_template_is_a_user_error(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = None
    model = HFChatModel(AutoModelForCausalLM.from_pretrained(tiny_model_dir), tokenizer, name="plain-base-model")
    with pytest.raises(UserInputError, match="'plain-base-model' has no chat template"):
        model.chat([SHORT], Decoding())
    with pytest.raises(UserInputError, match="has no chat template"):
        model.score_options([SHORT], ["a", "b"])


def test_identity_and_dtype_options(tiny_model_dir):
    model = load_model(f"hf:{tiny_model_dir}", ModelOptions(dtype="bfloat16", device="cpu", batch_size=3))
    identity = model.identity()
    assert identity["backend"] == "hf" and identity["model"] == str(tiny_model_dir)
    assert identity["path"] == str(Path(tiny_model_dir).resolve())
    assert identity["dtype"] == "bfloat16" and identity["device"] == "cpu" and identity["batch_size"] == 3
    assert identity["fingerprint"] == folder_fingerprint(tiny_model_dir)
    assert {"transformers", "torch"} <= identity.keys()
    assert next(model.model.parameters()).dtype == torch.bfloat16
    default = load_model(f"hf:{tiny_model_dir}")  # keyed as requested (models/identity.py), loaded in fp32 on CPU
    assert (default.identity()["device"], default.identity()["dtype"]) == ("auto", "auto")
    assert default.runtime() == {"model_loaded": True, "device": "cpu", "dtype": "float32"}
    with pytest.raises(UserInputError, match="unknown dtype 'float8'"):
        load_model(f"hf:{tiny_model_dir}", ModelOptions(dtype="float8"))


def test_fingerprint_sees_changed_weights_and_config(tiny_model_dir, tmp_path):
    copy = Path(shutil.copytree(tiny_model_dir, tmp_path / "copy"))
    base = folder_fingerprint(copy)
    assert folder_fingerprint(copy) == base == folder_fingerprint(tiny_model_dir)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # last byte of the last tensor
    weights.write_bytes(bytes(data))
    changed = folder_fingerprint(copy)
    assert changed != base
    (copy / "config.json").write_text((copy / "config.json").read_text().replace("64", "65", 1))
    assert folder_fingerprint(copy) not in (base, changed)


def test_prompts_of_one_task_share_their_prefix_and_score_exactly(tiny_model_dir):
    """Grid prompts differ only in the record: the common token prefix runs once per batch,
    and the scores still equal the naive full forward."""
    from sce_checks.prompts.common import canonical_answer
    from sce_checks.prompts.grid import prediction_conversation
    from sce_checks.tasks.builtin_grids import INCOME

    model = load_model(f"hf:{tiny_model_dir}", ModelOptions(batch_size=8))
    convs = [prediction_conversation(INCOME, INCOME.point_at(i)) for i in (0, 77, 500, 1234, 1919)]
    options = [canonical_answer(o) for o in INCOME.options]
    scores = model.score_options(convs, options)
    expected = [[naive_option_logprob(model, c, o) for o in options] for c in convs]
    assert torch.allclose(torch.tensor(scores, dtype=torch.float64), torch.tensor(expected, dtype=torch.float64), atol=1e-4, rtol=1e-6)
    assert model.stats.extra["shared_prefix_tokens"] >= 16


def test_folder_transformers_cannot_read_is_a_user_error(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "no_such_architecture"}')
    with pytest.raises(UserInputError, match="could not be loaded"):
        load_model(f"hf:{tmp_path}")


# -- the scoring primitive: score_replies -----------------------------------------------------------


def naive_reply_logprob(model: HFChatModel, conversation, reply: str, complete: bool) -> float:
    """log p(reply) from one full, unpadded forward: the template's assistant turn after the
    generation prompt, up to and including <|im_end|> (complete) or without it (incomplete)."""
    tok = model.tokenizer
    prompt = tok(tok.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True),
                 add_special_tokens=False)["input_ids"]
    full = tok(tok.apply_chat_template(conversation + [{"role": "assistant", "content": reply}], tokenize=False),
               add_special_tokens=False)["input_ids"]
    assert full[: len(prompt)] == prompt
    end = tok.convert_tokens_to_ids("<|im_end|>")
    cont = full[len(prompt) :]
    cont = cont[: cont.index(end) + (1 if complete else 0)]
    if not cont:
        return 0.0
    with torch.no_grad():
        logits = model.model(torch.tensor([prompt + cont])).logits[0].double()
    logp = torch.log_softmax(logits, dim=-1)
    return sum(float(logp[len(prompt) - 1 + k, t]) for k, t in enumerate(cont))


# rows of different lengths and contents: one explanation, several candidates sharing a prefix,
# identical replies, a one-token reply, an empty one
REPLIES = [
    ["Because the review calls the film dull and plodding."],
    ['{"answer": "Below $50,000"}', '{"answer": "Above $50,000"}', '{"answer": "Below"}'],
    ["Yes", "Yes", "Yes, but only on Sundays."],
    ["A"],
    ["", "The record shows a doctorate."],
]


def _close(got, expected) -> bool:
    flat_got = torch.tensor([v for row in got for v in row], dtype=torch.float64)
    flat_expected = torch.tensor([v for row in expected for v in row], dtype=torch.float64)
    return [len(r) for r in got] == [len(r) for r in expected] and torch.allclose(flat_got, flat_expected, atol=1e-4, rtol=1e-6)


@pytest.mark.parametrize("complete", [True, False])
@pytest.mark.parametrize("batch_size", [1, 16])
def test_reply_scores_equal_a_naive_full_forward(tiny_model_dir, batch_size, complete):
    model = load_model(f"hf:{tiny_model_dir}", ModelOptions(batch_size=batch_size))
    scores = model.score_replies(CONVERSATIONS, REPLIES, complete=complete)
    expected = [[naive_reply_logprob(model, c, r, complete) for r in row] for c, row in zip(CONVERSATIONS, REPLIES)]
    assert _close(scores, expected)
    assert scores[2][0] == pytest.approx(scores[2][1], abs=1e-6)  # identical replies
    if not complete:
        assert scores[4][0] == 0.0  # the beginning of an empty reply: no tokens, log 1
    assert all(s < 0 for row in scores for s in row if s != 0.0)
    assert model.stats.score_calls == 1 and model.stats.score_conversations == len(CONVERSATIONS)


def test_incomplete_reply_leaves_out_only_the_end_of_turn(tiny_model):
    prompt = tiny_model.prompt_ids(SHORT)
    whole = tiny_model.continuation_ids(SHORT, "Because it is dull.", prompt)
    beginning = tiny_model.continuation_ids(SHORT, "Because it is dull.", prompt, complete=False)
    assert whole == beginning + [tiny_model.tokenizer.convert_tokens_to_ids("<|im_end|>")]
    assert tiny_model.tokenizer.decode(beginning) == "Because it is dull."
    # the whole reply is its beginning, then the end-of-turn token after it
    (row,) = tiny_model.score_replies([SHORT], [["Because it is dull."]], complete=True)
    (start,) = tiny_model.score_replies([SHORT], [["Because it is dull."]], complete=False)
    assert row[0] < start[0] < 0


def test_reply_scores_batched_equal_one_by_one(tiny_model):
    for complete in (True, False):
        batched = tiny_model.score_replies(CONVERSATIONS, REPLIES, complete)
        singles = [tiny_model.score_replies([c], [row], complete)[0] for c, row in zip(CONVERSATIONS, REPLIES)]
        assert _close(batched, singles)
        one_each = [[tiny_model.score_replies([c], [[r]], complete)[0][0] for r in row] for c, row in zip(CONVERSATIONS, REPLIES)]
        assert _close(batched, one_each)


def test_score_options_is_the_primitive_with_the_same_options_on_every_row(tiny_model):
    assert tiny_model.score_options(CONVERSATIONS, OPTIONS) == tiny_model.score_replies(CONVERSATIONS, [OPTIONS] * len(CONVERSATIONS))


def test_shared_prefix_and_plain_paths_give_the_same_numbers(tiny_model_dir, monkeypatch):
    """Perturbed prompts of one task (the self-consistency case: many prompts, one reply each)
    and option rows: with the common prefix run once, and with every prompt run whole."""
    import sce_checks.models.hf as hf_module
    from sce_checks.prompts import text as text_prompts
    from sce_checks.prompts.explanation import explanation_conversation
    from sce_checks.tasks import load_task

    task = load_task("sentiment")
    texts = ["A dull, plodding film.", "A film.", "dull, plodding", "A dull, plodding film. Really.", ""]
    convs = [explanation_conversation(text_prompts.prediction_conversation(task, t), '{"answer": "negative"}') for t in texts]
    replies = [["Because it is dull."]] * len(convs)
    results = {}
    for path, threshold in (("shared", hf_module.MIN_SHARED_PREFIX), ("plain", 10**9)):
        monkeypatch.setattr(hf_module, "MIN_SHARED_PREFIX", threshold)
        model = load_model(f"hf:{tiny_model_dir}", ModelOptions(batch_size=8))
        results[path] = (model.score_replies(convs, replies, complete=False),
                         model.score_options(convs, OPTIONS), model.stats.extra.get("shared_prefix_tokens", 0))
    assert results["shared"][2] >= 16 and results["plain"][2] == 0  # both paths did run
    assert _close(results["shared"][0], results["plain"][0]) and _close(results["shared"][1], results["plain"][1])
    expected = [[naive_reply_logprob(load_model(f"hf:{tiny_model_dir}"), c, "Because it is dull.", False)] for c in convs]
    assert _close(results["shared"][0], expected)


def test_reply_scoring_is_offered_and_checks_its_input(tiny_model):
    from sce_checks.models.base import supports_reply_scoring

    assert supports_reply_scoring(tiny_model)
    assert tiny_model.score_replies([], []) == []
    assert tiny_model.score_replies([SHORT, LONG], [[], ["A"]])[0] == []  # a row without replies
    with pytest.raises(UserInputError, match="LIST of replies"):
        tiny_model.score_replies([SHORT], ["Yes"])
    with pytest.raises(UserInputError, match="2 rows of replies for 1 conversations"):
        tiny_model.score_replies([SHORT], [["a"], ["b"]])


def test_scoring_and_generation_use_no_deprecated_transformers_api(tiny_model_dir, capfd):
    """transformers 5 renamed the KV cache argument and output (``past_key_values`` -> ``cache``,
    the old name removed in 5.40): our calls must not use the old name, which warns on every run.
    The prompts share a long prefix so the shared-prefix cache path runs too, and its scores must
    still equal a naive full forward."""
    import warnings

    model = load_model(f"hf:{tiny_model_dir}", ModelOptions(batch_size=8))
    preamble = {"role": "system", "content": "You are a careful assistant that answers in JSON. " * 8}
    conversations = [[preamble, {"role": "user", "content": f"Record {i}: age {20 + i}. Income?"}] for i in range(3)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = model.score_options(conversations, OPTIONS)
        model.chat(conversations[:2], Decoding(max_new_tokens=4))
    said = [str(w.message) for w in caught] + [capfd.readouterr().err]
    assert not [s for s in said if "past_key_values" in s or "cache_params" in s], said
    assert model.stats.extra.get("shared_prefix_tokens", 0) > 0
    expected = [[naive_option_logprob(model, c, o) for o in OPTIONS] for c in conversations]
    assert torch.allclose(torch.tensor(scores, dtype=torch.float64), torch.tensor(expected, dtype=torch.float64), atol=1e-4)


def test_scores_do_not_depend_on_chunking_order_or_remembered_prefixes(tiny_model_dir):
    """The one-pass scoring (options as masked segments after the prompt, chunks by token budget,
    the shared prefix run once per call and remembered for the next) gives every prompt the
    log-probabilities of a naive full forward in float64, to fp32 rounding (1e-5), whatever the
    chunk size, the order of the prompts, or whether the prefix was remembered from a call before."""
    import random

    from sce_checks.prompts.common import canonical_answer
    from sce_checks.prompts.grid import prediction_conversation
    from sce_checks.tasks.builtin_grids import INCOME

    convs = [prediction_conversation(INCOME, INCOME.point_at(i)) for i in (3, 40, 41, 700, 1500, 1919)]
    options = [canonical_answer(o) for o in INCOME.options] + ["Below", '{"answer": "unknown, sorry"}']
    model = load_model(f"hf:{tiny_model_dir}", ModelOptions(batch_size=8))
    expected = torch.tensor([[naive_option_logprob(model, c, o) for o in options] for c in convs], dtype=torch.float64)
    runs = {}
    for budget in (1, 200, 10**6):  # one prompt per pass, a few, all in one
        model.score_tokens = budget
        model._heads.clear()
        runs[budget] = model.score_options(convs, options)
    assert model.stats.extra["shared_prefix_tokens"] >= 16
    runs["again"] = model.score_options(convs, options)  # the remembered prefix, not recomputed
    assert model.stats.extra["shared_prefix_reused"] >= 1
    order = list(range(len(convs)))
    random.Random(0).shuffle(order)
    shuffled = model.score_options([convs[i] for i in order], options)
    runs["shuffled"] = [shuffled[order.index(i)] for i in range(len(convs))]
    for name, scores in runs.items():
        assert torch.allclose(torch.tensor(scores, dtype=torch.float64), expected, atol=1e-5, rtol=0), name


def test_one_pass_scoring_handles_rows_of_different_widths(tiny_model):
    """Rows with different numbers of replies and reply lengths (empty, one token, many) in one
    pass: each value equals scoring that reply alone."""
    rows = [["Yes", "", "No, because the record says so."], ["A"], ["Because it is dull.", "Because."]]
    convs = [MEDIUM, SHORT, LONG]
    batched = tiny_model.score_replies(convs, rows)
    alone = [[tiny_model.score_replies([c], [[r]])[0][0] for r in row] for c, row in zip(convs, rows)]
    assert [len(r) for r in batched] == [3, 1, 2]
    assert _close(batched, alone)


def test_batched_generation_with_a_shared_prefix_equals_one_by_one(tiny_model_dir):
    """SCE requests of one task share their first turn up to the record: the batch runs that
    prefix once and generates after it. The replies equal one conversation at a time (no shared
    prefix) and a naive greedy loop; under a schema too."""
    from sce_checks.prompts.grid import sce_conversation
    from sce_checks.prompts.schemas import grid_sce_schema
    from sce_checks.tasks.builtin_grids import INCOME

    model = load_model(f"hf:{tiny_model_dir}", ModelOptions(batch_size=8))
    convs = [sce_conversation(INCOME, INCOME.point_at(i), '{"answer": "Above $50,000"}', "Below $50,000", variant)
             for i in (5, 300, 1200) for variant in ("unconstrained", "minimal")]
    decoding = Decoding(max_new_tokens=8)
    batched = model.chat(convs, decoding)
    assert model.stats.extra["shared_prefix_tokens"] >= 16  # the prefix path ran
    assert batched == [model.chat([c], decoding)[0] for c in convs]
    assert batched == [naive_greedy(model, c, 8) for c in convs]
    if importlib.util.find_spec("llguidance") is not None:
        constrained = Decoding(max_new_tokens=40).with_schema(grid_sce_schema(INCOME))
        assert model.chat(convs, constrained) == [model.chat([c], constrained)[0] for c in convs]
