"""A text classifier with a known rule and known SCE policies, for exact end-to-end figures."""

from __future__ import annotations

import json
import re

from sce_checks.checks.sce import SCESettings, run_text_sce
from sce_checks.tasks.text import TextExample, TextTask

POSITIVE_WORDS = {"good", "great", "fun"}
# The JSON-quoted text of the canonical prompt and its paraphrases ("Text: ", "Text to label: ",
# "Input: "; prompts/paraphrase.py) and of the in-context Val_c question ("consider this text: ").
QUOTED = re.compile(r'(?:Text|Text to label|Input|consider this text): ("(?:[^"\\]|\\.)*")')


def sentiment_rule(text: str) -> str:
    words = set(re.findall(r"\w+", text.lower()))
    return "positive" if words & POSITIVE_WORDS and "not" not in words else "negative"


def swap(text: str) -> str:
    pairs = {"bad": "good", "good": "bad", "dull": "fun", "fun": "dull"}
    return " ".join(pairs.get(w, w) for w in text.split(" "))


POLICIES = {
    "swap": swap,  # one word changed: minimal
    "swap_plus": lambda t: swap(t) + " indeed",  # one needed change, one redundant one
    "noop": lambda t: t,  # no change at all: never valid
    "empty": lambda t: "",  # too short: not generated
}


class TextRuleModel:
    def __init__(self, policy: str = "swap"):
        self.policy = policy

    def identity(self):
        return {"backend": "python", "model": f"text-rule/{self.policy}"}

    def chat(self, conversations, decoding):
        out = []
        for conv in conversations:
            last = conv[-1]["content"]
            if len(conv) == 1 or "consider this text" in last:
                text = json.loads(QUOTED.findall(last)[-1])
                out.append(json.dumps({"answer": sentiment_rule(text)}))
            else:
                original = json.loads(QUOTED.findall(conv[0]["content"])[-1])
                out.append(json.dumps({"revised_text": POLICIES[self.policy](original)}))
        return out


# The two-text task of tests/checks/test_sce_text.py and tests/search/test_text.py, and the SCE
# check run on it by a rule model with a given policy.
MINI_TASK = TextTask(
    name="mini-sentiment",
    question="What is the sentiment of this text?",
    preamble="You will read a short text.",
    options=("negative", "positive"),
    examples=(TextExample("t1", "a bad film", "negative"), TextExample("t2", "a good film", "positive")),
    source="test",
)
MINI_EXAMPLES = [(e.id, e.text) for e in MINI_TASK.examples]


def run_mini(policy, **settings):
    settings.setdefault("prediction", "generate")
    model = TextRuleModel(policy)
    (r,) = run_text_sce(model, f"text/{policy}", MINI_TASK, MINI_EXAMPLES, SCESettings(variants=("minimal",), **settings))
    return r
