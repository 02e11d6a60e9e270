"""Cheap but sound fingerprints of model weights, used in a backend's identity (and so in every
cache key and report).

Hashing every byte of a multi-GB checkpoint on each start would cost more than an audit of a
small grid, so a folder is fingerprinted from ``config.json`` (whole), the name and size of every
weights file, and the sha256 of the first and last MiB of each weights file. Any re-save,
fine-tune or re-quantisation changes the size or those bytes (headers hold tensor metadata,
the tail holds the last tensors); a change confined to the middle of a file of identical size
would go unseen, which we accept for the speed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

__all__ = ["WEIGHT_SUFFIXES", "folder_fingerprint", "parameters_fingerprint"]

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


def folder_fingerprint(folder: str | Path) -> str:
    """sha256 over config.json and (name, size, head/tail sha256) of each weights file in
    ``folder`` (not recursive; symlinks, as in the Hugging Face cache, are followed)."""
    folder = Path(folder)
    digest = hashlib.sha256(b"sce-checks/weights-fingerprint/v1\n")
    config = folder / "config.json"
    if config.is_file():
        digest.update(b"config.json\n" + config.read_bytes() + b"\n")
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if not path.name.endswith(WEIGHT_SUFFIXES) or not path.is_file():
            continue
        size = path.stat().st_size
        digest.update(f"{path.name}\t{size}\t{_head_tail_sha256(path, size)}\n".encode())
    return digest.hexdigest()


def parameters_fingerprint(model: Any) -> str:
    """sha256 over every parameter and buffer (name, dtype, shape, bytes) of an in-memory torch
    model: exact, and fine for models built in tests; costs about a second per 500 MB."""
    import torch

    digest = hashlib.sha256(b"sce-checks/parameters-fingerprint/v1\n")
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}\t{tensor.dtype}\t{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()
