"""Exact persona attribute distributions of a model, by teacher forcing on cards' prefixes (issue 13, item 1).

Used by Experiment 1 (``measure.experiments.personas``), the PPO diversity callback and the final PPO
measurement, so a number logged during training and the same number measured afterwards agree by construction.

- contexts: ``card_contexts(texts, attributes, n)``: per sampled card (the first ``n``), the card cut where each
  attribute's value begins ("...\\nNationality:"; ``measure.persona_parse.field_prefixes``).
  The contexts come from the base model's own cards; every model is scored on the same contexts, so two models
  can be compared context by context (``conditional_kl_nats``) whatever either would write itself.
- candidates: ``candidate_values(truth, listed, attributes)``: the values of the tiny world's ground truth
  (``experiment.ground_truth_file``), or lists given in config for a real model; each is scored as
  ``value_format`` (" {value}\\n": the space after the colon, the value and the line break that ends the field,
  so " John" is not counted inside " Johnny").
- ``score_contexts``: a (contexts x candidates) matrix of log p (nats) per attribute, through
  ``measure.scoring.nested_candidate_logprobs`` (a card is run once; the trie of every attribute's candidates is
  packed over its KV cache).
- ``exact_blocks`` / ``exact_comparison``: the results.json blocks (``measure.metrics.forced_choice`` pooling);
  ``ExactProbe``: contexts drawn from a base model once, the base scored once, any model scored against it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
from tqdm.auto import tqdm

from measure.metrics.attributes import truth_distribution
from measure.metrics.forced_choice import exact_summary, marginal_top, paired_comparison
from measure.metrics.registry import key as registry_key
from measure.persona_parse import ATTRIBUTES, field_prefixes
from measure.scoring import nested_candidate_logprobs

log = logging.getLogger(__name__)
VALUE_FORMAT = " {value}\n"  # how the tiny world writes a value after "Key:" (format_card), its line break included


def card_contexts(texts: Sequence[str], attributes: Sequence[str] = ATTRIBUTES,
                  n: Optional[int] = None) -> List[Dict[str, str]]:
    """Per card of the first ``n`` texts (all when None) that has any of ``attributes``' keys: {attribute: the card
    up to where its value begins}; every attribute's contexts are the cards that have its key, in card order."""
    texts = list(texts)[:n] if n is not None else list(texts)
    cards = [{a: p[a] for a in attributes if a in p} for p in (field_prefixes(t) for t in texts)]
    return [c for c in cards if c]


def contexts_per_attribute(cards: Sequence[Dict[str, str]]) -> Dict[str, int]:
    """How many contexts each attribute has (the cards with its key)."""
    counts: Dict[str, int] = {}
    for card in cards:
        for a in card:
            counts[a] = counts.get(a, 0) + 1
    return counts


def candidate_values(truth: Optional[dict], listed: Optional[Dict[str, Sequence[str]]] = None,
                     attributes: Sequence[str] = ATTRIBUTES) -> Dict[str, List[str]]:
    """{attribute: candidate values}: a list from ``listed`` (config) wins, else the keys of the truth's
    distribution of that attribute, most probable first; attributes with neither are left out."""
    out: Dict[str, List[str]] = {}
    for a in attributes:
        if listed and listed.get(a):
            out[a] = list(dict.fromkeys(str(v) for v in listed[a]))
        else:
            probs = truth_distribution(truth, a)
            if probs:
                out[a] = [v for v, _ in sorted(probs.items(), key=lambda kv: -kv[1])]
    return out


def candidate_token_ids(tokenizer, context_tail: str, values: Sequence[str],
                        value_format: str = VALUE_FORMAT) -> tuple[List[List[int]], int]:
    """(token ids of each value as written after ``context_tail``, how many values merged into the tail).

    A value's ids are those of ``tail + value`` after the ids of ``tail`` (the tail being the context's last line,
    "Nationality:"), so they are the tokens a model writing the card would use. If the tokenizer merges across
    the cut (never for byte-level BPE: a space starts a new pre-token), the value is tokenized alone and counted.
    """
    tail = tokenizer(context_tail, add_special_tokens=False)["input_ids"]
    ids, merged = [], 0
    for v in values:
        text = value_format.format(value=v)
        full = tokenizer(context_tail + text, add_special_tokens=False)["input_ids"]
        if full[:len(tail)] == tail and len(full) > len(tail):
            ids.append(full[len(tail):])
        else:
            ids.append(tokenizer(text, add_special_tokens=False)["input_ids"])
            merged += 1
    return ids, merged


@dataclass
class ScoredAttribute:
    """One model's forced choice over one attribute's values, on a list of contexts."""

    values: List[str]
    logprobs: np.ndarray  # (contexts, candidates): log p(value + field end | context), nats
    boundary_merges: int = 0  # values the tokenizer merged into the context's last token (tokenized alone)


def score_contexts(model, tokenizer, prompt_ids: Sequence[int], cards: Sequence[Dict[str, str]],
                   values: Dict[str, List[str]], value_format: str = VALUE_FORMAT, separator: str = "",
                   desc: str = "exact attributes", show_progress: bool = True) -> Dict[str, ScoredAttribute]:
    """Score every candidate of every attribute on each card's context for it (``card_contexts``): context ids =
    ``prompt_ids`` + the ids of ``separator + prefix`` (``separator`` joins a card written under another prompt
    format: " " after a Llama-2 ``[/INST]``). A card's contexts are prefixes of one another, so the card is run once
    (``forced_choice.nested_candidate_logprobs``) unless a prefix tokenizes differently alone (then it is run on its
    own). Attributes without contexts or candidates are left out; rows follow card order."""
    candidates: Dict[tuple, tuple] = {}  # (attribute, context's last line) -> (candidate ids, merges)
    rows: Dict[str, List[np.ndarray]] = {}
    merges: Dict[str, int] = {}
    for card in tqdm(cards, desc=desc, unit="card", disable=not show_progress):
        attrs = [a for a in card if values.get(a)]
        if not attrs:
            continue
        ids = {a: list(prompt_ids) + tokenizer(separator + card[a], add_special_tokens=False)["input_ids"]
               for a in attrs}
        longest = max(ids.values(), key=len)
        for a in attrs:
            tail = card[a].rsplit("\n", 1)[-1]
            if (a, tail) not in candidates:
                candidates[(a, tail)] = candidate_token_ids(tokenizer, tail, values[a], value_format)
                merges[a] = merges.get(a, 0) + candidates[(a, tail)][1]
        nested = [a for a in attrs if longest[:len(ids[a])] == ids[a]]
        lps = nested_candidate_logprobs(model, longest, [(len(ids[a]), candidates[(a, card[a].rsplit("\n", 1)[-1])][0])
                                                         for a in nested])
        for a in attrs:
            lp = lps[nested.index(a)] if a in nested else nested_candidate_logprobs(
                model, ids[a], [(len(ids[a]), candidates[(a, card[a].rsplit("\n", 1)[-1])][0])])[0]
            rows.setdefault(a, []).append(lp)
    out = {a: ScoredAttribute(values=list(values[a]), logprobs=np.stack(r), boundary_merges=merges.get(a, 0))
           for a, r in rows.items()}
    for a, m in merges.items():
        if m:
            log.warning("%s: %d candidate values merged with the context's last token; tokenized alone", a, m)
    return out


def exact_blocks(scored: Dict[str, ScoredAttribute], n_boot: int, seed: int,
                 truth: Optional[dict] = None) -> Dict[str, dict]:
    """``models.<label>.attributes_exact``: per attribute, ``forced_choice.exact_summary`` plus the most probable
    values of the marginal and, with the truth, the true distribution's entropy (bits) for reference."""
    from measure.metrics.entropy import entropy_bits

    out = {}
    for a, s in scored.items():
        block = {**exact_summary(s.logprobs, n_boot, seed), "top": marginal_top(s.logprobs, s.values)}
        probs = truth_distribution(truth, a)
        if probs:
            block["truth_entropy_bits"] = float(entropy_bits(np.array(list(probs.values()))))
        if s.boundary_merges:
            block["boundary_merges"] = s.boundary_merges
        out[a] = block
    return out


def exact_comparison(model: Dict[str, ScoredAttribute], base: Dict[str, ScoredAttribute], n_boot: int,
                     seed: int) -> Dict[str, dict]:
    """``comparison.attributes_exact``: per attribute scored for both, ``forced_choice.paired_comparison``."""
    return {a: paired_comparison(model[a].logprobs, base[a].logprobs, n_boot, seed) for a in model if a in base}


EXACT_METRICS = ("marginal_entropy_bits", "conditional_entropy_bits", "covered_mass")  # registry keys


def flat_metrics(blocks: Dict[str, dict], comparison: Optional[Dict[str, dict]] = None,
                 prefix: str = "exact") -> Dict[str, float]:
    """``{prefix}/<attr>/<metric>`` scalars (point estimates) for logging: marginal and conditional entropy,
    covered mass and, with a comparison, the conditional KL to the base (keys from ``measure.metrics.registry``)."""
    out = {}
    for a, block in blocks.items():
        for m in EXACT_METRICS:
            out[f"{prefix}/{a}/{registry_key(m)}"] = block[m]["mean"]
    for a, block in (comparison or {}).items():
        out[f"{prefix}/{a}/{registry_key('conditional_kl_nats')}"] = block["conditional_kl_nats"]["mean"]
    return out


class ExactProbe:
    """Fixed contexts and candidates, and the base model's scores on them: scores any model against the base.

    ``from_base`` samples ``n_contexts`` cards from the base model (under ``prompt_ids``) and scores the base once;
    ``measure(model)`` then scores a model on the same contexts and returns (``exact_blocks``, ``exact_comparison``).
    The PPO diversity callback keeps one probe for a whole run, so every measurement is paired with the same
    contexts and the base is scored once.
    """

    def __init__(self, tokenizer, prompt_ids: Sequence[int], contexts: List[Dict[str, str]],
                 values: Dict[str, List[str]], base: Dict[str, ScoredAttribute], value_format: str = VALUE_FORMAT,
                 truth: Optional[dict] = None):
        self.tokenizer, self.prompt_ids, self.contexts, self.values = tokenizer, list(prompt_ids), contexts, values
        self.base, self.value_format, self.truth = base, value_format, truth

    @classmethod
    def from_base(cls, base_model, tokenizer, prompt_ids: Sequence[int], values: Dict[str, List[str]], sampling,
                  n_contexts: int, prompt: str = "", value_format: str = VALUE_FORMAT,
                  truth: Optional[dict] = None, show_progress: bool = False) -> "ExactProbe":
        """Draw ``n_contexts`` cards from ``base_model`` through the sampling engine (``sampling``: a
        SamplingConfig) and score the base on their prefixes."""
        from dataclasses import replace

        from measure.sampling import sample

        gens = sample(base_model, tokenizer, prompt_ids, replace(sampling, n_samples=n_contexts), prompt=prompt,
                      show_progress=show_progress, desc="base cards for exact attributes")
        contexts = card_contexts([g.text for g in gens], list(values))
        base = score_contexts(base_model, tokenizer, prompt_ids, contexts, values, value_format,
                              desc="exact attributes (base)", show_progress=show_progress)
        return cls(tokenizer, prompt_ids, contexts, values, base, value_format, truth)

    def measure(self, model, n_boot: int = 1000, seed: int = 0, show_progress: bool = False) -> tuple:
        scored = score_contexts(model, self.tokenizer, self.prompt_ids, self.contexts, self.values,
                                self.value_format, show_progress=show_progress)
        return exact_blocks(scored, n_boot, seed, self.truth), exact_comparison(scored, self.base, n_boot, seed)
