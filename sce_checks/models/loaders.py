"""The built-in backends' loaders: what their declarations (sce_checks/models/catalog.py) name as
implementations. Each is ``loader(spec, options) -> ChatModel`` (a parsed `Spec`, `ModelOptions`)
and imports its backend module only when called; the transformers ones also take
``lazily=True`` (`BackendEntry.lazy`)."""

from __future__ import annotations

from typing import Any, Callable

from sce_checks.errors import UserInputError
from sce_checks.models.base import ChatModel, Spec


def load_hf(spec: Spec, options: Any, lazily: bool = False) -> ChatModel:
    """``hf:<hub id or local dir>``: a transformers model (sce_checks/models/hf.py)."""
    lazy = _lazily(spec, options, load_hf) if lazily else None
    if lazy is not None:
        return lazy
    _require_torch(spec)
    from sce_checks.models.hf import HFChatModel

    return HFChatModel.from_pretrained(spec.target, options)


def load_smollm2(spec: Spec, options: Any, lazily: bool = False) -> ChatModel:
    """``smollm2``: the embedded model, loaded through the hf backend (sce_checks/models/smollm2.py)."""
    lazy = _lazily(spec, options, load_smollm2) if lazily else None
    if lazy is not None:
        return lazy
    _require_torch(spec)
    from sce_checks.models.smollm2 import load_smollm2 as load

    return load(options)


def load_openai(spec: Spec, options: Any) -> ChatModel:
    """``openai:<model>@<base url>`` (sce_checks/models/openai.py)."""
    from sce_checks.models.openai import OpenAIChatModel

    return OpenAIChatModel(model=spec.target, base_url=spec.base_url or "", max_concurrency=options.max_concurrency,
                           timeout_s=options.timeout_s, max_retries=options.max_retries)


def load_python(spec: Spec, options: Any) -> ChatModel:
    """``python:<module>:<attr>`` (sce_checks/models/python.py)."""
    from sce_checks.models.python import load_python_model

    return load_python_model(spec.target)


def _lazily(spec: Spec, options: Any, load: Callable[[Spec, Any], ChatModel]) -> ChatModel | None:
    """A transformers backend whose identity its files give (a local folder, a hub model in the
    local cache, smollm2 once converted: sce_checks/models/identity.py), built by its first
    request (`LazyModel`), so a rerun answered wholly from the response cache imports neither
    torch nor transformers; None when its files are not there yet (it is then built at once)."""
    from sce_checks.models.identity import spec_identity

    try:
        identity = spec_identity(spec, options)
    except OSError:  # files that cannot be read: loading says what is wrong with them
        identity = None
    if identity is None:
        return None
    from sce_checks.models.hf import HFChatModel
    from sce_checks.models.lazy import LazyModel

    return LazyModel(identity, lambda: load(spec, options), HFChatModel)


def _require_torch(spec: Spec) -> None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UserInputError(
            f"model spec {str(spec)!r} needs torch and transformers, which are not importable "
            f"({exc}); install them with: pip install torch transformers"
        ) from None
