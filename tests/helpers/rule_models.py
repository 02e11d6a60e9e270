"""Python-callable models with exactly known decision boundaries and SCE policies, for end-to-end
tests whose figures are computed by hand. They read the record back out of the prompt, so they
exercise the real prompts, parsing and metrics."""

from __future__ import annotations

import json
import re
from typing import Callable

from sce_checks.metrics.gower import gower_distance
from sce_checks.tasks.grid import Feature, GridTask, integer_feature

# A 2-D toy grid small enough to check every figure by hand:
#   x in 0..10 (integer, span 10), level in a..e (ordinal, span 4).
#   Decision rule: "Yes" iff x >= 5 and level >= "c".
#
#        x: 0 1 2 3 4 5 6 7 8 9 10
#   level e . . . . . Y Y Y Y Y Y
#         d . . . . . Y Y Y Y Y Y
#         c . . . . . Y Y Y Y Y Y
#         b . . . . . . . . . . .
#         a . . . . . . . . . . .
TOY = GridTask(
    name="toy",
    preamble="A toy record.",
    question="Is this record a yes?",
    options=("No", "Yes"),
    features=(integer_feature("x", "X value", 0, 10), Feature("level", "Level", "ordinal", ("a", "b", "c", "d", "e"))),
)


def toy_rule(point) -> str:
    x, level = point
    return "Yes" if x >= 5 and level >= "c" else "No"


def read_record(task: GridTask, prompt: str):
    by_label = {f.label: f for f in task.features}
    values = {}
    for line in prompt.splitlines():
        m = re.match(r"^- (.+?): (.+)$", line)
        if m and m.group(1) in by_label:
            f = by_label[m.group(1)]
            values[f.name] = int(m.group(2)) if f.type == "integer" else m.group(2)
    return tuple(values[f.name] for f in task.features)


def nearest_flip(task: GridTask, rule, point):
    label = rule(point)
    return min((z for z in task.points() if rule(z) != label), key=lambda z: (gower_distance(task, point, z), z))


def step_back(task: GridTask, origin, point):
    """One grid step from `point` back towards `origin` on the first feature that differs."""
    out = list(point)
    for i, f in enumerate(task.features):
        if point[i] != origin[i]:
            a, b = f.values.index(origin[i]), f.values.index(point[i])
            out[i] = f.values[b - 1 if b > a else b + 1]
            return tuple(out)
    return point


POLICIES: dict[str, Callable] = {
    # land exactly on the model's own nearest flipping point
    "boundary": lambda task, rule, x: nearest_flip(task, rule, x),
    # jump to the far corner of the target region
    "far": lambda task, rule, x: tuple(f.values[-1] if rule(x) == task.options[0] else f.values[0] for f in task.features),
    # stop one step short of the boundary (invalid)
    "short": lambda task, rule, x: step_back(task, x, nearest_flip(task, rule, x)),
}


class RuleModel:
    """Answers predictions by `rule`; answers SCE requests by `policy`; `sce_reply` overrides the
    SCE reply text entirely (for garbage-reply tests)."""

    def __init__(self, task: GridTask, rule, policy: str = "boundary", sce_reply: Callable[[int], str] | None = None):
        self.task, self.rule, self.policy, self.sce_reply = task, rule, policy, sce_reply
        self.calls = 0
        self.sce_count = 0

    def identity(self):
        return {"backend": "python", "model": f"rule-model/{self.policy}"}

    def chat(self, conversations, decoding):
        self.calls += 1
        out = []
        for conv in conversations:
            x = read_record(self.task, conv[0]["content"])
            if len(conv) == 1:
                out.append(json.dumps({"answer": self.rule(x)}))
            elif self.sce_reply is not None:
                out.append(self.sce_reply(self.sce_count))
                self.sce_count += 1
            else:
                out.append(self.sce_text(x))
        return out

    def sce_text(self, x) -> str:
        """The SCE reply for record ``x`` (subclasses choose a policy per record)."""
        cf = POLICIES[self.policy](self.task, self.rule, x)
        return "Here you go:\n```json\n" + json.dumps(self.task.as_dict(cf)) + "\n```"
