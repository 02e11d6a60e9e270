"""The self-consistency check (Admoni et al. 2025, arXiv 2506.07523; CC-SHAP): attributions of the
decision and of the explanation over the input's words, on a tiny random Llama (arithmetic:
captum's numbers equal hand-rolled forward passes, batching changes nothing) and once on the
embedded SmolLM2 (the whole check runs and its numbers are in range)."""

from __future__ import annotations

import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("captum")

from sce_checks.checks.self_consistency import (  # noqa: E402
    AttributionUnsupported,
    SelfConsistencySettings,
    attribute,
    grid_features,
    run_self_consistency,
    text_features,
)
from sce_checks.errors import UserInputError  # noqa: E402
from sce_checks.models.base import supports_reply_scoring  # noqa: E402
from sce_checks.models.cache import CachedModel, ResponseCache  # noqa: E402
from sce_checks.prompts import text as text_prompts  # noqa: E402
from sce_checks.prompts.common import canonical_answer  # noqa: E402
from sce_checks.prompts.explanation import EXPLANATION_REQUEST, explanation_conversation  # noqa: E402
from sce_checks.tasks import load_task, task_examples  # noqa: E402
from tests.helpers.text_models import TextRuleModel  # noqa: E402
from tests.helpers.tiny_llama import tiny_llama  # noqa: E402

TEXT = "A dull, plodding film."  # 4 words: ["A", "dull,", "plodding", "film."]
EXPLANATION = "Because it is dull."


@pytest.fixture(scope="module")
def hf():
    return tiny_llama()


@pytest.fixture(scope="module")
def sentiment():
    return load_task("sentiment")


# Each setup returns what `attribute` is asked (the conversation built from the kept words, the
# reply, whole or not) and, for the hand-rolled expectations, the same quantity in token ids.


def _decision_setup(hf, task, text=TEXT):
    conversation_for = lambda s: text_prompts.prediction_conversation(task, s)  # noqa: E731
    conv = conversation_for(text)
    target = hf.continuation_ids(conv, canonical_answer("negative"), hf.prompt_ids(conv))
    ask = dict(conversation_for=conversation_for, reply=canonical_answer("negative"), complete=True)
    return ask, (lambda s: hf.prompt_ids(text_prompts.prediction_conversation(task, s))), target


def _explanation_setup(hf, task):
    first = canonical_answer("negative")
    target = list(hf.tokenizer(EXPLANATION, add_special_tokens=False)["input_ids"])
    conversation_for = lambda s: explanation_conversation(text_prompts.prediction_conversation(task, s), first)  # noqa: E731
    ask = dict(conversation_for=conversation_for, reply=EXPLANATION, complete=False)
    return ask, (lambda s: hf.prompt_ids(explanation_conversation(text_prompts.prediction_conversation(task, s), first))), target


def _plain_logprob(hf, prompt, target):
    """log p(target | prompt) from ONE unpadded forward pass of the whole sequence."""
    ids = torch.tensor([list(prompt) + list(target)])
    with torch.no_grad():
        logp = torch.log_softmax(hf.model(input_ids=ids).logits[0].float(), dim=-1)
    return sum(float(logp[len(prompt) - 1 + k, t]) for k, t in enumerate(target))


# -- features ------------------------------------------------------------------------------------


def test_text_features_are_words_and_removal_rejoins_cleanly() -> None:
    f = text_features("  A dull,  plodding\tfilm. ")
    assert f.words == ("A", "dull,", "plodding", "film.")
    assert f.compose([True] * 4) == "  A dull,  plodding\tfilm. "  # all kept: the input itself
    assert f.compose([False, True, True, True]) == "  dull,  plodding\tfilm. "
    assert f.compose([True, False, True, True]) == "  A  plodding\tfilm. "  # the separator before the kept word
    assert f.compose([True, True, True, False]) == "  A dull,  plodding "
    assert f.compose([False] * 4) == "   "
    with pytest.raises(ValueError):
        f.compose([True])


def test_grid_features_are_the_record_lines() -> None:
    task = load_task("income")
    ((_, point),) = task_examples(task, 1, 0)
    f = grid_features(task, point)
    assert f.compose([True] * len(f.words)) == task.render(point)
    assert len(f.words) == len(task.features) and all(w.startswith("- ") for w in f.words)
    assert f.compose([False, True]) == f.words[1]


# -- backends ------------------------------------------------------------------------------------


def test_reply_scoring_is_seen_through_the_cache(hf) -> None:
    assert supports_reply_scoring(hf)
    assert supports_reply_scoring(CachedModel(hf, None))
    assert not supports_reply_scoring(CachedModel(TextRuleModel(), None))


class _NoCalls:
    """A python backend that fails the test if the check calls it before refusing it."""

    def identity(self):
        return {"backend": "python", "model": "no-calls"}

    def chat(self, conversations, decoding):
        raise AssertionError("the check must refuse the backend before any model call")


@pytest.mark.parametrize("model", [TextRuleModel(), CachedModel(TextRuleModel(), None), _NoCalls()])
def test_backends_without_weights_are_refused_clearly(model, sentiment) -> None:
    with pytest.raises(AttributionUnsupported, match=r"needs the hf backend \(or smollm2\).*no gradients/attributions") as info:
        run_self_consistency(model, "python:x:y", sentiment, [("1", TEXT)])
    assert isinstance(info.value, UserInputError)  # the CLI and plugin print it without a traceback
    assert "python" in str(info.value)


def test_settings_are_validated() -> None:
    with pytest.raises(UserInputError, match="unknown attribution method 'lime'"):
        SelfConsistencySettings(method="lime")
    with pytest.raises(UserInputError, match="perturbations_per_eval"):
        SelfConsistencySettings(perturbations_per_eval=0)


# -- arithmetic ----------------------------------------------------------------------------------


def test_batched_logprobs_equal_plain_forward_passes(hf, sentiment) -> None:
    _, prompt_for, target_d = _decision_setup(hf, sentiment)
    texts = [TEXT, "A film.", "dull, plodding", "A dull, plodding film. Really."]
    rows = [(prompt_for(t), target_d) for t in texts]  # shared template prefix: one prefix pass
    rows.append(([hf.pad_id + 7, 42, 43], [44, 45]))  # nothing shared with the others: plain left padding

    def sequence_logprobs(hf, rows):  # the token-level engine behind score_replies
        return [row[0] for row in hf.score_token_continuations([p for p, _ in rows], [[t] for _, t in rows])]

    batched = sequence_logprobs(hf, rows)
    for (prompt, target), value in zip(rows, batched):
        assert value == pytest.approx(_plain_logprob(hf, prompt, target), abs=1e-4)
    assert sequence_logprobs(hf, rows[:1]) == pytest.approx(batched[:1], abs=1e-4)  # a batch of one


@pytest.mark.parametrize("which", ["decision", "explanation"])
def test_feature_ablation_equals_a_hand_rolled_loop(hf, sentiment, which) -> None:
    ask, prompt_for, target = (_decision_setup if which == "decision" else _explanation_setup)(hf, sentiment)
    words = TEXT.split(" ")
    attributions, scorer = attribute(hf, text_features(TEXT), method="feature_ablation", **ask)
    assert attributions.shape == (len(words),)  # one attribution per word
    # by hand: remove word i, rebuild the prompt, one plain forward pass; a_i = f(x) - f(x without i)
    full = _plain_logprob(hf, prompt_for(TEXT), target)
    for i in range(len(words)):
        without = " ".join(words[:i] + words[i + 1:])
        expected = full - _plain_logprob(hf, prompt_for(without), target)
        assert attributions[i] == pytest.approx(expected, abs=1e-4)
    assert scorer.memo[(True,) * len(words)] == pytest.approx(full, abs=1e-4)
    assert np.abs(attributions).max() > 1e-3  # the tiny model does react to the words


@pytest.mark.parametrize("method", ["feature_ablation", "shapley_sampling"])
def test_batching_gives_the_same_numbers(hf, sentiment, method) -> None:
    ask, _, _ = _decision_setup(hf, sentiment)
    features = text_features(TEXT)
    one, scorer1 = attribute(hf, features, method=method, perturbations_per_eval=1, shapley_samples=3, **ask)
    many, scorer16 = attribute(hf, features, method=method, perturbations_per_eval=16, shapley_samples=3, **ask)
    np.testing.assert_allclose(many, one, atol=1e-4)
    assert scorer16.rows_scored == scorer1.rows_scored  # the same coalitions, each scored once
    assert scorer16.forward_passes < scorer1.forward_passes
    if method == "feature_ablation":
        # 4 words: the full input, then 4 ablations in one batch (16 per eval) or one by one
        assert (scorer16.forward_passes, scorer1.forward_passes, scorer1.rows_scored) == (2, 5, 5)


def test_shapley_sampling_is_seeded_and_efficient(hf, sentiment) -> None:
    ask, _, _ = _decision_setup(hf, sentiment)
    features = text_features(TEXT)
    a, scorer = attribute(hf, features, method="shapley_sampling", shapley_samples=4, seed=3, **ask)
    b, _ = attribute(hf, features, method="shapley_sampling", shapley_samples=4, seed=3, **ask)
    np.testing.assert_array_equal(a, b)
    # efficiency: along every permutation the marginal contributions telescope to f(all) - f(none)
    assert a.sum() == pytest.approx(scorer.memo[(True,) * 4] - scorer.memo[(False,) * 4], abs=1e-4)


# -- the check on the tiny model ------------------------------------------------------------------


def _check_record_shapes(result) -> None:
    for rec in result.examples:
        assert (rec.target, rec.counterfactual, rec.cf_prediction, rec.valid, rec.distance, rec.min_distance) == (None,) * 6
        if "l1_dot" not in rec.extra:
            continue
        words = rec.extra["words"]
        assert len(rec.extra["decision_attribution"]) == len(words)
        assert len(rec.extra["explanation_attribution"]) == len(words)
        assert rec.extra["l1_dot"] is None or -1.0 <= rec.extra["l1_dot"] <= 1.0
        assert rec.extra["spearman"] is None or -1.0 <= rec.extra["spearman"] <= 1.0
        assert rec.extra["explanation"].strip()


def test_check_on_a_text_task(hf, sentiment) -> None:
    examples = [("a", TEXT), ("b", "The worst film of the year.")]
    result = run_self_consistency(CachedModel(hf, None), "tiny", sentiment, examples,
                                  SelfConsistencySettings(explanation_tokens=8))
    assert (result.check, result.model, result.dataset, result.variant, result.n) == (
        "self_consistency", "tiny", "sentiment", "feature_ablation", 2)
    assert result["n_scored"] == 2 and result["n_skipped"] == 0
    _check_record_shapes(result)
    l1 = [r.extra["l1_dot"] for r in result.examples]
    assert result["mean_l1_dot"] == pytest.approx(sum(l1) / 2)
    assert result["median_spearman"] == pytest.approx(np.median([r.extra["spearman"] for r in result.examples]))
    assert result.examples[0].extra["words"] == ["A", "dull,", "plodding", "film."]
    assert result.info["skipped_reasons"] == {} and result.info["prediction_mode"] == "score"
    result.to_dict()  # JSON-safe


def test_check_on_a_grid_task(hf) -> None:
    task = load_task("income")
    result = run_self_consistency(hf, "tiny", task, task_examples(task, 1, 0), SelfConsistencySettings(explanation_tokens=6))
    (rec,) = result.examples
    assert isinstance(rec.input, dict) and len(rec.extra["words"]) == 2
    _check_record_shapes(result)
    assert result.info["features"] == "feature lines of the record"


class _SilentExplainer:
    """Wraps the tiny model; answers the explanation request with nothing."""

    def __init__(self, inner):
        self.inner = inner

    def identity(self):
        return {"backend": "hf", "model": "silent"}

    def score_options(self, conversations, options):
        return self.inner.score_options(conversations, options)

    def score_replies(self, conversations, replies, complete=True):
        return self.inner.score_replies(conversations, replies, complete)

    def chat(self, conversations, decoding):
        replies = self.inner.chat(conversations, decoding)
        return ["" if c[-1]["content"] == EXPLANATION_REQUEST else r for c, r in zip(conversations, replies)]


def test_skipped_examples_are_counted_with_their_reason(hf, sentiment) -> None:
    result = run_self_consistency(_SilentExplainer(hf), "tiny", sentiment, [("a", TEXT)],
                                  SelfConsistencySettings(explanation_tokens=4))
    assert result["n_scored"] == 0 and result["n_skipped"] == 1
    assert result.info["skipped_reasons"] == {"no explanation generated": 1}
    assert result["mean_l1_dot"] is None and result["median_spearman"] is None
    # a random model never writes the JSON answer: predictions unparsed, nothing to explain
    result = run_self_consistency(hf, "tiny", sentiment, [("a", TEXT)],
                                  SelfConsistencySettings(prediction="generate", answer_tokens=3))
    assert result.info["skipped_reasons"] == {"prediction unparsed": 1}
    assert result.examples[0].unparsed.startswith("prediction:")


class _InterfaceOnly:
    """Offers the model interface (chat, score_options, score_replies, identity) and nothing else:
    no ``.inner``, no weights, no tokenizer. Every attribute asked of it is recorded."""

    def __init__(self, model):
        object.__setattr__(self, "_model", model)
        object.__setattr__(self, "asked", [])
        object.__setattr__(self, "calls", {"chat": 0, "score_options": 0, "score_replies": 0})

    def __getattribute__(self, name):
        if not name.startswith("_") and name not in ("asked", "calls"):
            object.__getattribute__(self, "asked").append(name)
        return object.__getattribute__(self, name)

    def identity(self):
        return {"backend": "interface-only", "model": "tiny"}

    def chat(self, conversations, decoding):
        self.calls["chat"] += 1
        return self._model.chat(conversations, decoding)

    def score_options(self, conversations, options):
        self.calls["score_options"] += 1
        return self._model.score_options(conversations, options)

    def score_replies(self, conversations, replies, complete=True):
        self.calls["score_replies"] += 1
        return self._model.score_replies(conversations, replies, complete)


def test_the_check_uses_only_the_model_interface(hf, sentiment) -> None:
    """A model without ``.inner`` (nor weights, nor a tokenizer) that scores replies is enough,
    and the check gets the same figures as from the hf backend itself."""
    wrapper = _InterfaceOnly(hf)
    settings = SelfConsistencySettings(explanation_tokens=8)
    result = run_self_consistency(wrapper, "tiny", sentiment, [("a", TEXT)], settings)
    direct = run_self_consistency(hf, "tiny", sentiment, [("a", TEXT)], settings)
    assert result["n_scored"] == 1 and result.figures == direct.figures
    assert result.examples[0].extra == direct.examples[0].extra
    assert "inner" not in wrapper.asked and not {"model", "tokenizer", "prompt_ids", "continuation_ids"} & set(wrapper.asked)
    # feature ablation over 4 words, decision and explanation: one call each for the full input
    # and one for the 4 removals (perturbations_per_eval 16)
    assert wrapper.calls["score_replies"] == 4


class _CountingScorer:
    """The hf backend, counting the scoring calls that reach it."""

    def __init__(self, inner):
        self._inner, self.calls = inner, []

    def identity(self):
        return self._inner.identity()

    def chat(self, conversations, decoding):
        self.calls.append("chat")
        return self._inner.chat(conversations, decoding)

    def score_options(self, conversations, options):
        self.calls.append("score_options")
        return self._inner.score_options(conversations, options)

    def score_replies(self, conversations, replies, complete=True):
        self.calls.append("score_replies")
        return self._inner.score_replies(conversations, replies, complete)


@pytest.mark.parametrize("method", ["feature_ablation", "shapley_sampling"])
def test_a_rerun_is_answered_from_the_response_cache(hf, sentiment, tmp_path, method) -> None:
    examples = [("a", TEXT), ("b", "The worst film of the year.")]
    settings = SelfConsistencySettings(method=method, explanation_tokens=8, shapley_samples=2)
    first_inner = _CountingScorer(hf)
    with ResponseCache(tmp_path / "r.sqlite") as cache:
        first = run_self_consistency(CachedModel(first_inner, cache), "tiny", sentiment, examples, settings)
    assert first["n_scored"] == 2 and first_inner.calls.count("score_replies") >= 4
    again_inner = _CountingScorer(hf)
    with ResponseCache(tmp_path / "r.sqlite") as cache:
        model = CachedModel(again_inner, cache)
        again = run_self_consistency(model, "tiny", sentiment, examples, settings)
    assert again_inner.calls == []  # no scoring, no chat: everything from the cache
    assert model.stats.score_calls == 0 and model.stats.cache_hits > 0
    assert again.figures == first.figures
    assert [r.extra for r in again.examples] == [r.extra for r in first.examples]


class _WordWeights:
    """A python object model that scores replies by the words its conversation contains: the
    decision (a whole reply) by DECISION, the explanation (a reply's beginning) by EXPLANATION."""

    DECISION = {"dull,": 2.0, "plodding": 1.0}
    EXPLANATION = {"dull,": 1.0, "plodding": 3.0}

    def __init__(self):
        self.flags = set()

    def chat(self, conversations, decoding):
        return [EXPLANATION if c[-1]["content"] == EXPLANATION_REQUEST else '{"answer": "negative"}' for c in conversations]

    def score_replies(self, conversations, replies, complete):
        self.flags.add(complete)
        weights = self.DECISION if complete else self.EXPLANATION
        texts = [" ".join(m["content"] for m in c) for c in conversations]
        return [[-10.0 + sum(w for word, w in weights.items() if word in text) for _ in row] for text, row in zip(texts, replies)]


def test_a_python_object_model_that_scores_replies_is_attributed(sentiment) -> None:
    from sce_checks.models.python import PythonObjectModel

    obj = _WordWeights()
    model = CachedModel(PythonObjectModel(obj, "python:x:WordWeights", {"backend": "python", "target": "x:WordWeights"}), None)
    assert supports_reply_scoring(model)
    result = run_self_consistency(model, "python:x:WordWeights", sentiment, [("a", TEXT)])
    (rec,) = result.examples
    assert result.info["prediction_mode"] == "generate" and obj.flags == {True, False}
    assert rec.extra["decision_attribution"] == [0.0, 2.0, 1.0, 0.0]
    assert rec.extra["explanation_attribution"] == [0.0, 1.0, 3.0, 0.0]
    assert rec.extra["l1_dot"] == pytest.approx(2 / 3 * 1 / 4 + 1 / 3 * 3 / 4)
    assert rec.extra["decision_logprob"] == -7.0 and rec.extra["explanation_logprob"] == -6.0


# -- the real model -------------------------------------------------------------------------------


@pytest.mark.real_model
@pytest.mark.xdist_group("smollm2")
def test_real_run_on_the_embedded_model(sentiment) -> None:
    from sce_checks.models import ModelOptions, load_model

    model = load_model("smollm2", ModelOptions())
    # the two shortest reviews: the cost grows with words x (prompt + explanation tokens)
    shortest = sorted(sentiment.examples, key=lambda e: len(e.text))[:2]
    started = time.perf_counter()
    result = run_self_consistency(model, "smollm2", sentiment, [(e.id, e.text) for e in shortest],
                                  SelfConsistencySettings(explanation_tokens=60))
    elapsed = time.perf_counter() - started
    print(f"\nself-consistency on smollm2: {elapsed:.1f} s for 2 examples "
          f"({result.info['attribution_seconds']:.1f} s attributing), figures {result.figures}")
    assert result.n == 2 and result["n_scored"] + result["n_skipped"] == 2
    assert result["n_scored"] >= 1  # SmolLM2 does explain itself
    _check_record_shapes(result)
    for rec in result.examples:
        if "l1_dot" in rec.extra:
            assert rec.prediction in ("negative", "positive")
            assert rec.extra["decision_logprob"] < 0 and rec.extra["explanation_logprob"] < 0
