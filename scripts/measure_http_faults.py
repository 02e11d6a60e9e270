"""Issue 13's HTTP measurements, runnable against any version of sce_checks (for before/after).

    python scripts/measure_http_faults.py logprobs [--root DIR]   # the fuzzed logprob payloads
    python scripts/measure_http_faults.py bodies [--root DIR]     # the fuzzed response bodies
    python scripts/measure_http_faults.py audit [--root DIR] [CASE ...]  # sce-audit vs fault server

``--root`` is the folder holding the ``sce_checks`` to measure (default: this checkout); the
payloads (tests/helpers/http_fuzz.py, the same derandomised ones as the tests) and the fault
server (tests/openai_server.py) always come from this checkout. Each prints one JSON line per
measurement: tried, survived (handled cleanly), lost (an exception, a traceback, a hang past
the deadline, the key shown or sent to another host, a wrong exit code) and miscounted (scores
that are NaN or +inf, a decision read from a malformed payload, or a score the oracle disagrees
with).

The audit cases run ``sce-audit`` as a user does (a subprocess, the toy grid of the tests, 3
examples, both SCE variants) against tests/openai_server.py with the fault on every request.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
KEY = "sk-measure-0123456789"

# case: (fault on every request, extra flags, the exit code a clean run gives)
AUDIT_CASES = {
    "truncated": ("truncated", ["--max-retries", "1"], 2),
    "badstatus": ("badstatus", ["--max-retries", "1"], 2),
    "hugeint": ("hugeint", ["--max-retries", "1"], 2),
    "deepnest": ("deepnest", ["--max-retries", "1"], 2),
    "notobject": ("notobject", ["--max-retries", "1"], 2),
    "lp-null": ("lp-null", [], 0),
    "lp-notobject": ("lp-notobject", [], 0),
    "lp-nan": ("lp-nan", [], 0),
    "lp-badtop": ("lp-badtop", [], 0),
    "trickle": ("trickle", ["--timeout", "2", "--max-retries", "0"], 2),
    "echo-key-401": ("echo-key-401", [], 2),
    "redirect-307-other-host": ("redirect", [], 2),
    "redirect-302-other-host": ("redirect", [], 2),
    "no-logprobs-probe-crashes": (None, ["--max-retries", "1"], 0),
    "dead-server-two-variants": ("hang", ["--timeout", "1", "--max-retries", "1"], 2),
    # issue 26: bounded by --timeout, counted by the breaker, read fast, a repeated key refused
    "429-retry-after-an-hour": ("429-long", ["--timeout", "2", "--max-retries", "2"], 2),
    "429-retry-after-a-date": ("429-date", ["--timeout", "2", "--max-retries", "2"], 2),
    "429-every-time": ("429", ["--timeout", "2", "--max-retries", "2"], 2),
    "headers-never-end": ("slow-headers", ["--timeout", "2", "--max-retries", "2"], 2),
    "duplicate-key": ("dupkey", ["--max-retries", "1"], 2),
    "answers-of-7-mib": ("huge", ["--timeout", "30"], 0),
}
AUDIT_DEADLINE_S = 240  # a run still going after this has hung


def _scores_ok(scores: list, options: list) -> bool:
    return len(scores) == len(options) and all(
        isinstance(s, float) and not math.isnan(s) and s != math.inf for s in scores)


def measure_logprobs() -> dict:
    from hypothesis import given

    from sce_checks.models import openai as backend
    from sce_checks.prompts.common import canonical_answer
    from tests.helpers.http_fuzz import FUZZ_EXAMPLES, fuzz, logprob_payloads

    replies = [canonical_answer(o) for o in ("Positive", "Negative")]
    counts = {"tried": 0, "survived": 0, "lost": 0, "miscounted": 0}
    lost_as: dict[str, int] = {}

    @fuzz(FUZZ_EXAMPLES)
    @given(logprob_payloads())
    def run(case):
        payload, expected, valid = case
        counts["tried"] += 1
        response = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}, "logprobs": payload}]}
        try:
            tokens = backend._token_logprobs(response)
            if tokens:
                backend._continues(tokens)
            options_sets = (replies, ['Positive"}', 'Negative"}'], ["Posi", "Posit"])
            rows = [backend._option_scores(tokens or [], o) for o in options_sets]
        except Exception as exc:  # noqa: BLE001 - counting what escapes
            counts["lost"] += 1
            lost_as[type(exc).__name__] = lost_as.get(type(exc).__name__, 0) + 1
            return
        wrong = not all(_scores_ok(r, o) for r, o in zip(rows, options_sets))
        wrong |= not valid and any(s > -math.inf for s in rows[0])  # decided from a malformed payload
        wrong |= valid and expected is not None and not all(
            math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9) for a, b in zip(rows[0], expected))
        counts["miscounted" if wrong else "survived"] += 1

    run()
    return {"measurement": "logprob payloads", **counts, "lost_as": lost_as}


def measure_bodies() -> dict:
    from hypothesis import given

    from sce_checks.models import openai as backend
    from tests.helpers.http_fuzz import BODY_EXAMPLES, fuzz, response_bodies

    counts = {"tried": 0, "survived": 0, "lost": 0, "miscounted": 0}
    lost_as: dict[str, int] = {}

    @fuzz(BODY_EXAMPLES)
    @given(response_bodies())
    def run(body):
        counts["tried"] += 1
        try:
            backend.OpenAIChatModel("m", "http://127.0.0.1:9")._parse(body)
        except Exception as exc:  # noqa: BLE001 - the old version raised its retry signal
            if type(exc).__name__ != "_Retryable":
                counts["lost"] += 1
                lost_as[type(exc).__name__] = lost_as.get(type(exc).__name__, 0) + 1
                return
        counts["survived"] += 1

    run()
    return {"measurement": "response bodies", **counts, "lost_as": lost_as}


def measure_audit(root: Path, names: list[str]) -> list[dict]:
    from tests.helpers.projects import TOY_TOML
    from tests.helpers.rule_models import TOY, RuleModel, toy_rule
    from tests.openai_server import ChoiceLM, FakeOpenAIServer

    rule = RuleModel(TOY, toy_rule, "boundary")

    def crashing(messages, body):  # the probe's question is no toy record: the handler fails
        return rule.chat([messages], None)[0]

    def answering(messages, body):
        try:
            return rule.chat([messages], None)[0]
        except KeyError:  # the probe's question
            return '{"answer": "blue"}'

    rows = []
    for name in names:
        fault, extra, clean_exit = AUDIT_CASES[name]
        logprobs = name.startswith("lp-")
        with FakeOpenAIServer(answering) as second, FakeOpenAIServer(
                crashing if name == "no-logprobs-probe-crashes" else answering, hang_s=60, logprobs=logprobs,
                lm=ChoiceLM({"No": 0.4, "Yes": 0.6}) if logprobs else None,
                flavour="llama-server" if logprobs else None) as server:
            server.always = fault
            server.redirect_to = f"{second.url}/chat/completions"
            if name == "redirect-302-other-host":
                server.redirect_status, server.redirect_models = 302, f"{second.url}/models"
            work = tempfile.mkdtemp(prefix="sce-http-faults-")
            Path(work, "toy.toml").write_text(TOY_TOML)
            env = dict(os.environ, PYTHONPATH=str(root), HF_HUB_OFFLINE="1", SCE_CHECKS_API_KEY=KEY,
                       SCE_CHECKS_CACHE_DIR=f"{work}/cache")
            command = [sys.executable, "-m", "sce_checks.cli", "--model", f"openai:toy-rule@{server.url}",
                       "--dataset", "toy.toml", "--limit", "3", "--no-cache", "-q", *extra]
            started = time.monotonic()
            try:  # (the crashing server's handler tracebacks go to this process's stderr: muted)
                with contextlib.redirect_stderr(io.StringIO()):
                    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True,
                                          timeout=AUDIT_DEADLINE_S)
                code, output = done.returncode, done.stdout + done.stderr
            except subprocess.TimeoutExpired as exc:
                code, output = "hung", f"{exc.stdout or ''}{exc.stderr or ''}"
            wall = time.monotonic() - started
            second_headers = [r["headers"] for r in second.requests] + second.get_headers
            row = {
                "case": name, "exit": code, "wall_s": round(wall, 1),
                "traceback": bool(re.search(r"^(E\s{3}|Traceback)", output, re.M)),  # pytest's or Python's
                "key_printed": KEY in output, "requests": len(server.requests),
                "second_host_requests": len(second.requests) + second.gets,
                "second_host_got_key": any(KEY in json.dumps(h) for h in second_headers),
                "last_line": output.strip().splitlines()[-1][:200] if output.strip() else "",
            }
        row["clean"] = (row["exit"] == clean_exit and not row["traceback"] and not row["key_printed"]
                        and not row["second_host_requests"])
        rows.append(row)
        print(json.dumps(row), flush=True)
    lost = [r["case"] for r in rows if not r["clean"]]
    summary = {"measurement": "sce-audit against the fault server", "tried": len(rows),
               "survived": len(rows) - len(lost), "lost": len(lost), "miscounted": 0, "lost_cases": lost}
    return [summary]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("logprobs", "bodies", "audit"))
    parser.add_argument("cases", nargs="*", help=f"audit cases (default: all): {', '.join(AUDIT_CASES)}")
    parser.add_argument("--root", type=Path, default=HERE, help="folder holding the sce_checks to measure")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    import tests  # noqa: F401 - tests/ from this checkout, whatever --root holds
    sys.path.insert(0, str(args.root))  # sce_checks from --root
    if args.what == "logprobs":
        print(json.dumps({"root": str(args.root), **measure_logprobs()}))
    elif args.what == "bodies":
        print(json.dumps({"root": str(args.root), **measure_bodies()}))
    else:
        for row in measure_audit(args.root.resolve(), args.cases or list(AUDIT_CASES)):
            print(json.dumps({"root": str(args.root), **row}))


if __name__ == "__main__":
    main()
