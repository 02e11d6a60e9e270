"""Any OpenAI-compatible chat-completions server: vLLM, llama.cpp server, SGLang, Ollama, OpenAI.

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

Structured elicitation: a `Decoding` with ``json_schema`` sends ``response_format`` of type
``json_schema`` (``strict``). A server that refuses it gets one `UserInputError` naming the setting
(not retried).

Option scoring reads the server's ``logprobs`` (``top_logprobs=20``) at the first token where the
options' texts part. What a server supports is detected once per model object by a probe
(`ScoringSupport`, docs/backends-openai.md):

- *prefill*: the server continues a final assistant message. The request then ends with an
  assistant message holding the options' shared prefix (``{"answer": "``), and the first generated
  position's top log-probabilities hold the model's choice among the options, whatever the model
  would have written had it been free to digress. llama.cpp's ``llama-server`` does so for a plain
  final assistant message; vLLM and SGLang need ``continue_final_message`` (sent only to servers
  whose ``/models`` says ``owned_by`` vllm or sglang: OpenAI rejects unknown body fields);
- *walk*: no prefill (llama-cpp-python's server, OpenAI): the reply is generated greedily and its
  tokens are walked to the point where the options part;
- *none*: no logprobs at all: ``can_score()`` is False and checks generate and parse instead.

Each option's score is the log-prob of the shared tokens after the prefill plus that of its first
distinct token (``-inf`` when not among the top 20). This ranks the options as the model's
next-token distribution does and gives their distribution conditional on the shared prefix, but
it is not the full-reply log-probability that the hf backend computes (documented deviation).
A row where no option can be read (the greedy reply left the answer format before the options
part, or no option among the top 20) is all ``-inf``: undecided, for the caller to generate.
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
from dataclasses import dataclass
from typing import Any, Sequence

from sce_checks import progress
from sce_checks.config import default
from sce_checks.errors import BackendError, UserInputError
from sce_checks.models.base import CallStats, Conversation, Decoding

RETRY_STATUS = {408, 429, 500, 502, 503, 504}
TOP_LOGPROBS = 20
SCHEMA_REFUSAL_STATUS = {400, 404, 422, 501}
# Body fields that make a server continue a final assistant message, by the server family its
# GET /models names in ``owned_by``. Sent to no other server (OpenAI answers 400 to unknown fields).
CONTINUE_FIELDS = {
    "vllm": {"continue_final_message": True, "add_generation_prompt": False},
    "sglang": {"continue_final_message": True},
}
# The probe: a question with its JSON answer prefilled up to the closing brace. A server that
# continues the prefill gets "}" next from any model that writes JSON; one that opens a new turn
# gets a reply that starts afresh ({"answer"..., prose), never with a closing brace. (Reading
# whether the model continues inside the answer string would depend on the model: SmolLM2-135M
# writes `The sky...` after `{"answer": "` even when the prefill is honoured.)
PROBE_CONVERSATION: Conversation = [{
    "role": "user",
    "content": 'What colour is the sky on a clear day? Reply with a JSON object only, in the form '
               '{"answer": "<option>"}, where <option> is "blue" or "red".',
}]
PROBE_PREFILL = '{"answer": "blue"'
PROBE_TOKENS = 2


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class _Refused(BackendError):
    """A non-retryable HTTP answer (4xx other than 408/429), with its status and detail."""

    def __init__(self, message: str, status: int, detail: str):
        super().__init__(message)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class ScoringSupport:
    """What option scoring can use on this server, found by `OpenAIChatModel.scoring_support`.

    ``logprobs``: the server returns token log-probabilities. ``prefill``: how to make it continue
    a final assistant message: ``"message"`` (a plain final assistant message, llama-server),
    ``"continue_final_message"`` (vLLM, SGLang), or None (it opens a new turn: walk the greedy
    reply). ``server``: the ``owned_by`` of GET /models, when it answered."""

    logprobs: bool
    prefill: str | None
    server: str | None = None

    @property
    def method(self) -> str:
        """``"prefill"``, ``"walk"`` or ``"none"`` (no option scoring)."""
        if not self.logprobs:
            return "none"
        return "walk" if self.prefill is None else "prefill"

    @property
    def fields(self) -> dict[str, Any]:
        """The body fields a prefill request carries besides the final assistant message."""
        return dict(CONTINUE_FIELDS.get(self.server or "", {})) if self.prefill == "continue_final_message" else {}


class OpenAIChatModel:
    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        max_concurrency: int = default("concurrency"),
        timeout_s: float = default("timeout"),
        max_retries: int = default("max_retries"),
        api_key_env: str | None = None,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        option_scoring: str = "auto",
    ) -> None:
        if option_scoring not in ("auto", "walk"):
            raise UserInputError(f"option_scoring must be 'auto' or 'walk', not {option_scoring!r}")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.max_concurrency = max(1, int(max_concurrency))
        self.timeout_s = float(timeout_s)
        self.max_retries = max(0, int(max_retries))
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.option_scoring = option_scoring  # "walk": never prefill (what earlier versions did)
        names = [api_key_env] if api_key_env else ["SCE_CHECKS_API_KEY", "OPENAI_API_KEY"]
        self._key = next((os.environ[n] for n in names if os.environ.get(n)), None)
        self.stats = CallStats()
        self._support: ScoringSupport | None = None  # unknown until probed
        self._support_lock = threading.Lock()

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIChatModel(model={self.model!r}, base_url={self.base_url!r})"

    #: Bumped when option scores change meaning: the response cache keys scores by it (scores of
    #: the reply walk before prefill detection, which could tie, are not reused).
    scoring_version = 2

    def identity(self) -> dict[str, Any]:
        return {"backend": "openai", "model": self.model, "base_url": self.base_url}

    # -- protocol ------------------------------------------------------------------------------
    def chat(self, conversations: Sequence[Conversation], decoding: Decoding) -> list[str]:
        bodies = [self._body(c, decoding) for c in conversations]
        self.stats.chat_calls += 1
        self.stats.chat_conversations += len(conversations)
        return [self._content(r) for r in self._post_all(bodies)]

    def can_score(self) -> bool:
        """True when the server returns logprobs (probed once). A probe that fails for want of
        the server answers True without remembering: scoring may still come from the cache, and
        a real scoring call probes again and reports the failure."""
        try:
            return self.scoring_support().logprobs
        except UserInputError:
            raise
        except BackendError:
            return True

    def scoring_support(self) -> ScoringSupport:
        """What the server supports for option scoring, probed on first use and remembered for
        this model object (thread-safe: concurrent callers wait for the one probe)."""
        with self._support_lock:
            if self._support is None:
                self._support = self._detect()
            return self._support

    def score_options(self, conversations: Sequence[Conversation], options: Sequence[str]) -> list[list[float]]:
        options = list(options)
        support = self.scoring_support()
        if not support.logprobs:
            raise BackendError(
                f"{self.base_url} (model {self.model!r}) returned no logprobs; use prediction mode 'generate' or 'auto'"
            )
        prefix = _prefill_prefix(options) if support.prefill is not None else ""
        rests = [o[len(prefix):] for o in options]
        bodies = []
        for c in conversations:
            if prefix:
                body = self._body(c + [{"role": "assistant", "content": prefix}],
                                  Decoding(max_new_tokens=_walk_tokens(rests)))
                body.update(support.fields)
            else:
                body = self._body(c, Decoding(max_new_tokens=max(8, _longest_tokens(options))))
            body.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
            bodies.append(body)
        self.stats.score_calls += 1
        self.stats.score_conversations += len(conversations)
        out = []
        for response in self._post_all(bodies):
            tokens = _token_logprobs(response)
            if tokens is None:
                raise BackendError(
                    f"{self.base_url} (model {self.model!r}) returned no logprobs for a scoring request "
                    "although its probe had them; use prediction mode 'generate'"
                )
            out.append(_option_scores(tokens, rests))
        return out

    # -- detection -----------------------------------------------------------------------------
    def _detect(self) -> ScoringSupport:
        server = self._server_family()
        attempts: list[dict[str, Any]] = []
        if self.option_scoring == "auto":
            if server in CONTINUE_FIELDS:
                attempts.append(CONTINUE_FIELDS[server])
            attempts.append({})
        logprobs_seen = False
        for extra in attempts:
            body = self._body(PROBE_CONVERSATION + [{"role": "assistant", "content": PROBE_PREFILL}],
                              Decoding(max_new_tokens=PROBE_TOKENS))
            body.update(extra, logprobs=True, top_logprobs=TOP_LOGPROBS)
            try:
                tokens = _token_logprobs(self._post(body))
            except _Refused:
                continue  # e.g. a server that refuses a final assistant message: try without
            if tokens is None:
                return ScoringSupport(False, None, server)
            logprobs_seen = True
            if _continues(tokens):
                return ScoringSupport(True, "continue_final_message" if extra else "message", server)
        if logprobs_seen:
            return ScoringSupport(True, None, server)
        body = self._body(PROBE_CONVERSATION, Decoding(max_new_tokens=1))
        body.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        try:
            tokens = _token_logprobs(self._post(body))
        except _Refused as exc:
            if exc.status in (400, 422):  # e.g. "logprobs not supported"
                return ScoringSupport(False, None, server)
            raise
        return ScoringSupport(tokens is not None, None, server)

    def _server_family(self) -> str | None:
        """``owned_by`` of this model (or of the first model) in GET /models; None when the
        server does not say. One attempt, no retries: it only decides which fields to try."""
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        try:
            request = urllib.request.Request(f"{self.base_url}/models", headers=headers, method="GET")
            with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:
                data = json.loads(resp.read())
            cards = [c for c in data.get("data", []) if isinstance(c, dict)]
        except Exception:  # noqa: BLE001 - any failure: the server does not say
            return None
        card = next((c for c in cards if c.get("id") == self.model), cards[0] if cards else None)
        owned = card.get("owned_by") if card else None
        return owned.lower() if isinstance(owned, str) else None

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
        schema = decoding.schema
        if schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": schema, "strict": True},
            }
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
        structured = "response_format" in body
        attempts = self.max_retries + 1
        problem = ""
        for attempt in range(attempts):
            try:
                request = urllib.request.Request(url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:
                    raw = resp.read()
                return self._parse(raw, structured)
            except urllib.error.HTTPError as exc:
                said = exc.read()
                detail = _trim(said)
                if structured and (exc.code in SCHEMA_REFUSAL_STATUS or _mentions_schema(said.decode("utf-8", "replace"))):
                    raise self._schema_refused(f"HTTP {exc.code}: {detail}") from None
                if exc.code not in RETRY_STATUS:
                    raise _Refused(f"{url} (model {self.model!r}) answered HTTP {exc.code}: {detail}",
                                   exc.code, detail) from None
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

    def _schema_refused(self, said: str) -> UserInputError:
        return UserInputError(
            f"{self.base_url} (model {self.model!r}) refused response_format json_schema, which "
            "--elicitation schema needs: use a server with structured outputs (vLLM, llama.cpp server, "
            f"SGLang, OpenAI) or --elicitation free (the server said {said})"
        )

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(0.0, retry_after), self.backoff_max_s)
        base = min(self.backoff_max_s, self.backoff_base_s * (2**attempt))
        return base * (0.5 + random.random() / 2)

    def _parse(self, raw: bytes, structured: bool = False) -> dict:
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _Retryable(f"the server sent a body that is not JSON: {_trim(raw)}") from None
        if structured and isinstance(data, dict) and "error" in data and _mentions_schema(json.dumps(data["error"])):
            raise self._schema_refused(f"{_trim(json.dumps(data['error']))}")
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


def _mentions_schema(text: str) -> bool:
    lowered = text.lower()
    return "response_format" in lowered or "json_schema" in lowered


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


def _shared_prefix(texts: Sequence[str]) -> str:
    return os.path.commonprefix(list(texts)) if texts else ""


def _prefill_prefix(options: Sequence[str]) -> str:
    """The options' shared prefix, cut back to end on punctuation (``{"answer": "``): a prefill
    that ends inside a word or on a space would split a token the model writes whole. Options
    that are one another's prefix leave at least one character to read."""
    if len(options) < 2:
        return ""
    shared = _shared_prefix(options)
    if any(len(o) == len(shared) for o in options):  # one option is a prefix of another
        shared = shared[:-1]
    k = len(shared)
    while k > 0 and (shared[k - 1].isalnum() or shared[k - 1].isspace() or shared[k - 1] == "_"):
        k -= 1
    return shared[:k]


def _walk_tokens(rests: Sequence[str]) -> int:
    """Tokens to generate after the prefill: the rest of the shared part plus the first
    distinct token (characters bound tokens from above)."""
    return max(2, len(_shared_prefix(rests)) + 2)


def _token_logprobs(response: dict) -> list[dict] | None:
    try:
        content = response["choices"][0]["logprobs"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, list) and content else None


def _continues(tokens: list[dict]) -> bool:
    """Whether the probe's first generated position continues the prefill ``{"answer": "blue"``:
    of the tokens offered there (the generated one and the top log-probabilities), the most
    probable one that starts with a brace closes the object (``}``) rather than opening a new one
    (``{``, a new turn restarting the reply)."""
    first = tokens[0]
    offered = [(str(first.get("token", "")), float(first.get("logprob", -math.inf)))]
    offered += [(str(t.get("token", "")), float(t.get("logprob", -math.inf))) for t in first.get("top_logprobs", [])]
    braces = [(lp, text.lstrip()[0]) for text, lp in offered if text.lstrip()[:1] in ("{", "}")]
    return bool(braces) and max(braces)[1] == "}"


def _option_scores(tokens: list[dict], options: list[str]) -> list[float]:
    """Walk the generated tokens while they spell the options' shared text; at the token where the
    options part, read each option's continuation among the top log-probabilities (module
    docstring). A reply that leaves the shared text before the options part (a digression) or
    ends before it decides nothing: every option gets ``-inf``."""
    undecided = [-math.inf] * len(options)
    scores = [0.0] * len(options)
    pos = 0  # characters consumed
    split = len(_shared_prefix(options))
    for tok in tokens:
        text = str(tok.get("token", ""))
        lp = float(tok.get("logprob", -math.inf))
        if text and all(o[pos:].startswith(text) for o in options):
            scores = [s + lp for s in scores]
            pos += len(text)
            if pos >= split and all(pos >= len(o) for o in options):
                return scores  # identical options: nothing to part
            continue
        # the options part at this token (or the reply left the shared text): only a top token
        # that reaches past the shared part tells the options apart
        top = [(str(t.get("token", "")), float(t.get("logprob", -math.inf))) for t in tok.get("top_logprobs", [])]
        if text and not any(t == text for t, _ in top):
            top.append((text, lp))
        reach = split - pos
        out = []
        for s, o in zip(scores, options):
            rest = o[pos:]
            best = max((v for t, v in top if t and len(t) > reach and rest.startswith(t)), default=-math.inf)
            out.append(s + best)
        return out if any(v > -math.inf for v in out) else undecided
    return undecided
