"""The one model protocol every backend implements, and the types that cross it.

Checks hand *batches* of conversations to a model and get a list of replies back (list in, list
out, as lm-evaluation-harness does), so backends can batch, parallelise and cache freely.
A conversation is a list of OpenAI-style messages: ``{"role": "system"|"user"|"assistant",
"content": str}``.

Besides ``chat`` a backend may offer two scoring methods (probe them with `supports_scoring` and
`supports_reply_scoring`, which wrappers such as `CachedModel` answer for their inner model):

* ``score_replies(conversations, replies, complete=True) -> list[list[float]]``, THE scoring
  primitive: ``replies[i]`` is a list of candidate assistant replies to ``conversations[i]``
  (rows may differ in length, e.g. one explanation per example); the result holds, per row and
  in order, the natural-log probability of each reply, summed over its tokens. With
  ``complete=True`` a reply is scored as the assistant's WHOLE reply: the tokens the chat
  template writes for that assistant turn, end-of-turn token included, so "Yes" and "Yes, but"
  are told apart. With ``complete=False`` it is scored as the reply's beginning: its tokens
  teacher-forced, no end-of-turn (a reply cut by its token budget never produced one; an empty
  reply scores 0). The hf backend implements it (sce_checks/models/hf.py); the
  self-consistency check needs it.
* ``score_options(conversations, options) -> list[list[float]]``: the same options for every
  conversation, each as the whole reply (``score_replies(conversations, [options] * n)``);
  prediction by option scoring uses it.

A backend whose two scoring methods also take ``temperature=T`` (each token's log-probability
from ``log_softmax(logits / T)``, the distribution a sampler at temperature T draws from) says so
with a true ``tempered_scoring`` attribute; `supports_tempered_scoring` probes it. Audits at a
temperature above 0 use it for exact answer probabilities (docs/sampling.md).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

from sce_checks.errors import UserInputError
from sce_checks.registry import Entry

Message = dict[str, str]
Conversation = list[Message]


@dataclass(frozen=True)
class Decoding:
    """Decoding parameters. Greedy requests, and sampled ones that carry a seed, are deterministic
    and cached.

    ``json_schema`` is set under structured elicitation (``elicitation = "schema"``,
    docs/method.md): the JSON text of a JSON Schema the reply must satisfy. Each backend
    constrains the reply its own way (hf: grammar-constrained decoding; openai: the request's
    ``response_format``; python: the model reads `schema` and may honour it). Kept as text so a
    `Decoding` stays hashable and the cache key holds the exact schema; property order is kept
    (a constrained decoder writes the keys in that order).
    """

    temperature: float = 0.0
    max_new_tokens: int = 256
    top_p: float = 1.0
    seed: int | None = None  # the run's sampling seed; each conversation's own seed is `conversation_seed`
    sample: int = 0  # which of the K samples of one request this is (--samples)
    json_schema: str | None = None
    stop_after_json: bool = False  # end the reply at the close of its first readable JSON object (models/json_stop.py)

    @property
    def deterministic(self) -> bool:
        """Greedy, or sampled with a seed: the same request gives the same reply, so it is cached."""
        return self.temperature == 0.0 or self.seed is not None

    @property
    def schema(self) -> dict[str, Any] | None:
        """The JSON Schema the reply must satisfy, or None (free reply)."""
        return json.loads(self.json_schema) if self.json_schema else None

    def with_schema(self, schema: dict[str, Any] | None) -> "Decoding":
        """A copy constraining the reply to ``schema`` (None: a free reply)."""
        text = json.dumps(schema, ensure_ascii=False, separators=(",", ":")) if schema is not None else None
        return replace(self, json_schema=text)

    def as_dict(self) -> dict[str, Any]:
        """The parameters as the cache key and reports see them; ``json_schema`` and
        ``stop_after_json`` only when set, so the keys of other requests are those of earlier
        versions (a reply cut at its JSON object is another reply: it gets its own key)."""
        out = asdict(self)
        if self.json_schema is None:
            del out["json_schema"]
        if not self.stop_after_json:
            del out["stop_after_json"]
        if not self.sample:
            del out["sample"]
        return out


def conversation_seed(decoding: Decoding, conversation: Conversation) -> int:
    """The seed one sampled reply is drawn with: a hash of the run's seed, the sample index and the
    conversation itself (which holds the example, the variant and the target). Deriving it from the
    conversation, not from its place in a batch, is what makes a batched draw equal an unbatched
    one, and a rerun equal the first run (docs/sampling.md). A 63-bit non-negative integer."""
    text = json.dumps([decoding.seed, decoding.sample, conversation], ensure_ascii=False, sort_keys=True,
                      separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:8], "big") >> 1


@runtime_checkable
class ChatModel(Protocol):
    """What every backend offers.

    ``chat`` is required. ``score_options`` and ``score_replies`` (module docstring) are
    optional: a backend that can compute the log-probability of a reply defines them; checks use
    ``score_options`` for exact, fast label prediction and must also work with ``chat`` alone;
    the self-consistency check needs ``score_replies`` and is not applicable without it.
    """

    def chat(self, conversations: Sequence[Conversation], decoding: Decoding) -> list[str]:
        """One reply per conversation, in order."""
        ...

    def identity(self) -> dict[str, Any]:
        """What the answers depend on: backend, model name, weights fingerprint or URL, dtype,
        device, batch size. Used as the cache key and written into every report."""
        ...


def supports_tempered_scoring(model: Any) -> bool:
    """True when ``model``'s scoring methods take ``temperature=`` (module docstring); wrappers
    answer with a callable ``tempered_scoring`` asking their inner model."""
    probe = getattr(model, "tempered_scoring", False)
    return bool(probe() if callable(probe) else probe) and supports_scoring(model)


def scoring_temperature(value: Any) -> float:
    """``value`` as the ``temperature=`` of a scoring call: a finite number above 0, else a
    one-line `UserInputError` (a temperature of 0 has no log-probabilities: every token but the
    argmax would score minus infinity)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise UserInputError(f"a scoring temperature must be a finite number above 0, not {value!r}")
    return float(value)


def supports_scoring(model: Any) -> bool:
    """True when ``model`` offers ``score_options`` (and, for wrappers, its inner model does)."""
    probe = getattr(model, "can_score", None)
    if probe is not None:
        return bool(probe() if callable(probe) else probe)
    return callable(getattr(model, "score_options", None))


def supports_reply_scoring(model: Any) -> bool:
    """True when ``model`` offers ``score_replies`` (and, for wrappers, its inner model does):
    a ``can_score_replies`` probe answers where the model has one."""
    probe = getattr(model, "can_score_replies", None)
    if probe is not None:
        return bool(probe() if callable(probe) else probe)
    return callable(getattr(model, "score_replies", None))


@dataclass
class CallStats:
    """Counts of work actually sent to a backend (cache hits excluded). Reports show them.
    ``score_*`` count ``score_options`` and ``score_replies`` calls alike."""

    chat_calls: int = 0
    chat_conversations: int = 0
    score_calls: int = 0
    score_conversations: int = 0
    cache_hits: int = 0
    extra: dict[str, int] = field(default_factory=dict)


# -- backends: a spec names one; a declaration says how it reads (sce_checks/registry.py) ------------

@dataclass(frozen=True)
class Spec:
    """A parsed model spec: the backend's name (``kind``), what follows ``<kind>:`` (``target``,
    "" for a backend named alone, such as ``smollm2``) and a server's base URL where the backend
    takes one (``openai:<model>@<base url>``)."""

    kind: str
    target: str
    base_url: str | None = None

    def __str__(self) -> str:
        if self.base_url is not None:
            return f"{self.kind}:{self.target}@{self.base_url}"
        return f"{self.kind}:{self.target}" if self.target else self.kind


@dataclass(frozen=True, kw_only=True)
class BackendEntry(Entry):
    """The declaration of a model backend (entry point group ``sce_checks.backends``): light, so
    a spec is parsed, and ``--help`` lists the backends, without importing any backend module.

    ``syntax``: the spec's form in help and messages (``"openai:<model>@<base url>"``).
    ``bare``: the backend's name alone is the spec (``smollm2``); otherwise a spec is
    ``<name>:<rest>`` with a non-empty rest. ``parse(rest, spec) -> Spec``: reads the rest,
    raising `UserInputError` when it is malformed (default: the rest is the target).
    ``implementation``: ``"module:attr"`` of the loader, ``loader(spec, options) -> ChatModel``
    (``options``: `sce_checks.models.ModelOptions`; the values of settings rows a backend
    declares beyond those are in ``options.extra``). ``lazy``: the loader also takes
    ``lazily=True`` and may then return a model that loads on its first request the response
    cache cannot answer (sce_checks/models/lazy.py)."""

    syntax: str
    bare: bool = False
    parse: Callable[[str, str], Spec] | None = None
    lazy: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or ":" in self.name or "@" in self.name:
            raise ValueError(f"model backend {self.name!r}: its name must be a non-empty word without ':' or '@'")
        if not isinstance(self.implementation, str) or self.implementation.count(":") != 1:
            raise ValueError(f"model backend {self.name!r}: implementation must be 'module:loader', not "
                             f"{self.implementation!r}")
        if not isinstance(self.syntax, str) or not self.syntax.startswith(self.name):
            raise ValueError(f"model backend {self.name!r}: its syntax must start with its name, not {self.syntax!r}")

    def read(self, rest: str | None, spec: str) -> Spec:
        """The `Spec` of ``spec`` (``rest``: what follows ``<name>:``, None when nothing does)."""
        if rest is None or self.bare:
            if rest is None and self.bare:
                return Spec(self.name, "")
            raise UserInputError(f"malformed model spec {spec!r}: expected '{self.syntax}'")
        if self.parse is not None:
            return self.parse(rest, spec)
        return Spec(self.name, rest)
