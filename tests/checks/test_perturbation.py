"""The CheckList INV and DIR checks (Ribeiro, Wu, Guestrin, Singh 2020, "Beyond Accuracy:
Behavioral Testing of NLP Models with CheckList", ACL 2020), on python-callable models whose
decisions are known, so every figure is computed by hand:

* INV: a label-preserving perturbation FAILS when the predicted label changes; an example fails
  when any of its perturbations fails (CheckList's failure rate is over test cases).
* DIR: a directional perturbation fails when the prediction moves against the expectation: with
  probabilities, when p(direction option) drops by more than the tolerance; with labels, when the
  label leaves the direction option (or, for a grid step down, reaches it).
"""

from __future__ import annotations

import json
import math
import re
import time

import pytest

from sce_checks import perturb
from sce_checks.checks.perturbation import (
    INV_NOT_ON_GRIDS,
    PerturbationSettings,
    directional_probes,
    draw_perturbations,
    run_directional,
    run_invariance,
)
from sce_checks.errors import CheckNotApplicable, UserInputError
from sce_checks.metrics.stats import wilson_interval
from sce_checks.tasks import load_task, task_examples
from sce_checks.tasks.grid import Feature, GridTask, integer_feature
from sce_checks.tasks.text import TextExample, TextTask
from tests.helpers.rule_models import TOY, read_record

OPTIONS = ("negative", "positive")


def text_of(conversation) -> str:
    """The input text back out of the prediction prompt (it ends with ``Text: "<json>"``)."""
    return json.loads(conversation[-1]["content"].rpartition("\n\nText: ")[2])


class TextModel:
    """Answers ``{"answer": rule(text)}``; a rule returning None gives an unparseable reply. With
    ``probs`` (text -> {option: p}) it also offers option scoring. Counts calls and inputs."""

    def __init__(self, rule=None, probs=None):
        self.rule, self.probs = rule, probs
        self.chat_calls: list[int] = []
        self.score_calls: list[int] = []
        self.seen: list[str] = []

    def identity(self):
        return {"backend": "python", "model": "text-model"}

    def chat(self, conversations, decoding):
        self.chat_calls.append(len(conversations))
        out = []
        for conv in conversations:
            text = text_of(conv)
            self.seen.append(text)
            label = self.rule(text) if self.rule else max(self.probs(text).items(), key=lambda kv: kv[1])[0]
            out.append("I cannot tell." if label is None else json.dumps({"answer": label}))
        return out


class ScoringTextModel(TextModel):
    def score_options(self, conversations, replies):
        self.score_calls.append(len(conversations))
        out = []
        for conv in conversations:
            text = text_of(conv)
            self.seen.append(text)
            p = self.probs(text)
            out.append([math.log(p[json.loads(r)["answer"]]) for r in replies])
        return out


def text_task(texts, directional=None) -> TextTask:
    examples = tuple(TextExample(f"t{i}", t, None) for i, t in enumerate(texts))
    return TextTask("toy_text", "Is this negative or positive?", "A short text.", OPTIONS, examples, "test",
                    directional=directional or {})


def examples_of(task):
    return task_examples(task, None, 0)


def has_caps_word(text: str) -> bool:
    return any(len(w) > 1 and w.isupper() for w in text.replace(".", " ").split())


def flips_on_caps(text: str) -> str:
    """Negative exactly when a word of two or more letters is written in capitals."""
    return "negative" if has_caps_word(text) else "positive"


# -- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    (dict(perturbations=0), "perturbations must be a positive integer"),
    (dict(max_edits=0), "max_edits must be a positive integer"),
    (dict(answer_tokens=True), "answer_tokens must be a positive integer"),
    (dict(prediction="sample"), "prediction must be one of auto, score, generate"),
    (dict(families=()), "families must name at least one"),
    (dict(families="typo"), "not the string 'typo'"),
    (dict(families=("insertion",)), "'insertion' is not label-preserving"),
    (dict(families=("typos",)), "'typos' is not a perturbation family"),
    (dict(dir_tolerance=1.0), "dir_tolerance must be a probability in [0, 1)"),
    (dict(dir_tolerance=float("nan")), "dir_tolerance must be a probability"),
])
def test_settings_are_validated(kwargs, message):
    with pytest.raises(UserInputError, match=re.escape(message)):
        PerturbationSettings(**kwargs)


def test_settings_keep_families_as_a_tuple():
    assert PerturbationSettings(families=["case", "typo", "case"]).families == ("case", "typo")


# -- INV -----------------------------------------------------------------------------------------

# With families (punctuation, case) these texts have 5, 3 and 2 candidate edits (checked below);
# one edit per perturbation and 5 perturbations wanted, every candidate is drawn once.
INV_TEXTS = ("nice film.", "ok.", "I.")
ALL_SINGLE_EDITS = PerturbationSettings(perturbations=5, max_edits=1, families=("punctuation", "case"))


def test_the_hand_computed_case_draws_every_candidate():
    expected = {
        "nice film.": {"nice film", "Nice film.", "NICE film.", "nice Film.", "nice FILM."},
        "ok.": {"ok", "Ok.", "OK."},
        "I.": {"I", "i."},
    }
    for i, text in enumerate(INV_TEXTS):
        drawn = draw_perturbations(text, f"t{i}", ALL_SINGLE_EDITS)
        assert {p.text for p in drawn} == expected[text]
        assert all(len(p.edits) == 1 and p.label_preserving for p in drawn)


def test_a_model_invariant_to_everything_never_fails():
    """CheckList INV: a model whose label never changes has failure rate 0 on any perturbation."""
    task = load_task("sentiment")
    model = TextModel(lambda text: "positive")
    result = run_invariance(model, "const", task, task_examples(task, 6, 0), PerturbationSettings())
    assert result.check == "inv" and result.n == 6 and result.dataset == "sentiment"
    assert result["failure_rate"] == 0.0 and result["n_failed"] == 0 and result["n_tested"] == 6
    assert result["perturbation_failure_rate"] == 0.0
    assert result["n_perturbations"] == 24  # 4 distinct perturbations of each snippet
    assert result["failure_rate_ci"] == list(wilson_interval(0, 6))
    assert result["mean_abs_prob_change"] is None  # generate mode: no probabilities
    assert "mean_abs_prob_change" in result.info["undefined"]
    assert result.info["prediction_mode"] == "generate" and result.info["task_kind"] == "text"
    for rec in result.examples:
        assert rec.extra["failed"] is False and "shrunk" not in rec.extra
        for row in rec.extra["perturbations"]:
            assert row["text"] != rec.input and 1 <= len(row["edits"]) <= 2
    json.dumps(result.to_dict())  # JSON-safe


def test_a_model_that_flips_on_capitals_fails_where_an_edit_writes_a_word_in_capitals():
    """CheckList INV by hand: 'NICE', 'FILM' and 'OK' are the only capitalised words the edits of
    the three texts can make, so 3 of 10 perturbations fail, and 2 of 3 examples."""
    task = text_task(INV_TEXTS)
    result = run_invariance(TextModel(flips_on_caps), "caps", task, examples_of(task), ALL_SINGLE_EDITS)
    assert (result["n_tested"], result["n_failed"]) == (3, 2)
    assert result["failure_rate"] == pytest.approx(2 / 3)
    assert (result["n_perturbations"], result["perturbation_failure_rate"]) == (10, pytest.approx(3 / 10))
    assert result["failure_rate_ci"] == list(wilson_interval(2, 3))
    assert result["perturbation_failure_rate_ci"] == list(wilson_interval(3, 10))
    failed = {row["text"] for rec in result.examples for row in rec.extra["perturbations"] if row["failed"]}
    assert failed == {"NICE film.", "nice FILM.", "OK."}
    assert [rec.extra["failed"] for rec in result.examples] == [True, True, False]
    # a single-edit failure needs no shrinking: the shrunk case is the first failing perturbation
    shrunk = result.examples[1].extra["shrunk"]
    assert shrunk == {"original": "ok.", "text": "OK.", "edits": [shrunk["edits"][0]], "prediction": "negative",
                      "single_edit": True, "from_perturbation": shrunk["from_perturbation"]}
    assert "upper-case a word: 'ok' -> 'OK'" in shrunk["edits"][0]


def test_a_model_that_flips_on_any_typo_fails_exactly_on_the_perturbations_with_a_typo():
    """CheckList INV: the model answers negative when a word is not in its vocabulary, so a
    perturbation fails exactly when one of its edits is a typo (case and punctuation edits keep
    every lower-cased word); counted here from the edits the check drew, independently."""
    texts = ("the plot works well", "a gentle and quiet story.", "lovely music")
    vocabulary = {w for t in texts for w in t.replace(".", "").split()}

    def rule(text):
        return "positive" if all(w.lower() in vocabulary for w in text.replace(".", "").replace(",", "").split()) else "negative"

    task = text_task(texts)
    settings = PerturbationSettings(perturbations=6, max_edits=2, families=("typo", "case", "punctuation"))
    result = run_invariance(TextModel(rule), "typo", task, examples_of(task), settings)
    rows = [row for rec in result.examples for row in rec.extra["perturbations"]]
    typo_rows = [row for row in rows if any(e.startswith("typo:") for e in row["edits"])]
    failing_examples = [rec for rec in result.examples
                        if any(any(e.startswith("typo:") for e in row["edits"]) for row in rec.extra["perturbations"])]
    assert 0 < len(typo_rows) < len(rows) and 0 < len(failing_examples)  # the test can fail both ways
    assert result["n_perturbations"] == len(rows) == 18
    assert result["perturbation_failure_rate"] == pytest.approx(len(typo_rows) / len(rows))
    assert result["n_failed"] == len(failing_examples)
    assert all(row["failed"] == (row in typo_rows) for row in rows)
    for rec in failing_examples:  # every failure shrinks to one typo
        assert rec.extra["shrunk"]["single_edit"] and rec.extra["shrunk"]["edits"][0].startswith("typo:")


def _seed_with_two_edits(text, families, wanted):
    """The first seed whose single drawn perturbation has two edits satisfying ``wanted``."""
    for seed in range(200):
        settings = PerturbationSettings(perturbations=1, max_edits=2, families=families, seed=seed)
        (p,) = draw_perturbations(text, "t0", settings)
        if len(p.edits) == 2 and wanted(p):
            return settings, p
    raise AssertionError("no such draw in 200 seeds")


def test_shrinking_returns_the_single_failing_edit_of_a_two_edit_perturbation():
    """CheckList reports failing test cases; we shrink a failing combination of edits to the first
    single edit that still fails. The model flips on 'FILM' only."""
    settings, p = _seed_with_two_edits("nice film.", ("case",), lambda p: "FILM" in p.text and "NICE" not in p.text)
    model = TextModel(lambda t: "negative" if "FILM" in t else "positive")
    task = text_task(["nice film."])
    result = run_invariance(model, "m", task, examples_of(task), settings)
    assert result["n_failed"] == 1
    assert model.chat_calls == [1, 1, 2]  # originals, perturbed, both single edits in one batch
    shrunk = result.examples[0].extra["shrunk"]
    assert shrunk["text"] == "nice FILM." and shrunk["single_edit"] and shrunk["prediction"] == "negative"
    assert shrunk["edits"] == [perturb.perturb("nice film.", [e]).describe() for e in p.edits if e.new == "FILM"]
    assert result.info["n_shrunk_to_single_edit"] == 1


def test_shrinking_takes_the_first_failing_single_edit():
    """Both edits of 'NICE FILM.' fail alone: the first one, in text order, is reported."""
    settings, _ = _seed_with_two_edits("nice film.", ("case",), lambda p: p.text == "NICE FILM.")
    task = text_task(["nice film."])
    result = run_invariance(TextModel(flips_on_caps), "m", task, examples_of(task), settings)
    assert result.examples[0].extra["shrunk"]["text"] == "NICE film."


def test_shrinking_keeps_the_combination_when_no_single_edit_fails():
    """The model flips only on two capitalised words together: no single edit fails alone, so the
    smallest failing case is the whole combination."""
    settings, p = _seed_with_two_edits("nice film.", ("case",), lambda p: p.text == "Nice Film.")
    model = TextModel(lambda t: "negative" if sum(c.isupper() for c in t) >= 2 else "positive")
    task = text_task(["nice film."])
    result = run_invariance(model, "m", task, examples_of(task), settings)
    shrunk = result.examples[0].extra["shrunk"]
    assert shrunk["text"] == "Nice Film." and not shrunk["single_edit"] and len(shrunk["edits"]) == 2
    assert result.info["n_shrunk_to_single_edit"] == 0


def test_unparsed_replies_are_counted_and_excluded_not_guessed():
    """Replies naming no option are left out of every rate (CheckList scores parsed predictions
    only): the capitalised variants get no parseable answer here, and 'I.' none at all."""
    model = TextModel(lambda t: None if has_caps_word(t) or t.startswith("I") else "positive")
    task = text_task(INV_TEXTS)
    result = run_invariance(model, "m", task, examples_of(task), ALL_SINGLE_EDITS)
    # 'I.' unparsed: its perturbations are never sent; 'NICE', 'FILM', 'OK' unparsed: 5 of 8 scored
    assert result.info["n_prediction_unparsed"] == 1 and result.info["n_perturbed_unparsed"] == 3
    assert (result["n_tested"], result["n_failed"], result["n_perturbations"]) == (2, 0, 5)
    assert result.info["unparsed_reasons"] == {"prediction: no JSON object in reply": 1,
                                               "perturbed: no JSON object in reply": 3}
    recs = {r.input: r for r in result.examples}
    assert recs["I."].unparsed.startswith("prediction:") and recs["I."].prediction is None
    assert recs["I."].extra["failed"] is None and all(row["prediction"] is None for row in recs["I."].extra["perturbations"])
    assert recs["nice film."].unparsed.startswith("perturbed: 2 of 5 predictions unparsed")
    assert "I" not in model.seen and "i." not in model.seen  # the perturbations of 'I.' are never sent


def test_unparsed_shrinking_predictions_are_counted():
    settings, _ = _seed_with_two_edits("nice film.", ("case",), lambda p: p.text == "Nice FILM.")
    model = TextModel(lambda t: {"Nice FILM.": "negative", "nice FILM.": None}.get(t, "positive"))
    task = text_task(["nice film."])
    result = run_invariance(model, "m", task, examples_of(task), settings)
    assert result.info["n_shrink_unparsed"] == 1 and result.info["unparsed_reasons"]["shrinking: no JSON object in reply"] == 1
    assert not result.examples[0].extra["shrunk"]["single_edit"]  # the unparsed edit is not taken as failing


def test_invariance_is_deterministic_and_seeded():
    task = load_task("sentiment")
    examples = task_examples(task, 5, 1)
    run = lambda seed: run_invariance(TextModel(flips_on_caps), "m", task, examples, PerturbationSettings(seed=seed)).to_dict()
    first = run(0)
    assert run(0) == first
    assert run(1)["examples"] != first["examples"]


def test_one_batched_call_per_stage_and_probabilities_in_score_mode():
    """Score mode: originals in one scoring call, every perturbed text in another. p(positive) =
    0.8 - 0.05 x (capital letters), so by hand the absolute changes of p(original label) are
    'nice film.': 0, .05, .2, .05, .2; 'ok.': 0, .05, .1; 'I.' (0.75): 0 ('I'), .05 ('i.');
    mean 0.7 / 10 (the CheckList INV expectation scored on probabilities)."""
    def probs(t):
        p = 0.8 - 0.05 * sum(c.isupper() for c in t)
        return {"positive": p, "negative": 1 - p}

    model = ScoringTextModel(probs=probs)
    task = text_task(INV_TEXTS)
    result = run_invariance(model, "m", task, examples_of(task), ALL_SINGLE_EDITS)
    assert model.score_calls == [3, 10] and model.chat_calls == []
    assert result.info["prediction_mode"] == "score" and result["n_failed"] == 0
    assert result["mean_abs_prob_change"] == pytest.approx(0.7 / 10)
    row = next(r for r in result.examples[0].extra["perturbations"] if r["text"] == "NICE film.")
    assert row["prob_change"] == pytest.approx(-0.2)


def test_inv_is_not_applicable_to_grids_before_any_model_call():
    class Refuses:
        def chat(self, conversations, decoding):
            raise AssertionError("no model call expected")

    with pytest.raises(CheckNotApplicable) as info:
        run_invariance(Refuses(), "m", TOY, [("toy-0", (0, "a"))], PerturbationSettings())
    assert str(info.value) == INV_NOT_ON_GRIDS


def test_score_mode_without_scoring_is_refused_before_any_model_call():
    model = TextModel(lambda t: "positive")
    task = text_task(INV_TEXTS)
    with pytest.raises(UserInputError, match="needs a backend with option scoring"):
        run_invariance(model, "m", task, examples_of(task), PerturbationSettings(prediction="score"))
    assert model.chat_calls == []


# -- DIR on text ---------------------------------------------------------------------------------

DIRECTIONAL = {"positive": ("I loved it.", "It was fine."), "negative": ("I hated it.",)}
# p(positive) of each text: two originals, each with the three sentences appended.
P_POSITIVE = {
    "a film": 0.5, "a film I loved it.": 0.9, "a film It was fine.": 0.45, "a film I hated it.": 0.7,
    "a play": 0.3, "a play I loved it.": 0.15, "a play It was fine.": 0.35, "a play I hated it.": 0.2,
    "a song": 0.05, "a song I loved it.": 0.01, "a song It was fine.": 0.02, "a song I hated it.": 0.01,
}


def p_positive(t):
    return {"positive": P_POSITIVE[t], "negative": 1 - P_POSITIVE[t]}


def test_dir_with_probabilities_counts_drops_beyond_the_tolerance():
    """CheckList DIR (Expect.monotonic, tolerance 0.1): p(direction option) must not drop by
    more than 0.1. 'a film': loved +0.4, fine -0.05 (within), hated: p(negative) 0.5 -> 0.3, -0.2
    (fails). 'a play': loved -0.15 (fails), fine +0.05, hated: p(negative) 0.7 -> 0.8, +0.1.
    'a song': p(positive) = 0.05 <= 0.1 cannot drop by more than 0.1, so loved and fine cannot
    fail and are not counted (CheckList's rule); hated +0.04 passes. Two of three examples and two
    of seven perturbations fail; the mean shift covers all nine."""
    task = text_task(["a film", "a play", "a song"], DIRECTIONAL)
    model = ScoringTextModel(probs=p_positive)
    result = run_directional(model, "m", task, examples_of(task), PerturbationSettings(perturbations=3))
    assert result.check == "dir" and model.score_calls == [3, 9]
    assert result.info["expectation"] == "probability" and result.info["dir_tolerance"] == 0.1
    assert result.info["directions"] == {o: list(s) for o, s in DIRECTIONAL.items()}
    assert (result["n_tested"], result["n_failed"], result["n_perturbations"]) == (3, 2, 7)
    assert result.info["n_perturbations_cannot_fail"] == 2
    assert result["perturbation_failure_rate"] == pytest.approx(2 / 7)
    assert result["perturbation_failure_rate_ci"] == list(wilson_interval(2, 7))
    assert result["failure_rate"] == pytest.approx(2 / 3)
    shifts = [0.4, -0.05, -0.2, -0.15, 0.05, 0.1, -0.04, -0.03, 0.04]
    assert result["mean_expected_shift"] == pytest.approx(sum(shifts) / 9)
    failing = sorted(row["text"] for rec in result.examples for row in rec.extra["perturbations"] if row["failed"])
    assert failing == ["a film I hated it.", "a play I loved it."]
    song = {row["text"]: row for row in result.examples[2].extra["perturbations"]}
    assert song["a song I loved it."]["failed"] is None and song["a song I loved it."]["cannot_fail"]
    row = result.examples[0].extra["perturbations"][0]
    assert set(row) >= {"text", "edits", "direction", "prediction", "failed", "shift"}

    # every pair is used when there are no more than `perturbations`, in the task's option order
    assert [row["text"] for row in result.examples[0].extra["perturbations"]] == [
        "a film I hated it.", "a film I loved it.", "a film It was fine."]


@pytest.mark.parametrize("tolerance, n_failing", [(0.0, 3), (0.04, 3), (0.05, 2), (0.1, 2), (0.15, 1), (0.2, 0)])
def test_dir_tolerance_boundaries(tolerance, n_failing):
    """CheckList DIR: a drop of exactly the tolerance passes, a larger one fails. The drops of
    the example above are 0.05 ('fine' on 'a film'), 0.15 ('loved' on 'a play') and 0.2 ('hated'
    on 'a film')."""
    task = text_task(["a film", "a play"], DIRECTIONAL)
    result = run_directional(ScoringTextModel(probs=p_positive), "m", task, examples_of(task),
                             PerturbationSettings(perturbations=3, dir_tolerance=tolerance))
    assert result["n_perturbations"] == 6
    assert sum(row["failed"] for rec in result.examples for row in rec.extra["perturbations"]) == n_failing


def test_dir_label_mode_fails_only_when_the_label_leaves_the_direction_option():
    """Without probabilities (generate mode) DIR checks labels: a perturbation fails only when the
    label was the direction option and is not any more. Labels: positive when p > 0.5."""
    labels = {t: ("positive" if p > 0.5 else "negative") for t, p in P_POSITIVE.items()}
    # Both originals are negative, so the two sentences towards 'positive' cannot fail (not counted).
    # a film: hated -> positive (was negative, now not: FAILS); a play: hated -> negative (passes).
    task = text_task(["a film", "a play"], DIRECTIONAL)
    model = TextModel(lambda t: labels[t])
    result = run_directional(model, "m", task, examples_of(task), PerturbationSettings(perturbations=3))
    assert model.chat_calls == [2, 6]
    assert result.info["expectation"] == "label" and result["mean_expected_shift"] is None
    assert "mean_expected_shift" in result.info["undefined"]
    assert (result["n_tested"], result["n_failed"], result["n_perturbations"]) == (2, 1, 2)
    assert result.info["n_perturbations_cannot_fail"] == 4
    failing = [row["text"] for rec in result.examples for row in rec.extra["perturbations"] if row["failed"]]
    assert failing == ["a film I hated it."]


def test_dir_sentences_are_drawn_seeded_and_distinct():
    task = text_task(["a film"], {"positive": tuple(f"Good {i}." for i in range(10)), "negative": ("Bad.",)})
    settings = PerturbationSettings(perturbations=4, seed=3)
    probes = directional_probes(task, "t0", "a film", settings)
    assert len(probes) == 4 and len({p.input for p in probes}) == 4
    assert probes == directional_probes(task, "t0", "a film", settings)
    assert all(p.input.startswith("a film ") and p.sign == 1 for p in probes)


def test_dir_builtin_sentiment_uses_the_bundled_sentences():
    task = load_task("sentiment")
    assert {o: len(s) for o, s in task.directional.items()} == {"negative": 10, "positive": 10}
    assert "I loved it." in task.directional["positive"] and "I hated it." in task.directional["negative"]
    result = run_directional(TextModel(lambda t: "positive"), "m", task, task_examples(task, 3, 0), PerturbationSettings())
    assert result["n_perturbations"] + result.info["n_perturbations_cannot_fail"] == 12 and result["n_failed"] == 0


def test_dir_needs_declared_sentences():
    task = text_task(["a film"])
    with pytest.raises(CheckNotApplicable, match=r"dir needs directional sentences.*\[directional\] table"):
        run_directional(TextModel(lambda t: 1 / 0), "m", task, examples_of(task), PerturbationSettings())


# -- DIR on grids --------------------------------------------------------------------------------

TOY_DIR = GridTask(
    name="toy_dir", preamble=TOY.preamble, question=TOY.question, options=TOY.options,
    features=(integer_feature("x", "X value", 0, 10, increases="Yes"), TOY.features[1]),
)
GRID_POINTS = [("g0", (7, "c")), ("g1", (8, "d")), ("g2", (2, "a")), ("g3", (0, "c"))]


class GridModel:
    """Answers by ``rule(point)``; with ``p_yes`` it also scores the options."""

    def __init__(self, rule=None, p_yes=None):
        self.rule, self.p_yes = rule, p_yes
        self.calls = 0

    def identity(self):
        return {"backend": "python", "model": "grid-model"}

    def chat(self, conversations, decoding):
        self.calls += 1
        return [json.dumps({"answer": self.rule(read_record(TOY_DIR, c[0]["content"]))}) for c in conversations]


class ScoringGridModel(GridModel):
    def score_options(self, conversations, replies):
        self.calls += 1
        out = []
        for c in conversations:
            p = self.p_yes(read_record(TOY_DIR, c[0]["content"]))
            out.append([math.log(1 - p), math.log(p)])  # replies are in option order: No, Yes
        return out


def test_dir_on_a_grid_in_label_mode():
    """CheckList DIR on the toy grid with x declared to increase 'Yes', and a model that says Yes
    only for 5 <= x <= 7 (level >= c). By hand: an up-move can fail only from Yes, a down-move
    only from No. (7,c) Yes: up to 8 leaves Yes (fails), down cannot fail. (8,d) No: down to 7
    reaches Yes (fails), up cannot fail. (2,a) No: down to 1 passes, up cannot fail. (0,c) No:
    its only move is up, which cannot fail, so it is not tested. 2 of 3 examples, 2 of 3 moves."""
    model = GridModel(lambda p: "Yes" if 5 <= p[0] <= 7 and p[1] >= "c" else "No")
    result = run_directional(model, "m", TOY_DIR, GRID_POINTS, PerturbationSettings(prediction="generate"))
    assert model.calls == 2
    assert result.info["directions"] == {"x": "Yes"} and result.info["task_kind"] == "grid"
    assert (result["n_tested"], result["n_failed"], result["n_perturbations"]) == (3, 2, 3)
    assert result.info["n_perturbations_cannot_fail"] == 4 and result.examples[3].extra["failed"] is None
    assert result["failure_rate_ci"] == list(wilson_interval(2, 3))
    failing = [(rec.id, row["point"], row["move"]) for rec in result.examples for row in rec.extra["perturbations"] if row["failed"]]
    assert failing == [("g0", {"x": 8, "level": "c"}, "up"), ("g1", {"x": 7, "level": "d"}, "down")]
    assert result.examples[0].input == {"x": 7, "level": "c"}
    assert result.examples[3].extra["perturbations"][0]["edits"] == ["x: 0 -> 1"]


def test_dir_on_a_grid_with_probabilities_and_the_tolerance():
    """p(Yes) = 0.5 + 0.04 x, except 0.2 at x = 8. Up-moves must not lower p(Yes) by more than
    0.1, down-moves must not raise it by more than 0.1. (7,c): down -0.04 -> expected shift
    +0.04, up 0.78 -> 0.2 fails (-0.58). (8,d): down 0.2 -> 0.78 fails (-0.58), up 0.2 -> 0.86.
    (2,a): +-0.04 pass. (0,c): up +0.04 passes. Every p lies in (0.1, 0.9), so every move can fail."""
    model = ScoringGridModel(p_yes=lambda p: 0.2 if p[0] == 8 else 0.5 + 0.04 * p[0])
    result = run_directional(model, "m", TOY_DIR, GRID_POINTS, PerturbationSettings())
    assert model.calls == 2 and result.info["expectation"] == "probability"
    assert (result["n_tested"], result["n_failed"], result["n_perturbations"]) == (4, 2, 7)
    shifts = [row["shift"] for rec in result.examples for row in rec.extra["perturbations"]]
    assert shifts == pytest.approx([0.04, -0.58, -0.58, 0.66, 0.04, 0.04, 0.04])
    assert result["mean_expected_shift"] == pytest.approx(sum([0.04, -0.58, -0.58, 0.66, 0.04, 0.04, 0.04]) / 7)


def test_dir_grid_moves_are_limited_to_declared_features_and_drawn_seeded():
    both = GridTask(name="toy_both", preamble=TOY.preamble, question=TOY.question, options=TOY.options,
                    features=(TOY_DIR.features[0], Feature("level", "Level", "ordinal", ("a", "b", "c", "d", "e"), "Yes")))
    settings = PerturbationSettings(perturbations=2, seed=5)
    probes = directional_probes(both, "g0", (7, "c"), settings)
    assert len(probes) == 2 and probes == directional_probes(both, "g0", (7, "c"), settings)
    all_moves = directional_probes(both, "g0", (7, "c"), PerturbationSettings(perturbations=10))
    assert [p.edit for p in all_moves] == ["x: 7 -> 6", "x: 7 -> 8", "level: 'c' -> 'b'", "level: 'c' -> 'd'"]
    assert [p.sign for p in all_moves] == [-1, 1, -1, 1]
    assert set(probes) <= set(all_moves)


def test_dir_needs_a_declared_feature_on_grids():
    with pytest.raises(CheckNotApplicable, match=r'no feature of grid task \'toy\' declares one; add increases = "<option>"'):
        run_directional(GridModel(lambda p: 1 / 0), "m", TOY, GRID_POINTS, PerturbationSettings())


def test_builtin_grids_declare_their_stated_priors():
    declared = {name: {f.name: f.increases for f in load_task(name).features if f.increases}
                for name in ("income", "house_prices", "heart_disease")}
    assert declared == {
        "income": {"education": "Above $50,000"},
        "house_prices": {f: "Above $1,500,000" for f in ("area", "bedrooms", "bathrooms", "floors")},
        "heart_disease": {f: "Heart disease" for f in ("age", "systolic_bp", "total_cholesterol")},
    }


def test_a_categorical_or_unknown_direction_is_refused_in_python():
    with pytest.raises(ValueError, match="categorical feature cannot declare"):
        GridTask("t", "q", "p", ("No", "Yes"), (Feature("c", "C", "categorical", ("a", "b"), "Yes"),))
    with pytest.raises(ValueError, match="'Maybe' is not one of the options"):
        GridTask("t", "q", "p", ("No", "Yes"), (integer_feature("x", "X", 0, 3, increases="Maybe"),))


# -- the new task-file keys ----------------------------------------------------------------------

GRID_TOML = """\
name = "loan"
question = "Will this loan be approved?"
preamble = "A loan application."
options = ["Rejected", "Approved"]
[[features]]
name = "income"
label = "Income"
type = "integer"
min = 10
max = 50
step = 10
{income_extra}
[[features]]
name = "region"
label = "Region"
type = "categorical"
values = ["north", "south"]
{region_extra}
"""


def _grid_error(tmp_path, **extra) -> str:
    path = tmp_path / "loan.toml"
    path.write_text(GRID_TOML.format(**{"income_extra": "", "region_extra": "", **extra}))
    with pytest.raises(UserInputError) as info:
        load_task(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message  # names the file
    return message


def test_grid_toml_increases_round_trip_keeps_the_fingerprint(tmp_path):
    path = tmp_path / "loan.toml"
    path.write_text(GRID_TOML.format(income_extra='increases = "Approved"', region_extra=""))
    task = load_task(str(path))
    assert [f.increases for f in task.features] == ["Approved", None]
    plain = tmp_path / "plain.toml"
    plain.write_text(GRID_TOML.format(income_extra="", region_extra=""))
    assert task.fingerprint() == load_task(str(plain)).fingerprint()


@pytest.mark.parametrize("extra, expected", [
    (dict(income_extra='increases = "Maybe"'), "features[0].increases: 'Maybe' is not one of the options: 'Rejected', 'Approved'"),
    (dict(income_extra="increases = 1"), "features[0].increases: expected a string, got integer 1"),
    (dict(region_extra='increases = "Approved"'), "features[1].increases: only integer and ordinal features can declare a direction"),
])
def test_grid_toml_increases_errors_name_file_and_key(tmp_path, extra, expected):
    assert expected in _grid_error(tmp_path, **extra)


TEXT_TOML = """\
name = "reviews"
question = "Is this review negative or positive?"
preamble = "A product review."
options = ["negative", "positive", "mixed feelings"]
data = "reviews.csv"
{directional}
"""


def _text_task_file(tmp_path, directional: str):
    (tmp_path / "reviews.csv").write_text("id,text,label\n1,great,positive\n2,awful,negative\n")
    path = tmp_path / "reviews.toml"
    path.write_text(TEXT_TOML.format(directional=directional))
    return path


def test_text_toml_directional_round_trip_keeps_the_fingerprint(tmp_path):
    path = _text_task_file(tmp_path, '[directional]\npositive = ["I loved it."]\n"mixed feelings" = ["Meh."]\n')
    task = load_task(str(path))
    assert task.directional == {"positive": ("I loved it.",), "mixed feelings": ("Meh.",)}
    (tmp_path / "plain").mkdir()
    plain = load_task(str(_text_task_file(tmp_path / "plain", "")))
    assert plain.directional == {} and task.fingerprint() == plain.fingerprint()


@pytest.mark.parametrize("directional, expected", [
    ('[directional]\nneutral = ["Ok."]', "directional.neutral: 'neutral' is not one of the options"),
    ('[directional]\n"mixed feelings" = "Meh."', 'directional."mixed feelings": expected a non-empty array of sentences'),
    ('[directional]\npositive = []', "directional.positive: expected a non-empty array of sentences"),
    ('[directional]\npositive = ["Good.", " "]', "directional.positive[1]: expected a non-empty string"),
    ('[directional]\npositive = ["Good."]\nnegative = ["Good."]', "directional.negative[0]: sentence 'Good.' is listed twice"),
    ('directional = ["Good."]', "directional: expected a table of option = [sentences]"),
])
def test_text_toml_directional_errors_name_file_and_key(tmp_path, directional, expected):
    path = _text_task_file(tmp_path, directional)
    with pytest.raises(UserInputError) as info:
        load_task(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}: ") and expected in message, message


# -- the embedded model --------------------------------------------------------------------------


@pytest.mark.real_model
@pytest.mark.xdist_group("smollm2")
def test_real_run_on_the_embedded_model():
    """INV and DIR on two short sentiment snippets with SmolLM2 (score mode): the checks run end
    to end on a real backend and their figures are well-formed."""
    from sce_checks.models import ModelOptions, load_model

    model = load_model("smollm2", ModelOptions())
    task = load_task("sentiment")
    shortest = sorted(task.examples, key=lambda e: len(e.text))[:2]
    examples = [(e.id, e.text) for e in shortest]
    started = time.perf_counter()
    inv = run_invariance(model, "smollm2", task, examples, PerturbationSettings(perturbations=2))
    dir_ = run_directional(model, "smollm2", task, examples, PerturbationSettings(perturbations=2))
    elapsed = time.perf_counter() - started
    print(f"\ninv/dir on smollm2: {elapsed:.1f} s; inv {inv.figures}; dir {dir_.figures}")
    assert inv["n_tested"] == 2 and inv["n_perturbations"] == 4
    # DIR leaves out probes that cannot fail (p(d) <= tolerance), as CheckList does
    assert dir_["n_perturbations"] + dir_.info["n_perturbations_cannot_fail"] == 4
    for result in (inv, dir_):
        assert result.info["prediction_mode"] == "score" and result.info["n_prediction_unparsed"] == 0
        assert result["n_perturbations"] == 0 or 0.0 <= result["perturbation_failure_rate"] <= 1.0
    assert inv["mean_abs_prob_change"] is not None and dir_["mean_expected_shift"] is not None
    json.dumps(inv.to_dict()), json.dumps(dir_.to_dict())
