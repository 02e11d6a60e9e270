"""Any OpenAI-compatible chat-completions server: vLLM, llama.cpp server, SGLang, Ollama, OpenAI.

This is how audits scale out: the server holds the model (on as many GPUs as it likes) and the
audit stays a client (docs/scaling.md). Requests go in parallel, with timeouts and retries:

- at most ``max_concurrency`` in flight to one base URL, counted over every process on the
  machine that shares the cache directory of sce_checks/paths.py (pytest-xdist workers
  included): each attempt holds
  one of the server's slots (sce_checks/models/slots.py);
- a batch is sent in the order of its conversations' text, so requests that share a prefix
  reach the server together and its prefix cache (llama.cpp ``cache_prompt``, vLLM
  ``--enable-prefix-caching``, SGLang's radix cache) reuses it; replies come back in the
  caller's order;

- each request has a total deadline, ``timeout_s`` for connecting, sending and reading the whole
  answer (models/http.py: a trickled body does not hang), and a bounded answer;
- retried, with exponential backoff and jitter: HTTP 408, 429, 5xx, connection errors, timeouts,
  truncated answers, and bodies that are not a chat completion (not JSON, out of the JSON bounds
  of `http.read_json`, a key given twice in one object, no choices/message/content). A
  ``Retry-After`` header (seconds or an HTTP date) is honoured, up to ``backoff_max_s`` and never
  longer than ``timeout_s``; a server asking for more than ``timeout_s`` is given up on at once
  (the breaker below), not waited for, so ``--timeout 2`` never waits an hour, nor 30 s;
- not retried: other 4xx (401 bad key, 404 unknown model, 400 bad request) and redirects to
  another origin (never followed): one clear error;
- after the last attempt: `BackendError` naming the URL, the model, the last problem and the
  number of attempts. When the last problem says the server as a whole is down (unreachable,
  no complete answer in time, headers that never end included, HTTP 502/503/504, HTTP 429 still
  after the retries or with a Retry-After longer than ``timeout_s``), the model gives up on it once:
  every request still queued or asked later fails at once with the same message (a circuit
  breaker per model object), so a dead server costs one request's retries, not one per item.

The API key is read from ``$SCE_CHECKS_API_KEY``, else ``$OPENAI_API_KEY`` (or the variable named
by ``api_key_env``). It is sent as a Bearer token to the base URL's origin only and never logged,
reported or put in identity; it is redacted from everything the server sends back (error
details, replies) and kept in a `Secret`, so no message, repr or traceback local shows it.

Sampling: every request carries ``temperature``, ``top_p`` and, where the run has a seed, the
conversation's own ``seed`` (`request_seed`: from the run's seed, the sample index and the
conversation, so a request's seed does not depend on its batch), one request per sample; ``n``
is never sent (docs/sampling-backends.md says why). A server that honours ``seed`` (vLLM,
llama.cpp, SGLang; OpenAI on a best-effort basis) then draws a sample again on a rerun; the
response cache makes a rerun identical in any case.

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
- *none*: no usable logprobs (none at all, malformed ones, or a probe the server refused or
  failed): ``can_score()`` is False and checks generate and parse instead; the backend says so
  once per model object (`OptionScoringWarning`, through sce_checks/notices.py: one line of the
  audit's summary and its report, a Python warning where the backend is used on its own).

Each option's score is the log-prob of the shared tokens after the prefill plus that of its first
distinct token (``-inf`` when not among the top 20). This ranks the options as the model's
next-token distribution does and gives their distribution conditional on the shared prefix, but
it is not the full-reply log-probability that the hf backend computes (documented deviation).
A row where no option can be read (the greedy reply left the answer format before the options
part, or no option among the top 20) is all ``-inf``: undecided, for the caller to generate.
So is a row whose logprobs are missing or malformed (`_token_logprobs` validates every entry:
an object with a string token, a finite logprob and a list of such top entries): a server's
logprobs are data, and no payload makes the walk raise.
"""

from __future__ import annotations

import email.utils
import json
import math
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Sequence

from sce_checks import notices, progress
from sce_checks.config import default
from sce_checks.errors import BackendError, UserInputError
from sce_checks.models import http
from sce_checks.models.slots import server_slots
from sce_checks.models.base import CallStats, Conversation, Decoding, conversation_seed
from sce_checks.paths import cache_dir

RETRY_STATUS = {408, 429, 500, 502, 503, 504}
# the server (or the gateway before it) says it is down, or keeps refusing (rate limited): when it
# is still the answer after the last retry, the breaker trips (module docstring)
DOWN_STATUS = {429, 502, 503, 504}
TOP_LOGPROBS = 20
LOGPROB_SLACK = 1e-3  # a server's log(p) for p = 1 may round a little above 0
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


class OptionScoringWarning(UserWarning):
    """The server's logprobs cannot be used for option scoring: predictions are generated."""


@dataclass(frozen=True)
class _Failure:
    """What went wrong with one attempt, on one line, the key already redacted. ``retry``: worth
    another attempt; ``server_down``: trips the circuit breaker when it is the last problem;
    ``wait``: the server's Retry-After; ``status``: the HTTP status of a refusal; ``schema``: a
    refusal of ``response_format``."""

    problem: str
    retry: bool = True
    server_down: bool = False
    wait: float | None = None
    status: int | None = None
    schema: bool = False


class _ServerDown(BackendError):
    """The server was given up on (module docstring): raised for every request after that."""


class _Refused(BackendError):
    """A final answer, not retried: a 4xx other than 408/429, or a redirect to another origin
    (status 3xx), with its status and the one-line problem."""

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
    reply). ``server``: the ``owned_by`` of GET /models, when it answered. ``reason``: why there
    are no logprobs, for the warning."""

    logprobs: bool
    prefill: str | None
    server: str | None = None
    reason: str | None = None

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
        slots_dir: str | os.PathLike | None | bool = True,
    ) -> None:
        """``slots_dir``: where the cross-process slots of the server live (True: the cache
        directory, sce_checks/paths.py; None or False: this process only)."""
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
        self._key = _read_key([api_key_env] if api_key_env else ["SCE_CHECKS_API_KEY", "OPENAI_API_KEY"])
        self.stats = CallStats()
        self._support: ScoringSupport | None = None  # unknown until probed
        self._support_lock = threading.Lock()
        self._down: str | None = None  # the message every request gets once the server is given up on
        self._gave_up = threading.Event()  # set with _down: wakes requests waiting to retry
        self._down_lock = threading.Lock()
        self._warned: set[str] = set()
        if slots_dir is True:
            slots_dir = cache_dir()
        self._slots = server_slots(self.base_url, Path(slots_dir) if slots_dir else None)

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
        """True when the server returns usable logprobs (probed once). A probe that fails because
        the server is down answers True without remembering: scoring may still come from the
        cache, and a real scoring call reports the failure (at once: the server was given up on)."""
        try:
            return self.scoring_support().logprobs
        except UserInputError:
            raise
        except BackendError:
            return True

    def scoring_support(self) -> ScoringSupport:
        """What the server supports for option scoring, probed on first use and remembered for
        this model object (thread-safe: concurrent callers wait for the one probe). No usable
        logprobs is said once, as an `OptionScoringWarning`."""
        with self._support_lock:
            if self._support is None:
                self._support = self._detect()
                if not self._support.logprobs:
                    self._warn_once("none", f"{self.base_url} (model {self.model!r}) {self._support.reason}: no option "
                                            "scoring, predictions are generated and parsed")
            return self._support

    def score_options(self, conversations: Sequence[Conversation], options: Sequence[str]) -> list[list[float]]:
        options = list(options)
        support = self.scoring_support()
        if not support.logprobs:
            raise BackendError(
                f"{self.base_url} (model {self.model!r}) {support.reason}; use prediction mode 'generate' or 'auto'"
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
                # the walk reads nothing past the token where the options part: ask for no more
                body = self._body(c, Decoding(max_new_tokens=_walk_tokens(options)))
            body.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
            bodies.append(body)
        self.stats.score_calls += 1
        self.stats.score_conversations += len(conversations)
        out = []
        for response in self._post_all(bodies):
            tokens = _token_logprobs(response)
            if tokens is None:  # undecided: generated under --prediction auto, unparsed under score
                self._warn_once("row", f"{self.base_url} (model {self.model!r}) returned no usable logprobs for a "
                                       "scoring request although its probe had them: such predictions are undecided")
                tokens = []
            out.append(_option_scores(tokens, rests))
        return out

    def _warn_once(self, topic: str, message: str) -> None:
        if topic not in self._warned:
            self._warned.add(topic)
            notices.warn(OptionScoringWarning(message))

    # -- detection -----------------------------------------------------------------------------
    def _detect(self) -> ScoringSupport:
        """The probe of docs/backends-openai.md. Only a server that is down raises (`_ServerDown`);
        any other failure of a probe request (a refusal, garbage, retries exhausted on HTTP 500)
        means that form gives nothing, and when every form gives nothing: no option scoring."""
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
            except _ServerDown:
                raise
            except BackendError:
                continue  # e.g. a server that refuses a final assistant message: try without
            if tokens is None:
                return ScoringSupport(False, None, server, "returned no usable logprobs")
            logprobs_seen = True
            if _continues(tokens):
                return ScoringSupport(True, "continue_final_message" if extra else "message", server)
        if logprobs_seen:
            return ScoringSupport(True, None, server)
        body = self._body(PROBE_CONVERSATION, Decoding(max_new_tokens=1))
        body.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        try:
            tokens = _token_logprobs(self._post(body))
        except _ServerDown:
            raise
        except BackendError as exc:  # e.g. HTTP 400 "logprobs not supported"
            return ScoringSupport(False, None, server, f"failed a request for logprobs ({_trim(str(exc), 160)})")
        return ScoringSupport(tokens is not None, None, server, None if tokens else "returned no usable logprobs")

    def _server_family(self) -> str | None:
        """``owned_by`` of this model (or of the first model) in GET /models; None when the
        server does not say. One attempt, no retries: it only decides which fields to try."""
        try:
            answer = http.request("GET", f"{self.base_url}/models", None, self._key, self.timeout_s)
        except http.HTTPFailure:
            return None
        data, _ = http.read_json(answer.body.decode("utf-8", "replace"))
        if answer.status != 200 or not isinstance(data, dict) or not isinstance(data.get("data"), list):
            return None
        cards = [c for c in data["data"] if isinstance(c, dict)]
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
            body["seed"] = request_seed(decoding, conversation)
        schema = decoding.schema
        if schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": schema, "strict": True},
            }
        return body

    def _post_all(self, bodies: list[dict]) -> list[dict]:
        """Every body posted, at most ``max_concurrency`` at once, sent in the order of their
        messages' text (shared prefixes together, for the server's prefix cache) and returned in
        the given order."""
        out: list[dict | None] = [None] * len(bodies)
        if len(bodies) <= 1:
            for i, b in enumerate(bodies):
                out[i] = self._post(b)
                progress.advance(1)
            return out  # type: ignore[return-value]
        order = sorted(range(len(bodies)), key=lambda i: _prefix_key(bodies[i]))
        pool = ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(bodies)))
        try:
            futures = [(i, pool.submit(self._post, bodies[i])) for i in order]
            for i, future in futures:  # progress from this thread
                out[i] = future.result()
                progress.advance(1)
        finally:  # on a failure, the requests not yet started are not sent
            pool.shutdown(wait=True, cancel_futures=True)
        return out  # type: ignore[return-value]

    def _post(self, body: dict) -> dict:
        """One chat completion, retried (module docstring). Every raise happens here, from locals
        that hold no key and no server text that was not redacted (pytest ``-l`` prints them)."""
        url = f"{self.base_url}/chat/completions"
        data = json.dumps(body).encode("utf-8")
        structured = "response_format" in body
        attempts = self.max_retries + 1
        failure = _Failure("")
        made = 0
        for attempt in range(attempts):
            if self._down is not None:
                raise _ServerDown(self._down)
            with self._slots.slot(self.max_concurrency):
                if self._down is not None:  # given up on while this request waited for a slot
                    raise _ServerDown(self._down)
                outcome = self._attempt(url, data, structured)
            made += 1
            if isinstance(outcome, dict):
                return outcome
            failure = outcome
            if failure.schema:
                raise self._schema_refused(failure.problem)
            if not failure.retry and not failure.server_down:
                raise _Refused(f"{url} (model {self.model!r}) {failure.problem}", failure.status or 0, failure.problem)
            if not failure.retry or attempt + 1 == attempts:
                break
            self._gave_up.wait(self._backoff(attempt, failure.wait))
        message = f"{url} (model {self.model!r}) failed after {made} attempts; last: {failure.problem}"
        if not failure.server_down:
            raise BackendError(message)
        with self._down_lock:  # the first request to give up names the problem for all
            if self._down is None:
                self._down = message
                self._gave_up.set()
        raise _ServerDown(self._down)

    def _attempt(self, url: str, data: bytes, structured: bool) -> dict | _Failure:
        """One request: the chat completion, or what went wrong. Never raises."""
        try:
            answer = http.request("POST", url, data, self._key, self.timeout_s)
        except http.HTTPFailure as exc:
            return _Failure(self._redact(str(exc)), retry=exc.retry, server_down=exc.server_down)
        if 200 <= answer.status < 300:
            return self._parse(answer.body, structured)
        text = self._redact(answer.body.decode("utf-8", "replace"))
        said = f"HTTP {answer.status}: {_trim(text)}"
        if structured and (answer.status in SCHEMA_REFUSAL_STATUS or _mentions_schema(text)):
            return _Failure(said, retry=False, schema=True)
        if answer.status in RETRY_STATUS:
            wait = _retry_after(answer.headers.get("retry-after"))
            if wait is not None and wait > self.timeout_s:  # not worth waiting for: give up now
                return _Failure(f"{said}; it asks to wait {_seconds(wait)} (Retry-After), longer than the "
                                f"{self.timeout_s:g} s of --timeout", retry=False, server_down=True)
            return _Failure(said, server_down=answer.status in DOWN_STATUS, wait=wait)
        return _Failure(f"answered {said}", retry=False, status=answer.status)

    def _redact(self, text: str) -> str:
        return self._key.redact(text) if self._key else text

    def _schema_refused(self, said: str) -> UserInputError:
        return UserInputError(
            f"{self.base_url} (model {self.model!r}) refused response_format json_schema, which "
            "--elicitation schema needs: use a server with structured outputs (vLLM, llama.cpp server, "
            f"SGLang, OpenAI) or --elicitation free (the server said {said})"
        )

    def _max_wait(self) -> float:
        """The longest wait before a retry: ``backoff_max_s``, and never more than ``--timeout``
        (a user who allows a request 2 s does not wait 30 s, nor an hour, to retry one). A server
        whose Retry-After asks for more than ``--timeout`` is given up on (`_attempt`)."""
        return min(self.backoff_max_s, self.timeout_s)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(0.0, retry_after), self._max_wait())
        base = min(self._max_wait(), self.backoff_base_s * (2**attempt))
        return base * (0.5 + random.random() / 2)

    def _parse(self, raw: bytes, structured: bool = False) -> dict | _Failure:
        """The chat completion in a 2xx body, or why it is not one (retried)."""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return _Failure(f"the server sent a body that is not UTF-8: {_trim(self._redact(raw.decode('utf-8', 'replace')))}")
        data, problem = http.read_json(text)
        if problem is not None:
            return _Failure(f"the server sent a body that is {self._redact(problem)}: {_trim(self._redact(text))}")
        if isinstance(data, dict) and structured and "error" in data and _mentions_schema(json.dumps(data["error"])):
            return _Failure(_trim(self._redact(json.dumps(data["error"]))), retry=False, schema=True)
        choices = data.get("choices") if isinstance(data, dict) else None
        choice = choices[0] if isinstance(choices, list) and choices else None
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            return _Failure(f"the server sent JSON that is not a chat completion: {_trim(self._redact(text))}")
        return data

    def _content(self, response: dict) -> str:
        return self._redact(response["choices"][0]["message"]["content"])


def request_seed(decoding: Decoding, conversation: Conversation) -> int:
    """The ``seed`` of one request: the conversation's own seed (`conversation_seed`: the run's
    seed, the sample index and the conversation), cut to 31 bits so that every server takes it
    (llama.cpp reads the seed into 32 bits, OpenAI and vLLM into 64)."""
    return conversation_seed(decoding, conversation) & 0x7FFFFFFF


def _read_key(names: Sequence[str]) -> http.Secret | None:
    """The API key from the first of ``names`` that is set, surrounding whitespace dropped. A key
    with characters a header cannot carry is refused naming the variable, never the value."""
    for name in names:
        value = (os.environ.get(name) or "").strip()
        if value:
            if not all(33 <= ord(ch) < 127 for ch in value):
                raise UserInputError(f"the API key in ${name} holds characters an HTTP header cannot carry "
                                     "(spaces, control or non-ASCII characters)")
            return http.Secret(value)
    return None


def _trim(text: str, limit: int = 200) -> str:
    """What a server said, for one line of a message: control characters (a terminal's escape
    sequences included) as spaces, whitespace collapsed, at most ``limit`` characters."""
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in text[: 4 * limit]).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mentions_schema(text: str) -> bool:
    lowered = text.lower()
    return "response_format" in lowered or "json_schema" in lowered


def _retry_after(value: str | None) -> float | None:
    """The wait a ``Retry-After`` header asks for, in seconds (0 for a date past), or None when it
    says nothing readable. An infinite wait is infinite (given up on); NaN says nothing."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return None if math.isnan(seconds) else max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _seconds(wait: float) -> str:
    if wait >= 1e9:
        return "forever"
    return f"{wait:.0f} s" if wait >= 10 else f"{wait:.2g} s"


def _prefix_key(body: dict) -> str:
    """The text of a request's messages, in order: sorting by it puts requests that share a
    prefix next to each other."""
    return "\x00".join(str(m.get("content", "")) for m in body.get("messages") or [] if isinstance(m, dict))


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
    """Tokens to generate (after the prefill, or from the start of the reply in the walk): the
    rest of the shared part plus the first distinct token, and no more (characters bound tokens
    from above): a server spends nothing on the options' tails, which the scores never read."""
    return max(2, len(_shared_prefix(rests)) + 2)


class _Token(NamedTuple):
    """One generated position of a validated logprobs payload."""

    text: str
    logprob: float
    top: tuple[tuple[str, float], ...]  # (token, logprob) of the top alternatives


def _logprob(value: Any) -> float | None:
    """A usable log-probability: a finite number no greater than 0 (a rounding excess up to
    `LOGPROB_SLACK` is read as 0), not a bool, null, NaN or infinity. Scores then sum to a
    number <= 0 or to -inf, never to NaN or +inf."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return min(value, 0.0) if math.isfinite(value) and value <= LOGPROB_SLACK else None


def _entry(raw: Any) -> _Token | None:
    if not isinstance(raw, dict):
        return None
    text, logprob = raw.get("token"), _logprob(raw.get("logprob"))
    top_raw = raw.get("top_logprobs")
    top_raw = [] if top_raw is None else top_raw  # absent or null: no alternatives given
    if not isinstance(text, str) or logprob is None or not isinstance(top_raw, list):
        return None
    top = []
    for alternative in top_raw:
        if not isinstance(alternative, dict):
            return None
        token, value = alternative.get("token"), _logprob(alternative.get("logprob"))
        if not isinstance(token, str) or value is None:
            return None
        top.append((token, value))
    return _Token(text, logprob, tuple(top))


def _token_logprobs(response: Any) -> list[_Token] | None:
    """The generated positions of ``choices[0].logprobs.content``, validated; None when there are
    none or any entry is malformed (a token that is not an object, a null, NaN or infinite
    logprob, ``top_logprobs`` that is not a list of such entries): no usable scores."""
    try:
        content = response["choices"][0]["logprobs"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    if not isinstance(content, list) or not content:
        return None
    tokens = [_entry(raw) for raw in content]
    return None if any(t is None for t in tokens) else tokens  # type: ignore[return-value]


def _continues(tokens: list[_Token]) -> bool:
    """Whether the probe's first generated position continues the prefill ``{"answer": "blue"``:
    of the tokens offered there (the generated one and the top log-probabilities), the most
    probable one that starts with a brace closes the object (``}``) rather than opening a new one
    (``{``, a new turn restarting the reply)."""
    first = tokens[0]
    offered = [(first.text, first.logprob), *first.top]
    braces = [(lp, text.lstrip()[0]) for text, lp in offered if text.lstrip()[:1] in ("{", "}")]
    return bool(braces) and max(braces)[1] == "}"


def _option_scores(tokens: Sequence[_Token], options: list[str]) -> list[float]:
    """Walk the generated tokens while they spell the options' shared text; at the token where the
    options part, read each option's continuation among the top log-probabilities (module
    docstring). A reply that leaves the shared text before the options part (a digression) or
    ends before it decides nothing: every option gets ``-inf``."""
    undecided = [-math.inf] * len(options)
    scores = [0.0] * len(options)
    pos = 0  # characters consumed
    split = len(_shared_prefix(options))
    for text, lp, top_given in tokens:
        if text and all(o[pos:].startswith(text) for o in options):
            scores = [s + lp for s in scores]
            pos += len(text)
            if pos >= split and all(pos >= len(o) for o in options):
                return scores  # identical options: nothing to part
            continue
        # the options part at this token (or the reply left the shared text): only a top token
        # that reaches past the shared part tells the options apart
        top = list(top_given)
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


def load(spec: Any, options: Any) -> OpenAIChatModel:
    """The loader its declaration names (sce_checks/models/catalog.py: OPENAI): the client of
    ``openai:<model>@<base url>`` (a parsed `Spec`) with the run's `ModelOptions`."""
    return OpenAIChatModel(model=spec.target, base_url=spec.base_url or "", max_concurrency=options.max_concurrency,
                           timeout_s=options.timeout_s, max_retries=options.max_retries)
