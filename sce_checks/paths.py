"""Where sce-checks keeps files that outlive a run (the response cache), and how it writes the
files a run leaves (reports, baselines): whole or not at all."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

import platformdirs

from sce_checks.errors import UserInputError

CACHE_DIR_ENV = "SCE_CHECKS_CACHE_DIR"


def cache_dir() -> Path:
    """The cache directory: ``$SCE_CHECKS_CACHE_DIR`` if set (CI, tests), else the platform's
    per-user cache directory. Not created: the response cache decides what a directory it
    cannot make means (sce_checks/models/cache.py)."""
    configured = os.environ.get(CACHE_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()

    return Path(platformdirs.user_cache_dir("sce-checks"))


def cache_root() -> Path:
    """`cache_dir`, created on demand so callers can write into it at once."""
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    return root


def write_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write via a temporary file in the same directory, then rename over ``path``: a crash never
    leaves half a report, and a failed write (a directory at ``path``, a full disk, no permission)
    leaves no temporary file and is one `UserInputError` naming the path, not a traceback.

    Lone surrogates (a reply may carry a ``\\ud800`` escape) are written as backslash escapes:
    in a JSON string that is the same JSON escape, elsewhere readable text; never an encoding error."""
    path = Path(path)
    data = text.encode("utf-8", "backslashreplace")
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    created = False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # mode as any new file (umask)
        created = True
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        created = False
    except OSError as exc:
        raise UserInputError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if created:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return path
