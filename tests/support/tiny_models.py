"""Tiny random-weight transformers models built from configs (no download), shared by tests."""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM


def tiny_qwen2(seed: int, vocab_size: int = 96, layers: int = 2) -> Qwen2ForCausalLM:
    torch.manual_seed(seed)  # weight init has no generator argument; tests only, seeded per model
    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
    )
    return Qwen2ForCausalLM(config).eval()


def tiny_llama(seed: int, vocab_size: int = 80, layers: int = 2) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
    )
    return LlamaForCausalLM(config).eval()


def tiny_tokenizer(shuffle_seed: int | None = None):
    """A byte-level BPE tokenizer with no merges (257 tokens), built offline.

    Byte-level so that transformers' Qwen2/Llama tokenizer classes (chosen from the model config)
    load it faithfully. ``shuffle_seed`` permutes the ids: same strings, a different vocabulary.
    """
    import random

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import PreTrainedTokenizerFast

    symbols = sorted(ByteLevel.alphabet())
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(symbols)
    vocab = {"<|endoftext|>": 0, **{ch: i + 1 for i, ch in enumerate(symbols)}}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")


def save_tiny_checkpoint(
    folder, seed: int, arch: str = "qwen2", shuffle_seed: int | None = None, vocab_size: int | None = None
) -> str:
    """Write a tiny random model + tokenizer as a safetensors checkpoint; return the folder.

    ``vocab_size``: the model's embedding rows (default: the tokenizer's 257), e.g. padded past the
    tokenizer as many real checkpoints are, or short of it.
    """
    tokenizer = tiny_tokenizer(shuffle_seed)
    vocab = vocab_size or len(tokenizer)
    model = tiny_qwen2(seed, vocab_size=vocab) if arch == "qwen2" else tiny_llama(seed, vocab_size=vocab)
    model.config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return str(folder)
