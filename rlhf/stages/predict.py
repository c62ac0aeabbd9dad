"""`python -m rlhf stage=predict`: what the KL-regularised objective predicts, before any training.

PPO with a KL penalty maximises ``E_pi[r] - beta * KL(pi || pi0)``, whose optimum is known:
``pi*(y) = pi0(y) exp(r(y) / beta) / Z``. From ``predict.n_samples`` (M) base samples per prompt it is
approximated by self-normalised importance resampling: sample i gets the weight ``w_i ~ exp(r_i / beta)``
(normalised to sum 1), and every prediction is a weighted mean over the base samples:

- ``kl_nats``          KL(pi* || pi0) = sum_i w_i log(M w_i), averaged over the prompts (PPO trains on all of them);
- ``true_utility``     E_pi*[u], u = the annotator's utility u_quality + alpha * log p_base (rlhf/stages/annotator.py);
- ``reward``           E_pi*[r] of the reward the prediction optimises (the utility itself, or the reward model);
- ``attribute_entropy_bits.<attr>``  the plug-in entropy of the parsed persona attribute over ``entropy_n`` cards
                       drawn from pi* (with replacement, by weight; mean over ``entropy_draws`` draws): the same
                       estimator at the same n as the trained models' final measurement, so the two compare;
- ``ess``              the effective sample size 1 / sum_i w_i^2 (the smallest over prompts). Below
                       ``predict.min_ess`` the weights rest on a handful of samples: the prediction is "beyond
                       resolution" and no number is given.

Each (alpha, beta) is predicted twice: with r = the annotator's true utility (where an ideal reward model would
take PPO) and with r = the reward model's score (where this reward model should take it). Best-of-n references
(n = 2 ... 64) choose the best of n base samples under each reward: weights ``(i/M)^n - ((i-1)/M)^n`` on the
samples sorted by reward, KL = log n - (n - 1)/n (Stiennon et al. 2020; exact for continuous rewards, an upper
bound with ties). The frontier is the optimum on a log grid of betas. The positive control's closed form
``pi*(value) = p0 e^{w/beta} / (p0 e^{w/beta} + 1 - p0)`` takes p0 from the persona samples (Wilson CI,
carried through the closed form, which is monotone in p0).
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

from measure.metrics.entropy import entropy_bits
from measure.persona_parse import ATTRIBUTES, parse_persona

log = logging.getLogger(__name__)
DISTRIBUTION_ATTRIBUTES = ("gender", "nationality", "ethnicity", "mbti")  # small enough to list in results.json


# ------------------------------------------------------------------ the maths (no model: tested on known answers)

def normalised_weights(reward: np.ndarray, beta: float) -> np.ndarray:
    """w_i ~ exp(r_i / beta), summing to 1 (computed in log space; beta = 0 puts equal mass on the argmax set)."""
    r = np.asarray(reward, dtype=np.float64)
    if beta <= 0:
        w = (r == r.max()).astype(np.float64)
    else:
        z = r / beta
        w = np.exp(z - z.max())
    return w / w.sum()


def ess(w: np.ndarray) -> float:
    """Effective sample size of normalised weights: 1 / sum w_i^2 (M for equal weights, 1 for one sample)."""
    return float(1.0 / np.sum(np.square(w)))


def kl_to_base(w: np.ndarray) -> float:
    """KL(pi_w || uniform over the M samples) = sum_i w_i log(M w_i): the importance estimate of KL(pi* || pi0)."""
    m, nz = len(w), w > 0
    return float(np.sum(w[nz] * np.log(m * w[nz])))


def best_of_n_weights(reward: np.ndarray, n: int) -> np.ndarray:
    """The probability that each sample is the best of n drawn with replacement: (i/M)^n - ((i-1)/M)^n by rank i
    (ties broken by order)."""
    m = len(reward)
    order = np.argsort(reward, kind="stable")
    ranks = np.arange(1, m + 1, dtype=np.float64)
    w = np.empty(m)
    w[order] = (ranks / m) ** n - ((ranks - 1) / m) ** n
    return w


def best_of_n_kl(n: int) -> float:
    """KL(best-of-n || base) = log n - (n - 1) / n nats (continuous rewards)."""
    return math.log(n) - (n - 1) / n


def entropy_at_n(codes: np.ndarray, w: np.ndarray, n: int, draws: int, rng: np.random.Generator) -> float:
    """Mean plug-in entropy (bits) of the values of ``n`` samples drawn by weight ``w`` with replacement; ``codes``
    are integer value codes, -1 for a card the value did not parse from (left out, as the trained models' count
    leaves it out)."""
    idx = rng.choice(len(w), size=(draws, n), replace=True, p=w)
    picked = codes[idx]
    out = []
    for row in picked:
        row = row[row >= 0]
        if not row.size:
            continue
        out.append(float(entropy_bits(np.bincount(row))))
    return float(np.mean(out)) if out else math.nan


def closed_form_interval(hits: int, n: int, weight: float, beta: float) -> dict:
    from rlhf.stages.control import closed_form_share, wilson_interval

    p0 = hits / n
    lo, hi = wilson_interval(hits, n)
    return {"beta": beta, "predicted_share": closed_form_share(p0, weight, beta),
            "predicted_share_ci95": [closed_form_share(lo, weight, beta), closed_form_share(hi, weight, beta)]}


# ------------------------------------------------------------------ the pool of base samples

@dataclasses.dataclass
class Pool:
    """The base samples of every prompt with what each prediction reads (arrays by prompt key)."""

    u_quality: Dict[str, np.ndarray]
    logp_sum: Dict[str, np.ndarray]
    logp_mean: Dict[str, np.ndarray]
    scores: Dict[float, Dict[str, np.ndarray]]  # alpha -> prompt -> reward-model score
    codes: Dict[str, np.ndarray]  # persona attribute -> value codes (-1: missing)
    hits: np.ndarray  # persona: the control value named (bool)

    def utility(self, alpha: float, typicality: str) -> Dict[str, np.ndarray]:
        logp = self.logp_sum if typicality == "sum" else self.logp_mean  # annotator.TYPICALITY_FORMS
        return {k: self.u_quality[k] + alpha * logp[k] for k in self.u_quality}


def attribute_codes(texts: Sequence[str]) -> Dict[str, np.ndarray]:
    cards = [parse_persona(t) for t in texts]
    out = {}
    for attr in ATTRIBUTES:
        values = [getattr(c, attr) for c in cards]
        names = {v: i for i, v in enumerate(sorted({v for v in values if v is not None}))}
        out[attr] = np.array([names[v] if v is not None else -1 for v in values], dtype=np.int64)
    return out


def weighted_distribution(values: Sequence[Optional[str]], w: np.ndarray, top: int = 20) -> Dict[str, float]:
    """The weighted share of each parsed value (renormalised over parsed cards), the ``top`` largest."""
    total: Dict[str, float] = {}
    for v, wi in zip(values, w):
        if v is not None:
            total[v] = total.get(v, 0.0) + float(wi)
    s = sum(total.values()) or 1.0
    return dict(sorted(((k, v / s) for k, v in total.items()), key=lambda kv: -kv[1])[:top])


class Predictor:
    """Every prediction of one pool: ``point(alpha, kind, weights by prompt)`` gives one block."""

    def __init__(self, pool: Pool, cfg, typicality: str, persona_values: Dict[str, list]):
        self.pool, self.cfg, self.typicality = pool, cfg, typicality
        self.values = persona_values

    def rewards(self, alpha: float, kind: str) -> Dict[str, np.ndarray]:
        return self.pool.utility(alpha, self.typicality) if kind == "true" else self.pool.scores[alpha]

    def point(self, alpha: float, kind: str, weights: Dict[str, np.ndarray], kl: Optional[float] = None,
              distributions: bool = False) -> dict:
        u = self.pool.utility(alpha, self.typicality)
        r = self.rewards(alpha, kind)
        esses = {k: ess(w) for k, w in weights.items()}
        out = {"ess": min(esses.values()), "ess_by_prompt": esses}
        if out["ess"] < self.cfg.min_ess:
            return {**out, "beyond_resolution": True, "kl_nats": None, "true_utility": None, "reward": None,
                    "attribute_entropy_bits": None}
        rng = np.random.default_rng(self.cfg.sampling.seed)  # the same draws for every point: differences are real
        out.update({
            "beyond_resolution": False,
            "kl_nats": float(np.mean([kl_to_base(w) for w in weights.values()])) if kl is None else kl,
            "true_utility": float(np.mean([np.dot(weights[k], u[k]) for k in weights])),
            "quality_utility": float(np.mean([np.dot(weights[k], self.pool.u_quality[k]) for k in weights])),
            "reward": float(np.mean([np.dot(weights[k], r[k]) for k in weights])),
        })
        if "persona" in weights:
            w = weights["persona"]
            out["attribute_entropy_bits"] = {a: entropy_at_n(self.pool.codes[a], w, self.cfg.entropy_n,
                                                             self.cfg.entropy_draws, rng) for a in ATTRIBUTES}
            out["attribute_entropy_bits_infinite_n"] = {a: plugin_weighted(self.pool.codes[a], w) for a in ATTRIBUTES}
            if distributions:
                out["attribute_distribution"] = {a: weighted_distribution(self.values[a], w)
                                                 for a in DISTRIBUTION_ATTRIBUTES}
        return out

    def optimum(self, alpha: float, kind: str, beta: float, distributions: bool = False) -> dict:
        r = self.rewards(alpha, kind)
        weights = {k: normalised_weights(v, beta) for k, v in r.items()}
        return {"alpha": alpha, "reward_kind": kind, "beta": beta,
                **self.point(alpha, kind, weights, distributions=distributions)}

    def best_of_n(self, alpha: float, kind: str, n: int) -> dict:
        r = self.rewards(alpha, kind)
        weights = {k: best_of_n_weights(v, n) for k, v in r.items()}
        return {"alpha": alpha, "reward_kind": kind, "n": n, **self.point(alpha, kind, weights, kl=best_of_n_kl(n))}

    def base(self, alpha: float) -> dict:
        weights = {k: np.full(len(v), 1.0 / len(v)) for k, v in self.pool.u_quality.items()}
        return {"alpha": alpha, **self.point(alpha, "true", weights, kl=0.0, distributions=True)}


def plugin_weighted(codes: np.ndarray, w: np.ndarray) -> float:
    """Entropy (bits) of the weighted value distribution itself (n -> infinity; parsed cards only)."""
    ok = codes >= 0
    if not ok.any():
        return math.nan
    return float(entropy_bits(np.bincount(codes[ok], weights=w[ok])))


# ------------------------------------------------------------------ the stage

def draw_pool(cfg, out: Path):
    """Sample M completions of each prompt from the base (resumable JSONL per prompt under
    ``<cache_dir>/predict/<hash>``), score them."""
    import torch

    from measure.fingerprint import model_fingerprint
    from measure.loading import load_model
    from measure.prompts import encode_prompt
    from measure.sampling import sample
    from rlhf.stages.annotator import quality_terms, quality_utility, typicality_logp
    from rlhf.stages.reward import score_sequences

    from measure.tiny import config_hash

    p = cfg.predict
    model, tokenizer = load_model(cfg.ppo.base)
    fingerprint = model_fingerprint(cfg.ppo.base)
    # the base samples depend on the model, the prompts and the sampling config only: kept in the cache, so a study
    # with other betas, alphas or reward models (or a warm rerun) reuses them; the engine's header checks them
    pool_dir = Path(cfg.cache_dir) / "predict" / config_hash(
        {"model": fingerprint, "sampling": dataclasses.asdict(p.sampling), "n": p.n_samples,
         "prompts": [dataclasses.asdict(q) for q in cfg.ppo.prompts]})
    pool_dir.mkdir(parents=True, exist_ok=True)
    samples, ids = {}, {}
    for i, prompt in enumerate(cfg.ppo.prompts):
        ids[prompt.key] = encode_prompt(tokenizer, prompt.text, chat=prompt.chat)
        scfg = dataclasses.replace(p.sampling, seed=p.sampling.seed * 1000 + i)
        samples[prompt.key] = sample(model, tokenizer, ids[prompt.key], scfg, prompt=prompt.text, n=p.n_samples,
                                     progress_file=pool_dir / f"samples_{prompt.key}.jsonl", desc=f"base samples: {prompt.key}",
                                     model_fingerprint=fingerprint, name="predict.sampling")
    del model
    ann = cfg.preferences.annotator
    scores: Dict[float, Dict[str, np.ndarray]] = {}
    if p.reward_models:
        from transformers import AutoModelForSequenceClassification

        for alpha, path in zip(p.alphas, p.reward_models):
            rm = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, use_safetensors=True)
            with torch.no_grad():
                scores[alpha] = {k: score_sequences(rm, [ids[k] + g.token_ids for g in gs], tokenizer.pad_token_id)
                                 for k, gs in samples.items()}
            del rm
    persona_texts = [g.text for g in samples.get("persona", [])]
    pool = Pool(
        u_quality={k: np.array([quality_utility(quality_terms(g.text, k == "persona", g.stopped_at_eos), ann)
                                for g in gs]) for k, gs in samples.items()},
        logp_sum={k: np.array([typicality_logp(g.token_probs, "sum") for g in gs]) for k, gs in samples.items()},
        logp_mean={k: np.array([typicality_logp(g.token_probs, "per_token") for g in gs]) for k, gs in samples.items()},
        scores=scores, codes=attribute_codes(persona_texts),
        hits=np.array([getattr(parse_persona(t), cfg.control.attribute) == cfg.control.value for t in persona_texts]))
    values = {a: [getattr(parse_persona(t), a) for t in persona_texts] for a in DISTRIBUTION_ATTRIBUTES}
    return pool, values


def predictions(pool: Pool, values: Dict[str, list], cfg) -> dict:
    from rlhf.stages.control import wilson_interval

    p = cfg.predict
    typicality = cfg.preferences.typicality
    pr = Predictor(pool, p, typicality, values)
    kinds = ["true"] + (["model"] if pool.scores else [])
    grid = [float(b) for b in np.geomspace(p.frontier_min_beta, p.frontier_max_beta, p.frontier_points)]
    out = {
        "base": [pr.base(a) for a in p.alphas],
        "cells": [pr.optimum(a, k, b, distributions=True) for a in p.alphas for k in kinds for b in p.betas],
        "frontier": [pr.optimum(a, k, b) for a in p.alphas for k in kinds for b in grid],
        "best_of_n": [pr.best_of_n(a, k, n) for a in p.alphas for k in kinds for n in p.best_of_n],
    }
    if pool.hits.size:
        hits, n = int(pool.hits.sum()), int(pool.hits.size)
        out["control"] = {**dataclasses.asdict(cfg.control), "p0": hits / n, "n": n,
                          "p0_ci95": list(wilson_interval(hits, n)),
                          "betas": [closed_form_interval(hits, n, cfg.control.weight, b) for b in p.control_betas]}
    return out


def run_stage(cfg, out: Path | None = None) -> dict:
    from measure.results import run_dir, write_results
    from rlhf.stages.common import require_base_model, set_threads, stage_config

    out = Path(out) if out is not None else run_dir()
    require_base_model(cfg)
    set_threads(cfg.ppo.threads)
    started = time.time()
    pool, values = draw_pool(cfg, out)
    sampled = time.time()
    pred = predictions(pool, values, cfg)
    results = {"stage": "predict", "n_samples": cfg.predict.n_samples, "entropy_n": cfg.predict.entropy_n,
               "typicality": cfg.preferences.typicality,
               "reward_models": dict(zip([str(a) for a in cfg.predict.alphas], cfg.predict.reward_models)),
               **pred, "config": stage_config(cfg, "predict", "control"),
               "timing": {"sampling_seconds": sampled - started, "predict_seconds": time.time() - sampled}}
    write_results(out, results)
    resolved = [c for c in pred["cells"] if not c["beyond_resolution"]]
    log.info("predict: %d of %d cells resolved (min ESS %.0f) -> %s", len(resolved), len(pred["cells"]),
             min((c["ess"] for c in pred["cells"]), default=math.nan), out)
    return results
