"""A real OpenAI-compatible chat-completions server on 127.0.0.1 for tests.

    with FakeOpenAIServer(reply=lambda messages, body: "hi") as server:
        server.faults.extend(["429", "500"])      # the next two requests fail so
        model = OpenAIChatModel("m", server.url)

Faults (consumed one per request, in order): "429" (Retry-After: 0.2), "500", "503", "401",
"hang" (sleeps past the client's timeout), "badjson" (a non-JSON 200 body), "nochoices" (JSON
without choices), "drop" (closes the connection without answering). With ``logprobs=True`` the
server returns token log-probabilities: the reply is cut into tokens of up to 4 characters, each
with logprob log(0.9), and ``top_logprobs`` from ``alternatives(messages, position) -> {token: logprob}``.
Every request is recorded (headers and JSON body) in ``server.requests``; GET requests (the model
list) are counted in ``server.gets``.

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

With ``lm=`` the flavour's reading of the prefill goes to a fake language model
``lm(messages, prefill) -> [(token, logprob, {alternative: logprob})]`` (`ChoiceLM`), instead of
``reply``/``alternatives``. ``refuse_response_format=STATUS`` answers requests carrying
``response_format`` with that status and an error naming it; ``refuse_prefill=True`` answers a
request whose last message is the assistant's with HTTP 400.
"""

from __future__ import annotations

import json
import math
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


class FakeOpenAIServer:
    def __init__(self, reply: Callable[[list, dict], str] | None = None, logprobs: bool = False,
                 alternatives: Callable[[list, int], dict] | None = None, hang_s: float = 2.0, *,
                 flavour: str | None = None, lm: Callable[[list, str | None], list] | None = None,
                 refuse_response_format: int | None = None, refuse_prefill: bool = False):
        self.reply, self.logprobs, self.alternatives, self.hang_s = reply, logprobs, alternatives, hang_s
        if flavour is not None and flavour not in FLAVOURS:
            raise ValueError(f"unknown flavour {flavour!r}")
        self.flavour, self.lm = flavour, lm
        self.refuse_response_format, self.refuse_prefill = refuse_response_format, refuse_prefill
        self.faults: list[str] = []
        self.requests: list[dict] = []
        self.gets = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
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

            def do_GET(self):
                with server._lock:
                    server.gets += 1
                card = {"id": "fake"}
                if server.flavour:
                    card = {"id": "fake", "object": "model", "owned_by": FLAVOURS[server.flavour][0]}
                self._send(200, json.dumps({"object": "list", "data": [card]}).encode())

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.requests.append({"headers": dict(self.headers), "body": body})
                    fault = server.faults.pop(0) if server.faults else None
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
                    time.sleep(0.02)  # let concurrent requests overlap
                    if fault == "hang":
                        server._stop.wait(server.hang_s)
                        return
                    if fault == "drop":
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    if fault in ("429", "500", "503", "401"):
                        headers = {"Retry-After": "0.2"} if fault == "429" else None
                        reply(int(fault), json.dumps({"error": {"message": f"fault {fault}"}}).encode(), headers)
                        return
                    if fault == "badjson":
                        reply(200, b"<html>oops</html>")
                        return
                    if fault == "nochoices":
                        reply(200, json.dumps({"id": "x"}).encode())
                        return
                    refused = server._refusal(body)
                    if refused:
                        status, message = refused
                        reply(status, json.dumps({"error": {"message": message, "type": "invalid_request_error"}}).encode())
                        return
                    reply(200, json.dumps(server._completion(body)).encode())
                finally:
                    if not done:
                        with server._lock:
                            server.in_flight -= 1

        return Handler
