"""Any OpenAI-compatible chat-completions server: vLLM, llama.cpp server, Ollama, OpenAI.

This is how audits scale out: the server holds the model (on as many GPUs as it likes) and the
audit stays a client. Requests go in parallel (bounded), with timeouts and retries:

- retried, with exponential backoff and jitter: HTTP 408, 429, 5xx, connection errors, timeouts,
  and bodies that are not a chat completion (non-JSON, no choices/message/content); a
  ``Retry-After`` header (seconds or an HTTP date) is honoured, capped at ``backoff_max_s``;
- not retried: other 4xx (401 bad key, 404 unknown model, 400 bad request): one clear error;
- after the last attempt: `BackendError` naming the URL, the model, the last problem and the
  number of attempts.

The API key is read from ``$SCE_CHECKS_API_KEY``, else ``$OPENAI_API_KEY`` (or the variable named
by ``api_key_env``). It is sent as a Bearer token and never logged, reported or put in identity.

Option scoring uses the server's ``logprobs`` (``top_logprobs=20``): the reply is generated
greedily with log-probabilities; at the first token where the options' texts part, each option's
next token is looked up among the top log-probabilities. Each option's score is the log-prob of the
shared tokens plus that of its first distinct token (``-inf`` when not among the top 20). This
ranks the options exactly as the model's next-token distribution does and gives their
distribution conditional on the shared prefix, but it is not the full-reply log-probability
that the hf backend computes (documented deviation; docs/backends-openai.md). Servers that return
no logprobs are detected on the first call: ``can_score()`` then turns False and checks fall back to
generating and parsing.
"""

from __future__ import annotations

import email.utils
import json
import math
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from sce_checks import progress
from sce_checks.errors import BackendError
from sce_checks.models.base import CallStats, Conversation, Decoding

RETRY_STATUS = {408, 429, 500, 502, 503, 504}
TOP_LOGPROBS = 20


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class OpenAIChatModel:
    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        max_concurrency: int = 8,
        timeout_s: float = 60.0,
        max_retries: int = 5,
        api_key_env: str | None = None,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.max_concurrency = max(1, int(max_concurrency))
        self.timeout_s = float(timeout_s)
        self.max_retries = max(0, int(max_retries))
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        names = [api_key_env] if api_key_env else ["SCE_CHECKS_API_KEY", "OPENAI_API_KEY"]
        self._key = next((os.environ[n] for n in names if os.environ.get(n)), None)
        self.stats = CallStats()
        self._logprobs: bool | None = None  # unknown until the first scoring call
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIChatModel(model={self.model!r}, base_url={self.base_url!r})"

    def identity(self) -> dict[str, Any]:
        return {"backend": "openai", "model": self.model, "base_url": self.base_url}

    # -- protocol ------------------------------------------------------------------------------
    def chat(self, conversations: Sequence[Conversation], decoding: Decoding) -> list[str]:
        bodies = [self._body(c, decoding) for c in conversations]
        self.stats.chat_calls += 1
        self.stats.chat_conversations += len(conversations)
        return [self._content(r) for r in self._post_all(bodies)]

    def can_score(self) -> bool:
        return self._logprobs is not False

    def score_options(self, conversations: Sequence[Conversation], options: Sequence[str]) -> list[list[float]]:
        options = list(options)
        bodies = []
        for c in conversations:
            body = self._body(c, Decoding(max_new_tokens=max(8, _longest_tokens(options))))
            body.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
            bodies.append(body)
        self.stats.score_calls += 1
        self.stats.score_conversations += len(conversations)
        out = []
        for response in self._post_all(bodies):
            tokens = _token_logprobs(response)
            if tokens is None:
                with self._lock:
                    self._logprobs = False
                raise BackendError(
                    f"{self.base_url} (model {self.model!r}) returned no logprobs; use prediction mode 'generate' or 'auto'"
                )
            self._logprobs = True
            out.append(_option_scores(tokens, options))
        return out

    # -- HTTP ----------------------------------------------------------------------------------
    def _body(self, conversation: Conversation, decoding: Decoding) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": conversation,
            "temperature": decoding.temperature,
            "max_tokens": decoding.max_new_tokens,
            "top_p": decoding.top_p,
        }
        if decoding.seed is not None:
            body["seed"] = decoding.seed
        return body

    def _post_all(self, bodies: list[dict]) -> list[dict]:
        out: list[dict] = []
        if len(bodies) <= 1:
            for b in bodies:
                out.append(self._post(b))
                progress.advance(1)
            return out
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(bodies))) as pool:
            for response in pool.map(self._post, bodies):  # in order; progress from this thread
                out.append(response)
                progress.advance(1)
        return out

    def _post(self, body: dict) -> dict:
        url = f"{self.base_url}/chat/completions"
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        attempts = self.max_retries + 1
        problem = ""
        for attempt in range(attempts):
            try:
                request = urllib.request.Request(url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:
                    raw = resp.read()
                return self._parse(raw)
            except urllib.error.HTTPError as exc:
                detail = _trim(exc.read())
                if exc.code not in RETRY_STATUS:
                    raise BackendError(f"{url} (model {self.model!r}) answered HTTP {exc.code}: {detail}") from None
                problem = f"HTTP {exc.code}: {detail}"
                wait = _retry_after(exc.headers.get("Retry-After"))
            except _Retryable as exc:
                problem, wait = str(exc), exc.retry_after
            except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                if isinstance(reason, ConnectionRefusedError) or "refused" in str(reason).lower():
                    problem = f"the server at {self.base_url} is unreachable (connection refused): check the URL or start the server"
                elif isinstance(reason, (socket.timeout, TimeoutError)) or "timed out" in str(reason).lower():
                    problem = f"no answer within {self.timeout_s:g} s"
                else:
                    problem = f"connection error: {reason}"
                wait = None
            if attempt + 1 < attempts:
                time.sleep(self._backoff(attempt, wait))
        raise BackendError(f"{url} (model {self.model!r}) failed after {attempts} attempts; last: {problem}")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(0.0, retry_after), self.backoff_max_s)
        base = min(self.backoff_max_s, self.backoff_base_s * (2**attempt))
        return base * (0.5 + random.random() / 2)

    def _parse(self, raw: bytes) -> dict:
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _Retryable(f"the server sent a body that is not JSON: {_trim(raw)}") from None
        try:
            message = data["choices"][0]["message"]
            if not isinstance(message.get("content"), str):
                raise TypeError
        except (KeyError, IndexError, TypeError, AttributeError):
            raise _Retryable(f"the server sent JSON that is not a chat completion: {_trim(raw)}") from None
        return data

    @staticmethod
    def _content(response: dict) -> str:
        return response["choices"][0]["message"]["content"]


def _trim(raw: bytes | str, limit: int = 200) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _longest_tokens(options: Sequence[str]) -> int:
    return max((len(o) for o in options), default=8)  # characters bound tokens from above


def _token_logprobs(response: dict) -> list[dict] | None:
    try:
        content = response["choices"][0]["logprobs"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, list) and content else None


def _option_scores(tokens: list[dict], options: list[str]) -> list[float]:
    """Walk the generated tokens; at the first token where options part, read each option's
    continuation among the top log-probabilities (see the module docstring)."""
    scores = [0.0] * len(options)
    alive = list(range(len(options)))
    pos = 0  # characters consumed
    for tok in tokens:
        text = tok.get("token", "")
        lp = float(tok.get("logprob", -math.inf))
        following = [i for i in alive if options[i][pos:].startswith(text) and text]
        if len(following) == len(alive):
            for i in alive:
                scores[i] += lp
            pos += len(text)
            if all(pos >= len(options[i]) for i in alive):
                break
            continue
        top = {t.get("token", ""): float(t.get("logprob", -math.inf)) for t in tok.get("top_logprobs", [])}
        for i in alive:
            rest = options[i][pos:]
            best = max((v for t, v in top.items() if t and rest.startswith(t)), default=-math.inf)
            scores[i] += best
        return scores
    return scores
