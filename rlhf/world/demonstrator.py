"""A simulated demonstrator for SFT on curated demonstrations (``sft_curated``): persona cards from the tiny
world whose first names follow a skewed (Zipf) prior instead of the world's broad one.

The paper's repeated names ("Emily", "Sarah") are a realistic product of curated demonstrations: annotators
write the names that come to mind, a heavy-tailed few. This demonstrator is that annotator. Every attribute of
a card but the first name is drawn from the world's true tables (``corpus.sample_customer``), the first name
from ``name_prior`` given the card's gender, so an SFT model fitting the demonstrations should approach the
prior's first-name entropy (``prior_entropy_bits``), well below the world's (``world_first_name_entropy_bits``).

Which names: the ``n_names`` most probable first names of each gender under the world's true distribution
(marginal over nationality, ``corpus.ground_truth``). They are in the base model's vocabulary and among its
most practised names, so SFT only has to move probability mass, not teach new tokens. Ties (the many names
that occur in only the English-speaking pool) are broken by position in ``tables.POOLS``, whose English pool
lists names roughly by US popularity: with the defaults the men are Daniel, Noah, David, then James, John,
Robert, Michael, ... and the women Emma, Laura, Julia, Patricia, Hannah, Sarah, Chloe, Sophia, then Mary,
Jennifer, ... The name is drawn independently of nationality (an annotator's favourite names), so a German
customer may be called James: the world's name-given-nationality coupling is deliberately broken for names.

The demonstration is the world's own chat format: the user turn is the paper's Experiment 1 instruction
(``PERSONA_INSTRUCTION_TEMPLATE`` for the card's product), the assistant turn the card exactly as
``corpus.card_text`` writes it (the form without the "Here is a customer persona" preamble).
"""
from __future__ import annotations

import math
import random
from typing import Dict, List, Optional

import numpy as np

from measure.metrics.entropy import entropy_bits
from measure.persona_parse import PERSONA_INSTRUCTION_TEMPLATE
from rlhf.world import tables as T
from rlhf.world import text as X
from rlhf.world.corpus import _lower_first, _pick, card_text, ground_truth, sample_customer, write_review

PAPER_PRODUCT = "coffee_machine"  # the paper's hypothetical product (Section 3.1): PERSONA_INSTRUCTION
BINARY_GENDERS = ("Male", "Female")  # genders with their own name list; the others take the union


def _true_first_names_by_gender(truth: dict) -> Dict[str, Dict[str, float]]:
    """p(first name | gender) in the world, marginal over nationality."""
    out: Dict[str, Dict[str, float]] = {}
    for nat, p_nat in truth["nationality"].items():
        for gender, names in truth["first_names_given_nationality_gender"][nat].items():
            dist = out.setdefault(gender, {})
            for name, p in names.items():
                dist[name] = dist.get(name, 0.0) + p_nat * p
    return out


def _pool_order(which: int) -> Dict[str, int]:
    """Each first name's position in the pools scanned in ``tables.POOLS`` order (the tie-break of ranks)."""
    order: Dict[str, int] = {}
    for pool in T.POOLS:
        for name in T.pool_names(pool, which):
            order.setdefault(name, len(order))
    return order


def _union(prior: Dict[str, Dict[str, float]]) -> Dict[str, float]:
    """Half of each binary gender's list, as the world names a non-binary customer."""
    out: Dict[str, float] = {}
    for gender in BINARY_GENDERS:
        for name, p in prior[gender].items():
            out[name] = out.get(name, 0.0) + p / len(BINARY_GENDERS)
    return out


def name_prior(n_names: int = 20, exponent: float = 1.0, seed: int = 0) -> Dict[str, Dict[str, float]]:
    """The demonstrator's first-name distribution per gender: p(rank r) = r^-exponent / sum_k k^-exponent over the
    ``n_names`` most probable names of each binary gender in the world; other genders of ``tables.GENDER`` get
    the half-and-half union of both lists (as in the world). ``seed`` 0 ranks the names by true frequency
    (the most common name is rank 1); any other seed permutes the ranks among the same names (another
    demonstrator, equally skewed: the entropy depends only on ``n_names`` and ``exponent``)."""
    if not (isinstance(exponent, (int, float)) and math.isfinite(exponent) and exponent >= 0):
        raise ValueError(f"exponent must be finite and >= 0; got {exponent!r}")
    by_gender = _true_first_names_by_gender(ground_truth())
    smallest = min(len(by_gender[g]) for g in BINARY_GENDERS)
    if not (isinstance(n_names, int) and 1 <= n_names <= smallest):
        raise ValueError(f"n_names must be an integer in [1, {smallest}]; got {n_names!r}")
    weights = [r ** -float(exponent) for r in range(1, n_names + 1)]
    total = sum(weights)
    rng = random.Random(seed)
    prior: Dict[str, Dict[str, float]] = {}
    for which, gender in enumerate(BINARY_GENDERS):
        order = _pool_order(which)
        # rounded so that names with the same pools tie exactly, then fall to pool order
        ranked = sorted(by_gender[gender], key=lambda n: (-round(by_gender[gender][n], 12), order[n]))[:n_names]
        if seed != 0:
            rng.shuffle(ranked)
        prior[gender] = {name: w / total for name, w in zip(ranked, weights)}
    for gender in T.GENDER:
        if gender not in prior:
            prior[gender] = _union(prior)
    return prior


def demonstration(rng: random.Random, prior: Dict[str, Dict[str, float]], product: Optional[str] = None) -> dict:
    """One demonstration: a world customer (``corpus.sample_customer``) whose first name is redrawn from ``prior``
    for their gender, a sentiment level from the world's shares and a review of ``product`` (None: the paper's
    coffee machine), as ``corpus.sample_card`` builds a card with the product fixed.

    Returns {"prompt": the Experiment 1 instruction for the product, "completion": the card text as the assistant
    turn of the world's chat documents, "card": the card dict (sample_card's keys)}.
    """
    product = PAPER_PRODUCT if product is None else product
    if product not in X.PRODUCTS:
        raise ValueError(f"product must be one of {sorted(X.PRODUCTS)}; got {product!r}")
    customer = sample_customer(rng)
    names = prior.get(customer["gender"])
    if not names:
        raise ValueError(f"prior has no names for gender {customer['gender']!r}; it has {sorted(prior)}")
    customer["first_name"] = _pick(rng, names)
    level = _pick(rng, X.SENTIMENT)
    card = {**customer, "product": product, "sentiment": level, "review": write_review(rng, level, product)}
    prompt = PERSONA_INSTRUCTION_TEMPLATE.format(product=_lower_first(X.PRODUCTS[product][0]))
    return {"prompt": prompt, "completion": card_text(card), "card": card}


def demonstrations(n: int, seed: int, n_names: int = 20, exponent: float = 1.0,
                   products: Optional[List[str]] = None) -> List[dict]:
    """``n`` demonstrations under ``name_prior(n_names, exponent)``; the same seed gives the same list. ``products``
    None: the paper's coffee machine only; a list: cycled through in order (equal shares, in a fixed pattern)."""
    if not (isinstance(n, int) and n >= 0):
        raise ValueError(f"n must be an integer >= 0; got {n!r}")
    if products is not None and not products:
        raise ValueError(f"products must be None or a non-empty list; got {products!r}")
    prior = name_prior(n_names, exponent)
    cycle = [PAPER_PRODUCT] if products is None else list(products)
    rng = random.Random(seed)
    return [demonstration(rng, prior, cycle[i % len(cycle)]) for i in range(n)]


def _entropies_bits(by_gender: Dict[str, Dict[str, float]], given_nat_gender_bits: Optional[float] = None) -> dict:
    gender = {g: p / sum(T.GENDER.values()) for g, p in T.GENDER.items()}
    missing = set(gender) - set(by_gender)
    if missing:
        raise ValueError(f"first-name distributions needed for genders {sorted(missing)}; got {sorted(by_gender)}")
    out = {g: float(entropy_bits(np.array(list(by_gender[g].values())))) for g in gender}
    marginal: Dict[str, float] = {}
    for g, p_g in gender.items():
        total = sum(by_gender[g].values())
        for name, p in by_gender[g].items():
            marginal[name] = marginal.get(name, 0.0) + p_g * p / total
    out["given_gender"] = sum(p_g * out[g] for g, p_g in gender.items())
    out["marginal"] = float(entropy_bits(np.array(list(marginal.values()))))
    # the card states nationality before the first name; the demonstrator ignores it, the world does not
    out["given_nationality_gender"] = out["given_gender"] if given_nat_gender_bits is None else given_nat_gender_bits
    return out


def prior_entropy_bits(prior: Dict[str, Dict[str, float]]) -> dict:
    """First-name entropy (bits) of the demonstrator's prior, the value an SFT model fitting its demonstrations
    approaches: per gender, ``given_gender`` (H(name | gender), gender at the world's shares), ``marginal``
    (H(name) of the mixture over the world's genders) and ``given_nationality_gender`` (equal to
    ``given_gender``: the prior ignores nationality). Same keys as ``world_first_name_entropy_bits``."""
    return _entropies_bits(prior)


def world_first_name_entropy_bits() -> dict:
    """The same entropies (bits) of the world's true first names (``corpus.ground_truth``, marginal over
    nationality), plus the expected H(name | nationality, gender), what the card order lets a model condition on."""
    truth = ground_truth()
    gender = {g: p / sum(T.GENDER.values()) for g, p in T.GENDER.items()}
    conditional = sum(p_nat * p_g * float(entropy_bits(np.array(list(
        truth["first_names_given_nationality_gender"][nat][g].values()))))
        for nat, p_nat in truth["nationality"].items() for g, p_g in gender.items())
    return _entropies_bits(_true_first_names_by_gender(truth), conditional)
