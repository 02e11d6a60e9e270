"""Rule models on a 40 x 5 grid (200 points, so a sequential audit at --limit 160 has room to stop
early) with a chosen validity: valid SCEs (the nearest flip) on every record (``sure``), on none
(``never``: one grid step short of the boundary) or on a checkerboard half of the grid (``half``,
true validity 0.5: a gate at 0.5 stays undecided). Reached through ``python:big_models:<name>``
(tests/test_sequential_audit.py, benchmarks/bench_sequential_audit.py)."""

from __future__ import annotations

import dataclasses
import textwrap

from sce_checks.tasks.grid import integer_feature
from tests.helpers.projects import TOY_TOML
from tests.helpers.rule_models import TOY, RuleModel

# the toy grid of tests/helpers/projects.py, widened to x in 0..39: 200 points
BIG_TOML = TOY_TOML.replace('name = "toy"', 'name = "big"').replace("max = 10", "max = 39")
assert BIG_TOML != TOY_TOML and "max = 39" in BIG_TOML

BIG = dataclasses.replace(TOY, name="big", features=(integer_feature("x", "X value", 0, 39), TOY.features[1]))

LEVELS = "abcde"


def big_rule(point) -> str:
    x, level = point
    return "Yes" if x >= 20 and level >= "c" else "No"


class RateModel(RuleModel):
    """SCEs valid where ``valid(point)`` holds (the nearest flip), one step short elsewhere."""

    def __init__(self, name: str, valid) -> None:
        super().__init__(BIG, big_rule, "boundary")
        self.name, self.valid = name, valid

    def identity(self):
        return {"backend": "python", "model": f"rate-model/{self.name}"}  # its own cache entries

    def sce_text(self, x) -> str:
        self.policy = "boundary" if self.valid(x) else "short"
        return super().sce_text(x)


MODELS = textwrap.dedent(
    """
    from tests.helpers.sequential_models import LEVELS, RateModel

    sure = RateModel("sure", lambda p: True)
    never = RateModel("never", lambda p: False)
    half = RateModel("half", lambda p: (p[0] + LEVELS.index(p[1])) % 2 == 0)
    """
)
