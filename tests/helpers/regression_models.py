"""A "fine-tuned" rule model for baseline tests: the toy model's exactly minimal SCEs, except on
chosen records, where it stops one grid step short of the boundary (an invalid SCE). The tests
choose the records from the sample, so they know which example ids regressed."""

from __future__ import annotations

import json

from tests.helpers.rule_models import POLICIES, TOY, RuleModel, toy_rule


class PartlyShort(RuleModel):
    def __init__(self, short_on):
        super().__init__(TOY, toy_rule, "boundary")
        self.short_on = {tuple(p) for p in short_on}

    def identity(self):
        return {"backend": "python", "model": f"partly-short/{sorted(self.short_on)}"}

    def sce_text(self, x) -> str:
        cf = POLICIES["short" if x in self.short_on else "boundary"](self.task, self.rule, x)
        return "```json\n" + json.dumps(self.task.as_dict(cf)) + "\n```"


class PartlyFar(PartlyShort):
    """Valid but less minimal on chosen records: it jumps to the far corner of the other region
    there (RCF_A > 0), and lands on its own boundary elsewhere."""

    def identity(self):
        return {"backend": "python", "model": f"partly-far/{sorted(self.short_on)}"}

    def sce_text(self, x) -> str:
        cf = POLICIES["far" if x in self.short_on else "boundary"](self.task, self.rule, x)
        return "```json\n" + json.dumps(self.task.as_dict(cf)) + "\n```"
