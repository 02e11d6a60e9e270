"""A tiny random Llama on the REAL SmolLM2 tokenizer, built in memory (seeded, 2 layers, hidden
size 64), shared by tests/models/conftest.py (which saves it and loads it through ``hf:<dir>``)
and the tests that use it in memory. Weights are random, so the numbers test arithmetic, not
behaviour."""

from __future__ import annotations

from typing import Any


def tiny_llama(seed: int = 1234, batch_size: int = 4) -> Any:
    """An `HFChatModel` around a freshly built tiny Llama (fp32, CPU)."""
    from sce_checks.models.hf import HFChatModel

    model, tokenizer = build_tiny_llama(seed)
    return HFChatModel(model, tokenizer, name="tiny-llama", batch_size=batch_size)


def build_tiny_llama(seed: int = 1234) -> tuple[Any, Any]:
    """(model, tokenizer): a seeded 2-layer Llama on the real SmolLM2 tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from sce_checks.models.smollm2 import smollm2_tokenizer

    tokenizer = smollm2_tokenizer()
    torch.manual_seed(seed)
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
    # A wider output layer than the default init gives log-probabilities that clearly move when a
    # word is removed (near-uniform outputs would make every attribution ~0).
    with torch.no_grad():
        model.lm_head.weight.normal_(0.0, 0.3)
    return model, tokenizer
