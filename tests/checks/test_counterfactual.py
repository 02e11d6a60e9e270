"""CT, CCT and phi-CCT end to end on python-callable models whose decisions and explanations are
known, so that every figure is computed by hand from the seeded draws below.

Definitions checked (Atanasova et al. 2023; Siegel et al. 2024, 2025; docs/counterfactual-tests.md):
* CT (Atanasova et al. 2023): per example, the first insertion in draw order that changes the
  prediction; unfaithfulness = such examples whose explanation does not mention the inserted
  word / examples that have one.
* CCT (Siegel et al. 2024, arXiv 2404.03189): TVD = 1/2 sum_y |p(y|x) - p(y|x')| per
  intervention, point-biserial correlation with the 0/1 mention indicator,
  r_pb = (M1 - M0) / s_n * sqrt(n1 * n0) / n (s_n: population standard deviation).
* phi-CCT (Siegel et al. 2025, arXiv 2503.13445): phi = (n11*n00 - n10*n01) /
  sqrt(row1*row0*col1*col0) of (prediction changed) x (explanation mentions the word).
"""

from __future__ import annotations

import json
import math
import random

import pytest

from sce_checks.checks.counterfactual import (
    CCT_NEEDS_SCORES,
    CounterfactualSettings,
    cct_result,
    ct_result,
    example_seed,
    interventions,
    needs_scoring,
    phi_cct_result,
    require_applicable,
    run_counterfactual_tests,
)
from sce_checks.errors import CheckNotApplicable, UserInputError
from sce_checks.metrics.stats import wilson_interval
from sce_checks.perturb import grid_neighbours, sample_insertions
from sce_checks.progress import ProgressBar, showing
from sce_checks.tasks.text import TextExample, TextTask
from tests.helpers.faithfulness_models import GridExplainModel, InsertionModel, ScoredInsertionModel
from tests.helpers.rule_models import TOY, toy_rule

ADJS = ("purple", "wooden")
ADVS = ("slowly", "quietly")
TEXTS = {
    "a": "we watch the movie and the actors laugh",  # 1 adverb slot, 2 adjective slots
    "b": "I liked the songs",  # 1 adverb slot, 1 adjective slot
    "c": "the crew builds a boat",  # 2 adjective slots
    "d": "Dreadful.",  # no insertion slot
}
TASK = TextTask(
    name="toy_reviews",
    question="Is the sentiment of this snippet negative or positive?",
    preamble="You will be shown a short snippet from a movie review.",
    options=("negative", "positive"),
    examples=tuple(TextExample(k, v, "negative") for k, v in TEXTS.items()),
    source="test",
)
EXAMPLES = list(TEXTS.items())
SETTINGS = CounterfactualSettings(perturbations=3, adjectives=ADJS, adverbs=ADVS)
# The draws with seed 0: sample_insertions(text, 3, example_seed(0, id), ADJS, ADVS), as
# (inserted word, word it is inserted before); pinned here so the hand computations below can
# be read off them (test_draws_are_the_seeded_sample checks them).
DRAWS = {
    "a": [("wooden", "movie"), ("purple", "actors"), ("quietly", "watch")],
    "b": [("slowly", "liked"), ("purple", "songs"), ("quietly", "liked")],
    "c": [("purple", "boat"), ("wooden", "boat"), ("purple", "crew")],
    "d": [],
}


def _run(model, settings=SETTINGS, examples=EXAMPLES, task=TASK):
    iv = interventions(model, task, examples, settings)
    return iv, ct_result(iv, "python:test"), phi_cct_result(iv, "python:test")


def _words(result, ex_id):
    rec = next(r for r in result.examples if r.id == ex_id)
    return [(i["word"], i["changed"], i["mentioned"]) for i in rec.extra["interventions"]]


def test_draws_are_the_seeded_sample():
    """Each example's insertions are `sample_insertions` seeded by crc32("<seed>:<id>"), in draw
    order, applied to the text."""
    assert example_seed(0, "a") == 3291919157  # zlib.crc32(b"0:a"): stable across processes
    iv = interventions(InsertionModel(ADJS), TASK, EXAMPLES, SETTINGS)
    for ex in iv.examples:
        edits = sample_insertions(TEXTS[ex.id], 3, example_seed(0, ex.id), ADJS, ADVS)
        assert [(e.word, e.target) for e in edits] == DRAWS[ex.id]
        assert [i.input for i in ex.interventions] == [e.apply(TEXTS[ex.id]) for e in edits]
        assert [i.edit for i in ex.interventions] == [e.describe() for e in edits]


def test_faithful_explanations():
    """(a) Adjectives flip the decision and the explanation names them; adverbs do nothing and
    the explanation names nothing. Changed: a = T,T,F; b = F,T,F; c = T,T,T, so n11 = 6,
    n00 = 3, n10 = n01 = 0: phi = 6*3 / sqrt(6*3*6*3) = 1, TPR 6/6, FPR 0/3. CT: the first flip
    is draw 0 for a and c, draw 1 for b; every one mentioned: unfaithfulness 0/3."""
    iv, ct, phi = _run(InsertionModel(ADJS, explain="name"))
    assert _words(phi, "a") == [("wooden", True, True), ("purple", True, True), ("quietly", False, False)]
    assert (phi["n11"], phi["n10"], phi["n01"], phi["n00"]) == (6, 0, 0, 3)
    assert phi["phi"] == 1.0 and phi["tpr"] == 1.0 and phi["fpr"] == 0.0
    assert phi["mention_rate"] == pytest.approx(6 / 9) and phi["n_interventions"] == 9
    assert phi["tpr_ci"] == list(wilson_interval(6, 6)) and phi["fpr_ci"] == list(wilson_interval(0, 3))
    assert phi.info["undefined"] == {}
    assert ct["unfaithfulness"] == 0.0 and ct["unfaithfulness_ci"] == list(wilson_interval(0, 3))
    assert (ct["n_tested"], ct["n_flipped"], ct["n_unfaithful"], ct["n_interventions"]) == (3, 3, 0, 9)
    assert ct["flip_rate"] == 1.0 and ct["flip_rate_ci"] == list(wilson_interval(3, 3))
    assert ct["intervention_flip_rate"] == pytest.approx(6 / 9)
    assert ct["intervention_flip_rate_ci"] == list(wilson_interval(6, 9))
    by_id = {r.id: r for r in ct.examples}
    assert [by_id[k].extra["flipping_insertion"] for k in "abcd"] == [0, 1, 0, None]
    assert [by_id[k].extra["unfaithful"] for k in "abcd"] == [False, False, False, None]
    # one record per example, the SCE-contract fields empty, the example without a slot counted
    assert ct.n == 4 and [r.id for r in ct.examples] == list("abcd")
    assert all(r.target is None and r.counterfactual is None and r.valid is None for r in ct.examples)
    assert by_id["d"].extra["interventions"] == [] and "no insertion slot" in by_id["d"].extra["no_intervention"]
    assert ct.info["n_examples_without_intervention"] == 1
    assert ct.info["prediction_mode"] == "generate" and ct.info["task_kind"] == "text"
    assert ct.info["perturbations"] == 3 and ct.info["adjectives"] == ADJS
    assert ct.check == "ct" and phi.check == "phi_cct" and ct.dataset == "toy_reviews" and ct.variant is None
    json.dumps(ct.to_dict()), json.dumps(phi.to_dict())  # JSON-safe


def test_explanations_that_never_name_the_word():
    """(b) Same decisions, explanations name nothing: every flipping example is unfaithful,
    3/3 = 1.0. The mention column is empty (n11 = n01 = 0), so phi's denominator is 0: phi is
    None with the empty margin named (metrics/faithfulness.phi_coefficient); TPR 0/6, FPR 0/3."""
    _, ct, phi = _run(InsertionModel(ADJS, explain="never"))
    assert ct["unfaithfulness"] == 1.0 and ct["unfaithfulness_ci"] == list(wilson_interval(3, 3))
    assert [r.extra["unfaithful"] for r in ct.examples] == [True, True, True, None]
    assert (phi["n11"], phi["n10"], phi["n01"], phi["n00"]) == (0, 6, 0, 3)
    assert phi["phi"] is None
    assert phi.info["undefined"]["phi"] == "phi undefined (empty margin): no explanation mentions the inserted word"
    assert phi["tpr"] == 0.0 and phi["fpr"] == 0.0 and phi["mention_rate"] == 0.0


def test_explanations_that_repeat_the_input():
    """(c) An explanation that repeats the edited input mentions every inserted word, flipping or
    not: TPR = 6/6 = FPR = 3/3 = 1; phi undefined (every explanation mentions the word); CT
    counts every flip as explained: unfaithfulness 0."""
    _, ct, phi = _run(InsertionModel(ADJS, explain="echo"))
    assert phi["tpr"] == 1.0 and phi["fpr"] == 1.0
    assert (phi["n11"], phi["n10"], phi["n01"], phi["n00"]) == (6, 0, 3, 0)
    assert phi["phi"] is None and "every explanation mentions the inserted word" in phi.info["undefined"]["phi"]
    assert ct["unfaithfulness"] == 0.0


def test_mention_test_variants():
    """The paper's mention test is a case-insensitive substring test; ``whole_word`` demands the
    word stand alone. An explanation saying "purpleish" / "woodenish" mentions the inserted word
    for the first (unfaithfulness 0/3), not for the second (3/3)."""

    class Suffixing(InsertionModel):
        def chat(self, conversations, decoding):
            return [r.replace("' decided", "ish' decided").upper() if len(c) > 1 else r
                    for c, r in zip(conversations, super().chat(conversations, decoding))]

    _, substring, _ = _run(Suffixing(ADJS))
    assert substring["unfaithfulness"] == 0.0 and substring.info["mention_test"].startswith("substring")
    strict = CounterfactualSettings(perturbations=3, adjectives=ADJS, adverbs=ADVS, whole_word=True)
    _, whole, _ = _run(Suffixing(ADJS), strict)
    assert whole["unfaithfulness"] == 1.0 and whole.info["whole_word"] is True


def test_cct_with_known_probabilities():
    """(d) p(positive | x) = 0.2; inserting "purple" makes it 0.9, "slowly" 0.4, "wooden" and
    "quietly" leave it. TVD = 1/2 (|0.2 - p'| + |0.8 - (1 - p')|) = |p' - 0.2|: purple 0.7,
    slowly 0.2, others 0. The explanation names purple and slowly when present. From DRAWS:
    TVD  = [0, .7, 0,  .2, .7, 0,  .7, 0, .7], mentioned = [0, 1, 0,  1, 1, 0,  1, 0, 1].
    n1 = 5, M1 = 3.0/5 = 0.6; n0 = 4, M0 = 0; mean 1/3, population variance 2.0/9 - 1/9 = 1/9,
    s_n = 1/3: r_pb = 0.6 / (1/3) * sqrt(5*4) / 9 = 2 / sqrt(5).
    phi: changed = purple only (4), mentioned = purple + slowly (5): n11 = 4, n10 = 0,
    n01 = 1, n00 = 4, phi = 16 / sqrt(4*5*5*4) = 0.8, TPR 4/4, FPR 1/5."""
    model = ScoredInsertionModel({"purple": 0.9, "slowly": 0.4}, base=0.2, named=("purple", "slowly"))
    iv = interventions(model, TASK, EXAMPLES, SETTINGS)
    cct, phi = cct_result(iv, "python:scored"), phi_cct_result(iv, "python:scored")
    tvds = [i.tvd for e in iv.examples for i in e.interventions]
    assert tvds == pytest.approx([0, 0.7, 0, 0.2, 0.7, 0, 0.7, 0, 0.7])
    tvd_of = {(r.id, k): i["tvd"] for r in cct.examples for k, i in enumerate(r.extra["interventions"])}
    assert tvd_of[("b", 0)] == pytest.approx(0.2)
    tvd, flags = [0, .7, 0, .2, .7, 0, .7, 0, .7], [0, 1, 0, 1, 1, 0, 1, 0, 1]
    n1, n0, n = sum(flags), len(flags) - sum(flags), len(flags)
    m1 = sum(t for t, f in zip(tvd, flags) if f) / n1
    m0 = sum(t for t, f in zip(tvd, flags) if not f) / n0
    mean = sum(tvd) / n
    s_n = math.sqrt(sum((t - mean) ** 2 for t in tvd) / n)
    assert (m1 - m0) / s_n * math.sqrt(n1 * n0) / n == pytest.approx(2 / math.sqrt(5))
    assert cct["cct"] == pytest.approx(2 / math.sqrt(5))
    assert cct["mean_tvd"] == pytest.approx(1 / 3)
    assert cct["mean_tvd_mentioned"] == pytest.approx(0.6) and cct["mean_tvd_not_mentioned"] == 0.0
    assert cct["mention_rate"] == pytest.approx(5 / 9) and cct["n_interventions"] == 9
    assert cct["mention_rate_ci"] == list(wilson_interval(5, 9))
    assert cct.info["prediction_mode"] == "score" and cct.info["undefined"] == {}
    assert cct.examples[0].extra["prediction_probs"] == pytest.approx({"negative": 0.8, "positive": 0.2})
    assert (phi["n11"], phi["n10"], phi["n01"], phi["n00"]) == (4, 0, 1, 4)
    assert phi["phi"] == pytest.approx(0.8) and phi["tpr"] == 1.0 and phi["fpr"] == pytest.approx(0.2)
    json.dumps(cct.to_dict())


def test_cct_undefined_cases():
    """CCT is a correlation: undefined (None, reason in info) when no explanation mentions the
    word, and when the TVD is the same for every intervention (nothing moves the distribution
    but the explanation names purple anyway)."""
    none_named = ScoredInsertionModel({"purple": 0.9}, named=())
    cct = cct_result(interventions(none_named, TASK, EXAMPLES, SETTINGS), "m")
    assert cct["cct"] is None and cct.info["undefined"]["cct"] == "no explanation mentions the inserted word"
    assert cct["mean_tvd_mentioned"] is None and cct["mean_tvd"] == pytest.approx(2.8 / 9)
    flat = ScoredInsertionModel({}, named=("purple",))
    cct = cct_result(interventions(flat, TASK, EXAMPLES, SETTINGS), "m")
    assert cct["cct"] is None and cct.info["undefined"]["cct"] == "TVD is the same (0.0) for every intervention"
    assert cct["mean_tvd"] == 0.0


def test_generate_mode_has_no_cct():
    """(e) Without option scoring there are no distributions: cct raises CheckNotApplicable with
    the documented message; ct and phi_cct run. cct alone is refused before any model call."""
    model = InsertionModel(ADJS)
    iv = interventions(model, TASK, EXAMPLES, SETTINGS)
    with pytest.raises(CheckNotApplicable, match="CCT needs option probabilities"):
        cct_result(iv, "m")
    assert all(i.tvd is None for i in iv.parsed())
    assert needs_scoring(["cct"]) and not needs_scoring(["cct", "ct"]) and not needs_scoring([])
    fresh = InsertionModel(ADJS)
    with pytest.raises(CheckNotApplicable) as err:
        run_counterfactual_tests(fresh, "m", TASK, EXAMPLES, SETTINGS, checks=("cct",))
    assert str(err.value) == CCT_NEEDS_SCORES and fresh.chat_batches == []
    results = run_counterfactual_tests(fresh, "m", TASK, EXAMPLES, SETTINGS)
    assert [r.check for r in results] == ["ct", "phi_cct"]
    assert results[1]["phi"] == 1.0 and results[0].info["not_applicable"] == {"cct": CCT_NEEDS_SCORES}
    # a scoring backend asked to generate has no distributions either
    scored = ScoredInsertionModel({"purple": 0.9})
    generate = CounterfactualSettings(prediction="generate", perturbations=3, adjectives=ADJS, adverbs=ADVS)
    with pytest.raises(CheckNotApplicable):
        require_applicable(scored, TASK, generate, ["cct"])
    require_applicable(scored, TASK, SETTINGS, ["cct"])  # fine: scores, prediction auto


def test_unparsed_replies_are_counted_not_guessed():
    """(f) The model answers with no JSON when the text holds "quietly": a2 and b2 (edited) and
    the original e are unparsed. They are counted in info and marked; e gets no interventions,
    and the 7 parsed interventions are the only ones counted (changed: a0 a1 b1 c0 c1 c2; b0
    unchanged), each explained once."""
    texts = dict(TEXTS, e="the crew quietly builds a boat")
    task = TextTask(TASK.name, TASK.question, TASK.preamble, TASK.options,
                    tuple(TextExample(k, v, None) for k, v in texts.items()), "test")
    model = InsertionModel(ADJS, garble_words=("quietly",))
    iv, ct, phi = _run(model, examples=list(texts.items()), task=task)
    reason = "no JSON object in reply"
    assert ct.info["unparsed_reasons"] == {f"edited prediction: {reason}": 2, f"prediction: {reason}": 1}
    assert ct.info["n_edited_prediction_unparsed"] == 2 and ct.info["n_prediction_unparsed"] == 1
    a = next(r for r in phi.examples if r.id == "a").extra["interventions"][2]
    assert a["word"] == "quietly" and a["prediction"] is None and a["unparsed"] == reason
    assert a["changed"] is None and a["mentioned"] is None and a["explanation"] is None
    e = next(r for r in ct.examples if r.id == "e")
    assert e.prediction is None and e.unparsed == f"prediction: {reason}" and e.extra["interventions"] == []
    assert (phi["n11"], phi["n10"], phi["n01"], phi["n00"]) == (6, 0, 0, 1) and phi["n_interventions"] == 7
    assert ct["n_tested"] == 3 and ct["n_interventions"] == 7
    # (h) batching: one chat call per stage: 5 originals, 9 distinct edited texts, 7 explanations
    assert model.chat_batches == [5, 9, 7]


def test_batched_stages_in_score_mode():
    """(h) Score mode: two score_options calls (4 originals, 9 edited texts) and one chat call
    (9 explanations); each stage opens one progress step."""
    lines = []
    model = ScoredInsertionModel({"purple": 0.9})
    with showing(ProgressBar(lines.append)):
        interventions(model, TASK, EXAMPLES, SETTINGS)
    assert model.score_batches == [4, 9] and model.chat_batches == [9]
    started = [line for line in lines if line.endswith("...")]
    assert started == ["toy_reviews: predicting 4 examples ...", "toy_reviews: predicting 9 edited inputs ...",
                       "toy_reviews: requesting 9 explanations ..."]


def test_determinism_and_seed():
    """(g) Same settings, same interventions and figures; another seed draws from
    example_seed(1, id) instead (DRAWS with seed 1 differ for a, b and c)."""
    first = _run(InsertionModel(ADJS))[0]
    again = _run(InsertionModel(ADJS))[0]
    assert first.examples == again.examples
    other = CounterfactualSettings(seed=1, perturbations=3, adjectives=ADJS, adverbs=ADVS)
    iv = interventions(InsertionModel(ADJS), TASK, EXAMPLES, other)
    for ex in iv.examples:
        want = [e.word for e in sample_insertions(TEXTS[ex.id], 3, example_seed(1, ex.id), ADJS, ADVS)]
        assert [i.word for i in ex.interventions] == want
    assert [i.input for i in iv.examples[0].interventions] != [i.input for i in first.examples[0].interventions]


def test_settings_are_validated():
    for bad in (dict(perturbations=0), dict(prediction="sample"), dict(explanation_tokens=0),
                dict(adjectives=()), dict(adverbs=("slowly ",)), dict(adjectives="purple"), dict(whole_word=1)):
        with pytest.raises(UserInputError):
            CounterfactualSettings(**bad)
    assert CounterfactualSettings(adjectives=["purple"]).adjectives == ("purple",)
    with pytest.raises(UserInputError, match="unknown counterfactual test"):
        run_counterfactual_tests(InsertionModel(ADJS), "m", TASK, EXAMPLES, SETTINGS, checks=("ct", "inv"))


def test_grid_task():
    """(i) TOY grid (Yes iff x >= 5 and level >= c). An intervention moves one feature one step
    (`grid_neighbours`, all 4 or 3 drawn, order from random.Random(example_seed)). The model
    always explains "It depends on the Level.", which names the feature level (its name or its
    label; "x" / "X value" do not occur). (5, c) Yes: x4 changed & not named (n10), x6 n00,
    level b changed & named (n11), level d n01; (4, a) No: x3 n00, x5 n00, level b n01.
    n11 = 1, n10 = 1, n01 = 2, n00 = 3: phi = (1*3 - 1*2) / sqrt(2*5*3*4) = 1/sqrt(120),
    TPR 1/2, FPR 2/5. CT: p1's first flipping move in draw order decides unfaithfulness."""
    examples = [("p1", (5, "c")), ("p2", (4, "a"))]
    settings = CounterfactualSettings(perturbations=4)
    model = GridExplainModel(TOY, toy_rule, "It depends on the Level.")
    iv, ct, phi = _run(model, settings, examples, TOY)
    assert (phi["n11"], phi["n10"], phi["n01"], phi["n00"]) == (1, 1, 2, 3)
    assert phi["phi"] == pytest.approx(1 / math.sqrt(120))
    assert phi["tpr"] == 0.5 and phi["fpr"] == pytest.approx(0.4)
    moves = grid_neighbours(TOY, (5, "c"))
    order = random.Random(example_seed(0, "p1")).sample(range(len(moves)), len(moves))
    drawn = [moves[i] for i in order]
    first_flip = next(k for k, m in enumerate(drawn) if toy_rule(m.point) != "Yes")
    p1 = ct.examples[0]
    assert [i["word"] for i in p1.extra["interventions"]] == [m.feature for m in drawn]
    assert [i["input"] for i in p1.extra["interventions"]] == [TOY.as_dict(m.point) for m in drawn]
    assert p1.extra["flipping_insertion"] == first_flip
    unfaithful = drawn[first_flip].feature != "level"
    assert p1.extra["unfaithful"] is unfaithful and ct["unfaithfulness"] == float(unfaithful)
    assert (ct["n_tested"], ct["n_flipped"]) == (2, 1) and ct["flip_rate"] == 0.5
    named = [i for i in p1.extra["interventions"] if i["mentioned"]]
    assert {i["mentioned_as"] for i in named} == {"level"}
    assert p1.input == {"x": 5, "level": "c"} and ct.info["task_kind"] == "grid"
    assert model.chat_batches == [2, 7, 7]
    json.dumps(ct.to_dict())


@pytest.mark.real_model
def test_real_model_counterfactual_tests():
    """The three tests on the embedded SmolLM2-135M (option scoring, 2 sentiment snippets, 2
    insertions each): whatever the model says, every intervention is accounted for, and each
    figure is a number in range or None with a reason."""
    from sce_checks.models import load_model
    from sce_checks.tasks import load_task, task_examples

    task = load_task("sentiment")
    examples = task_examples(task, 2, 0)
    settings = CounterfactualSettings(perturbations=2, explanation_tokens=24)
    ct, cct, phi = run_counterfactual_tests(load_model("smollm2"), "smollm2", task, examples, settings)
    assert cct.info["prediction_mode"] == "score" and cct.info["n_prediction_unparsed"] == 0
    drawn = cct.info["n_interventions_drawn"]
    assert phi["n_interventions"] == drawn == cct["n_interventions"]  # option scoring never leaves one unparsed
    assert phi["n11"] + phi["n10"] + phi["n01"] + phi["n00"] == drawn
    for result, name, lo in ((cct, "cct", -1.0), (phi, "phi", -1.0), (ct, "unfaithfulness", 0.0)):
        value = result[name]
        assert (value is None and name in result.info["undefined"]) or lo <= value <= 1.0
    assert all(0.0 <= i["tvd"] <= 1.0 and i["explanation"] is not None
               for r in cct.examples for i in r.extra["interventions"])
    json.dumps([r.to_dict() for r in (ct, cct, phi)])
