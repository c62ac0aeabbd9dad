"""Diversity tracking during PPO, and TRL's metrics sent to wandb under their own names.

``DiversityCallback`` samples, every ``every`` steps (and once before the first step, the base policy),
``sampling.n_samples`` completions of each probe prompt with the shared sampling engine (``diversity.sampling``)
and scores them with the project's metric functions, so a number logged here equals the same number measured
afterwards on the same samples. Every key is a key of ``measure.metrics.registry`` (k = ``sampling.top_k``):

    diversity/<prompt>/full_entropy_bits, top{k}_entropy_bits  full-vocabulary and Eq. 3.2 entropy, per completion
    diversity/<prompt>/distinct_1, distinct_2                 measure.metrics.lexical.distinct_n
    diversity/<prompt>/sbert_cosine, tfidf_cosine             mean pairwise cosine (measure.metrics.similarity)
    diversity/<prompt>/vader_mean, vader_std                  VADER compound of the review (persona) or the text
    diversity/persona/attribute_entropy_bits/<attr>           plug-in entropy of each parsed persona attribute
    diversity/persona/attribute_entropy_chao_shen_bits/<attr> its coverage-adjusted (Chao-Shen) entropy
    diversity/persona/missing_share/<field>                   share of cards missing each field
    diversity/persona/exact/<attr>/marginal_entropy_bits, conditional_entropy_bits, covered_mass,
        conditional_kl_nats                                   exact (teacher-forced) distributions over the ground
                                                              truth's values, on the base policy's own cards
                                                              (``diversity.exact_contexts`` of them, drawn once)
    diversity/<metric>                                        the mean over prompts of the POOLED metrics
    diversity/seconds, diversity/cost_share                   the callback's own cost, as a share of PPO step time

TRL's PPO loop calls ``on_step_end``/``on_log`` (never ``on_step_begin``); all sampling happens on the main
process only.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
from transformers import TrainerCallback

from measure.config import SamplingConfig
from measure.exact_attributes import ExactProbe, candidate_values, flat_metrics
from measure.metrics.entropy import mean_per_completion, top_k_entropy_bits
from measure.metrics.lexical import distinct_n
from measure.metrics.registry import key as metric_key, metric, topk_key
from measure.metrics.sentiment import vader_compound
from measure.persona_parse import ATTRIBUTES, FIELDS, parse_persona
from measure.prompts import encode_prompt
from measure.sampling import Generation, sample
from rlhf.config import DiversityConfig, ProbePrompt

log = logging.getLogger(__name__)
# registry keys pooled over prompts as diversity/<key> (top-k filled with sampling.top_k)
POOLED = ("full_entropy_bits", "top{k}_entropy_bits", "distinct_1", "distinct_2", "sbert_cosine", "tfidf_cosine")
EXACT_BOOTSTRAP = 1000  # bootstrap resamples of the exact attribute intervals (only point estimates are logged)


def pooled_keys(k: int) -> List[str]:
    return [metric_key(name, k=k) for name in POOLED]


def recorded_k(gens: Sequence[Generation]) -> int:
    """How many top-k probabilities the engine recorded per token (``sampling.top_k``); its default if none."""
    return next((len(g.topk_probs[0]) for g in gens if g.topk_probs), SamplingConfig.top_k)


def token_entropies(gens: Sequence[Generation], k: Optional[int] = None) -> Dict[str, float]:
    """Mean over completions of each completion's mean per-token entropy: full vocabulary and top-k (bits).

    k is the number of top-k probabilities the engine recorded (``sampling.top_k``), read off the samples when
    not given; the key is ``top{k}_entropy_bits``."""
    k = recorded_k(gens) if k is None else k
    full = mean_per_completion([g.entropy_bits for g in gens])
    topk = mean_per_completion([top_k_entropy_bits(np.asarray(g.topk_probs)) if g.topk_probs else []
                                for g in gens])
    return {"full_entropy_bits": float(np.nanmean(full)), topk_key(k): float(np.nanmean(topk))}


def semantic_similarity(texts: Sequence[str], sbert: bool = True) -> Dict[str, float]:
    """Mean pairwise cosine of TF-IDF vectors and of SBERT embeddings (NaN when ``sbert`` is off)."""
    from measure.metrics.similarity import pairwise_cosine_stats, tfidf_vectors

    out = {"tfidf_cosine": pairwise_cosine_stats(tfidf_vectors(texts))["mean"], "sbert_cosine": math.nan}
    if sbert:
        from measure.embeddings import embed

        out["sbert_cosine"] = pairwise_cosine_stats(embed(texts))["mean"]
    return out


def persona_attributes(texts: Sequence[str]) -> Dict[str, float]:
    """Per attribute: plug-in and Chao-Shen entropy (bits) of the parsed values, and the share of cards missing
    each field."""
    from measure.metrics.attributes import attribute_entropy_bits, chao_shen_entropy_bits, missing_share

    cards = [parse_persona(t) for t in texts]
    out = {}
    for attr in ATTRIBUTES:
        values = [getattr(c, attr) for c in cards if getattr(c, attr) is not None]
        out[f"{metric_key('attribute_entropy_bits')}/{attr}"] = attribute_entropy_bits(values) if values else math.nan
        out[f"{metric_key('attribute_entropy_chao_shen_bits')}/{attr}"] = (chao_shen_entropy_bits(values) if values
                                                                          else math.nan)
    for name in FIELDS:
        out[f"{metric_key('missing_share')}/{name}"] = missing_share(cards, name)
    out[metric_key("parse_ok_share")] = float(np.mean([c.ok for c in cards]))
    return out


def judged_text(text: str, is_persona: bool) -> str:
    """What sentiment is read from: the review of a persona card, else the whole text."""
    return (parse_persona(text).review or "") if is_persona else text


def prompt_metrics(gens: Sequence[Generation], is_persona: bool, sbert: bool = True,
                   k: Optional[int] = None) -> Dict[str, float]:
    """Every diversity metric of one prompt's completions (keys without the `diversity/<prompt>/` prefix)."""
    texts = [g.text for g in gens]
    out = token_entropies(gens, k)
    out["distinct_1"], out["distinct_2"] = distinct_n(texts, 1), distinct_n(texts, 2)
    out.update(semantic_similarity(texts, sbert))
    compound = vader_compound([judged_text(t, is_persona) for t in texts])
    out["vader_mean"], out["vader_std"] = float(compound.mean()), float(compound.std(ddof=1))
    out["mean_tokens"] = float(np.mean([len(g.token_ids) for g in gens]))
    out["eos_share"] = float(np.mean([g.stopped_at_eos for g in gens]))
    if is_persona:
        out.update(persona_attributes(texts))
    for name in out:  # every key is a row of measure/metrics/registry.py (KeyError naming it otherwise)
        metric(name.split("/")[0])
    return out


def diversity_metrics(samples: Dict[str, List[Generation]], sbert: bool = True,
                      k: Optional[int] = None) -> Dict[str, float]:
    """`diversity/...` keys for the completions of each probe prompt (``samples`` maps prompt key to them)."""
    out: Dict[str, float] = {}
    for key, gens in samples.items():
        for name, value in prompt_metrics(gens, key == "persona", sbert, k).items():
            out[f"diversity/{key}/{name}"] = value
    k = recorded_k([g for gens in samples.values() for g in gens]) if k is None else k
    for name in pooled_keys(k):
        values = [out[f"diversity/{p}/{name}"] for p in samples]
        out[f"diversity/{name}"] = float(np.mean(values)) if not any(math.isnan(v) for v in values) else math.nan
    return out


def draw_samples(model, tokenizer, prompts: Sequence[ProbePrompt], cfg: DiversityConfig,
                 n: Optional[int] = None) -> Dict[str, List[Generation]]:
    """``n`` (default ``cfg.sampling.n_samples``) completions of each probe prompt, through the shared engine
    under ``cfg.sampling`` (its temperature, length, top-k and seed)."""
    scfg = dataclasses.replace(cfg.sampling, n_samples=n) if n else cfg.sampling
    return {p.key: sample(model, tokenizer, encode_prompt(tokenizer, p.text, chat=p.chat), scfg, prompt=p.text,
                          show_progress=False, name="diversity.sampling")
            for p in prompts}


def base_view(policy):
    """A context in which ``policy`` is the base model: its LoRA adapter disabled (PEFT), or the model itself."""
    disable = getattr(policy, "disable_adapter", None)
    return disable() if callable(disable) else contextlib.nullcontext()


def exact_probe(policy, tokenizer, prompts: Sequence[ProbePrompt], cfg: DiversityConfig,
                n_contexts: int) -> Optional[ExactProbe]:
    """An ``ExactProbe`` on ``n_contexts`` cards of the base policy (adapter off) from the persona prompt, with the
    ground truth's values as candidates; None when there is no persona prompt, no truth file or n_contexts is 0."""
    persona = next((p for p in prompts if p.key == "persona"), None)
    truth = read_truth(cfg.ground_truth)
    values = candidate_values(truth)
    if persona is None or not values or n_contexts <= 0:
        return None
    ids = encode_prompt(tokenizer, persona.text, chat=persona.chat)
    with base_view(policy):
        return ExactProbe.from_base(policy, tokenizer, ids, values, cfg.sampling, n_contexts, prompt=persona.text,
                                    truth=truth)


def read_truth(path: Optional[str]) -> Optional[dict]:
    """The tiny world's ground-truth JSON at ``path``, or None when no such file."""
    if not path or not Path(path).exists():
        return None
    return json.loads(Path(path).read_text())


class DiversityCallback(TrainerCallback):
    """Every ``cfg.every`` PPO steps (and before the first), measure the policy's diversity and log it.

    ``policy`` returns the current policy (the LoRA model, adapter on); ``log_fn`` receives (metrics, step)
    on the main process (wandb); ``jsonl`` (optional) gets one line per measurement; ``extra`` adds metrics of
    the same samples (the PPO stage's true utility, reward score and KL: the over-optimisation curve). The samples and
    metrics of the latest measurement stay in ``last_samples`` and ``last_metrics``.
    """

    def __init__(self, policy: Callable[[], object], tokenizer, prompts: Sequence[ProbePrompt], cfg: DiversityConfig,
                 log_fn: Optional[Callable[[dict, int], None]] = None, jsonl: Optional[Path] = None,
                 extra: Optional[Callable[[object, Dict[str, List[Generation]]], Dict[str, float]]] = None):
        self.policy, self.tokenizer, self.prompts, self.cfg = policy, tokenizer, list(prompts), cfg
        self.extra = extra  # (policy, samples) -> more metrics of the same samples (the PPO stage's truth/*)
        self.log_fn, self.jsonl = log_fn, jsonl
        self.last_samples: Dict[str, List[Generation]] = {}
        self.last_metrics: Dict[str, float] = {}
        self.last_exact: tuple = ({}, {})  # (exact blocks, comparison with the base) of the latest measurement
        self.history: List[dict] = []
        self.seconds = 0.0  # spent measuring during training (the baseline before step 1 is not counted)
        self._train_start: Optional[float] = None
        self._probe: Optional[ExactProbe] = None
        self._probe_ready = False

    def measure(self, step: int) -> Dict[str, float]:
        started = time.perf_counter()
        policy = self.policy()
        self.last_samples = draw_samples(policy, self.tokenizer, self.prompts, self.cfg)
        metrics = diversity_metrics(self.last_samples, self.cfg.sbert, self.cfg.sampling.top_k)
        if self.extra is not None:
            metrics.update(self.extra(policy, self.last_samples))
        if not self._probe_ready:  # the base's cards and scores, once per run (the same contexts every time)
            self._probe = exact_probe(policy, self.tokenizer, self.prompts, self.cfg, self.cfg.exact_contexts)
            self._probe_ready = True
        if self._probe is not None:
            self.last_exact = self._probe.measure(policy, EXACT_BOOTSTRAP, seed=step)
            metrics.update(flat_metrics(*self.last_exact, prefix="diversity/persona/exact"))
        metrics["diversity/seconds"] = time.perf_counter() - started
        return metrics

    def _record(self, metrics: dict, step: int, state) -> None:
        self.last_metrics = metrics
        row = {"step": step, **metrics}
        self.history.append(row)
        state.log_history.append(row)
        if self.jsonl is not None:
            with open(self.jsonl, "a") as fh:
                fh.write(json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v)
                                     for k, v in row.items()}) + "\n")
        if self.log_fn is not None:
            self.log_fn(metrics, step)
        k = self.cfg.sampling.top_k
        log.info("step %d: top-%d entropy %.3f bits, full %.3f bits, SBERT cosine %.3f (%.1f s)", step, k,
                 metrics[f"diversity/{topk_key(k)}"], metrics["diversity/full_entropy_bits"],
                 metrics["diversity/sbert_cosine"], metrics["diversity/seconds"])

    def on_train_begin(self, args, state, control, **kwargs):
        measured = any("diversity/seconds" in r and r.get("step") == state.global_step for r in state.log_history)
        if state.is_world_process_zero and not measured:  # a resumed run measured this step before its kill
            self._record(self.measure(state.global_step), state.global_step, state)
        self._train_start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        due = state.global_step % self.cfg.every == 0 or state.global_step >= state.max_steps
        if not (due and state.is_world_process_zero):
            return
        metrics = self.measure(state.global_step)
        self.seconds += metrics["diversity/seconds"]
        training = time.perf_counter() - self._train_start - self.seconds
        metrics["diversity/cost_share"] = self.seconds / training if training > 0 else math.nan
        self._record(metrics, state.global_step, state)


class MetricsLogCallback(TrainerCallback):
    """Send TRL's logs (``objective/kl``, ``objective/rlhf_reward``, ``policy/entropy_avg``, ...) to ``log_fn``
    under their own names, at the trainer's global step, from the main process only."""

    def __init__(self, log_fn: Callable[[dict, int], None]):
        self.log_fn = log_fn

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            self.log_fn({k: v for k, v in logs.items() if isinstance(v, (int, float))}, state.global_step)
