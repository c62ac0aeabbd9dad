"""Per-input diversity (`experiment=texts experiment.group_by=prompt`): one set per (label, prompt), as NoveltyBench
measures it, instead of one pooled set per label (cross-input).

For every prompt that every label answered, each label's texts of that prompt are cut to the same n (the smallest
count among the labels for that prompt; a seeded sample of the larger sets, since set metrics depend on n) and every
set metric of ``measure.experiments.set_metrics`` is computed on them (one definition for pooled and per-prompt
sets). Per label: mean, std and bootstrap 95% interval of each metric over prompts (the prompt is the unit). Between
labels (``measure.experiments.diversity.pair_order``): the per-prompt difference (paired over shared prompts),
summarised the same way, and Welch/Mann-Whitney over prompts (``measure.stats.compare``). Prompts with fewer than 2
texts for some label are left out and counted.
"""
from __future__ import annotations

import logging
from typing import Dict, List

import numpy as np
from threadpoolctl import threadpool_limits

from measure.config import ConfigError, ExperimentConfig
from measure.embeddings import embed
from measure.experiments.diversity import pair_order
from measure.experiments.set_metrics import SetFeatures
from measure.stats import compare, summarize
from measure.texts_io import TextRecords

log = logging.getLogger(__name__)


def _by_prompt(records: TextRecords) -> Dict[str, Dict[str, List[int]]]:
    """label -> prompt -> positions of its non-empty texts; every text needs a prompt."""
    out: Dict[str, Dict[str, List[int]]] = {}
    for label, prompts in records.prompts.items():
        if any(p is None for p in prompts):
            raise ConfigError("experiment.group_by: 'prompt' needs every record to name its prompt (a field among "
                              "prompt | input | instruction | question | prompt_id | id); accepted pooled for "
                              "records without one")
        for i, (prompt, text) in enumerate(zip(prompts, records.texts[label])):
            if text.strip():
                out.setdefault(label, {}).setdefault(prompt, []).append(i)
    return out


def measure_per_prompt(records: TextRecords, exp: ExperimentConfig, seed: int = 0) -> dict:
    """``models`` (per label: each set metric over prompts), ``comparison``/``comparisons`` and ``per_prompt``."""
    grouped = _by_prompt(records)
    labels = list(records.texts)
    shared = [p for p in grouped.get(labels[0], {}) if all(p in grouped.get(label, {}) for label in labels)]
    rng = np.random.default_rng(seed)
    chosen: Dict[str, Dict[str, np.ndarray]] = {label: {} for label in labels}
    usable = []
    for prompt in shared:
        n = min(len(grouped[label][prompt]) for label in labels)
        if n < 2:
            continue
        usable.append(prompt)
        for label in labels:
            where = np.asarray(grouped[label][prompt])
            chosen[label][prompt] = np.sort(rng.choice(where, n, replace=False)) if len(where) > n else where
    if not usable:
        raise ConfigError(f"experiment.group_by: no prompt has >= 2 texts from every label ({', '.join(labels)}); "
                          f"accepted pooled for these texts")
    pool, offsets = [], {}
    for label in labels:
        offsets[label] = len(pool)
        pool += records.texts[label]
    wanted = sorted({offsets[label] + int(i) for label in labels for idx in chosen[label].values() for i in idx})
    sbert = np.full((len(pool), 384), np.nan, dtype=np.float32)
    sbert[wanted] = embed([pool[i] for i in wanted], show_progress=True)
    features = SetFeatures.build(pool, sbert, exp.ead_vocab_size, exp.self_bleu_references, seed)
    per_prompt, values = [], {label: {} for label in labels}
    with threadpool_limits(limits=1):
        for prompt in usable:
            row = {"prompt": prompt, "n": int(len(chosen[labels[0]][prompt]))}
            for label in labels:
                row[label] = features.values(offsets[label] + chosen[label][prompt])
                for metric, value in row[label].items():
                    values[label].setdefault(metric, []).append(value)
            per_prompt.append(row)
    n_boot = exp.n_bootstrap
    models = {label: {"n_prompts": len(usable), "n_per_prompt": summarize([r["n"] for r in per_prompt], n_boot, seed),
                      **{m: summarize(v, n_boot, seed) for m, v in values[label].items()}} for label in labels}
    results: dict = {"unit": "prompt: each metric on one prompt's texts (equal n across labels), then over prompts",
                     "n_prompts_left_out": len(set().union(*[set(g) for g in grouped.values()])) - len(usable),
                     "models": models, "per_prompt": per_prompt}
    pairs = pair_order(labels)
    if pairs:
        comparisons = {f"{a}_vs_{b}": _compare(values[a], values[b], n_boot, seed) for a, b in pairs}
        results["comparison"] = comparisons[f"{pairs[0][0]}_vs_{pairs[0][1]}"]
        results["comparisons"] = comparisons
    log.info("per prompt: %d prompts, %s", len(usable), ", ".join(
        f"{label} distinct_2 {models[label]['distinct_2']['mean']:.3f}" for label in labels))
    return results


def _compare(a: Dict[str, list], b: Dict[str, list], n_boot: int, seed: int) -> dict:
    out = {}
    for metric in a:
        x, y = np.asarray(a[metric], dtype=float), np.asarray(b[metric], dtype=float)
        both = ~np.isnan(x) & ~np.isnan(y)
        if both.sum() < 2:
            out[metric] = {"skipped": f"needs >= 2 prompts where both sets have a value; got {int(both.sum())}"}
            continue
        out[metric] = {"paired_diff": summarize(x[both] - y[both], n_boot, seed),
                       **compare(x[both], y[both], n_boot, seed)}
    return out
