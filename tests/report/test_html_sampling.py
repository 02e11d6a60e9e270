"""The HTML report of a sampled audit (docs/sampling.md): one panel per example, a table of its
samples, and all K SCEs on its boundary map."""

from __future__ import annotations

import re

from sce_checks.checks.sce import SCESettings, run_grid_sce
from sce_checks.report.html import render_html
from sce_checks.report.summary import consistency_table, sampling_line
from tests.helpers.rule_models import TOY
from tests.helpers.sampling_models import SampledToyModel

EXAMPLES = [(f"p{i}", p) for i, p in enumerate(TOY.points())][::9]


def sampled_result(k=4):
    (r,) = run_grid_sce(SampledToyModel(flip=0.2), "m", TOY, EXAMPLES,
                        SCESettings(variants=("minimal",), prediction="generate", temperature=1.0, samples=k))
    return r


def test_one_panel_per_example_with_every_sample_on_its_map():
    r = sampled_result()
    page = render_html([r], {"sce_checks_version": "test", "python": "3"})
    panels = re.findall(r'<article class="panel".*?</article>', page, re.S)
    assert len(panels) == len(EXAMPLES)
    for panel in panels:
        ex_id = re.search(r'data-id="([^"]+)"', panel).group(1)
        generated = [e for e in r.examples if e.id == ex_id and e.counterfactual is not None]
        assert panel.count('<tr><td>') == 4  # the table of its samples
        svg = re.search(r'<svg class="map".*?</svg>', panel, re.S)
        if generated and svg:
            assert svg.group(0).count(f'<g class="sce') == len(generated)
            assert "the SCEs of all 4 samples" in panel


def test_terminal_consistency_line_and_table():
    r = sampled_result()
    line = sampling_line(r)
    assert line.startswith("sampled (toy/minimal): T=1, K=4 per example, answers drawn by generation")
    title, headers, rows = consistency_table(r, 3)
    assert len(rows) == 5 and headers[2] == "valid samples"
    shares = [int(row[2].split("/")[0]) / int(row[2].split("/")[1].split()[0]) for row in rows]
    assert shares == sorted(shares)  # the least consistent first


def test_greedy_results_have_neither():
    (r,) = run_grid_sce(SampledToyModel(), "m", TOY, EXAMPLES, SCESettings(variants=("minimal",), prediction="generate"))
    assert sampling_line(r) == "" and not r.per_example


def test_samples_giving_one_sce_are_counted_on_the_map():
    (r,) = run_grid_sce(SampledToyModel(agree=True), "m", TOY, EXAMPLES,
                        SCESettings(variants=("minimal",), prediction="generate", temperature=1.0, samples=4))
    page = render_html([r], {"sce_checks_version": "test", "python": "3"})
    panels = re.findall(r'<article class="panel".*?</article>', page, re.S)
    with_maps = [p for p in panels if '<svg class="map"' in p]
    assert with_maps and all(">\u00d74</text>" in p for p in with_maps)  # every sample of an example agrees
