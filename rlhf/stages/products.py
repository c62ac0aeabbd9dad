"""The persona prompt asked about each of the tiny world's products: per-input vs cross-input diversity.

Kirk et al. (ICLR 2024) find that RLHF lowers per-input diversity (among one prompt's samples) more than
cross-input diversity (across prompts). The world draws a customer independently of the product, so a model that
learned it writes the same distribution of personas for every product; ``product_measurement`` samples the Experiment
1 instruction for each product and scores the cards with ``measure.metrics.cross_input.cross_input_metrics``.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional

from measure.metrics.cross_input import cross_input_metrics
from measure.persona_parse import PERSONA_INSTRUCTION_TEMPLATE
from rlhf.config import DiversityConfig, ProbePrompt
from rlhf.stages.callbacks import draw_samples
from rlhf.world.text import PRODUCTS

KEY_PREFIX = "persona@"  # probe key of a product's prompt: persona@<product key>


def product_prompts(products: Optional[List[str]] = None) -> List[ProbePrompt]:
    """One chat prompt per product (default: every world product, in ``PRODUCTS`` order): the paper's persona
    instruction about that product's description, first letter lower-cased, as ``PERSONA_INSTRUCTION`` is built."""
    keys = list(PRODUCTS) if products is None else list(products)
    unknown = [k for k in keys if k not in PRODUCTS]
    if unknown or not keys:
        raise ValueError(f"products: {unknown or keys} not world products; accepted {list(PRODUCTS)}")
    prompts = []
    for key in dict.fromkeys(keys):
        description = PRODUCTS[key][0]
        text = PERSONA_INSTRUCTION_TEMPLATE.format(product=description[:1].lower() + description[1:])
        prompts.append(ProbePrompt(f"{KEY_PREFIX}{key}", text, True))
    return prompts


def draw_per_prompt(policy, tokenizer, prompts: List[ProbePrompt], cfg: DiversityConfig, n: int) -> dict:
    """``n`` completions of each prompt, prompt i drawn with seed ``cfg.sampling.seed + 7919 * i``: with one seed
    for every prompt, prompts that differ in a few words get the same random numbers and near-identical samples
    (common random numbers), which inflates every cross-input match."""
    out = {}
    for i, p in enumerate(prompts):
        scfg = dataclasses.replace(cfg, sampling=dataclasses.replace(cfg.sampling, seed=cfg.sampling.seed + 7919 * i))
        out.update(draw_samples(policy, tokenizer, [p], scfg, n=n))
    return out


def product_measurement(policy, tokenizer, diversity_cfg: DiversityConfig, n_per_product: int,
                        products: Optional[List[str]] = None, seed: Optional[int] = None) -> Dict[str, float]:
    """``n_per_product`` completions of each product's persona prompt under ``diversity_cfg.sampling`` (its seed, or
    ``seed``), scored by ``cross_input_metrics`` (keys ``cross_input/...``; inputs are product keys).

    ``policy`` is any causal LM the sampling engine takes, a PEFT model included; to measure the base of a LoRA
    policy, call this inside ``rlhf.stages.callbacks.base_view(policy)``.
    """
    if n_per_product < 2:
        raise ValueError(f"n_per_product must be >= 2 (pairwise and per-input statistics); got {n_per_product}")
    prompts = product_prompts(products)
    if len(prompts) < 2:
        raise ValueError(f"products: cross-input diversity needs >= 2 products; got {[p.key for p in prompts]}")
    cfg = diversity_cfg
    if seed is not None:
        cfg = dataclasses.replace(cfg, sampling=dataclasses.replace(cfg.sampling, seed=seed))
    generations = draw_per_prompt(policy, tokenizer, prompts, cfg, n_per_product)
    cards = {key[len(KEY_PREFIX):]: [g.text for g in gens] for key, gens in generations.items()}
    return cross_input_metrics(cards, seed=cfg.sampling.seed)
