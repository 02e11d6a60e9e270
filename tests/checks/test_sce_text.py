"""End-to-end SCE check on free text with a rule model (Dehghanighobadi et al., EMNLP 2025,
arXiv 2502.18156: Gen, Val, Val_c, normalised Levenshtein closeness), hand-computed.

"a bad film" (10 chars) -> "a good film" (11 chars): character edit distance 3 (b->g, a->o,
insert o), normalised by the longer length: 3/11; word level: 1 of 3 words -> 1/3.
"""

from __future__ import annotations

import pytest

from sce_checks.checks.sce import SCESettings, run_text_sce
from sce_checks.tasks.text import TextExample, TextTask
from tests.helpers.text_models import MINI_EXAMPLES, MINI_TASK, TextRuleModel, run_mini

TASK, EXAMPLES, run = MINI_TASK, MINI_EXAMPLES, run_mini  # the shared two-text task (tests/helpers/text_models.py)


def test_minimal_swap_is_valid_with_exact_distances():
    r = run("swap")
    a, b = r.examples
    assert (a.prediction, a.target, a.counterfactual) == ("negative", "positive", "a good film")
    assert (b.prediction, b.target, b.counterfactual) == ("positive", "negative", "a bad film")
    assert a.valid and b.valid
    assert a.distance == pytest.approx(3 / 11) and b.distance == pytest.approx(3 / 11)
    assert a.extra["word_distance"] == pytest.approx(1 / 3)
    assert r["validity"] == 1.0 and r["validity_in_context"] == 1.0
    assert r["accuracy"] == 1.0 and a.extra["gold"] == "negative"  # the rule labels both gold labels right
    assert r["mean_distance"] == pytest.approx(3 / 11)
    assert r["redundancy"] == 0.0


def test_accuracy_counts_labelled_examples_only():
    task = TextTask(name="t", question="q", preamble="p", options=("negative", "positive"), source="test",
                    examples=(TextExample("a", "a good film", "negative"),  # the rule says positive: wrong
                              TextExample("b", "a bad film", "negative"), TextExample("c", "a fine film", None)))
    (r,) = run_text_sce(TextRuleModel("swap"), "text/swap", task, [(e.id, e.text) for e in task.examples],
                        SCESettings(variants=("minimal",), prediction="generate"))
    assert r["accuracy"] == pytest.approx(1 / 2)  # c has no gold label: not counted


def test_noop_and_empty_sces():
    r = run("noop")
    assert r["n_generated"] == 2 and r["n_valid"] == 0 and r["validity"] == 0.0
    assert all(e.distance == 0.0 for e in r.examples)
    r = run("empty")
    assert r["n_generated"] == 0 and r["generation_rate"] == 0.0 and r["validity"] is None
    assert r.info["unparsed_reasons"] == {"sce: too short": 2}
