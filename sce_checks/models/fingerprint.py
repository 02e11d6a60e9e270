"""Cheap but sound fingerprints of model weights, used in a backend's identity (and so in every
cache key and report).

Hashing every byte of a multi-GB checkpoint on each start would cost more than an audit of a
small grid, so a folder is fingerprinted from ``config.json`` (whole), the name and size of every
weights file, and the sha256 of the first and last MiB of each weights file. Any re-save,
fine-tune or re-quantisation changes the size or those bytes (headers hold tensor metadata,
the tail holds the last tensors); a change confined to the middle of a file of identical size
would go unseen, which we accept for the speed.

`remembered_folder_fingerprint` remembers a folder's fingerprint on disk (under the cache root,
keyed by the path, size and mtime of every file it reads), so the identity of a model is known on
every later start without reading a byte of its weights (docs/performance.md, "Cached reruns").
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any, Callable

from sce_checks import optional
from sce_checks.paths import cache_root

__all__ = ["WEIGHT_SUFFIXES", "folder_fingerprint", "parameters_fingerprint", "remembered",
           "remembered_folder_fingerprint"]

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".h5", ".msgpack")
_MIB = 1 << 20


def _head_tail_sha256(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        digest.update(handle.read(_MIB))
        if size > 2 * _MIB:
            handle.seek(size - _MIB)
            digest.update(handle.read(_MIB))
        elif size > _MIB:
            digest.update(handle.read())
    return digest.hexdigest()


def _weights_files(folder: Path) -> list[Path]:
    """The weights files a fingerprint reads, by name (symlinks followed)."""
    return [p for p in sorted(folder.iterdir(), key=lambda p: p.name) if p.name.endswith(WEIGHT_SUFFIXES) and p.is_file()]


def folder_fingerprint(folder: str | Path) -> str:
    """sha256 over config.json and (name, size, head/tail sha256) of each weights file in
    ``folder`` (not recursive; symlinks, as in the Hugging Face cache, are followed)."""
    folder = Path(folder)
    digest = hashlib.sha256(b"sce-checks/weights-fingerprint/v1\n")
    config = folder / "config.json"
    if config.is_file():
        digest.update(b"config.json\n" + config.read_bytes() + b"\n")
    for path in _weights_files(folder):
        size = path.stat().st_size
        digest.update(f"{path.name}\t{size}\t{_head_tail_sha256(path, size)}\n".encode())
    return digest.hexdigest()


def remembered(memo: Path, key: dict[str, Any], compute: Callable[[], str]) -> str:
    """``compute()``, remembered in the JSON file ``memo`` under ``key`` (the path, size and
    mtime of whatever ``compute`` reads): recomputed only when the key changed. The memo is only
    a speed-up: one that cannot be read or written is ignored (a read-only cache still works),
    and it is replaced atomically, so parallel processes never read half a file."""
    try:
        stored = json.loads(memo.read_text(encoding="utf-8"))
        if stored.get("key") == key and isinstance(stored.get("sha256"), str):
            return stored["sha256"]
    except (OSError, ValueError, AttributeError):
        pass
    value = compute()
    tmp = memo.with_name(f"{memo.name}.{uuid.uuid4().hex}.tmp")
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"key": key, "sha256": value}), encoding="utf-8")
        tmp.replace(memo)
    except OSError:
        tmp.unlink(missing_ok=True)
    return value


def remembered_folder_fingerprint(folder: str | Path) -> str:
    """`folder_fingerprint`, remembered under ``<cache root>/fingerprints`` keyed by the folder's
    resolved path and the (name, size, mtime_ns) of config.json and every weights file: a later
    start only lists and stats the folder. Any re-save changes a size or an mtime (a copy made
    with preserved mtimes and the same sizes keeps the remembered value, which then is right
    unless the bytes differ where sizes and mtimes agree)."""
    folder = Path(folder).resolve()
    files = [folder / "config.json"] if (folder / "config.json").is_file() else []
    stats = [(p.name, p.stat()) for p in files + _weights_files(folder)]
    key = {"version": 1, "folder": str(folder), "files": [[name, s.st_size, s.st_mtime_ns] for name, s in stats]}
    try:
        memo = cache_root() / "fingerprints" / f"{hashlib.sha256(str(folder).encode()).hexdigest()[:32]}.json"
    except OSError:  # no cache root can be made: compute every time
        return folder_fingerprint(folder)
    return remembered(memo, key, lambda: folder_fingerprint(folder))


def parameters_fingerprint(model: Any) -> str:
    """sha256 over every parameter and buffer (name, dtype, shape, bytes) of an in-memory torch
    model: exact, and fine for models built in tests; costs about a second per 500 MB."""
    torch = optional.torch()

    digest = hashlib.sha256(b"sce-checks/parameters-fingerprint/v1\n")
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}\t{tensor.dtype}\t{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()
