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
    torch = pytest.importorskip("torch")
    from transformers import LlamaConfig, LlamaForCausalLM

    from sce_checks.models.smollm2 import smollm2_tokenizer

    tokenizer = smollm2_tokenizer()
    torch.manual_seed(1234)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    # The default init (std 0.02) gives near-uniform next-token distributions; a wider output
    # layer gives greedy decoding clear winners and options clearly different log-probs (a
    # stricter test of the scoring arithmetic).
    with torch.no_grad():
        model.lm_head.weight.normal_(0.0, 0.3)
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir: Path):
    from sce_checks.models import ModelOptions, load_model

    return load_model(f"hf:{tiny_model_dir}", ModelOptions(batch_size=4))
