"""Opening the models of a run: the one place where a model spec becomes a backend behind the
response cache.

For each model a run names, once: the spec is parsed (`parse_spec` -> `Spec`), the response cache
is opened FIRST (a wrong cache path is reported before any model loads; one cache for every model
of the run), the backend is built from the parsed spec (`load_model_lazily`: a transformers model
whose files give its identity is loaded by the first request the cache cannot answer, so a fully
cached rerun loads none) and wrapped in a `CachedModel`, which asks for the identity once. A spec
that cannot be opened fails the same way at every later request, without a second try.

`run_audit` (sce_checks/audit.py) asks a `ModelOpener` for its model when it is not handed one;
the pytest session holds one opener for the whole run and hands it to every audit it starts
(sce_checks/session.py), so each model is opened once per session. The opener's `Notices`
collect what the cache and backends warn about (sce_checks/notices.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sce_checks.errors import SceError
from sce_checks.models import ModelOptions, load_model_lazily, parse_spec
from sce_checks.models.cache import CachedModel, ResponseCache
from sce_checks.notices import Notices, collecting

__all__ = ["ModelOpener"]


class ModelOpener:
    """Opens each model of a run once, with ``options``, behind one response cache (none with
    ``cache=False``; ``cache_path`` None: the default file). ``notices`` collects the run's
    warnings; the default one also issues them as Python warnings (library use)."""

    def __init__(self, options: ModelOptions | None = None, cache: bool = True, cache_path: str | None = None,
                 notices: Notices | None = None) -> None:
        self.options = options or ModelOptions()
        self.use_cache = cache
        self.cache_path = cache_path
        self.notices = notices if notices is not None else Notices(echo=True)
        self._cache: ResponseCache | None = None
        self._opened: dict[str, CachedModel | SceError] = {}

    @classmethod
    def for_run(cls, spec: Any, notices: Notices | None = None) -> "ModelOpener":
        """The opener of a run specification (`RunSpec`): its backend settings and cache."""
        return cls(ModelOptions.from_spec(spec), not spec.no_cache, spec.cache_path(), notices)

    def open(self, name: str) -> CachedModel:
        """The model ``name`` (a spec string) names, opened on the first request; `UserInputError`
        or `BackendError` when it cannot be (raised again for every later request)."""
        opened = self._opened.get(name)
        if opened is None:
            with collecting(self.notices):
                try:
                    spec = parse_spec(name)
                    cache = self.response_cache()
                    opened = CachedModel(load_model_lazily(spec, self.options), cache, self.notices)
                except SceError as exc:  # remembered: the next request fails the same way at once
                    self._opened[name] = exc
                    raise
            self._opened[name] = opened
        if isinstance(opened, SceError):
            raise opened
        return opened

    def response_cache(self) -> ResponseCache | None:
        """The run's response cache, opened once (None under ``cache=False``)."""
        if self.use_cache and self._cache is None:
            self._cache = ResponseCache(Path(self.cache_path) if self.cache_path else None)
        return self._cache

    def __repr__(self) -> str:
        return f"ModelOpener({sorted(self._opened)!r}, cache={self.use_cache})"
