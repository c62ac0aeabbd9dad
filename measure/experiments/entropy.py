"""Experiment 3 (section 3.3): token-level entropy of completions of "Steve is the CEO of a startup company".

Per token: the top-5 entropy of Eq. 3.2 (renormalised over the top five, at most log2 5 = 2.32 bits) and
the entropy of the full next-token distribution, both in bits. Per completion: the mean over its tokens.
Per model: mean, std and bootstrap 95% interval of those means; between models: Welch's t, Mann-Whitney U,
Cohen's d and Cliff's delta. Figures 11 (boxplot), 12 (per-token entropy of one sample) and 13 (stacked
top-5 probabilities of that sample).

A served model (``model.<label>.base_url``) gives its top-k log-probabilities, so the top-5 entropy of Eq. 3.2 is
exact; its full-vocabulary entropy is reported as unavailable (no server returns the whole distribution), and a
server that returns no log-probabilities stops the run in one line.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List

import numpy as np

from measure.config import MeasureConfig
from measure.experiments.common import sample_each_model
from measure.figures.entropy import plot_boxplot, plot_token_entropy, plot_topk_stacks
from measure.metrics.entropy import mean_per_completion, top_k_entropy_bits
from measure.samplers import FULL_ENTROPY_UNAVAILABLE, model_source
from measure.sampling import Generation, has_full_entropy
from measure.stats import compare, summarize

log = logging.getLogger(__name__)


def completion_entropies(generations: List[Generation]) -> Dict[str, np.ndarray]:
    """Per-completion mean top-k entropy (Eq. 3.2) and mean full-vocabulary entropy, bits."""
    topk = [top_k_entropy_bits(np.asarray(g.topk_probs)) if g.topk_probs else [] for g in generations]
    full = [g.entropy_bits for g in generations]
    return {"topk": mean_per_completion(topk),
            "full": mean_per_completion(full) if all(map(has_full_entropy, generations)) else None}


def run(cfg: MeasureConfig, out_dir: Path) -> dict:
    import wandb

    k = cfg.sampling.top_k
    key = f"top{k}_entropy_bits"
    generations = sample_each_model(cfg, out_dir, cfg.experiment.prompt, need_logprobs=True)
    scores = {label: completion_entropies(gens) for label, gens in generations.items()}
    n_boot, seed = cfg.experiment.n_bootstrap, cfg.experiment.stats_seed
    results: dict = {"prompt": cfg.experiment.prompt, "top_k": k, "temperature": cfg.sampling.temperature,
                     "probabilities": "after temperature (softmax(logits / T), Eq. 3.1)", "models": {}}
    for label, gens in generations.items():
        lengths = np.array([len(g.token_probs) for g in gens])
        full = scores[label]["full"]
        results["models"][label] = {
            **model_source(getattr(cfg.model, label)),
            key: summarize(scores[label]["topk"], n_boot, seed),
            "full_entropy_bits": summarize(full, n_boot, seed) if full is not None else FULL_ENTROPY_UNAVAILABLE,
            "n_completions": len(gens),
            "mean_tokens": float(lengths.mean()),
            "eos_share": float(np.mean([g.stopped_at_eos for g in gens])),
        }
        log.info("%s: %s %.3f (std %.3f), full entropy %s over %d completions", label, key,
                 results["models"][label][key]["mean"], results["models"][label][key]["std"],
                 f"{results['models'][label]['full_entropy_bits']['mean']:.3f} bits" if full is not None
                 else "unavailable", len(gens))
    if {"base", "aligned"} <= set(scores):
        results["comparison"] = compare(scores["base"]["topk"], scores["aligned"]["topk"], n_boot, seed)
        results["comparison"]["metric"] = key
        both = scores["base"]["full"] is not None and scores["aligned"]["full"] is not None
        results["comparison"]["full_entropy_bits"] = (compare(scores["base"]["full"], scores["aligned"]["full"],
                                                              n_boot, seed) if both else FULL_ENTROPY_UNAVAILABLE)
    figures = {
        "fig11_entropy_boxplot": plot_boxplot({l: s["topk"] for l, s in scores.items()},
                                              {l: s["full"] for l, s in scores.items() if s["full"] is not None},
                                              k, out_dir),
        "fig12_token_entropy": plot_token_entropy(generations, k, cfg.experiment.figure_tokens, out_dir),
        "fig13_topk_probabilities": plot_topk_stacks(generations, cfg.experiment.figure_tokens, out_dir),
    }
    results["figures"] = {name: path.name for name, path in figures.items()}
    _log_wandb(wandb, results, figures, generations, scores, key)
    return results


def _log_wandb(wandb, results, figures, generations, scores, key) -> None:
    if wandb.run is None:
        return
    summary = {}
    for label, m in results["models"].items():
        summary[f"entropy/{label}/{key}"] = m[key]["mean"]
        if isinstance(m["full_entropy_bits"], dict):
            summary[f"entropy/{label}/full_entropy_bits"] = m["full_entropy_bits"]["mean"]
    wandb.log({**summary, **{f"entropy/{name}": wandb.Image(str(p)) for name, p in figures.items()}})
    table = wandb.Table(columns=["model", "text", key, "full_entropy_bits"])
    for label, gens in generations.items():
        full = scores[label]["full"] if scores[label]["full"] is not None else [float("nan")] * len(gens)
        for g, t, f in list(zip(gens, scores[label]["topk"], full))[:20]:
            table.add_data(label, g.text, float(t), float(f))
    wandb.log({"entropy/samples": table})
