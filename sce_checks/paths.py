"""Where sce-checks keeps files that outlive a run (the response cache)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_DIR_ENV = "SCE_CHECKS_CACHE_DIR"


def cache_dir() -> Path:
    """The cache directory: ``$SCE_CHECKS_CACHE_DIR`` if set (CI, tests), else the platform's
    per-user cache directory. Not created: the response cache decides what a directory it
    cannot make means (sce_checks/models/cache.py)."""
    configured = os.environ.get(CACHE_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("sce-checks"))


def cache_root() -> Path:
    """`cache_dir`, created on demand so callers can write into it at once."""
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    return root
