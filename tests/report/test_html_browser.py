"""The HTML report opened in a real headless browser (Debian's Chromium), as a new user would: it
loads offline with no console message (a JavaScript error or a blocked script fails the test),
the rendered page is not blank, and its DOM, after the report's script ran, has the expected
panels, plots and decision-boundary maps; every map cell is checked against the predictions the
JSON report stores, and those against the rule model's own answers. Skipped when Chromium is not
installed, except in CI (.ci/run installs it), where a missing browser fails."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from sce_checks.cli import main
from sce_checks.report.html import render_html
from tests.helpers import report_models
from tests.helpers.projects import MODELS, TOY_TOML

pytestmark = pytest.mark.browser


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI: headless Chromium is missing (.ci/run installs the Debian package 'chromium')")
        pytest.skip("headless Chromium not installed (apt-get install chromium)")
    return path


def _run(browser: str, *args: str, cwd) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             f"--user-data-dir={cwd / 'profile'}", "--window-size=1200,1600", "--enable-logging=stderr", "--v=0"]
    return subprocess.run([browser, *flags, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def console(stderr: str) -> list[str]:
    """The page's console messages in Chromium's log (``INFO:CONSOLE(...)``): uncaught errors,
    scripts the Content Security Policy refused, anything logged. A report logs nothing."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def load(browser: str, page: Path, cwd: Path, fragment: str = "") -> tuple[str, list[str]]:
    """The page's DOM after its scripts ran, and its console messages."""
    out = _run(browser, "--dump-dom", page.as_uri() + fragment, cwd=cwd)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout, console(out.stderr)


def assert_not_blank(browser: str, page: Path, cwd: Path) -> None:
    shot = cwd / f"{page.stem}.png"
    out = _run(browser, f"--screenshot={shot}", page.as_uri(), cwd=cwd)
    assert out.returncode == 0 and shot.is_file(), out.stderr[-2000:]
    assert console(out.stderr) == []
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 1000
    colours = {tuple(p) for p in (pixels[::8, ::8].reshape(-1, 3) * 255).astype(int).tolist()}
    assert len(colours) > 20  # text, table borders, plot marks: a rendered page, not a blank one


# -- a small DOM: elements with attributes, children and text -------------------------------------

VOID = {"meta", "br", "img", "input", "hr", "link", "col", "source", "wbr", "area", "base"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list = field(default_factory=list)  # Nodes and text, in document order

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def walk(self):
        yield self
        for c in self.children:
            if isinstance(c, Node):
                yield from c.walk()

    def find(self, tag: str, cls: str | None = None) -> list["Node"]:
        return [n for n in self.walk() if n.tag == tag and (cls is None or cls in n.classes())]

    def all_text(self, skip: str | None = None) -> str:
        """The text inside, in order (leaving out the elements named ``skip``)."""
        return "".join(c if isinstance(c, str) else "" if c.tag == skip else c.all_text(skip) for c in self.children)


class _Builder(HTMLParser):
    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag):
        for k in range(len(self.stack) - 1, 0, -1):
            if self.stack[k].tag == tag:
                del self.stack[k:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def dom(page: str) -> Node:
    return _Builder(page).root


# -- the audits -------------------------------------------------------------------------------------

@dataclass
class Audit:
    html: Path
    report: dict
    page: Node  # the DOM Chromium built and the report's script sorted
    messages: list[str]


def _audit(browser: str, cwd: Path, name: str, dataset: Path, model: str, *extra: str) -> Audit:
    html, js = cwd / f"{name}.html", cwd / f"{name}.json"
    assert main(["--dataset", str(dataset), "-q", "--model",
                 f"python:tests.helpers.report_models:{model}", "--html", str(html), "--json", str(js), *extra]) == 0
    page, messages = load(browser, html, cwd)
    report = json.loads(js.read_text())
    jsonschema.validate(report, json.loads(resources.files("sce_checks").joinpath("data/report-v1.schema.json").read_text()))
    return Audit(html, report, dom(page), messages)


GENERATE = ("--prediction", "generate")  # the rule models answer in text; the faithfulness model is scored


@pytest.fixture(scope="module")
def audits(tmp_path_factory):
    browser = _chromium()
    cwd = tmp_path_factory.mktemp("html-audits")
    (cwd / "loan.toml").write_text(report_models.task_toml(report_models.PLANE))
    (cwd / "quad.toml").write_text(report_models.task_toml(report_models.QUAD))
    (cwd / "reviews.jsonl").write_text(report_models.texts_jsonl())
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        mp.setenv("SCE_CHECKS_CACHE_DIR", str(cwd / "cache"))
        return {
            "browser": browser, "cwd": cwd,
            "plane": _audit(browser, cwd, "plane", cwd / "loan.toml", "plane", "--limit", "16", "--seed", "1", *GENERATE),
            "quad": _audit(browser, cwd, "quad", cwd / "quad.toml", "quad", "--limit", "16", "--seed", "1", *GENERATE),
            "text": _audit(browser, cwd, "text", cwd / "reviews.jsonl", "text", "--text-search-budget", "30", *GENERATE),
            "faith": _audit(browser, cwd, "faith", cwd / "reviews.jsonl", "faithful",
                            "--check", "ct", "--check", "cct", "--check", "phi_cct"),
        }


def _records(audit: Audit) -> dict[tuple[str, str], dict]:
    return {(r["variant"], e["id"]): e for r in audit.report["results"] for e in r["examples"]}


def _sections(audit: Audit) -> list[tuple[str, Node]]:
    """(variant, section) of each SCE result's examples, in report order."""
    sections = audit.page.find("section", "examples")
    assert len(sections) == len(audit.report["results"])
    return [(r["variant"], s) for r, s in zip(audit.report["results"], sections)]


def _result(audit: Audit, variant: str) -> dict:
    return next(r for r in audit.report["results"] if r["variant"] == variant)


GRID_PLOTS = ["feature_changes", "feature_changes", "minimality_distribution", "validity_minimality"]  # the feature changes once per variant


def _plots(audit: Audit) -> tuple[list[str], list[str]]:
    drawn = [f.attrs["data-plot"] for f in audit.page.find("figure", "plot")]
    omitted = [p.attrs["data-plot"] for p in audit.page.find("p", "omitted") if "data-plot" in p.attrs]
    for f in audit.page.find("figure", "plot"):
        assert f.find("svg") and f.find("path"), "a drawn plot has marks"
    return drawn, omitted


def _flat_index(values: list[list], point: dict, names: list[str]) -> int:
    flat = 0
    for name, vals in zip(names, values):
        flat = flat * len(vals) + vals.index(point[name])
    return flat


def check_map(svg: Node, grid: dict, through: dict, rule, task) -> int:
    """Every cell of ``svg`` (a map through the point ``through``) against the JSON's codes, and
    every predicted cell against the rule model; returns the number of unknown cells."""
    names = [f["name"] for f in grid["features"]]
    values = [f["values"] for f in grid["features"]]
    x, y = svg.attrs["data-x"], svg.attrs["data-y"]
    nx, ny = int(svg.attrs["data-nx"]), int(svg.attrs["data-ny"])
    assert (nx, ny) == (len(values[names.index(x)]), len(values[names.index(y)]))
    seen, unknown = set(), 0
    for rect in svg.find("rect"):
        if "data-n" not in rect.attrs:
            continue  # the frame
        i, j, n = int(rect.attrs["data-i"]), int(rect.attrs["data-j"]), int(rect.attrs["data-n"])
        (cls,) = rect.classes()
        for k in range(i, i + n):
            point = dict(through, **{x: values[names.index(x)][k], y: values[names.index(y)][j]})
            code = grid["codes"][_flat_index(values, point, names)]
            assert cls == {"." : "kn", "?": "ku"}.get(code, f"k{code}"), (point, cls, code)
            if code.isdigit():
                assert grid["labels"][int(code)] == rule(tuple(point[f.name] for f in task.features))
            unknown += code == "."
            seen.add((k, j))
    assert seen == set(itertools.product(range(nx), range(ny)))  # the whole cut, each cell once
    return unknown


def check_marks(svg: Node, rec: dict, grid: dict) -> None:
    """The example, its SCE and its stored x* at their value indices on the map's axes."""
    names = [f["name"] for f in grid["features"]]
    values = {f["name"]: f["values"] for f in grid["features"]}
    x, y = svg.attrs["data-x"], svg.attrs["data-y"]

    def cell(point):
        return (values[x].index(point[x]), values[y].index(point[y]))

    mine = [n for n in svg.walk() if n.attrs.get("data-id") == rec["id"]]
    (ex,) = [n for n in mine if n.tag == "circle" and "ex" in n.classes()]
    assert (int(ex.attrs["data-i"]), int(ex.attrs["data-j"])) == cell(rec["input"])
    sces = [n for n in mine if n.tag == "g" and "sce" in n.classes()]
    if rec["counterfactual"] is None:
        assert sces == []
    else:
        (g,) = sces
        assert (int(g.attrs["data-i"]), int(g.attrs["data-j"])) == cell(rec["counterfactual"])
        assert ("valid" if rec["valid"] else "invalid") in g.classes()
        moves = cell(rec["counterfactual"]) != cell(rec["input"])
        assert bool(g.find("line")) == moves  # an arrow when it moves on the map, else a ring
        off = [n for n in names if n not in (x, y) and rec["counterfactual"][n] != rec["input"][n]]
        if moves:  # dashed when the SCE also changes features off the map (projected)
            assert (g.find("line")[0].attrs.get("stroke-dasharray") is not None) == bool(off)
    stars = [(int(n.attrs["data-i"]), int(n.attrs["data-j"])) for n in mine if n.tag == "polygon"]
    assert stars == [cell(p) for p in rec.get("reference") or []]


# -- tests ------------------------------------------------------------------------------------------

def test_the_console_check_catches_a_script_error_and_a_blocked_script(tmp_path):
    browser = _chromium()
    bad = tmp_path / "bad.html"
    bad.write_text("<!doctype html><html><body><p>hi</p><script>undefinedFunction();</script></body></html>")
    _, messages = load(browser, bad, tmp_path)
    assert any("Uncaught ReferenceError" in m for m in messages)
    # a script the report did not write is refused by its Content Security Policy, and that shows
    injected = tmp_path / "injected.html"
    injected.write_text(render_html([], {}).replace("</body>", "<script>document.title='x'</script></body>"))
    page, messages = load(browser, injected, tmp_path)
    assert any("Content Security Policy" in m for m in messages)
    assert "<title>sce-checks report</title>" in page  # and it did not run
    clean = tmp_path / "clean.html"
    clean.write_text(render_html([], {}))
    assert load(browser, clean, tmp_path)[1] == []


def test_the_toy_report_renders_in_headless_chromium(tmp_path, monkeypatch):
    browser = _chromium()
    (tmp_path / "toy.toml").write_text(TOY_TOML)
    (tmp_path / "toy_models.py").write_text(MODELS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCE_CHECKS_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["--dataset", "toy.toml", "--limit", "12", "--seed", "3", "--prediction", "generate", "-q",
                 "--model", "python:toy_models:far", "--html", "r.html"]) == 0
    page, messages = load(browser, tmp_path / "r.html", tmp_path)
    assert messages == []
    assert "<table" in page and "python:toy_models:far" in page and "toy-00034" in page  # an example's panel
    assert_not_blank(browser, tmp_path / "r.html", tmp_path)


def test_a_two_feature_grid_report(audits):
    a = audits["plane"]
    assert a.messages == []
    assert_not_blank(audits["browser"], a.html, audits["cwd"])
    records = _records(a)
    # one panel per example of each variant, worst first, each with its map (16 <= MAX_MAPS)
    for variant, section in _sections(a):
        panels = section.find("article", "panel")
        assert len(panels) == 16
        assert [p.attrs["data-status"] for p in panels] == sorted(
            (p.attrs["data-status"] for p in panels), key=["invalid", "unparsed", "valid"].index)
        for p in panels:
            rec = records[(variant, p.attrs["data-id"])]
            assert p.attrs["data-status"] == ("unparsed" if rec["counterfactual"] is None
                                              else "valid" if rec["valid"] else "invalid")
            if p.attrs["data-status"] == "unparsed":
                assert rec["sce_reply"] in p.all_text() and rec["unparsed"] in p.all_text()
            (svg,) = p.find("svg", "map")
            grid = _result(a, variant)["info"]["grid_predictions"]
            check_map(svg, grid, rec["input"], report_models.plane_rule, report_models.PLANE)
            check_marks(svg, rec, grid)
    # the whole plane, once per variant, every example on it; some cells never predicted
    planes = a.page.find("figure", "plane")
    assert len(planes) == 2
    unknown = 0
    for (variant, _), fig in zip(_sections(a), planes):
        result = _result(a, variant)
        grid = result["info"]["grid_predictions"]
        (svg,) = fig.find("svg", "map")
        unknown += check_map(svg, grid, {}, report_models.plane_rule, report_models.PLANE)
        for rec in result["examples"]:
            check_marks(svg, rec, grid)
    assert unknown == 2 * grid["codes"].count(".") > 0
    drawn, omitted = _plots(a)
    assert sorted(drawn) == GRID_PLOTS and omitted == []


def test_a_four_feature_grid_report(audits):
    a = audits["quad"]
    assert a.messages == []
    assert_not_blank(audits["browser"], a.html, audits["cwd"])
    assert a.page.find("figure", "plane") == []  # no whole plane: a slice per example
    records = _records(a)
    names = [f.name for f in report_models.QUAD.features]
    maps = 0
    for variant, section in _sections(a):
        result = _result(a, variant)
        grid = result["info"]["grid_predictions"]
        panels = section.find("article", "panel")
        assert len(panels) == 16
        for p in panels:
            rec = records[(variant, p.attrs["data-id"])]
            for svg in p.find("svg", "map"):
                maps += 1
                axes = {svg.attrs["data-x"], svg.attrs["data-y"]}
                xstar = rec["reference"][0]
                moved = {n for n in names if xstar[n] != rec["input"][n]}
                if len(moved) <= 2:
                    assert moved <= axes  # the slice runs along the features x* changes
                check_map(svg, grid, rec["input"], report_models.quad_rule, report_models.QUAD)
                check_marks(svg, rec, grid)
            changed = [td for td in p.find("td", "chg")]
            cf = rec["counterfactual"] or {}
            assert len(changed) == sum(cf.get(n, rec["input"][n]) != rec["input"][n] for n in names if cf) + sum(
                rec["reference"][0][n] != rec["input"][n] for n in names)
    assert maps == 32  # every example has an x*: each panel draws its slice
    drawn, omitted = _plots(a)
    assert sorted(drawn) == GRID_PLOTS and omitted == []


def test_a_text_report(audits):
    a = audits["text"]
    assert a.messages == []
    assert_not_blank(audits["browser"], a.html, audits["cwd"])
    records = _records(a)
    assert a.page.find("svg", "map") == []
    for variant, section in _sections(a):
        panels = {p.attrs["data-id"]: p for p in section.find("article", "panel")}
        assert len(panels) == len(report_models.TEXTS)
        # r2 "a bad film, badly shot" -> "a good film, badly shot": one word struck, one added
        original, sce, searched = panels["r2"].find("p", "diff")  # side by side, with the searched edit
        assert [d.all_text() for d in original.find("del")] == ["bad"] and original.find("ins") == []
        assert [i.all_text() for i in sce.find("ins")] == ["good"] and sce.find("del") == []
        assert original.all_text() == "a bad film, badly shot" and sce.all_text() == "a good film, badly shot"
        assert searched.all_text(skip="ins") == "a bad film, badly shot"  # the original, with what it removes
        assert searched.all_text(skip="del") == records[(variant, "r2")]["reference"]  # and the searched text
        assert panels["r2"].attrs["data-status"] == "valid"
        # r4: the reply holds no revision: the raw reply and the reason, as text
        r4 = records[(variant, "r4")]
        assert panels["r4"].attrs["data-status"] == "unparsed"
        assert "Sorry, I cannot rewrite reviews." in panels["r4"].all_text() and r4["unparsed"] in panels["r4"].all_text()
        assert panels["r3"].attrs["data-status"] == "invalid"  # returned unchanged
    drawn, omitted = _plots(a)
    assert sorted(drawn) == ["minimality_distribution", "validity_minimality"] and omitted == []


def test_panels_are_filtered_and_sorted_from_the_address(audits):
    a = audits["text"]
    page, messages = load(audits["browser"], a.html, audits["cwd"], "#filter=invalid&sort=gap")
    assert messages == []
    for _, section in [(None, s) for s in dom(page).find("section", "examples")]:
        panels = section.find("article", "panel")
        shown = [p for p in panels if "hidden" not in p.attrs]
        assert shown and all(p.attrs["data-status"] == "invalid" for p in shown)
        assert len(shown) == sum(p.attrs["data-status"] == "invalid" for p in panels)
        gaps = [float(p.attrs["data-gap"]) for p in panels if p.attrs["data-gap"]]
        assert gaps == sorted(gaps, reverse=True) and gaps  # largest gap to the minimum first
        assert re.search(rf"{len(shown)} of {len(panels)} panels shown", section.all_text())


def test_a_faithfulness_report(audits):
    a = audits["faith"]
    assert a.messages == []
    assert_not_blank(audits["browser"], a.html, audits["cwd"])
    by_check = {r["check"]: r for r in a.report["results"]}
    assert (by_check["phi_cct"]["n11"], by_check["phi_cct"]["n10"], by_check["phi_cct"]["n01"],
            by_check["phi_cct"]["n00"]) == (3, 2, 2, 9)  # every cell of the table has interventions
    drawn, omitted = _plots(a)
    assert sorted(drawn) == ["phi_table", "tvd_mention"] and omitted == []
    (tvd,) = [f for f in a.page.find("figure", "plot") if f.attrs["data-plot"] == "tvd_mention"]
    assert "CCT 0.574" in tvd.all_text()
    assert a.page.find("article", "panel") == [] and a.page.find("svg", "map") == []  # no SCE, no grid
    assert "failing examples" in a.page.all_text()  # CT's table of examples
