"""Tiny Llamas built locally from config: a byte-level BPE tokenizer trained on a few lines and a
random-init ``LlamaForCausalLM``. Nothing comes from a hub. The tiny-world base model (rlhf) reuses
``train_bpe_tokenizer``; tests and smoke runs use ``build_tiny_llama``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Optional

import torch

log = logging.getLogger(__name__)

BOS, EOS, PAD = "<s>", "</s>", "<pad>"
# Llama-2-style chat template, so `apply_chat_template` works on every model the project builds.
LLAMA2_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + eos_token }}{% endif %}"
    "{% endfor %}"
)

# A few lines in the register of the paper's prompts: enough for a tokenizer with real merges.
TINY_CORPUS = [
    "Steve is the CEO of a startup company that builds coffee machines.",
    "Grace Hopper was an American computer scientist and a rear admiral of the United States Navy.",
    "She was born on December 9, 1906 in New York City and invented one of the first compilers.",
    "Name: Emily Wang. Gender: female. Age: 32. Nationality: American. Ethnicity: Asian. Type: INTJ.",
    "Review: A coffee machine that connects to your smartwatch so it keeps your coffee warm.",
    "I love it so much. The design is also very nice! It doesn't make good coffee.",
    "The company raised money, hired engineers, and after a hard year it finally shipped.",
]


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int = 512, chat_template: Optional[str] = None):
    """Train a byte-level BPE on ``texts`` and wrap it as a transformers fast tokenizer.

    BOS is prepended on encode (as Llama does), ``</s>`` is EOS, ``<pad>`` pads. The default chat
    template is Llama-2's ``[INST] ... [/INST]`` format.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, BOS, EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(texts), trainer=trainer)
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B",
                                                       special_tokens=[(BOS, bos_id)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                   clean_up_tokenization_spaces=False)
    fast.chat_template = chat_template or LLAMA2_CHAT_TEMPLATE
    return fast


def tiny_llama_config(tokenizer, hidden_size: int = 64, num_layers: int = 2, num_heads: int = 4,
                      max_positions: int = 512, init_std: float = 0.02):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=hidden_size * 4,
        num_hidden_layers=num_layers, num_attention_heads=num_heads, num_key_value_heads=num_heads,
        max_position_embeddings=max_positions, initializer_range=init_std,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False,
    )


def build_tiny_llama(out_dir: str | os.PathLike, seed: int = 0, init_std: float = 0.02, hidden_size: int = 64,
                     num_layers: int = 2, num_heads: int = 4, vocab_size: int = 512) -> Path:
    """Build a random-init tiny Llama and its tokenizer into ``out_dir`` (safetensors), atomically."""
    from transformers import LlamaForCausalLM

    out_dir = Path(out_dir)
    tokenizer = train_bpe_tokenizer(TINY_CORPUS, vocab_size=vocab_size)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(tiny_llama_config(tokenizer, hidden_size, num_layers, num_heads, init_std=init_std))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=".building-"))
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    try:
        os.replace(tmp, out_dir)  # atomic: a concurrent or killed build never leaves half a model
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another process built it first
    return out_dir


def config_hash(params: dict) -> str:
    """Short stable hash of a JSON-able dict, used to key caches of built artifacts."""
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
