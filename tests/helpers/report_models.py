"""Python models with known decision boundaries whose SCEs are a known mix of valid, invalid and
unparsed, for the HTML report's tests (tests/report/test_html_*.py) and its docs screenshot
(scripts/report_screenshot.py). A run reaches them as ``python:tests.helpers.report_models:<name>``
with the task file `task_toml` writes."""

from __future__ import annotations

import json
import zlib

from sce_checks.tasks.grid import Feature, GridTask, integer_feature
from tests.helpers.rule_models import POLICIES, RuleModel
from tests.helpers.text_models import QUOTED, TextRuleModel

# Two features, 31 x 21 points: "Approved" iff income + 2 * years >= 36 (a staircase diagonal).
PLANE = GridTask(
    name="loan",
    preamble="You will be given a loan application.",
    question="Will this loan application be approved?",
    options=("Rejected", "Approved"),
    features=(integer_feature("income", "Yearly income (thousand dollars)", 0, 30),
              integer_feature("years", "Years in current job", 0, 20)),
)


def plane_rule(point) -> str:
    income, years = point
    return "Approved" if income + 2 * years >= 36 else "Rejected"


# Four features, 9 x 7 x 3 x 3 = 567 points: "Yes" iff a + b + 3 * grade >= 10 and colour is not blue.
GRADES = ("low", "mid", "high")
QUAD = GridTask(
    name="quad",
    preamble="A record with four features.",
    question="Is this record a yes?",
    options=("No", "Yes"),
    features=(integer_feature("a", "Feature a", 0, 8), integer_feature("b", "Feature b", 0, 6),
              Feature("grade", "Grade", "ordinal", GRADES), Feature("colour", "Colour", "categorical", ("red", "green", "blue"))),
)


def quad_rule(point) -> str:
    a, b, grade, colour = point
    return "Yes" if a + b + 3 * GRADES.index(grade) >= 10 and colour != "blue" else "No"


def task_toml(task: GridTask) -> str:
    """The grid task file (DESIGN.md, contract 4) of ``task``."""
    lines = [f"name = {json.dumps(task.name)}", f"question = {json.dumps(task.question)}",
             f"preamble = {json.dumps(task.preamble)}", f"options = {json.dumps(list(task.options))}"]
    for f in task.features:
        lines += ["[[features]]", f"name = {json.dumps(f.name)}", f"label = {json.dumps(f.label)}", f'type = "{f.type}"']
        if f.type == "integer":
            step = f.values[1] - f.values[0]
            lines += [f"min = {f.values[0]}", f"max = {f.values[-1]}", f"step = {step}"]
        else:
            lines.append(f"values = {json.dumps(list(f.values))}")
    return "\n".join(lines) + "\n"


MIXED = ("boundary", "far", "short", "garbage")


def mixed_policy(point) -> str:
    """The SCE policy of an example, fixed by its point: exact nearest flip (valid, minimal),
    far corner (valid or invalid, not minimal), one step short (invalid), or a reply with no JSON
    (unparsed)."""
    return MIXED[zlib.crc32(repr(tuple(point)).encode()) % len(MIXED)]


class MixedRuleModel(RuleModel):
    """Predicts by ``rule``; each SCE follows `mixed_policy` of its example."""

    def __init__(self, task: GridTask, rule) -> None:
        super().__init__(task, rule, "mixed")

    def sce_text(self, x) -> str:
        policy = mixed_policy(x)
        if policy == "garbage":
            return "I would rather not change this record."
        cf = POLICIES[policy](self.task, self.rule, x)
        return "```json\n" + json.dumps(self.task.as_dict(cf)) + "\n```"


class MixedTextModel(TextRuleModel):
    """The sentiment rule of tests/helpers/text_models.py; SCEs swap sentiment words (valid when
    the swap flips the rule), except for texts about the plot (returned unchanged: invalid) and
    about the acting (a refusal and an answer, no revision: unparsed)."""

    def __init__(self) -> None:
        super().__init__("swap")

    def identity(self):
        return {"backend": "python", "model": "text-rule/mixed"}

    def chat(self, conversations, decoding):
        out = []
        for conv, reply in zip(conversations, super().chat(conversations, decoding)):
            if '"revised_text"' in reply:
                original = json.loads(QUOTED.findall(conv[0]["content"])[-1])
                if "plot" in original:
                    reply = json.dumps({"revised_text": original})
                elif "acting" in original:
                    reply = 'Sorry, I cannot rewrite reviews. {"answer": "positive"}'
            out.append(reply)
        return out


TEXTS = [
    ("r1", "a good film with a great cast", "positive"),
    ("r2", "a bad film, badly shot", "negative"),
    ("r3", "the plot was dull and slow", "negative"),
    ("r4", "the acting was fun to watch", "positive"),
    ("r5", "dull scenes and a bad ending", "negative"),
    ("r6", "good music, fun dialogue", "positive"),
]


def texts_jsonl() -> str:
    return "".join(json.dumps({"id": i, "text": t, "label": y}) + "\n" for i, t, y in TEXTS)


plane = MixedRuleModel(PLANE, plane_rule)
quad = MixedRuleModel(QUAD, quad_rule)
text = MixedTextModel()


def _faithful():
    """Option scores and explanations with known effects for CT/CCT/phi-CCT reports: of the
    words the insertion test draws, those with crc32 % 5 == 0 flip the decision (p(positive)
    0.9), % 5 == 1 move it without flipping (0.4), the rest leave it at 0.2; the explanation
    names the moving words, except the flipping ones with crc32 % 10 == 5 (every cell of
    phi-CCT's table gets examples)."""
    from sce_checks.perturb.wordlists import adjective_list, adverb_list
    from tests.helpers.faithfulness_models import ScoredInsertionModel

    words = [*adjective_list(), *adverb_list()]
    code = {w: zlib.crc32(w.encode()) for w in words}
    p = {w: 0.9 if c % 5 == 0 else 0.4 for w, c in code.items() if c % 5 in (0, 1)}
    named = [w for w in p if code[w] % 10 != 5]
    return ScoredInsertionModel(p, base=0.2, named=named)


faithful = _faithful()
