"""One HTTP request for the OpenAI-compatible backend, with the guarantees urllib does not give.

- **A total deadline.** ``timeout_s`` bounds the whole request: connecting, sending, the status
  line, the headers and the body, and any redirect followed. urllib's timeout bounds each socket
  read, so a body trickled at 2 bytes a second never times out. Here a timer shuts the socket down
  when the deadline passes, whatever call is blocked on it, and whatever was read by then is a
  timeout: headers sent forever (slowloris) are "no complete answer within the deadline", which
  the caller's circuit breaker counts, not an empty answer.
- **A bounded answer.** A body over `MAX_BODY_BYTES`, or shorter than its ``Content-Length``
  (the connection closed mid-answer), is a failure with a one-line reason, as is a status line
  that is not HTTP.
- **Redirects stay at the origin.** A redirect is followed only to the same scheme, host and port
  (at most `MAX_REDIRECTS` times, re-sending the same request), so the API key never reaches
  another host; a redirect elsewhere is refused, naming only the other origin. urllib follows a
  302 to any host, ``Authorization`` header included.
- **The key never shows.** It is held in a `Secret`, whose repr and str are redacted (pytest's
  ``-l`` prints the locals of every frame with repr), and is written into the request by
  `Secret.authorize`, so no frame of ours keeps the raw ``Bearer ...`` string in a local.
  `Secret.redact` takes it out of any text a server sends back.

Proxies are taken from the environment as urllib takes them (``http_proxy``, ``https_proxy``,
``no_proxy``): an https request is tunnelled (CONNECT), so the key travels inside TLS to the
server only; an http request goes to the proxy in absolute form. Proxy credentials are not
supported.

Every failure is an `HTTPFailure` with a one-line problem: the caller decides about retries.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit

from sce_checks.parsing import MAX_DEPTH, MAX_DIGITS

MAX_BODY_BYTES = 8 * 1024 * 1024  # a chat completion with top-20 logprobs is tens of kilobytes
MAX_REDIRECTS = 3
REDIRECT_STATUS = {301, 302, 303, 307, 308}
DEFAULT_PORTS = {"http": 80, "https": 443}
REDACTED = "<redacted>"


class Secret:
    """An API key that no repr, str, message or traceback local shows."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def __repr__(self) -> str:
        return f"Secret({REDACTED})"

    __str__ = __repr__

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the key replaced."""
        return text.replace(self._value, REDACTED) if self._value else text

    def authorize(self, conn: http.client.HTTPConnection) -> None:
        """Put the ``Authorization: Bearer`` header into the request being written on ``conn``:
        built here, as an argument, so that it lives in no caller's frame."""
        conn.putheader("Authorization", "Bearer " + self._value)


class HTTPFailure(Exception):
    """An attempt that got no usable HTTP answer, with its one-line ``problem``.

    ``server_down``: the server as a whole looks unusable (it cannot be reached, or it sent no
    complete answer within the deadline), not just this request. ``retry``: another attempt may
    help (False for a redirect to another origin)."""

    def __init__(self, problem: str, *, server_down: bool = False, retry: bool = True) -> None:
        super().__init__(problem)
        self.server_down = server_down
        self.retry = retry


@dataclass(frozen=True)
class Answer:
    """A complete HTTP answer. ``headers`` have lower-case names. The body is left out of the
    repr: it may hold whatever the server chose to echo."""

    status: int
    headers: dict[str, str]
    body: bytes = field(repr=False)


def origin(url: str) -> str | None:
    """``scheme://host:port`` of ``url`` (default port made explicit), or None if it has none."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return f"{scheme}://{parts.hostname.lower()}:{port or DEFAULT_PORTS[scheme]}"


def request(method: str, url: str, body: bytes | None, key: Secret | None, timeout_s: float,
            max_body: int = MAX_BODY_BYTES) -> Answer:
    """Send one request and read its whole answer within ``timeout_s`` seconds in all, following
    redirects within ``url``'s origin only. Raises `HTTPFailure`."""
    deadline = time.monotonic() + timeout_s
    home = origin(url)
    if home is None:
        raise HTTPFailure(f"not an http(s) URL: {url}", retry=False)
    for _ in range(MAX_REDIRECTS + 1):
        answer = _once(method, url, body, key, deadline, timeout_s, max_body)
        location = answer.headers.get("location")
        if answer.status not in REDIRECT_STATUS or not location:
            return answer
        target = urljoin(url, location)
        elsewhere = origin(target)
        if elsewhere != home:
            shown = key.redact(elsewhere or location[:100]) if key else (elsewhere or location[:100])
            raise HTTPFailure(f"redirected (HTTP {answer.status}) to another origin, {shown!r}, which is not "
                              f"followed: the request and its API key stay with {home}; use the final URL as "
                              "the base URL", retry=False)
        url = target
    raise HTTPFailure(f"more than {MAX_REDIRECTS} redirects", retry=False)


def _once(method: str, url: str, body: bytes | None, key: Secret | None, deadline: float, timeout_s: float,
          max_body: int) -> Answer:
    parts = urlsplit(url)
    remaining = deadline - time.monotonic()
    too_slow = HTTPFailure(f"no complete answer within {timeout_s:g} s", server_down=True)
    if remaining <= 0:
        raise too_slow
    https = parts.scheme.lower() == "https"
    kind = http.client.HTTPSConnection if https else http.client.HTTPConnection
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    proxy = _proxy(parts.scheme.lower(), parts.hostname or "")
    if proxy is None:
        conn = kind(parts.hostname, parts.port, timeout=remaining)
    else:
        conn = kind(proxy.hostname, proxy.port, timeout=remaining)
        if https:
            conn.set_tunnel(parts.hostname, parts.port)
        else:
            target = url  # absolute form: the proxy reads where to go from the request line
    expired = threading.Event()
    opened: list[socket.socket] = []  # the connection's socket (the response keeps reading from it
    # after http.client lets go of it, for an answer that closes the connection)

    def expire() -> None:  # the deadline: wake whatever call is blocked on the socket
        expired.set()
        for sock in opened:
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass

    timer = threading.Timer(remaining, expire)
    timer.daemon = True
    timer.start()
    problem: HTTPFailure | None = None
    connected = False
    try:
        conn.connect()
        connected = True
        opened.append(conn.sock)
        if expired.is_set():  # the deadline passed while connecting
            raise too_slow
        conn.putrequest(method, target)
        conn.putheader("Accept", "application/json")
        conn.putheader("User-Agent", "sce-checks")
        if body is not None:
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(len(body)))
        if key is not None:
            key.authorize(conn)
        conn.endheaders(body)
        response = conn.getresponse()
        data = _read(response, max_body)
        if expired.is_set():  # the shutdown ended the headers or the body early (http.client reads
            raise too_slow  # an end of file there as their end): a timeout, not a short answer
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    except HTTPFailure as exc:
        problem = exc.with_traceback(None)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        timed_out = isinstance(exc, (socket.timeout, TimeoutError))
        problem = too_slow if timed_out else _failure(exc, url, not connected, key)
    finally:
        timer.cancel()
        conn.close()
    # raised here, outside the except clauses, so it carries no chained traceback whose frames
    # (http.client's, holding the request's header lines) could be printed
    raise too_slow if expired.is_set() else problem


_PROXY_VARIABLES = tuple(v for name in ("http", "https", "all", "no") for v in (f"{name}_proxy", f"{name.upper()}_PROXY"))
_proxies: dict[tuple, SplitResult | None] = {}


def _proxy(scheme: str, host: str) -> SplitResult | None:
    """`_find_proxy`, remembered for the values of the proxy variables: urllib scans the whole
    environment for them on every call, which cost 0.4 ms a request, a third of the client's CPU
    per request at 300 requests a second (benchmarks/bench_openai_concurrency.py)."""
    key = (scheme, host, tuple(os.environ.get(v) for v in _PROXY_VARIABLES))
    if key not in _proxies:
        if len(_proxies) > 256:
            _proxies.clear()
        _proxies[key] = _find_proxy(scheme, host)
    return _proxies[key]


def _find_proxy(scheme: str, host: str) -> SplitResult | None:
    """The proxy the environment names for ``scheme``, unless ``no_proxy`` exempts ``host``; None
    for a direct connection."""
    url = urllib.request.getproxies().get(scheme)
    if not url or urllib.request.proxy_bypass(host):
        return None
    parts = urlsplit(url if "://" in url else f"http://{url}")
    return parts if parts.hostname else None


def _read(response: http.client.HTTPResponse, max_body: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = response.read1(65536)
        if not chunk:
            break
        size += len(chunk)
        if size > max_body:
            raise HTTPFailure(f"the answer is over {max_body} bytes")
        chunks.append(chunk)
    if response.length:  # bytes the Content-Length announced but the connection never brought
        raise HTTPFailure(f"the connection closed mid-answer ({size} of {size + response.length} bytes)")
    return b"".join(chunks)


def _failure(exc: BaseException, url: str, unconnected: bool, key: Secret | None) -> HTTPFailure:
    """The one-line problem of an exception from connecting, sending or reading (timeouts are
    the caller's)."""
    where = origin(url)
    said = key.redact(_one_line(exc)) if key else _one_line(exc)
    if isinstance(exc, ConnectionRefusedError):
        return HTTPFailure(f"the server at {where} is unreachable (connection refused): check the URL or start "
                           "the server", server_down=True)
    if unconnected:  # DNS, no route: nothing at that address answers
        return HTTPFailure(f"the server at {where} is unreachable ({said[:120]})", server_down=True)
    if isinstance(exc, http.client.RemoteDisconnected):
        return HTTPFailure("the server closed the connection without answering")
    if isinstance(exc, http.client.IncompleteRead):
        return HTTPFailure("the connection closed mid-answer")
    if isinstance(exc, http.client.BadStatusLine):
        return HTTPFailure(f"the server's answer is not HTTP (status line {said[:60]})")
    if isinstance(exc, http.client.HTTPException):
        return HTTPFailure(f"malformed HTTP answer ({type(exc).__name__}: {said[:80]})")
    return HTTPFailure(f"connection error ({type(exc).__name__}: {said[:120]})")


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


# -- reading a server's JSON body -----------------------------------------------------------------

# For the depth scan: both kinds of bracket as one (the parser has checked that they pair), and
# every other byte but the quote dropped
_STRUCTURE = bytes.maketrans(b"{}", b"[]")
_NOT_STRUCTURE = bytes(c for c in range(256) if c not in b'[]{}"')
_STRING = re.compile(rb'"[^"]*"')  # a string, once its escapes are gone and its text is brackets only


class _Malformed(ValueError):
    """Raised by the JSON reader's hooks: the body breaks a bound or names a key twice."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise _Malformed(f"JSON naming the key {_shown(twice)} twice in one object (which value is meant is a guess)")
    return obj


def _integer(text: str) -> int:
    digits = len(text) - text.startswith("-")
    if digits > MAX_DIGITS:
        raise _Malformed(f"JSON with an integer of {digits} digits (over {MAX_DIGITS})")
    return int(text)


def _too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether the brackets outside strings of ``text`` nest deeper than ``limit``, in C-speed
    passes (a Python loop over 7 MiB takes half a second). Only for ``text`` the JSON parser
    accepted, where a backslash occurs only in a string and starts an escape:

    1. escaped backslashes dropped, a pair at a time from the left as the parser reads them, then
       escaped quotes: what quotes are left open and close strings;
    2. every byte but brackets and quotes dropped, ``{}`` read as ``[]``;
    3. the strings dropped: first two adjacent quotes (an empty string, or the end of one string
       and the start of the next: what was inside a string stays inside), then each string left;
    4. the innermost pairs ``[]`` dropped, one level a pass (a pass sees only the pairs the
       previous one left); a body within the bound is empty after as many passes as it is deep."""
    data = text.encode("utf-8", "surrogatepass")
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    data = data.translate(_STRUCTURE, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in data:
        data = _STRING.sub(b"", data)
    for _ in range(limit):
        if not data:
            return False
        data = data.replace(b"[]", b"")
    return bool(data)


def read_json(text: str, max_chars: int = MAX_BODY_BYTES) -> tuple[Any, str | None]:
    """A server's JSON body: (value, None), or (None, what the body is, on one line: "not JSON
    (...)", "JSON nested deeper than 32", ...) when ``text`` is over
    ``max_chars``, nests deeper than `MAX_DEPTH`, holds an integer of more than `MAX_DIGITS`
    digits, names a key twice in one object (whichever copy was read, the server's answer is
    ambiguous), or is not JSON. Never raises.

    The bounds of the reply reader (sce_checks/parsing.py), checked the fast way: the size first;
    then the standard parser, whose hooks refuse long integers (before ``int`` reads them: its
    time grows with the square of the digits) and repeated keys, and whose own recursion guard
    stops nesting past Python's recursion limit; then the depth, by C-speed passes over the
    brackets (`_too_deep`). Floats are the parser's own (any number of digits reads in linear
    time). A 7 MiB answer is read at about the speed of ``json.loads`` (docs/reliability.md,
    benchmarks/bench_server_json.py)."""
    if len(text) > max_chars:
        return None, f"over {max_chars} characters"
    try:
        value = json.loads(text, object_pairs_hook=_unique, parse_int=_integer)
    except _Malformed as exc:
        return None, exc.problem
    except RecursionError:
        return None, f"JSON nested deeper than {MAX_DEPTH}"
    except ValueError as exc:  # JSONDecodeError
        return None, f"not JSON ({_one_line(exc)[:80]})"
    if _too_deep(text):
        return None, f"JSON nested deeper than {MAX_DEPTH}"
    return value, None


def _shown(key: str) -> str:
    text = repr(" ".join("".join(ch if ch.isprintable() else " " for ch in key[:200]).split()))
    return text if len(text) <= 40 else text[:37] + "..."
