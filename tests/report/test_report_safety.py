"""Reports are safe to render and safely written (issue 13).

A model writes SCE replies full of payloads: HTML and script injections, Markdown links, images
and table breaks, ANSI escape sequences (clear the screen, a green fake PASS), carriage returns,
NUL, bidirectional overrides, a lone surrogate. Each payload goes through the real SCE check on a
text task (the revised text is shown in the worst-examples table) and every human-readable report
is rendered. A report is inert when its structure is the structure of the same report on a benign
reply: the same HTML elements and attributes (the HTML report, and the Markdown report rendered
as GitHub does, raw HTML allowed), the same number of lines (terminal and Markdown), no control
character; and the payload is still shown, as text.

Writing: atomic (a temporary file in the same directory, then os.replace) and clean on failure
(a directory at the path, a path under a file, a full disk, an interrupt): no ``.tmp-*`` file is
left, the old report is untouched, and the failure is one `UserInputError` naming the path.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import unicodedata
from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt

from sce_checks.checks.sce import SCESettings, run_text_sce
from sce_checks.errors import UserInputError
from sce_checks.paths import write_atomic
from sce_checks.regression.files import save_baseline
from sce_checks.report import json_report
from sce_checks.report.html import render_html, write_html
from sce_checks.report.json_report import write_json
from sce_checks.report.markdown import render_markdown, write_markdown
from sce_checks.report.table import render_table
from sce_checks.safe import markdown_text, plain
from tests.helpers.text_models import MINI_EXAMPLES, MINI_TASK, TextRuleModel

PAYLOADS = [
    # HTML and script (the 18 payloads of the HTML measurement, and more)
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "<iframe src=\"javascript:alert(1)\"></iframe>",
    "\"><script>alert(1)</script>",
    "'><img src=x onerror=alert(1)>",
    "<a href=\"javascript:alert(1)\">click me</a>",
    "<body onload=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "</td></tr></table><script>alert(1)</script>",
    "<style>body{display:none}</style>",
    "<div style=\"position:fixed;top:0\">overlay</div>",
    "<!-- hidden --> visible",
    "<object data=\"x.swf\"></object> embed",
    "<input autofocus onfocus=alert(1)>",
    "<video><source onerror=alert(1)></video>",
    "<marquee onstart=alert(1)>scroll</marquee>",
    "&lt;script&gt;alert(1)&lt;/script&gt; entities",
    # Markdown
    "[click](javascript:alert(1))",
    "![pixel](https://tracker.invalid/p.png)",
    "| injected | cell |",
    "`code` **bold** _it_ ~~gone~~",
    "<https://autolink.invalid> link",
    # terminal: ANSI, carriage return, NUL, bidi, line breaks, a lone surrogate
    "\x1b[2J\x1b[H cleared screen",
    "\x1b[32mPASS\x1b[0m fake pass",
    "\x1b]0;new title\x07 window title",
    "\x9b31m one byte csi",
    "text \rPASS overwritten",
    "nul\x00byte text",
    "\u202eevil reversed text",
    "\u2066isolated\u2069 text \u200f",
    "line\nbreak\r\nnew row",
    "lone \ud800 surrogate",
]
BENIGN = "plain words only"
ALLOWED_CONTROLS = {"\n"}


class PayloadModel(TextRuleModel):
    """Answers by the sentiment rule; every SCE it writes is ``payload`` (invalid for the negative
    example, whose target is positive: it is among the worst examples shown)."""

    def __init__(self, payload: str) -> None:
        super().__init__("noop")
        self.payload = payload

    def chat(self, conversations, decoding):
        replies = super().chat(conversations, decoding)
        return [json.dumps({"revised_text": self.payload}) if '"revised_text"' in r else r for r in replies]


@functools.lru_cache(maxsize=None)
def sce_results(payload: str):
    """The SCE check's results when every SCE reply is ``payload`` (computed once per payload)."""
    results = run_text_sce(PayloadModel(payload), "python:payloads", MINI_TASK, MINI_EXAMPLES,
                           SCESettings(variants=("minimal",), prediction="generate"))
    assert payload.strip() in [e.counterfactual for r in results for e in r.examples]  # read, and shown
    return results


def visible(payload: str) -> str:
    """What a report's cell must still show of ``payload``: its start, as inert text."""
    return squeeze(plain(payload.strip()))[:25]


ENV = {"model": "python:payloads", "seed": 0, "limit": 2, "libraries": {}}


class Structure(HTMLParser):
    """Elements (name and attribute names) and comments of a page, outside inline SVG plots (whose
    ticks follow the figures) and the ``ins``/``del`` marks of the report's word diffs (which
    follow the text: the text inside them is still checked), and its text."""

    DIFF_MARKS = ("ins", "del")

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, tuple[str, ...]]] = []
        self.text: list[str] = []
        self.svg = 0
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.svg += tag == "svg"
        if not self.svg and not (tag in self.DIFF_MARKS and not attrs):
            self.elements.append((tag, tuple(sorted(a for a, _ in attrs))))

    def handle_endtag(self, tag):
        self.svg -= tag == "svg" and self.svg > 0

    def handle_comment(self, data):
        if not self.svg:
            self.elements.append(("<!--", ()))

    def handle_data(self, data):
        if not self.svg:
            self.text.append(data)


def github_markdown(text: str) -> str:
    """Markdown rendered the way GitHub does what matters here: CommonMark, raw HTML passed
    through, pipe tables, strikethrough."""
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(text)


def controls(text: str) -> set[str]:
    return {c for c in text if c not in ALLOWED_CONTROLS and (
        unicodedata.category(c) in ("Cc", "Cs") or c in "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")}


def squeeze(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def benign():
    results = sce_results(BENIGN)
    return {"terminal": render_table(results), "markdown": render_markdown(results, ENV),
            "html": render_html(results, ENV)}


PAYLOAD_IDS = [f"p{i:02d}" for i in range(len(PAYLOADS))]


@pytest.mark.parametrize("payload", PAYLOADS, ids=PAYLOAD_IDS)
def test_the_terminal_table_shows_a_payload_inert(payload, benign):
    terminal = render_table(sce_results(payload))
    assert not controls(terminal)
    assert len(terminal.splitlines()) == len(benign["terminal"].splitlines())
    assert visible(payload) in squeeze(terminal)


@pytest.mark.parametrize("payload", PAYLOADS, ids=PAYLOAD_IDS)
def test_the_markdown_report_shows_a_payload_inert(payload, benign):
    markdown = render_markdown(sce_results(payload), ENV)
    assert not controls(markdown) and "<" not in markdown  # no raw HTML at all: every < is &lt;
    assert len(markdown.splitlines()) == len(benign["markdown"].splitlines())
    rendered, expected = Structure(github_markdown(markdown)), Structure(github_markdown(benign["markdown"]))
    assert rendered.elements == expected.elements  # no element, link, image or table cell of the payload's
    assert visible(payload) in squeeze("".join(rendered.text))


@pytest.mark.parametrize("payload", PAYLOADS, ids=PAYLOAD_IDS)
def test_the_html_report_shows_a_payload_inert(payload, benign):
    page = render_html(sce_results(payload), ENV)
    assert not controls(page.replace("\t", ""))  # matplotlib's SVG may indent with tabs; text has none
    rendered, expected = Structure(page), Structure(benign["html"])
    assert rendered.elements == expected.elements
    assert visible(payload) in squeeze("".join(rendered.text))


def test_plain_and_markdown_text():
    assert plain("\x1b[1;32mPASS\x1b[0m") == "PASS"  # no colour: a reply cannot print a green verdict
    assert plain("a\rb\nc\td\x00e\u202ef\ud800") == "a b c def"
    assert plain("ok: naïve café 日本 ✓") == "ok: naïve café 日本 ✓"
    assert markdown_text("<b>x</b> [a](b) | `c` *d* _e_ \\") == r"&lt;b&gt;x&lt;/b&gt; \[a\](b) \| \`c\` \*d\* \_e\_ \\"
    assert markdown_text("validity>=0.8 & done") == "validity&gt;=0.8 &amp; done"


def test_an_assertion_message_shows_a_reply_inert():
    """pytest prints the message of a failed example assertion, raw reply included: inert too."""
    from sce_checks.assertions import SCEAssertionError, assert_example_valid
    from sce_checks.results import ExampleRecord

    record = ExampleRecord("e1", {"x": 2}, "No", "Yes", None, None, None, None, None,
                           sce_reply="\x1b[2J\x1b[32mPASS\x1b[0m\rall \u202egood", unparsed="sce: no JSON object in reply")
    with pytest.raises(SCEAssertionError) as failed:
        assert_example_valid(record)
    assert not controls(str(failed.value)) and "reply: PASS all good" in str(failed.value)


def test_the_unparsed_summary_counts_by_code_and_shows_no_reply():
    """Replies with extra keys and replies with values of the wrong type, each with its own junk:
    two buckets, by code (the old summary filed extra keys under wrong type by matching texts), and
    no reply text in any report line."""
    from sce_checks.checks.sce import run_grid_sce
    from sce_checks.report.summary import unparsed_line
    from tests.helpers.rule_models import TOY, RuleModel, toy_rule

    def reply(i: int) -> str:
        if i % 3 == 0:
            return json.dumps({f"<b>why {i}</b>": "\x1b[31mjunk", "x": 5, "level": "c"})  # extra key first
        return json.dumps({"x": f"\x1b[2J{i} <script>", "level": "c"})  # wrong type

    examples = [(f"e{i}", (2, "a")) for i in range(9)]
    (r,) = run_grid_sce(RuleModel(TOY, toy_rule, sce_reply=reply), "m", TOY, examples,
                        SCESettings(variants=("minimal",), prediction="generate"))
    assert r.info["unparsed_reasons"] == {"sce: extra keys": 3, "sce: wrong type": 6}
    assert {e.extra["unparsed_code"] for e in r.examples} == {"extra_keys", "wrong_type"}
    assert {e.unparsed for e in r.examples} == {"sce: extra keys", "sce: x: wrong type: expected an integer"}
    assert r.examples[1].extra["unparsed_value"] == "\x1b[2J1 <script>"  # the raw value: kept, apart
    assert unparsed_line(r) == "unparsed (toy/minimal): sce: wrong type: 6, sce: extra keys: 3"


# -- writing ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def results():
    return sce_results("lone \ud800 surrogate and <b>html</b>")


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".tmp-" in p.name)


WRITERS = {
    "json": lambda path, rs: write_json(path, rs, ENV),
    "markdown": lambda path, rs: write_markdown(path, rs, ENV),
    "html": lambda path, rs: write_html(path, rs, ENV),
    "baseline": lambda path, rs: save_baseline(path, rs, ENV),
}


@pytest.mark.parametrize("writer", WRITERS)
def test_a_report_path_that_is_a_directory_fails_cleanly(writer, results, tmp_path, monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    target = tmp_path / "reports"
    target.mkdir()
    with pytest.raises(UserInputError, match=f"cannot write {target}: Is a directory"):
        WRITERS[writer](target, results)
    assert target.is_dir() and not any(target.iterdir())
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("writer", WRITERS)
def test_a_report_path_under_a_file_fails_cleanly(writer, results, tmp_path, monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserInputError, match="cannot write .*file/r.out"):
        WRITERS[writer](tmp_path / "file" / "r.out", results)
    assert (tmp_path / "file").read_text() == "x" and leftovers(tmp_path) == []


def test_a_full_disk_leaves_the_old_report_and_no_temporary_file(results, tmp_path, monkeypatch):
    target = tmp_path / "r.json"
    target.write_text("old report")

    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(json_report.os, "replace", full)
    with pytest.raises(UserInputError, match="No space left on device"):
        write_json(target, results, ENV)
    assert target.read_text() == "old report" and leftovers(tmp_path) == []


def test_an_interrupted_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(json_report.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "r.md", "text")
    assert list(tmp_path.iterdir()) == []


def test_a_report_is_written_whole_with_the_usual_mode(results, tmp_path):
    target = tmp_path / "new" / "r.json"
    write_json(target, results, ENV)
    write_json(target, results, ENV)  # over an existing report
    data = json.loads(target.read_text(encoding="utf-8"))  # the lone surrogate as its JSON escape
    assert data["results"][0]["examples"][0]["counterfactual"] == "lone \ud800 surrogate and <b>html</b>"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    assert leftovers(tmp_path) == []


def test_an_unwritable_step_summary_is_one_error(results, tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path))
    with pytest.raises(UserInputError, match=r"\$GITHUB_STEP_SUMMARY"):
        write_markdown(None, results, ENV)
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    write_markdown(None, results, ENV)
    assert "&lt;b&gt;html&lt;/b&gt;" in summary.read_text(encoding="utf-8")
