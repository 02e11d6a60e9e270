"""Where sce-checks keeps files that outlive a run (the response cache)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_DIR_ENV = "SCE_CHECKS_CACHE_DIR"


def cache_root() -> Path:
    """The cache directory: ``$SCE_CHECKS_CACHE_DIR`` if set (CI, tests), else the platform's
    per-user cache directory. Created on demand so callers can write into it at once."""
    configured = os.environ.get(CACHE_DIR_ENV, "").strip()
    if configured:
        root = Path(configured).expanduser()
    else:
        import platformdirs

        root = Path(platformdirs.user_cache_dir("sce-checks"))
    root.mkdir(parents=True, exist_ok=True)
    return root
