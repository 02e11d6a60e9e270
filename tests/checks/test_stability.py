"""The SCE stability check (checks/stability.py; docs/stability.md), on python-callable models
whose predictions, SCE policies and prompt sensitivities are known, so every figure is computed
by hand:

* perturbation half (text tasks): pairs = examples whose first prediction-keeping single edit was
  found and whose original and perturbed SCEs were both generated; pair_validity and
  perturbed_validity over the pairs, validity_agreement = share of pairs with the same verdict,
  validity_drop = pair_validity - perturbed_validity;
* paraphrase half: over generated SCEs, validity (canonical prompt), robust_validity (valid under
  every prompt, an unparsed answer counting as not valid), prompt_consistency (same label under
  every prompt, over counterfactuals with a parsed label under all); original_prompt_consistency
  the same over the inputs.
"""

from __future__ import annotations

import json
import re

import pytest

from sce_checks.audit import AuditConfig, run_audit
from sce_checks.checks.perturbation import draw_perturbations
from sce_checks.checks.sce import SCESettings, run_grid_sce, run_text_sce
from sce_checks.checks.stability import NO_EDITS_ON_GRIDS, StabilitySettings, run_stability
from sce_checks.errors import UserInputError
from sce_checks.metrics.stats import wilson_interval
from sce_checks.prompts.paraphrase import PARAPHRASE_NAMES, paraphrases
from sce_checks.report.summary import check_rows, failing_rows
from sce_checks.tasks.text import TextExample, TextTask
from tests.helpers.rule_models import TOY, nearest_flip, read_record, toy_rule
from tests.helpers.text_models import QUOTED, sentiment_rule, swap

OPTIONS = ("negative", "positive")
TASK = TextTask(name="reviews", preamble="A short film review.", question="Is the review positive or negative?",
                options=OPTIONS, examples=(), source="test")
SIGNATURES = {  # a phrase only that paraphrase has -> its name
    "The line above is the text to consider": "input_first",
    "You are helping to label": "annotator",
    "labels are possible": "options_first",
}


def prompt_name(content: str) -> str:
    return next((name for phrase, name in SIGNATURES.items() if phrase in content), "canonical")


class ReviewModel:
    """Predicts `sentiment_rule` (positive iff good/great/fun and no "not") under the canonical
    prompt and every paraphrase, except where ``quirks`` (prompt name -> text -> reply or None)
    says otherwise. SCEs swap good/bad and fun/dull, but return a text that contains a full stop
    unchanged (so an appended neutral sentence breaks them)."""

    def __init__(self, quirks=None):
        self.quirks = quirks or {}
        self.batches: list[int] = []

    def identity(self):
        return {"backend": "python", "model": "review-model"}

    def chat(self, conversations, decoding):
        self.batches.append(len(conversations))
        out = []
        for conv in conversations:
            first = conv[0]["content"]
            text = json.loads(QUOTED.findall(first)[-1])
            if len(conv) == 1:
                reply = self.quirks.get(prompt_name(first), lambda t: None)(text)
                out.append(reply if reply is not None else json.dumps({"answer": sentiment_rule(text)}))
            else:
                out.append(json.dumps({"revised_text": text if "." in text else swap(text)}))
        return out


def fun_is_negative_to_annotators(text: str):
    return json.dumps({"answer": "negative"}) if "fun" in text.split() else None


EXAMPLES = [("e1", "a good film"), ("e2", "a bad film"), ("e3", "a dull film"), ("e4", "not good")]
SENTENCE_ONLY = StabilitySettings(perturbations=1, families=("neutral_sentence",))


def test_figures_by_hand_on_a_text_task():
    """SCEs break when a neutral sentence is appended (e1-e3: valid -> invalid; e4's SCE "not
    bad" is invalid either way) and the annotator paraphrase calls anything "fun" negative (e3's
    counterfactual "a fun film"). 4 pairs: pair_validity 3/4, perturbed_validity 0/4,
    agreement 1/4 (e4 only), drop 3/4; validity 3/4, robust_validity 2/4 (e1, e2),
    prompt_consistency 3/4, original_prompt_consistency 4/4 (no original says "fun")."""
    model = ReviewModel({"annotator": fun_is_negative_to_annotators})
    r = run_stability(model, "python:review", TASK, EXAMPLES, SENTENCE_ONLY)
    f = r.figures
    assert (r.check, r.variant, r.n, f["n_pairs"], f["n_counterfactuals"]) == ("stability", None, 4, 4, 4)
    assert f["pair_validity"] == 0.75 and f["perturbed_validity"] == 0.0
    assert f["validity_agreement"] == 0.25 and f["validity_drop"] == 0.75
    assert f["validity_agreement_ci"] == list(wilson_interval(1, 4))
    assert f["validity"] == 0.75 and f["robust_validity"] == 0.5
    assert f["prompt_consistency"] == 0.75 and f["prompt_consistency_ci"] == list(wilson_interval(3, 4))
    assert f["original_prompt_consistency"] == 1.0
    assert r.info["validity_by_prompt"] == {"canonical": 0.75, "input_first": 0.75, "annotator": 0.5, "options_first": 0.75}
    assert r.info["undefined"] == {}

    e1, e3, e4 = r.examples[0], r.examples[2], r.examples[3]
    assert (e1.counterfactual, e1.cf_prediction, e1.valid) == ("a bad film", "negative", True)
    side = e1.extra["perturbed"]
    assert "a good film" in side["text"] and "." in side["text"] and side["prediction"] == "positive"
    assert side["counterfactual"] == side["text"] and side["valid"] is False and e1.extra["validity_agrees"] is False
    assert len(side["edits"]) == 1 and "sentence" in side["edits"][0]
    assert e3.extra["prompt_predictions"] == {"canonical": "positive", "input_first": "positive",
                                              "annotator": "negative", "options_first": "positive"}
    assert e3.extra["valid_under_all_prompts"] is False
    assert e4.valid is False and e4.extra["validity_agrees"] is True

    # one batch per step: originals, the single perturbation round, SCEs (4 + 4 perturbed),
    # counterfactuals not predicted yet ("a bad film" and "a good film" are inputs, the perturbed
    # SCEs are the perturbed texts: 2 left), the 6 distinct texts under 3 paraphrases
    assert model.batches == [4, 4, 8, 2, 3 * 6]
    # reports: the row carries the headline figures and both sample sizes; failing rows name the case
    (row,) = check_rows([r])
    assert "validity_agreement 0.250 [" in row[4] and "n_pairs 4; n_counterfactuals 4" in row[4]
    rows = failing_rows(r, k=5)
    assert rows[0][0] == "e1" and rows[0][3] == "SCE valid -> invalid"
    assert any(row[0] == "e3" and row[2] == "prompt paraphrases" and "annotator negative" in row[4] for row in rows)


def test_the_paraphrase_half_agrees_with_the_sce_check():
    """Same prompts, same model: the canonical validity is the SCE check's validity."""
    model = ReviewModel()
    sce = run_text_sce(model, "m", TASK, EXAMPLES, SCESettings(variants=("unconstrained",)))[0]
    r = run_stability(ReviewModel(), "m", TASK, EXAMPLES, SENTENCE_ONLY)
    assert r["validity"] == sce["validity"] == 0.75
    assert [e.counterfactual for e in r.examples] == [e.counterfactual for e in sce.examples]
    assert r["prompt_consistency"] == 1.0 and r["robust_validity"] == 0.75


def test_the_first_edit_that_keeps_the_prediction_is_used():
    """Typos in "good" flip this model's answer; the check moves on to the next drawn edit. The
    oracle: the first of the seeded single-typo draws whose rule label equals the original's.
    "good" alone has no typo that keeps "positive": no pair, counted with its reason."""
    settings = StabilitySettings(perturbations=4, families=("typo",))
    examples = [("a", "a good film"), ("b", "good"), ("c", "a dull film")]
    model = ReviewModel()
    r = run_stability(model, "m", TASK, examples, settings)
    for (ex_id, text), rec in zip(examples, r.examples):
        drawn = draw_perturbations(text, ex_id, settings.edit_settings())
        keeping = [p for p in drawn if sentiment_rule(p.text) == sentiment_rule(text)]
        side = rec.extra["perturbed"]
        if keeping:
            assert side["text"] == keeping[0].text
            assert len(rec.extra["perturbations_tried"]) == drawn.index(keeping[0]) + 1
        else:
            assert side is None and len(rec.extra["perturbations_tried"]) == len(drawn)
    assert r.examples[1].extra["perturbed"] is None
    assert r.info["unparsed_reasons"]["no drawn edit kept the prediction"] == 1
    assert r["n_pairs"] == sum(1 for e in r.examples if e.extra["perturbed"] is not None) == r.info["n_with_perturbation"]
    assert len(model.batches) <= 4 + 4  # originals, <= 4 rounds, SCEs, counterfactuals, paraphrases


def test_unparsed_answers_are_counted_never_guessed():
    """Under input_first the model rambles whenever the text says "bad": e2's input and the
    counterfactuals "a bad film" (e1) and "not bad" (e4) get no label there. Consistency leaves
    them out (3 of 3 inputs, 2 of 2 counterfactuals judged, all consistent); robust validity
    counts e1's SCE as not valid under every prompt (2/4: e2, e3)."""
    ramble = {"input_first": lambda t: "I would rather not say." if "bad" in t.split() else None}
    r = run_stability(ReviewModel(ramble), "m", TASK, EXAMPLES, SENTENCE_ONLY)
    assert r["original_prompt_consistency"] == 1.0 and r["original_prompt_consistency_ci"] == list(wilson_interval(3, 3))
    assert r["prompt_consistency"] == 1.0 and r["prompt_consistency_ci"] == list(wilson_interval(2, 2))
    assert r["robust_validity"] == 0.5 and r["validity"] == 0.75
    assert r.examples[0].extra["prompt_predictions"]["input_first"] is None
    assert r.info["unparsed_reasons"]["counterfactual prediction unparsed (some prompt)"] == 2


def test_unparsed_predictions_and_sces_are_reported():
    class Garbled(ReviewModel):
        def chat(self, conversations, decoding):
            out = super().chat(conversations, decoding)
            for i, conv in enumerate(conversations):
                text = json.loads(QUOTED.findall(conv[0]["content"])[-1])
                if text == "not good":
                    out[i] = "no idea"  # prediction unparsed
                elif len(conv) > 1 and text == "a dull film":
                    out[i] = '{"answer": "positive"}'  # an answer, no revision: SCE unparsed
            return out

    r = run_stability(Garbled(), "m", TASK, EXAMPLES, SENTENCE_ONLY)
    e3, e4 = r.examples[2], r.examples[3]
    assert e4.prediction is None and e4.unparsed.startswith("prediction:")
    assert e3.counterfactual is None and e3.unparsed.startswith("sce:")
    assert r.info["n_prediction_unparsed"] == 1 and r.info["n_sce_unparsed"] == 1
    assert r["n_counterfactuals"] == 2 and r["validity"] == 1.0
    # e3's perturbed SCE contains the full stop, so it is generated (unchanged, invalid): e3 has no
    # pair because its original SCE is missing
    assert r["n_pairs"] == 2 and "validity_agrees" not in e3.extra


class ShiftedGridModel:
    """The toy grid rule (Yes iff x >= 5 and level >= c) with boundary SCEs, except that under the
    options_first paraphrase the threshold on x is 6."""

    def __init__(self):
        self.batches: list[int] = []

    def identity(self):
        return {"backend": "python", "model": "shifted-grid"}

    def chat(self, conversations, decoding):
        self.batches.append(len(conversations))
        out = []
        for conv in conversations:
            x = read_record(TOY, conv[0]["content"])
            if len(conv) > 1:
                out.append(json.dumps(TOY.as_dict(nearest_flip(TOY, toy_rule, x))))
            elif prompt_name(conv[0]["content"]) == "options_first":
                out.append(json.dumps({"answer": "Yes" if x[0] >= 6 and x[1] >= "c" else "No"}))
            else:
                out.append(json.dumps({"answer": toy_rule(x)}))
        return out


def test_grid_tasks_run_the_paraphrase_half_only():
    """(4,c) -> (5,c): Yes canonically, No under options_first: valid, not robust, inconsistent.
    (7,b) -> (7,c) and (7,d) -> (4,d) agree everywhere. The perturbation half is undefined."""
    examples = [("p1", (4, "c")), ("p2", (7, "b")), ("p3", (7, "d"))]
    r = run_stability(ShiftedGridModel(), "m", TOY, examples, StabilitySettings())
    assert [e.counterfactual for e in r.examples] == [{"x": 5, "level": "c"}, {"x": 7, "level": "c"}, {"x": 4, "level": "d"}]
    assert r["validity"] == 1.0 and r["robust_validity"] == pytest.approx(2 / 3)
    assert r["prompt_consistency"] == pytest.approx(2 / 3) and r["original_prompt_consistency"] == 1.0
    assert r["n_pairs"] == 0
    for name in ("pair_validity", "perturbed_validity", "validity_agreement", "validity_drop"):
        assert r[name] is None and r.info["undefined"][name] == NO_EDITS_ON_GRIDS
    assert "perturbed" not in r.examples[0].extra
    assert r.examples[0].distance == pytest.approx(0.05)  # Gower: one step of 10 on one of two features
    sce = run_grid_sce(ShiftedGridModel(), "m", TOY, examples, SCESettings(variants=("unconstrained",)))[0]
    assert sce["validity"] == r["validity"]


def test_paraphrases_carry_the_same_input_and_answer_format():
    """Every paraphrase shows the input exactly as the canonical prompt does and asks for the same
    JSON answer, so replies parse the same way; only the framing differs."""
    from sce_checks.prompts import grid as grid_prompts
    from sce_checks.prompts import text as text_prompts
    from sce_checks.prompts.common import answer_instruction

    text = 'a "quoted" film'
    canonical = text_prompts.prediction_prompt(TASK, text)
    seen = {canonical}
    for name, make in paraphrases(TASK).items():
        (message,) = make(TASK, text)
        content = message["content"]
        assert message["role"] == "user" and json.dumps(text) in content and TASK.question in content
        assert answer_instruction(OPTIONS) in content and content not in seen
        seen.add(content)
    point = (3, "b")
    for make in paraphrases(TOY).values():
        content = make(TOY, point)[0]["content"]
        assert TOY.render(point) in content and answer_instruction(TOY.options) in content
        assert content != grid_prompts.prediction_prompt(TOY, point)
    assert tuple(paraphrases(TOY)) == PARAPHRASE_NAMES


@pytest.mark.parametrize("kwargs, message", [
    ({"variant": "shortest"}, "variant must be one of unconstrained, minimal"),
    ({"perturbations": 0}, "perturbations must be a positive integer"),
    ({"paraphrases": ("formal",)}, "paraphrases must name one or more of: input_first, annotator, options_first (not 'formal')"),
    ({"paraphrases": "annotator"}, "not the string"),
    ({"families": ("insertion",)}, "'insertion' is not label-preserving"),
    ({"prediction": "vote"}, "prediction must be one of"),
])
def test_settings_are_validated(kwargs, message):
    with pytest.raises(UserInputError, match=re.escape(message)):
        StabilitySettings(**kwargs)


def test_run_audit_runs_stability_with_the_first_variant_listed(tmp_path):
    path = tmp_path / "reviews.jsonl"
    path.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in EXAMPLES))
    toml = tmp_path / "reviews.toml"
    toml.write_text(
        'name = "reviews"\npreamble = "A short film review."\n'
        'question = "Is the review positive or negative?"\noptions = ["negative", "positive"]\n'
        'data = "reviews.jsonl"\n'
    )
    model = ReviewModel()
    run = run_audit(AuditConfig(model="python:review", datasets=[str(toml)], checks=["stability"],
                                variants=["minimal", "unconstrained"], limit=None, perturbations=2), model=model)
    (r,) = run.results
    assert r.check == "stability" and r.info["variant"] == "minimal" and r.n == 4
    assert r["n_counterfactuals"] == 4 and r["n_pairs"] + r.info["unparsed_reasons"].get("no drawn edit kept the prediction", 0) <= 4
    assert run.environment["checks"] == ["stability"] and run.environment["perturbations"] == 2


@pytest.mark.real_model
@pytest.mark.xdist_group("smollm2")
def test_real_run_on_the_embedded_model():
    """Both halves on two short sentiment snippets with SmolLM2 (option scoring, SCEs generated):
    every example is accounted for and every figure is a proportion or None with a reason."""
    import time

    from sce_checks.models import ModelOptions, load_model
    from sce_checks.tasks import load_task

    model = load_model("smollm2", ModelOptions())
    task = load_task("sentiment")
    shortest = sorted(task.examples, key=lambda e: len(e.text))[:2]
    started = time.perf_counter()
    r = run_stability(model, "smollm2", task, [(e.id, e.text) for e in shortest],
                      StabilitySettings(perturbations=2, sce_tokens=96))
    print(f"\nstability on smollm2: {time.perf_counter() - started:.1f} s; {r.figures}")
    assert r.info["prediction_mode"] == "score" and r.info["n_prediction_unparsed"] == 0
    assert r["n_counterfactuals"] + r.info["n_sce_unparsed"] == 2
    assert r["n_pairs"] <= r.info["n_with_perturbation"] <= 2
    for name in ("pair_validity", "perturbed_validity", "validity_agreement", "validity", "robust_validity",
                 "prompt_consistency", "original_prompt_consistency"):
        assert (r[name] is None and name in r.info["undefined"]) or 0.0 <= r[name] <= 1.0
    for e in r.examples:
        assert set(e.extra["original_prompt_predictions"]) == {"canonical", *PARAPHRASE_NAMES}
    json.dumps(r.to_dict())
