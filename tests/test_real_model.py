"""The whole audit on the real embedded model (SmolLM2-135M-Instruct), on tiny samples: the CLI,
the pytest plugin with an audit file, a grid task and the text task. Marked ``real_model``
(deselect with -m "not real_model"); they share one response cache, so the plugin run reuses
the CLI run's answers."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import pytest

from sce_checks.cli import main

pytestmark = [pytest.mark.real_model, pytest.mark.xdist_group("smollm2")]
SCHEMA = json.loads(resources.files("sce_checks").joinpath("data/report-v1.schema.json").read_text())

# A 20-point grid: the built-in grids have ~1,900 points, and on a grid where the model never
# changes its answer (SmolLM2 says "No heart disease" everywhere on heart_disease) the exact
# reference search must predict every point: ~10 minutes on 2 CPU cores, too slow for CI.
SMALL_GRID = """
name = "small_heart"
question = "Does this patient have heart disease?"
preamble = "You will be given a patient record."
options = ["No heart disease", "Heart disease"]
[[features]]
name = "age"
label = "Age (years)"
type = "integer"
min = 30
max = 70
step = 10
[[features]]
name = "chest_pain"
label = "Chest pain type"
type = "categorical"
values = ["typical angina", "atypical angina", "non-anginal pain", "asymptomatic"]
"""


@pytest.fixture
def small_grid(tmp_path):
    path = tmp_path / "small_heart.toml"
    path.write_text(SMALL_GRID)
    return path


def test_cli_grid_audit(tmp_path, small_grid, capsys):
    out = tmp_path / "r.json"
    assert main(["--model", "smollm2", "--dataset", str(small_grid), "--limit", "2", "--json", str(out), "-q"]) == 0
    report = json.loads(out.read_text())
    jsonschema.validate(report, SCHEMA)
    for r in report["results"]:
        assert r["n"] == 2
        assert r["info"]["prediction_mode"] == "score"
        # option scoring never leaves a prediction unparsed; the exact reference search covers
        # the whole grid when needed, and an example without any flip is counted, not dropped
        assert all(e["prediction"] in ("No heart disease", "Heart disease") for e in r["examples"])
        no_flip = [e for e in r["examples"] if e["min_distance"] is None]
        assert len(no_flip) == r["info"].get("n_examples_without_flip", 0)
        assert all(e["min_distance"] > 0 for e in r["examples"] if e["min_distance"] is not None)
        assert r["info"]["grid_size"] == 20 and r["info"]["grid_points_predicted"] <= 20
        # whatever the model replied is kept, parsed or not
        assert all(e["sce_reply"] is not None for e in r["examples"])
        assert r["n_generated"] + r["info"]["n_sce_unparsed"] == 2
    env = report["environment"]
    assert env["model_identity"]["backend"] == "hf" and env["model_identity"]["fingerprint"]
    assert "small_heart" in capsys.readouterr().out


def test_cli_grid_audit_under_schema_elicitation(tmp_path, small_grid):
    """Constrained decoding on the real model: every SCE is a record of the grid (generation 100%
    by construction), and the report says how it was elicited."""
    out = tmp_path / "s.json"
    assert main(["--model", "smollm2", "--dataset", str(small_grid), "--limit", "2", "--variant", "minimal",
                 "--elicitation", "schema", "--json", str(out), "-q"]) == 0
    report = json.loads(out.read_text())
    jsonschema.validate(report, SCHEMA)
    (r,) = report["results"]
    assert report["environment"]["elicitation"] == "schema" and r["info"]["elicitation"] == "schema"
    assert r["generation_rate"] == 1.0 and r["info"]["n_sce_unparsed"] == 0
    assert r["info"]["sce_leniency"] == {}  # constrained replies need no lenient reading
    for e in r["examples"]:
        assert e["counterfactual"]["age"] in (30, 40, 50, 60, 70)
        assert e["counterfactual"]["chest_pain"] in ("typical angina", "atypical angina", "non-anginal pain", "asymptomatic")
        assert e["valid"] in (True, False) and e["cf_prediction"] in ("No heart disease", "Heart disease")


def test_cli_text_audit(tmp_path):
    out = tmp_path / "t.json"
    assert main(["--model", "smollm2", "--dataset", "sentiment", "--limit", "2", "--variant", "minimal", "--json", str(out), "-q"]) == 0
    (r,) = json.loads(out.read_text())["results"]
    jsonschema.validate({"schema": "sce-checks/report/v1", "environment": {"sce_checks_version": "x", "python": "x"}, "results": [r]}, SCHEMA)
    assert r["n"] == 2 and r["info"]["distance_unit"] == "char"
    for e in r["examples"]:
        assert e["prediction"] in ("negative", "positive")
        if e["counterfactual"] is not None:
            assert 0.0 <= e["distance"] <= 1.0 and e["valid"] in (True, False)


def test_audit_file_on_the_embedded_model(pytester):
    pytester.makefile(".toml", small_heart=SMALL_GRID)
    pytester.makefile(".sce.toml", smol="""
        model = "smollm2"
        datasets = ["small_heart.toml"]
        limit = 2

        [thresholds]
        generation_rate = ">= 0"

        [[override]]
        variant = "minimal"
        thresholds = { strict_validity = "> 1" }   # impossible: shows a failure on a real model
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "smol.sce.toml", "--sce-json", "a.json")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*strict_validity>1 does not hold*"])
    # at 80 columns each result is a block of "header  value" lines (report/table.py)
    result.stdout.fnmatch_lines(["*= sce-checks =*", "model*smollm2*", "dataset*small_heart*"])
    assert len(json.loads((pytester.path / "a.json").read_text())["results"]) == 2


pytest_plugins = ["pytester"]
