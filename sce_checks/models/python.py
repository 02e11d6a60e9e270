"""The ``python:<module>:<attr>`` backend: audit anything reachable from Python.

``attr`` (dotted paths allowed) names either

* a plain function ``f(messages) -> str`` taking one OpenAI-style conversation; it is wrapped
  in `FunctionModel`, which calls it once per conversation. A function that declares a
  ``decoding`` parameter (or ``**kwargs``) also gets the `Decoding`: under structured
  elicitation ``decoding.schema`` is the JSON Schema its reply should satisfy; under sampling
  ``decoding.temperature``, ``top_p`` and ``sample`` are the run's, and ``decoding.seed`` is
  already THIS conversation's own seed (`conversation_seed` of the run's seed, the sample index
  and the conversation; None when the run has none), so a function that draws with
  ``random.Random(decoding.seed)`` gives each reply its own reproducible draw; or
* an object with a batched ``chat(conversations, decoding) -> list[str]`` and optionally
  ``score_options(conversations, options)``, ``score_replies(conversations, replies, complete)``
  (the scoring primitive, sce_checks/models/base.py; the self-consistency check needs it) and
  ``identity()``; or a class with such methods, instantiated with no arguments. Its ``chat``
  gets the run's `Decoding` as it is (``decoding.seed`` is the run's seed, one for the batch):
  to draw a conversation's reply independently of the batch it came in, seed it with
  ``conversation_seed(decoding, conversation)`` (sce_checks/models/base.py). An object whose
  scoring methods take ``temperature=`` says so with a true ``tempered_scoring`` attribute.

The module is imported with the current working directory first on ``sys.path``, then the
entries of ``PYTHONPATH`` (so ``python:my_models:f`` finds ``./my_models.py`` as a user would
expect). The identity includes the sha256 of the module's source file, so editing the model
invalidates its cached answers.

User code misbehaving is one line and exit 2 (docs/reliability.md, "Python models"): whatever it
raises, ``sys.exit`` included, while imported, instantiated, asked or read; its message is shown
without terminal escapes or control characters and without the value of any secret-named
environment variable (`redact_secrets`); an object's ``identity()`` is read once, when the model is
opened, and must be JSON data. A reply that is a ``str`` subclass is read as its text.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import inspect
import json
import os
import sys
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

from sce_checks import progress
from sce_checks.errors import BackendError, SceError, UserInputError, redact_secrets
from sce_checks.models.base import (ChatModel, Conversation, Decoding, conversation_seed, scoring_temperature,
                                    supports_tempered_scoring)
from sce_checks.safe import plain

__all__ = ["FunctionModel", "PythonObjectModel", "load", "load_python_model", "own_decoding"]


MESSAGE_CHARS = 300  # of what user code said, in one line of ours


def _one_line(text: Any) -> str:
    """What user code said (an exception, usually), for one line of a message: never raises (a
    ``__str__`` that raises is named instead), no terminal escapes or control characters
    (sce_checks/safe.py), no value of a secret-named environment variable (errors.py:
    `redact_secrets`), at most `MESSAGE_CHARS` characters."""
    try:
        said = str(text)
    except Exception as exc:  # noqa: BLE001 - user code: anything may come
        said = f"<its message could not be shown: {type(exc).__name__}>"
    said = " ".join(redact_secrets(plain(said)).split())
    return said if len(said) <= MESSAGE_CHARS else said[: MESSAGE_CHARS - 1] + "…"


def _raised(exc: BaseException) -> str:
    """``TypeName: message`` of an exception user code raised; ``sys.exit(code)`` said as such."""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({_one_line(repr(exc.code))}) (SystemExit)"
    return f"{type(exc).__name__}: {_one_line(exc)}"


def _exact_str(reply: str) -> str:
    """A reply as a plain ``str``: a subclass of it (whose methods may raise, or lie) copied by
    ``str``'s own method, which calls none of the subclass's."""
    return reply if type(reply) is str else str.__str__(reply)


def _sha256_of(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def _search_dirs() -> list[str]:
    """The current directory, then PYTHONPATH entries: the places a user's module is looked for."""
    dirs = [os.getcwd()]
    dirs += [entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
    return list(dict.fromkeys(os.path.abspath(d) for d in dirs))


def _import_module(module_name: str, spec: str) -> Any:
    dirs = _search_dirs()
    # Kept on sys.path after the import: the user's module may import its neighbours lazily.
    for entry in reversed(dirs):
        if entry in sys.path:
            sys.path.remove(entry)
        sys.path.insert(0, entry)
    importlib.invalidate_caches()  # a module written since the last import must be seen
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise UserInputError(
                f"model spec {spec!r}: module {module_name!r} not found; looked in "
                f"{', '.join(dirs)} and the installed packages ({_one_line(exc)})"
            ) from None
        raise UserInputError(_failure_inside(module_name, spec, exc)) from None
    except (Exception, SystemExit) as exc:  # anything the user's module raised while being imported
        raise UserInputError(_failure_inside(module_name, spec, exc)) from None


def _failure_inside(module_name: str, spec: str, exc: BaseException) -> str:
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" at {exc.filename}:{exc.lineno}"
    else:
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if "importlib" not in f.filename and not f.filename.startswith("<frozen")]
        if frames:
            where = f" at {frames[-1].filename}:{frames[-1].lineno}"
    return f"model spec {spec!r}: importing module {module_name!r} failed inside the module{where}: {_raised(exc)}"


def _resolve(module: Any, attr: str, spec: str) -> Any:
    obj = module
    walked = module.__name__
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=5, cutoff=0.5)
            hint = f"close names: {', '.join(close)}" if close else (
                f"it defines: {', '.join(names[:15])}{', ...' if len(names) > 15 else ''}" if names
                else "it defines no public names"
            )
            raise UserInputError(f"model spec {spec!r}: {walked!r} has no attribute {part!r}; {hint}")
        obj = getattr(obj, part)
        walked = f"{walked}.{part}"
    return obj


def _takes_keyword(fn: Callable[..., Any], name: str) -> bool:
    """True when ``fn`` accepts a keyword argument ``name`` (declared, or through ``**kwargs``)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        return False
    return any(p.kind is p.VAR_KEYWORD or (p.name == name and p.kind is not p.POSITIONAL_ONLY) for p in parameters)


def _definition_file(obj: Any) -> str | None:
    target = obj if inspect.isfunction(obj) or inspect.isclass(obj) else type(obj)
    try:
        return inspect.getsourcefile(target) or inspect.getfile(target)
    except (TypeError, OSError):
        return None


def load_python_model(target: str) -> ChatModel:
    """Load the function or object that ``python:<target>`` names (``target`` is "module:attr").

    Raises `UserInputError` (one line) when the module cannot be imported, the attribute is
    missing, or the object is neither callable nor has a ``chat`` method.
    """
    spec = f"python:{target}"
    module_name, colon, attr = target.partition(":")
    if not colon or not module_name or not attr:
        raise UserInputError(
            f"malformed model spec {spec!r}: expected 'python:<module>:<attr>', for example 'python:my_models:classify'"
        )
    module = _import_module(module_name, spec)
    obj = _resolve(module, attr, spec)

    if inspect.isclass(obj):
        if not callable(getattr(obj, "chat", None)):
            raise UserInputError(
                f"model spec {spec!r}: class {obj.__name__} has no 'chat' method; accepted: a function "
                "f(messages) -> str, or an object or class with a batched chat(conversations, decoding)"
            )
        try:
            obj = obj()
        except (Exception, SystemExit) as exc:
            raise UserInputError(
                f"model spec {spec!r}: could not instantiate {attr} with no arguments: {_raised(exc)}"
            ) from None

    identity: dict[str, Any] = {
        "backend": "python",
        "target": target,
        "source_sha256": _sha256_of(getattr(module, "__file__", None)),
    }
    definition = _definition_file(obj)
    if definition and os.path.abspath(definition) != os.path.abspath(getattr(module, "__file__", "") or ""):
        identity["definition_file"] = os.path.basename(definition)
        identity["definition_sha256"] = _sha256_of(definition)

    if callable(getattr(obj, "chat", None)):
        return PythonObjectModel(obj, spec, identity)
    if callable(obj):
        return FunctionModel(obj, spec, identity)
    raise UserInputError(
        f"model spec {spec!r}: {attr} is a {type(obj).__name__}, neither callable nor with a 'chat' method; "
        "accepted: a function f(messages) -> str, or an object or class with a batched chat(conversations, decoding)"
    )


def own_decoding(decoding: Decoding, conversation: Conversation) -> Decoding:
    """The `Decoding` a model function gets for one conversation: the run's, its ``seed`` (where
    the run has one) replaced by the conversation's own (`conversation_seed`), so each call is
    reproducible on its own, whatever batch or order it comes in."""
    if decoding.seed is None:
        return decoding
    return replace(decoding, seed=conversation_seed(decoding, conversation))


class FunctionModel:
    """Batched ``chat`` over a plain ``f(messages) -> str``, one call per conversation."""

    def __init__(self, fn: Callable[[Conversation], str], spec: str, identity: dict[str, Any]) -> None:
        self.fn = fn
        self.spec = spec
        self._identity = dict(identity)
        self._takes_decoding = _takes_keyword(fn, "decoding")

    def identity(self) -> dict[str, Any]:
        return dict(self._identity)

    def chat(self, conversations: Sequence[Conversation], decoding: Decoding) -> list[str]:
        replies: list[str] = []
        for index, conversation in enumerate(conversations):
            messages = [dict(message) for message in conversation]  # the function may mutate its copy
            try:
                if self._takes_decoding:
                    reply = self.fn(messages, decoding=own_decoding(decoding, conversation))
                else:
                    reply = self.fn(messages)
            except (Exception, SystemExit) as exc:  # one line, exit 2 (not pytest's traceback, or its exit)
                raise BackendError(f"model {self.spec!r} failed on conversation {index}: {_raised(exc)}") from exc
            if not isinstance(reply, str):
                raise BackendError(
                    f"model {self.spec!r} returned a {type(reply).__name__} for conversation {index}; "
                    "a python model function must return the reply as a str"
                )
            replies.append(_exact_str(reply))
            progress.advance(1)
        return replies

    def __repr__(self) -> str:
        return f"FunctionModel({self.spec!r})"


class PythonObjectModel:
    """A thin wrapper around a user object with a batched ``chat``: gives it an identity that
    includes the source hash, and checks what it returns.

    The object's own ``identity()`` is read once, here, when the model is opened: one that raises
    or is not JSON data (the response cache keys answers by it, the reports record it) is a
    `UserInputError` then, not a traceback from the cache or the report writer later."""

    def __init__(self, obj: Any, spec: str, identity: dict[str, Any]) -> None:
        self.obj = obj
        self.spec = spec
        merged = _own_identity(obj, spec)
        merged.update(identity)  # backend/target/source hash always ours: the cache relies on them
        self._identity = json.dumps(merged, sort_keys=True)

    def identity(self) -> dict[str, Any]:
        return json.loads(self._identity)  # a fresh copy: a caller may change its own

    def can_score(self) -> bool:
        return callable(getattr(self.obj, "score_options", None))

    def can_score_replies(self) -> bool:
        return callable(getattr(self.obj, "score_replies", None))

    def tempered_scoring(self) -> bool:
        """Whether the user's object scores at a temperature: its own ``tempered_scoring``."""
        return supports_tempered_scoring(self.obj)

    def chat(self, conversations: Sequence[Conversation], decoding: Decoding) -> list[str]:
        conversations = list(conversations)
        replies = list(self._call("chat", self.obj.chat, conversations, decoding))
        if len(replies) != len(conversations):
            raise BackendError(
                f"model {self.spec!r}: chat returned {len(replies)} replies for {len(conversations)} conversations"
            )
        for index, reply in enumerate(replies):
            if not isinstance(reply, str):
                raise BackendError(
                    f"model {self.spec!r}: chat returned a {type(reply).__name__} for conversation {index}, not a str"
                )
        return [_exact_str(reply) for reply in replies]

    def score_options(self, conversations: Sequence[Conversation], options: Sequence[str],
                      temperature: float = 1.0) -> list[list[float]]:
        if not self.can_score():
            raise UserInputError(f"model {self.spec!r} has no score_options method; use prediction mode 'generate'")
        conversations = list(conversations)
        rows = list(self._call("score_options", self.obj.score_options, conversations, list(options),
                               **self._tempered(temperature)))
        if len(rows) != len(conversations):
            raise BackendError(
                f"model {self.spec!r}: score_options returned {len(rows)} rows for {len(conversations)} conversations"
            )
        return self._rows("score_options", rows)

    def score_replies(
        self, conversations: Sequence[Conversation], replies: Sequence[Sequence[str]], complete: bool = True,
        temperature: float = 1.0,
    ) -> list[list[float]]:
        if not self.can_score_replies():
            raise UserInputError(f"model {self.spec!r} has no score_replies method")
        conversations, replies = list(conversations), [list(row) for row in replies]
        rows = list(self._call("score_replies", self.obj.score_replies, conversations, replies, bool(complete),
                               **self._tempered(temperature)))
        if len(rows) != len(conversations):
            raise BackendError(
                f"model {self.spec!r}: score_replies returned {len(rows)} rows for {len(conversations)} conversations"
            )
        out = self._rows("score_replies", rows)
        for index, (row, asked) in enumerate(zip(out, replies)):
            if len(row) != len(asked):
                raise BackendError(
                    f"model {self.spec!r}: score_replies returned {len(row)} scores for the {len(asked)} "
                    f"replies of conversation {index}"
                )
        return out

    def _tempered(self, temperature: Any) -> dict[str, float]:
        """The keyword a scoring call passes on: none at temperature 1 (an object without
        tempered scoring is asked as before), ``temperature`` otherwise, which needs the object's
        ``tempered_scoring``."""
        if temperature == 1.0 and not isinstance(temperature, bool):
            return {}
        temperature = scoring_temperature(temperature)
        if not self.tempered_scoring():
            raise UserInputError(f"model {self.spec!r} cannot score at a temperature (asked for {temperature:g}): "
                                 "its object declares no tempered_scoring (docs/writing-backends.md)")
        return {"temperature": temperature}

    def _call(self, name: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> list[Any]:
        """``method(*args, **kwargs)`` as a list. Whatever the user's code raises (``sys.exit``
        too) while it runs or while its result is read is one `BackendError` line (exit 2), not a
        traceback in pytest's output and not pytest's own exit."""
        try:
            out = list(method(*args, **kwargs))
            progress.advance(len(args[0]))  # one batched call: the whole batch at once
            return out
        except SceError:
            raise
        except (Exception, SystemExit) as exc:
            raise BackendError(f"model {self.spec!r}: {name} failed: {_raised(exc)}") from exc

    def _rows(self, name: str, rows: list[Any]) -> list[list[Any]]:
        """Each row of scores as a list (reading a row runs the user's code too)."""
        try:
            return [list(row) for row in rows]
        except (Exception, SystemExit) as exc:
            raise BackendError(f"model {self.spec!r}: a row {name} returned cannot be read: {_raised(exc)}") from exc

    def __repr__(self) -> str:
        return f"PythonObjectModel({self.spec!r})"


def _own_identity(obj: Any, spec: str) -> dict[str, Any]:
    """The object's ``identity()`` as plain JSON data ({} without one); `UserInputError` (one
    line) when it raises or returns anything else than a JSON object (a set, an object, NaN)."""
    own = getattr(obj, "identity", None)
    if not callable(own):
        return {}
    try:
        raw = own()
    except (Exception, SystemExit) as exc:
        raise UserInputError(f"model spec {spec!r}: identity() failed: {_raised(exc)}") from None
    try:
        # a round trip: what is kept is plain JSON data, whatever subclasses the object returned
        data = json.loads(json.dumps(dict(raw), sort_keys=True, allow_nan=False))
    except (Exception, SystemExit) as exc:
        raise UserInputError(
            f"model spec {spec!r}: identity() must return a JSON object (strings, numbers, true, false, null, "
            f"lists and objects with string keys): the response cache keys answers by it and the reports "
            f"record it; it returned {type(raw).__name__} data ({_raised(exc)})"
        ) from None
    return data


def load(spec: Any, options: Any) -> ChatModel:
    """The loader its declaration names (sce_checks/models/catalog.py: PYTHON): the callable or
    object ``python:<module>:<attr>`` (a parsed `Spec`) names."""
    return load_python_model(spec.target)
