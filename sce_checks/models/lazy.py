"""A transformers backend built on its first use, so a rerun answered from the cache loads nothing.

Loading a transformers model costs seconds (importing torch and transformers, reading the
weights) while a fully cached audit needs none of it: `CachedModel` asks a backend only for its
identity (the cache key) and its capabilities until the first answer the cache lacks. `LazyModel`
answers those without loading: the identity from the files (sce_checks/models/identity.py, the
same function the loaded model uses), the capabilities from the backend's class (``score_options``
and ``score_replies`` are methods of `HFChatModel`; constrained decoding is part of its ``chat``).
The first ``chat``, ``score_options`` or ``score_replies`` builds the real backend, once.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Sequence

from sce_checks.errors import BackendError
from sce_checks.models.base import (Conversation, Decoding, supports_reply_scoring, supports_scoring,
                                    supports_tempered_scoring)

__all__ = ["LazyModel"]


class LazyModel:
    """Stands for the backend ``load()`` builds, whose identity is already known (``identity``)
    and whose class is ``backend``; built on the first request that needs the model."""

    def __init__(self, identity: dict[str, Any], load: Callable[[], Any], backend: type) -> None:
        self._identity = dict(identity)
        self._load = load
        self._backend = backend
        self._model: Any = None
        self._lock = threading.Lock()
        self.loads = 0  # how many times the real backend was built (0 or 1): tests and reports read it

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def model(self) -> Any:
        """The real backend, built on the first call. Its identity must be the one the cache was
        keyed with so far: a model whose files changed after the run started is an error, not
        a silent mix of answers from two models."""
        with self._lock:
            if self._model is None:
                model = self._load()
                self.loads += 1
                actual = model.identity()
                if actual != self._identity:
                    changed = sorted(k for k in actual.keys() | self._identity.keys() if actual.get(k) != self._identity.get(k))
                    raise BackendError(
                        f"model {self._identity.get('model')!r} loaded with another identity than its files gave "
                        f"before loading ({', '.join(changed)} differ): were its files changed during the run?"
                    )
                self._model = model
            return self._model

    def identity(self) -> dict[str, Any]:
        return dict(self._identity)

    def can_score(self) -> bool:
        return supports_scoring(self._backend)

    def can_score_replies(self) -> bool:
        return supports_reply_scoring(self._backend)

    def tempered_scoring(self) -> bool:
        """Whether the backend class scores at a temperature (sce_checks/models/base.py)."""
        return supports_tempered_scoring(self._backend)

    @property
    def scoring_version(self) -> Any:
        """The backend class's scoring version (part of score cache keys, sce_checks/models/cache.py)."""
        return getattr(self._backend, "scoring_version", None)

    def runtime(self) -> dict[str, Any]:
        """``model_loaded``, and where the model loaded, the device and dtype it sits on."""
        return self._model.runtime() if self._model is not None else {"model_loaded": False}

    def chat(self, conversations: Sequence[Conversation], decoding: Decoding) -> list[str]:
        return self.model().chat(conversations, decoding)

    def score_options(self, conversations: Sequence[Conversation], options: Sequence[str],
                      temperature: float = 1.0) -> list[list[float]]:
        if temperature == 1.0:  # a backend without tempered scoring is asked as before
            return self.model().score_options(conversations, options)
        return self.model().score_options(conversations, options, temperature=temperature)

    def score_replies(self, conversations: Sequence[Conversation], replies: Sequence[Sequence[str]],
                      complete: bool = True, temperature: float = 1.0) -> list[list[float]]:
        if temperature == 1.0:
            return self.model().score_replies(conversations, replies, complete)
        return self.model().score_replies(conversations, replies, complete, temperature=temperature)

    def __repr__(self) -> str:
        return f"LazyModel({self._identity.get('model')!r}, loaded={self.loaded})"
