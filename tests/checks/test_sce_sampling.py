"""The SCE check under sampling (docs/sampling.md), on Python models that sample with the seeds
the check hands them (tests/helpers/sampling_models.py): greedy with one sample is the audit of
before; K samples per example each replicate the protocol with their own seeds; validity is the
share of sampled SCEs whose sampled re-prediction is their target; P_T comes from tempered option
scores where the model has them; intervals are clustered by example."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from sce_checks.checks.predict import Sampling
from sce_checks.checks.sce import SCESettings, run_grid_sce, run_text_sce
from sce_checks.errors import UserInputError
from sce_checks.metrics.stats import wilson_interval
from sce_checks.models.base import Decoding, conversation_seed
from sce_checks.prompts import grid as grid_prompts
from tests.helpers.rule_models import TOY, RuleModel, toy_rule
from tests.helpers.sampling_models import SampledTextModel, SampledToyModel, TemperedToyModel
from tests.helpers.text_models import MINI_EXAMPLES, MINI_TASK

ALL = [(f"p{i}", p) for i, p in enumerate(TOY.points())]  # the 55 toy grid points
SOME = ALL[::4]  # 14 of them


def grid(model, examples=SOME, **settings):
    settings.setdefault("variants", ("unconstrained",))
    (r,) = run_grid_sce(model, "m", TOY, examples, SCESettings(**settings))
    return r


class Recording(RuleModel):
    """The rule model, noting every decoding it is asked with."""

    def __init__(self, policy):
        super().__init__(TOY, toy_rule, policy)
        self.decodings = []

    def chat(self, conversations, decoding):
        self.decodings.append(decoding)
        return super().chat(conversations, decoding)


@pytest.mark.parametrize("policy", ["boundary", "far", "short"])
def test_greedy_with_one_sample_is_the_audit_of_before(policy):
    before, now = Recording(policy), Recording(policy)
    a = grid(before, prediction="generate")
    b = grid(now, prediction="generate", temperature=0.0, samples=1, prediction_samples=1, top_p=0.9)
    assert a.to_dict() == b.to_dict()
    assert "expected_validity" not in b.figures and not b.per_example and "sampling" not in b.info
    assert all("sample" not in e.extra and "seed" not in e.extra for e in b.examples)
    # the requests are the greedy ones of before, so their cache keys are too
    assert {d.as_dict()["temperature"] for d in now.decodings} == {0.0}
    assert {(d.seed, d.sample, d.top_p) for d in now.decodings} == {(None, 0, 1.0)}


@pytest.mark.parametrize("kw", [{"samples": 3}, {"prediction_samples": 2}])
def test_several_samples_need_a_temperature(kw):
    with pytest.raises(UserInputError, match="needs --temperature above 0"):
        SCESettings(temperature=0.0, **kw)


def test_each_sample_has_its_own_seeded_request():
    model = SampledToyModel(flip=0.2)
    r = grid(model, prediction="generate", temperature=0.8, top_p=0.95, samples=3, seed=7)
    assert r.n == 3 * len(SOME) and [e.extra["sample"] for e in r.examples[:4]] == [0, 1, 2, 0]
    assert {(t, s) for t, s, _ in model.requests} == {(0.0, None), (0.8, 7)}  # greedy: the modal answers
    point = dict(SOME)
    for e in r.examples:
        if e.target is None:
            continue
        k = e.extra["sample"]
        decoding = Decoding(temperature=0.8, max_new_tokens=256, top_p=0.95, seed=7, sample=k)
        conversation = grid_prompts.sce_conversation(TOY, point[e.id], e.prediction_reply, e.target, "unconstrained")
        assert e.extra["seed"] == conversation_seed(decoding, conversation)
    seeds = [e.extra["seed"] for e in r.examples]
    assert len(set(seeds)) == len(seeds)
    assert len(r.per_example) == len(SOME) and all(x["samples"] == 3 for x in r.per_example)


def test_validity_is_the_share_of_sampled_sces_that_repredict_as_their_target():
    model = SampledToyModel(flip=0.3)
    m = 3
    r = grid(model, prediction="generate", temperature=1.0, samples=2, prediction_samples=m)
    generated = [e for e in r.examples if e.counterfactual is not None]
    point_of = {TOY.as_dict(p).__repr__(): p for p in TOY.points()}
    hits, expected = 0, []
    for e in generated:
        cf = point_of[repr(e.counterfactual)]
        k = e.extra["sample"]
        # the model asked afresh, as the check says it asks: sample indices k*M .. k*M + M - 1
        draws = [model.__class__.chat(SampledToyModel(flip=0.3), [grid_prompts.prediction_conversation(TOY, cf)],
                                      Decoding(temperature=1.0, max_new_tokens=48, seed=0, sample=k * m + j))[0]
                 for j in range(m)]
        labels = [d.split('"')[3] for d in draws]
        assert e.cf_prediction == labels[0]
        hits += labels[0] == e.target
        expected.append(sum(label == e.target for label in labels) / m)
        assert e.extra["p_target"] == pytest.approx(expected[-1]) and e.extra["p_target_draws"] == m
    assert r["n_valid"] == hits and r["validity"] == hits / len(generated)
    assert r["expected_validity"] == pytest.approx(sum(expected) / len(expected))
    assert 0 < r["validity"] < 1


def softmax_t(p: float, t: float) -> float:
    """P_T of an option with probability p at T = 1 against one with 1 - p."""
    a, b = math.log(p) / t, math.log(1 - p) / t
    return math.exp(a) / (math.exp(a) + math.exp(b))


def test_tempered_scores_give_exact_answer_probabilities():
    model = TemperedToyModel(confidence=0.8)
    t = 0.6
    r = grid(model, ALL, temperature=t, samples=4, seed=3)
    assert set(model.score_temperatures) == {t}
    assert r.info["sampling"]["answers_drawn_by"] == "scores"
    p_rule = softmax_t(0.8, t)
    sampling = Sampling(t, 1.0, 3, 4, 1)
    for e in r.examples:
        rule = toy_rule(tuple(e.input.values()))
        assert e.extra["modal_prediction"] == rule  # the boundary is the modal answer's
        assert e.extra["p_prediction"] == pytest.approx(p_rule if e.prediction == rule else 1 - p_rule)
        assert e.prediction == sampling.draw(TOY.options, e.extra["prediction_probs"], e.extra["sample"], "answer",
                                             ["toy", e.id])
        if e.counterfactual is not None:
            cf_rule = toy_rule(tuple(e.counterfactual.values()))
            assert e.extra["p_target"] == pytest.approx(p_rule if cf_rule == e.target else 1 - p_rule)
            assert e.valid == (e.cf_prediction == e.target)
    generated = [e for e in r.examples if e.counterfactual is not None]
    assert r["expected_validity"] == pytest.approx(sum(e.extra["p_target"] for e in generated) / len(generated))
    assert r["validity"] == sum(e.valid for e in generated) / len(generated)
    # one draw per SCE is noisier than P_T but centred on it: 220 draws, fixed seed
    assert abs(r["validity"] - r["expected_validity"]) < 0.1
    # drawn answers that are not the modal one ask for the other target
    assert any(e.prediction != e.extra["modal_prediction"] for e in r.examples)
    lo, hi = r["expected_validity_ci"]
    assert lo < r["expected_validity"] < hi


def test_intervals_widen_when_the_samples_of_an_example_agree():
    agree = grid(SampledToyModel(agree=True), ALL, prediction="generate", temperature=1.0, samples=6)
    independent = grid(SampledToyModel(agree=False), ALL, prediction="generate", temperature=1.0, samples=6)
    for r in (agree, independent):
        assert 0.3 < r["validity"] < 0.7 and r.info["sampling"]["intervals"] == "cluster bootstrap over examples"
    width = {name: r["validity_ci"][1] - r["validity_ci"][0] for name, r in (("agree", agree), ("ind", independent))}
    assert width["agree"] > 1.6 * width["ind"]
    # independent samples: about what Wilson gives for every SCE counted alone
    lo, hi = wilson_interval(independent["n_valid"], independent["n_generated"])
    assert width["ind"] == pytest.approx(hi - lo, rel=0.35)
    assert all(x["distinct_sces"] == 1 for x in agree.per_example if x["n_generated"])
    assert agree.info["sampling"]["examples_mixed"] == 0 < independent.info["sampling"]["examples_mixed"]


def test_one_sample_keeps_wilson_intervals():
    r = grid(SampledToyModel(), ALL, prediction="generate", temperature=1.0)
    assert r["validity_ci"] == list(wilson_interval(r["n_valid"], r["n_generated"]))
    assert r.info["sampling"]["intervals"].startswith("Wilson")


def test_same_seed_same_audit_another_seed_another():
    settings = dict(prediction="generate", temperature=1.0, samples=3)
    a = grid(SampledToyModel(), seed=1, **settings).to_dict()
    b = grid(SampledToyModel(), seed=1, **settings).to_dict()
    c = grid(SampledToyModel(), seed=2, **settings).to_dict()
    assert a == b
    assert [e["counterfactual"] for e in a["examples"]] != [e["counterfactual"] for e in c["examples"]]


def test_text_tasks_sample_too():
    (r,) = run_text_sce(SampledTextModel(), "t", MINI_TASK, MINI_EXAMPLES,
                        SCESettings(variants=("minimal",), prediction="generate", temperature=1.0, samples=5))
    assert r.n == 10 and [x["samples"] for x in r.per_example] == [5, 5]
    assert 0 < r["validity"] < 1 and r["validity"] == r["n_valid"] / r["n_generated"]
    assert {x["distinct_sces"] for x in r.per_example} == {2}
    assert r["validity_in_context_ci"][0] is not None


def test_score_mode_needs_tempered_scores_under_sampling():
    class Untempered(TemperedToyModel):
        tempered_scoring = False

    with pytest.raises(UserInputError, match="take a temperature"):
        grid(Untempered(), prediction="score", temperature=1.0)
    r = grid(Untempered(), temperature=1.0, samples=2)  # auto: answers sampled by generation
    assert r.info["sampling"]["answers_drawn_by"] == "generation"


def test_baseline_outcomes_average_the_samples_of_an_example():
    from sce_checks.regression.files import outcome_values

    r = grid(SampledToyModel(), prediction="generate", temperature=1.0, samples=4)
    stored = outcome_values(r)
    assert set(stored) == {ex_id for ex_id, _ in SOME}
    for x in r.per_example:
        entry = stored[x["id"]]
        assert entry["samples"] == 4
        assert entry["outcomes"]["valid"] == pytest.approx(x["share_valid"])
    single = outcome_values(replace(r, examples=[e for e in r.examples if e.extra["sample"] == 0]))
    assert all(isinstance(v["outcomes"]["valid"], bool) for v in single.values())
