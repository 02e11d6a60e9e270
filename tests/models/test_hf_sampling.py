"""Seeded sampling and tempered scoring on the transformers backend: the tiny random Llama on the
REAL SmolLM2 tokenizer (tests/models/conftest.py).

Sampling: every row draws with its own generator, seeded from the run's seed, the sample index
and the conversation (`conversation_seed`), so a batched draw equals an unbatched one whatever
the batch size or order, and equals a hand-written sampling loop (one unpadded forward per token,
`draw_tokens` at the row's own uniform numbers). Scoring at a temperature equals a hand
computation from the logits.
"""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from sce_checks.errors import UserInputError  # noqa: E402
from sce_checks.models import Decoding, ModelOptions, load_model  # noqa: E402
from sce_checks.models.base import conversation_seed, supports_tempered_scoring  # noqa: E402
from sce_checks.models.cache import CachedModel, ResponseCache  # noqa: E402
from sce_checks.models.hf import HFChatModel  # noqa: E402
from sce_checks.models.sampling import SeededSampler, draw_tokens  # noqa: E402
from tests.models.test_hf import CONVERSATIONS, OPTIONS, naive_greedy  # noqa: E402

SAMPLED = Decoding(temperature=1.0, max_new_tokens=10, seed=7)


def naive_sample(model: HFChatModel, conversation, decoding: Decoding) -> str:
    """Sampling by hand: one full, unpadded forward per token, the token drawn by `draw_tokens`
    at the next uniform number of a generator seeded with the conversation's seed."""
    ids = model.prompt_ids(conversation)
    start, stops = len(ids), set(model.stop_ids())
    generator = torch.Generator().manual_seed(conversation_seed(decoding, conversation))
    with torch.no_grad():
        for _ in range(decoding.max_new_tokens):
            logits = model.model(torch.tensor([ids])).logits[0, -1]
            uniform = torch.rand(1, generator=generator, dtype=torch.float64)
            token = int(draw_tokens(logits[None], decoding.temperature, decoding.top_p, uniform)[0])
            if token in stops:
                break
            ids.append(token)
    return model.tokenizer.decode(ids[start:], skip_special_tokens=True).strip()


def test_batched_sampling_equals_unbatched_sampling_and_a_hand_written_loop(tiny_model_dir):
    wide = load_model(f"hf:{tiny_model_dir}", ModelOptions(batch_size=16))
    narrow = load_model(f"hf:{tiny_model_dir}", ModelOptions(batch_size=2))
    batched = wide.chat(CONVERSATIONS, SAMPLED)  # one chunk of 5 rows, left-padded, shared prefixes
    singles = [wide.chat([c], SAMPLED)[0] for c in CONVERSATIONS]
    reordered = narrow.chat(CONVERSATIONS[::-1], SAMPLED)[::-1]  # other chunks, other neighbours
    assert batched == singles == reordered
    assert batched == [naive_sample(wide, c, SAMPLED) for c in CONVERSATIONS]
    assert all(batched) and len(set(batched)) == len(batched)  # not a comparison of empty strings
    assert batched != [naive_greedy(wide, c, 10) for c in CONVERSATIONS]  # it sampled


def test_another_seed_or_sample_index_draws_other_replies_and_a_rerun_the_same(tiny_model):
    first = tiny_model.chat(CONVERSATIONS, SAMPLED)
    assert tiny_model.chat(CONVERSATIONS, SAMPLED) == first
    other_seed = tiny_model.chat(CONVERSATIONS, Decoding(temperature=1.0, max_new_tokens=10, seed=8))
    other_sample = tiny_model.chat(CONVERSATIONS, Decoding(temperature=1.0, max_new_tokens=10, seed=7, sample=1))
    assert all(a != b for a, b in zip(first, other_seed))
    assert all(a != b for a, b in zip(first, other_sample))


def test_greedy_is_unchanged_and_ignores_the_seed(tiny_model):
    greedy = tiny_model.chat(CONVERSATIONS, Decoding(max_new_tokens=10))
    assert greedy == [naive_greedy(tiny_model, c, 10) for c in CONVERSATIONS]
    assert tiny_model.chat(CONVERSATIONS, Decoding(max_new_tokens=10, seed=7)) == greedy


@pytest.mark.parametrize("decoding", [Decoding(temperature=1.0, top_p=1e-9, max_new_tokens=10, seed=3),
                                      Decoding(temperature=1e-4, max_new_tokens=10, seed=3)],
                         ids=["nucleus-of-one", "cold"])
def test_a_nucleus_of_one_token_or_a_cold_temperature_is_greedy(tiny_model, decoding):
    assert tiny_model.chat(CONVERSATIONS, decoding) == tiny_model.chat(CONVERSATIONS, Decoding(max_new_tokens=10))


def test_unseeded_sampling_still_samples_with_transformers_and_is_not_cached(tiny_model_dir, tmp_path):
    model = load_model(f"hf:{tiny_model_dir}", ModelOptions(batch_size=4))
    unseeded = Decoding(temperature=1.0, max_new_tokens=6)
    assert not unseeded.deterministic
    cached = CachedModel(model, ResponseCache(tmp_path / "c.sqlite"))
    replies = cached.chat(CONVERSATIONS, unseeded)
    assert len(replies) == len(CONVERSATIONS) and all(isinstance(r, str) for r in replies)
    cached.chat(CONVERSATIONS, unseeded)
    assert cached.stats.cache_hits == 0 and len(cached.cache) == 0


def test_draw_tokens_inverts_the_tempered_nucleus_distribution():
    logits = torch.log(torch.tensor([[0.2, 0.5, 0.3, 0.0]]))  # token 3 is refused (-inf)
    grid = (torch.arange(1000, dtype=torch.float64) + 0.5) / 1000

    def counts(temperature, top_p):
        tokens = torch.cat([draw_tokens(logits, temperature, top_p, u[None]) for u in grid])
        return torch.bincount(tokens, minlength=4).tolist()

    assert counts(1.0, 1.0) == [200, 500, 300, 0]  # tokens in decreasing probability: 1, 2, 0
    assert counts(1.0, 0.7) == [0, 625, 375, 0]  # nucleus {1, 2} (0.8 >= 0.7), renormalised
    assert counts(1.0, 0.5) == [0, 1000, 0, 0]  # the most probable token alone reaches 0.5
    half = torch.softmax(logits[0] / 0.5, dim=-1)  # temperature 0.5 squares and renormalises
    assert counts(0.5, 1.0) == [round(1000 * float(p)) for p in half]


def test_the_sampler_leaves_only_the_drawn_token_and_checks_its_rows():
    sampler = SeededSampler([1, 2], temperature=1.0, top_p=1.0)
    scores = torch.zeros((2, 50))
    out = sampler(torch.zeros((2, 3), dtype=torch.long), scores)
    assert ((out == 0).sum(dim=1) == 1).all() and torch.isinf(out).sum() == 2 * 49
    with pytest.raises(ValueError, match="3 rows for 2 seeds"):
        sampler(torch.zeros((3, 3), dtype=torch.long), torch.zeros((3, 50)))
    with pytest.raises(ValueError, match="above 0"):
        SeededSampler([1], temperature=0.0, top_p=1.0)


# -- scoring at a temperature ----------------------------------------------------------------------

def naive_tempered_logprob(model: HFChatModel, conversation, option: str, temperature: float) -> float:
    """log p_T(option as the whole reply) from one full forward: log_softmax(logits / T), summed."""
    prompt = model.prompt_ids(conversation)
    continuation = model.continuation_ids(conversation, option, prompt)
    with torch.no_grad():
        logits = model.model(torch.tensor([prompt + continuation])).logits[0].double()
    logp = torch.log_softmax(logits / temperature, dim=-1)
    return sum(float(logp[len(prompt) - 1 + k, t]) for k, t in enumerate(continuation))


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_tempered_option_scores_equal_a_hand_computation_from_the_logits(tiny_model, temperature):
    scores = tiny_model.score_options(CONVERSATIONS, OPTIONS, temperature=temperature)
    for row, conversation in zip(scores, CONVERSATIONS):
        expected = [naive_tempered_logprob(tiny_model, conversation, o, temperature) for o in OPTIONS]
        assert row == pytest.approx(expected, abs=2e-3)
    plain = tiny_model.score_options(CONVERSATIONS, OPTIONS)
    assert tiny_model.score_options(CONVERSATIONS, OPTIONS, temperature=1.0) == plain
    assert scores != plain


def test_tempered_reply_scores_equal_the_hand_computation_row_by_row(tiny_model):
    rows = [OPTIONS[:2], OPTIONS[2:], OPTIONS[:1], OPTIONS[1:], OPTIONS]
    scores = tiny_model.score_replies(CONVERSATIONS, rows, temperature=0.7)
    for got, conversation, row in zip(scores, CONVERSATIONS, rows):
        assert got == pytest.approx([naive_tempered_logprob(tiny_model, conversation, r, 0.7) for r in row], abs=2e-3)


def test_renormalised_over_the_options_a_cold_temperature_puts_the_mass_on_the_greedy_favourite(tiny_model):
    """As T -> 0, log p_T(option) ~ (sum over its tokens of logit - max logit) / T: the option
    whose tokens fall least short of the argmax takes all the mass. The options share their
    beginning, so at T = 1 the mass is spread over them."""
    options = ['{"answer": "Below"}', '{"answer": "Above"}', '{"answer": "Maybe"}']
    for conversation in CONVERSATIONS:
        prompt = tiny_model.prompt_ids(conversation)
        shortfall = []
        for option in options:
            continuation = tiny_model.continuation_ids(conversation, option, prompt)
            with torch.no_grad():
                logits = tiny_model.model(torch.tensor([prompt + continuation])).logits[0].double()
            shortfall.append(sum(float(logits[len(prompt) - 1 + k, t] - logits[len(prompt) - 1 + k].max())
                                 for k, t in enumerate(continuation)))
        favourite = max(range(len(options)), key=shortfall.__getitem__)
        scores = tiny_model.score_options([conversation], options, temperature=0.01)[0]
        mass = torch.softmax(torch.tensor(scores, dtype=torch.float64), dim=0)
        assert int(mass.argmax()) == favourite and float(mass[favourite]) > 0.99
        warm = torch.softmax(torch.tensor(tiny_model.score_options([conversation], options)[0]), dim=0)
        assert float(warm.max()) < 0.99  # at T = 1 the mass is spread: the cold one concentrated it


@pytest.mark.parametrize("bad", [0, -1.0, math.inf, math.nan, "1", True])
def test_a_scoring_temperature_must_be_a_finite_number_above_zero(tiny_model, bad):
    with pytest.raises(UserInputError, match="scoring temperature"):
        tiny_model.score_options(CONVERSATIONS[:1], OPTIONS, temperature=bad)


def test_tempered_scoring_is_declared(tiny_model):
    assert tiny_model.tempered_scoring is True and supports_tempered_scoring(tiny_model)
