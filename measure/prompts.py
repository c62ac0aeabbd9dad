"""Turn a prompt into the token ids a model sees.

Base models get the prompt as plain text (with BOS, as in the paper's Experiments 2 and 3). Chat models
get it through the tokenizer's chat template; a chat tokenizer without one gets Llama-2's
``[INST] ... [/INST]`` format, which the paper's aligned model was fine-tuned with.
"""
from __future__ import annotations

from typing import List

LLAMA2_INST_FORMAT = "[INST] {prompt} [/INST]"


def chat_prompt_text(tokenizer, prompt: str) -> str:
    """The prompt wrapped for a chat model, as text (BOS included when the template adds it)."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
    bos = tokenizer.bos_token or ""
    return bos + LLAMA2_INST_FORMAT.format(prompt=prompt)


def encode_prompt(tokenizer, prompt: str, chat: bool = False) -> List[int]:
    """Token ids of ``prompt``: plain text with the tokenizer's special tokens, or the chat format."""
    if chat:
        return tokenizer(chat_prompt_text(tokenizer, prompt), add_special_tokens=False)["input_ids"]
    return tokenizer(prompt, add_special_tokens=True)["input_ids"]
