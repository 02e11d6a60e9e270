"""A real OpenAI-compatible chat-completions server on 127.0.0.1 for tests.

    with FakeOpenAIServer(reply=lambda messages, body: "hi") as server:
        server.faults.extend(["429", "500"])      # the next two requests fail so
        model = OpenAIChatModel("m", server.url)

Faults (consumed one per request, in order): "429" (Retry-After: 0.2), "500", "503", "401",
"hang" (sleeps past the client's timeout), "badjson" (a non-JSON 200 body), "nochoices" (JSON
without choices), "drop" (closes the connection without answering). With ``logprobs=True`` the
server returns token log-probabilities: the reply is cut into tokens of up to 4 characters, each
with logprob log(0.9), and ``top_logprobs`` from ``alternatives(messages, position) -> {token: logprob}``.
Every request is recorded (headers and JSON body) in ``server.requests``.
"""

from __future__ import annotations

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


def tokens_of(text: str) -> list[str]:
    return [text[i : i + 4] for i in range(0, len(text), 4)]


class FakeOpenAIServer:
    def __init__(self, reply: Callable[[list, dict], str], logprobs: bool = False,
                 alternatives: Callable[[list, int], dict] | None = None, hang_s: float = 2.0):
        self.reply, self.logprobs, self.alternatives, self.hang_s = reply, logprobs, alternatives, hang_s
        self.faults: list[str] = []
        self.requests: list[dict] = []
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

    def _completion(self, body: dict) -> dict:
        messages = body["messages"]
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
                self._send(200, json.dumps({"data": [{"id": "fake"}]}).encode())

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
                    reply(200, json.dumps(server._completion(body)).encode())
                finally:
                    if not done:
                        with server._lock:
                            server.in_flight -= 1

        return Handler
