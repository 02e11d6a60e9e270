"""A real OpenAI-compatible chat-completions server on 127.0.0.1 for tests.

    with FakeOpenAIServer(reply=lambda messages, body: "hi") as server:
        server.faults.extend(["429", "500"])      # the next two requests fail so
        model = OpenAIChatModel("m", server.url)

Faults are consumed one per POST request, in order, from ``server.faults``; once it is empty,
``server.always`` (None: no fault) applies to every request, which makes a dead server:

=================  ==============================================================================
fault              the answer
=================  ==============================================================================
"429"              HTTP 429 with Retry-After: 0.2
"429-long"         HTTP 429 with Retry-After: 3600
"429-date"         HTTP 429 with a Retry-After that is an HTTP date a day ahead
"slow-headers"     the status line, then one header line every 0.1 s, never ending (slowloris)
"500", "503"       that status, with a JSON error
"401"              HTTP 401 with a JSON error
"echo-key-401"     HTTP 401 whose error message echoes the request's Authorization header
"hang"             nothing for ``hang_s`` seconds (past the client's timeout), then the connection
                   closes
"drop"             the connection closes without an answer
"trickle"          status line and headers at once, then the (valid) body at ``trickle_bps``
                   bytes a second (2)
"trickle-head"     the whole answer, status line included, at ``trickle_bps`` bytes a second
"truncated"        a Content-Length of the whole body, half of it, then the connection closes
"badstatus"        a status line that is not HTTP, then the connection closes
"badjson"          a 200 body that is not JSON
"nochoices"        a JSON 200 body without choices
"notobject"        a JSON 200 body that is a list, not an object
"hugeint"          a valid completion with an integer of 5,000 digits in ``usage``
"dupkey"           a valid completion whose message names ``content`` twice (the reply, then
                   another text)
"huge"             a valid completion padded to 7 MiB (a ``padding`` string)
"deepnest"         a valid completion with 50,000 nested lists in it
"redirect"         HTTP ``server.redirect_status`` (307) to ``server.redirect_to`` (a URL or a
                   path; e.g. a second server)
"nologprobs"       a valid completion without ``logprobs``
"lp-null"          logprobs whose first entry has ``"logprob": null``
"lp-notobject"     logprobs whose first entry is a string, not an object
"lp-nan"           logprobs whose first entry has ``"logprob": NaN`` (as Python's json writes it)
"lp-badtop"        logprobs whose first entry has ``top_logprobs`` that is a string
=================  ==============================================================================

``server.redirect_models`` (a URL) answers GET /models with that redirect there. With ``logprobs=True`` the
server returns token log-probabilities: the reply is cut into tokens of up to 4 characters, each
with logprob log(0.9), and ``top_logprobs`` from ``alternatives(messages, position) -> {token: logprob}``.
Every request is recorded (path, headers and JSON body) in ``server.requests``; GET requests (the
model list) are counted in ``server.gets`` and their headers kept in ``server.get_headers``.
``server.in_flight`` / ``server.max_in_flight`` count the POST requests being answered (now /
at most at once); ``latency_s`` (0.02) is how long each one takes, so concurrent requests overlap.
GET ``/stats`` answers ``{"requests", "max_in_flight"}`` (for a server in another process).

As a program (benchmarks/bench_openai_concurrency.py starts it so, apart from the client's
process): ``python -m tests.openai_server --latency 0.1`` prints its base URL on one line and
serves echo replies until its standard input closes.

Server flavours (``flavour=``) mimic how real servers read a request whose last message is the
assistant's (a prefill) and what they say in GET /models (``owned_by``):

==================  ===========  ===============================================================
flavour             owned_by     final assistant message
==================  ===========  ===============================================================
"vllm"              vllm         continued with ``continue_final_message: true`` and
                                 ``add_generation_prompt: false`` (both true: HTTP 400); else a
                                 new turn
"sglang"            sglang       continued with ``continue_final_message: true``; else a new turn
"llama-server"      llamacpp     always continued (llama.cpp's default ``--prefill-assistant``)
"llama-cpp-python"  me           never: a new turn
"openai"            system       never: a new turn; unknown body fields answer HTTP 400
==================  ===========  ===============================================================

Sampling: `sampled_reply` is a ``reply`` that honours ``temperature`` and ``seed`` as a real
server does: at temperature 0 one text per conversation; above 0 words drawn from a generator
seeded by the request's ``seed`` and messages (the same seed and messages, the same reply; another
seed, another reply), and from fresh randomness when the request has no seed.

With ``lm=`` the flavour's reading of the prefill goes to a fake language model
``lm(messages, prefill) -> [(token, logprob, {alternative: logprob})]`` (`ChoiceLM`), instead of
``reply``/``alternatives``. ``refuse_response_format=STATUS`` answers requests carrying
``response_format`` with that status and an error naming it; ``refuse_prefill=True`` answers a
request whose last message is the assistant's with HTTP 400.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import math
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

FLAVOURS = {  # owned_by, when a final assistant message is continued, unknown fields refused
    "vllm": ("vllm", "continue_final_message", False),
    "sglang": ("sglang", "continue_final_message", False),
    "llama-server": ("llamacpp", "always", False),
    "llama-cpp-python": ("me", "never", False),
    "openai": ("system", "never", True),
}
OPENAI_FIELDS = {  # what OpenAI's chat completions accept (the part a client of ours may send)
    "model", "messages", "temperature", "max_tokens", "max_completion_tokens", "top_p", "seed", "n",
    "stop", "stream", "logprobs", "top_logprobs", "response_format", "presence_penalty",
    "frequency_penalty", "logit_bias", "user", "tools", "tool_choice",
}


def tokens_of(text: str) -> list[str]:
    return [text[i : i + 4] for i in range(0, len(text), 4)]


WORDS = ("above", "below", "income", "age", "hours", "degree", "married", "single", "yes", "no", "maybe",
         "record", "answer", "field", "value", "change")


def sampled_reply(messages: list, body: dict) -> str:
    """A reply drawn as a sampling server draws it (module docstring): eight words of `WORDS`."""
    text = json.dumps(messages, sort_keys=True)
    if not body.get("temperature"):
        draw = random.Random(hashlib.sha256(text.encode()).hexdigest())  # greedy: a function of the messages
    elif body.get("seed") is None:
        draw = random.Random()  # unseeded: fresh randomness every time
    else:
        draw = random.Random(f"{body['seed']}|{body.get('temperature')}|{body.get('top_p')}|{text}")
    return " ".join(draw.choice(WORDS) for _ in range(8))


class ChoiceLM:
    """A fake model with a fixed preference among ``options`` when it writes the answer field.

    Continuing a prefill that ends with ``{"answer": "`` it writes an option: the first token
    (4 characters) of each option among the top log-probabilities with log ``probs[option]``.
    Answering in a new turn it writes ``{"answer": "<its option>"}`` in 4-character tokens (log 0.9
    each; at the token where the options part, each option's token with log ``probs``), except
    where ``digress(messages)`` is true: then it writes ``The review is ...`` and offers only
    ``{"an`` as an alternative at the first position (the answer format, not yet an option).
    Continuing a complete answer (``{"answer": "blue"``, the backend's probe) it closes it: ``}``.
    The probe question (colours) is answered "blue" (0.9) or "red" (0.1).
    """

    ANSWER = '{"answer": "'

    def __init__(self, probs: dict[str, float], digress: Callable[[list], bool] = lambda messages: False):
        self.probs, self.digress = probs, digress

    def _probs(self, messages: list) -> dict[str, float]:
        asked = " ".join(m["content"] for m in messages if m["role"] == "user")
        return {"blue": 0.9, "red": 0.1} if '"blue"' in asked else self.probs

    def __call__(self, messages: list, prefill: str | None) -> list[tuple[str, float, dict]]:
        probs = self._probs(messages)
        best = max(probs, key=probs.get)
        if prefill is not None and prefill.endswith(self.ANSWER):
            first = {tokens_of(o)[0]: math.log(p) for o, p in probs.items()}
            rest = tokens_of(best + '"}')
            return [(rest[0], math.log(probs[best]), first)] + [(t, math.log(0.9), {}) for t in rest[1:]]
        if prefill is not None and prefill.startswith(self.ANSWER) and prefill.endswith('"'):
            return [("}", math.log(0.9), {" or": math.log(0.05)})]  # a complete answer: close it
        if self.digress(messages):
            text = f"The review is {best.lower()}, I think."
            return [(t, math.log(0.6) if i == 0 else math.log(0.9), {'{"an': math.log(0.3)} if i == 0 else {})
                    for i, t in enumerate(tokens_of(text))]
        reply = tokens_of(json.dumps({"answer": best}))
        part = next(i for i in range(len(reply)) if any(tokens_of(json.dumps({"answer": o}))[i] != reply[i] for o in probs))
        out = []
        for i, t in enumerate(reply):
            if i == part:
                out.append((t, math.log(probs[best]), {tokens_of(json.dumps({"answer": o}))[i]: math.log(p) for o, p in probs.items()}))
            else:
                out.append((t, math.log(0.9), {}))
        return out


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the listen backlog: 5 by default, which drops bursts of connections


class FakeOpenAIServer:
    def __init__(self, reply: Callable[[list, dict], str] | None = None, logprobs: bool = False,
                 alternatives: Callable[[list, int], dict] | None = None, hang_s: float = 2.0, *,
                 flavour: str | None = None, lm: Callable[[list, str | None], list] | None = None,
                 refuse_response_format: int | None = None, refuse_prefill: bool = False, latency_s: float = 0.02):
        self.reply, self.logprobs, self.alternatives, self.hang_s = reply, logprobs, alternatives, hang_s
        self.latency_s = latency_s
        if flavour is not None and flavour not in FLAVOURS:
            raise ValueError(f"unknown flavour {flavour!r}")
        self.flavour, self.lm = flavour, lm
        self.refuse_response_format, self.refuse_prefill = refuse_response_format, refuse_prefill
        self.faults: list[str] = []
        self.always: str | None = None
        self.redirect_to: str | None = None
        self.redirect_status = 307
        self.redirect_models: str | None = None
        self.trickle_bps = 2.0
        self.requests: list[dict] = []
        self.gets = 0
        self.get_headers: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> "FakeOpenAIServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _refusal(self, body: dict) -> tuple[int, str] | None:
        """(status, message) for a request this server refuses, else None."""
        owned, prefill, strict = FLAVOURS.get(self.flavour, (None, "never", False))
        if strict:
            unknown = sorted(set(body) - OPENAI_FIELDS)
            if unknown:
                return 400, f"Unrecognized request argument supplied: {unknown[0]}"
        if self.refuse_response_format and "response_format" in body:
            return self.refuse_response_format, "response_format of type json_schema is not supported by this server"
        final_assistant = bool(body.get("messages")) and body["messages"][-1].get("role") == "assistant"
        if self.refuse_prefill and final_assistant:
            return 400, "Assistant response prefill is incompatible with enable_thinking."
        if self.flavour == "vllm" and body.get("continue_final_message") and body.get("add_generation_prompt", True):
            return 400, "Cannot set both `continue_final_message` and `add_generation_prompt` to True."
        return None

    def _prefill(self, body: dict) -> str | None:
        """The final assistant message's text where this server continues it, else None."""
        messages = body["messages"]
        if not messages or messages[-1].get("role") != "assistant":
            return None
        _, when, _ = FLAVOURS.get(self.flavour, (None, "never", False))
        if when == "always" or (when == "continue_final_message" and body.get("continue_final_message")):
            return messages[-1]["content"]
        return None

    def _completion(self, body: dict) -> dict:
        messages = body["messages"]
        if self.lm is not None:
            return self._lm_completion(body)
        text = self.reply(messages, body)
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        if self.logprobs and body.get("logprobs"):
            content = []
            for i, tok in enumerate(tokens_of(text)):
                top = {tok: math.log(0.9)}
                if self.alternatives:
                    top.update(self.alternatives(messages, i))
                content.append({"token": tok, "logprob": math.log(0.9),
                                "top_logprobs": [{"token": t, "logprob": v} for t, v in top.items()]})
            choice["logprobs"] = {"content": content}
        return {"id": "x", "object": "chat.completion", "model": body.get("model"), "choices": [choice]}

    def _lm_completion(self, body: dict) -> dict:
        tokens = self.lm(body["messages"], self._prefill(body))[: max(1, int(body.get("max_tokens") or 16))]
        text = "".join(t for t, _, _ in tokens)
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        if self.logprobs and body.get("logprobs"):
            content = []
            for tok, lp, alternatives in tokens:
                top = {tok: lp, **alternatives}
                top = dict(sorted(top.items(), key=lambda kv: -kv[1])[: int(body.get("top_logprobs") or 0)])
                content.append({"token": tok, "logprob": lp,
                                "top_logprobs": [{"token": t, "logprob": v} for t, v in top.items()]})
            choice["logprobs"] = {"content": content}
        return {"id": "x", "object": "chat.completion", "model": body.get("model"), "choices": [choice]}

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, payload: bytes, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            def _trickle(self, data: bytes) -> None:
                """Write ``data`` at ``server.trickle_bps`` bytes a second until done, the client
                leaves or the server stops."""
                for i in range(len(data)):
                    if server._stop.wait(1 / server.trickle_bps):
                        return
                    try:
                        self.wfile.write(data[i : i + 1])
                    except OSError:
                        return

            def _slow_headers(self) -> None:
                """A status line, then a header line every 0.1 s until the client leaves or the
                server stops: an answer whose headers never end."""
                self.close_connection = True
                try:
                    self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                    i = 0
                    while not server._stop.wait(0.1):
                        self.wfile.write(f"X-Slow-{i}: x\r\n".encode())
                        i += 1
                except OSError:
                    return

            def do_GET(self):
                if self.path.endswith("/stats"):
                    with server._lock:
                        stats = {"requests": len(server.requests), "max_in_flight": server.max_in_flight}
                    self._send(200, json.dumps(stats).encode())
                    return
                with server._lock:
                    server.gets += 1
                    server.get_headers.append(dict(self.headers))
                if server.redirect_models:
                    self._send(server.redirect_status, b"", {"Location": server.redirect_models})
                    return
                card = {"id": "fake"}
                if server.flavour:
                    card = {"id": "fake", "object": "model", "owned_by": FLAVOURS[server.flavour][0]}
                self._send(200, json.dumps({"object": "list", "data": [card]}).encode())

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    fault = server.faults.pop(0) if server.faults else server.always
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                done = False

                def reply(code, payload, headers=None):
                    # leave the in-flight count BEFORE answering: a client that got its answer
                    # may send its next request at once, and must not be counted twice
                    nonlocal done
                    with server._lock:
                        server.in_flight -= 1
                    done = True
                    self._send(code, payload, headers)

                try:
                    time.sleep(server.latency_s)  # let concurrent requests overlap
                    if fault == "hang":
                        server._stop.wait(server.hang_s)
                        return
                    if fault == "drop":
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    if fault in _REFUSALS:
                        reply(*_REFUSALS[fault]())
                        return
                    if fault == "slow-headers":
                        self._slow_headers()
                        return
                    if fault == "echo-key-401":
                        said = f"Incorrect API key provided: {self.headers.get('Authorization')}"
                        reply(401, json.dumps({"error": {"message": said}}).encode())
                        return
                    if fault == "redirect":
                        reply(server.redirect_status, b"", {"Location": server.redirect_to})
                        return
                    if fault == "badstatus":
                        self.close_connection = True
                        self.wfile.write(b"SPAM 200 sure\r\n\r\n")
                        return
                    refused = server._refusal(body)
                    if refused:
                        status, message = refused
                        reply(status, json.dumps({"error": {"message": message, "type": "invalid_request_error"}}).encode())
                        return
                    completion = server._completion(body)
                    payload = _stretched(json.dumps(_spoil(completion, fault)).encode(), fault)
                    if fault == "truncated":
                        self.close_connection = True
                        self.send_response(200)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(payload)))
                        self.end_headers()
                        self.wfile.write(payload[: len(payload) // 2])
                        return
                    if fault == "trickle":
                        self.close_connection = True
                        self.send_response(200)
                        self.send_header("Content-Length", str(len(payload)))
                        self.end_headers()
                        self._trickle(payload)
                        return
                    if fault == "trickle-head":
                        self.close_connection = True
                        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
                        self._trickle(head + payload)
                        return
                    reply(200, payload)
                finally:
                    if not done:
                        with server._lock:
                            server.in_flight -= 1

        return Handler


def _error(status: int, message: str, headers: dict | None = None) -> tuple[int, bytes, dict | None]:
    return status, json.dumps({"error": {"message": message}}).encode(), headers


# faults answered at once, before the request is read: fault -> (status, body, headers), made when
# asked (a date is now's)
_REFUSALS = {
    "429": lambda: _error(429, "fault 429", {"Retry-After": "0.2"}),
    "500": lambda: _error(500, "fault 500"),
    "503": lambda: _error(503, "fault 503"),
    "401": lambda: _error(401, "fault 401"),
    "429-long": lambda: _error(429, "slow down", {"Retry-After": "3600"}),
    "429-date": lambda: _error(429, "slow down", {"Retry-After": email.utils.formatdate(time.time() + 86400,
                                                                                         usegmt=True)}),
    "badjson": lambda: (200, b"<html>oops</html>", None),
    "nochoices": lambda: (200, json.dumps({"id": "x"}).encode(), None),
    "notobject": lambda: (200, b"[1, 2, 3]", None),
}


def _stretched(payload: bytes, fault: str | None) -> bytes:
    """A valid completion's bytes as a body fault makes them (module docstring)."""
    if fault == "dupkey":
        return payload.replace(b'"content": ', b'"content": "something else", "content": ', 1)
    if fault == "huge":
        return payload[:-1] + b', "padding": "' + b"x" * (7 * 2**20) + b'"}'
    if fault == "hugeint":
        return payload[:-1] + b', "usage": {"total_tokens": 1' + b"0" * 5000 + b"}}"
    if fault == "deepnest":
        return payload[:-1] + b', "extra": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    return payload


def _spoil(completion: dict, fault: str | None) -> dict:
    """The completion with the logprobs a logprobs fault asks for (module docstring)."""
    choice = completion["choices"][0]
    if fault == "nologprobs":
        choice.pop("logprobs", None)
    entries = choice.get("logprobs", {}).get("content") or []
    if fault in ("lp-null", "lp-notobject", "lp-nan", "lp-badtop") and entries:
        if fault == "lp-null":
            entries[0]["logprob"] = None
        elif fault == "lp-notobject":
            entries[0] = entries[0]["token"]
        elif fault == "lp-nan":
            entries[0]["logprob"] = float("nan")
        else:
            entries[0]["top_logprobs"] = "garbage"
    return completion


def _serve_until_stdin_closes() -> None:
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="a local OpenAI-compatible server that echoes, with latency")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per request (default 0.1)")
    args = parser.parse_args()
    with FakeOpenAIServer(lambda messages, body: "echo: " + messages[-1]["content"][:40], latency_s=args.latency) as server:
        print(server.url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    _serve_until_stdin_closes()
