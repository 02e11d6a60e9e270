"""Fixtures for the transformers backend: a tiny random Llama on the REAL SmolLM2 tokenizer.

Built at test time (seeded, 2 layers, hidden size 64), saved once per session into a temporary
folder and loaded through the public spec ``hf:<dir>``, so the tests exercise the same code path
as a user's model. The tokenizer (with its chat template) comes from the embedded SmolLM2
package; its one-time conversion is shared with the real-model tests through the cache root.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    from tests.helpers.tiny_llama import build_tiny_llama

    model, tokenizer = build_tiny_llama(1234)
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir: Path):
    from sce_checks.models import ModelOptions, load_model

    return load_model(f"hf:{tiny_model_dir}", ModelOptions(batch_size=4))
