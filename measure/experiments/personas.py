"""Experiment 1 (section 3.1, Figures 1-9, Tables 2-3): customer personas and their reviews.

Each model writes ``sampling.n_samples`` personas (paper: 100), one per completion so they are independent.
Chat models (``model.<label>.chat: true``) get ``experiment.persona_prompt`` through their chat template
(Llama-2's ``[INST]`` format when the tokenizer has none); base models get ``experiment.persona_plain_prompt``
as plain text. Both default to the prompts of ``measure.persona_parse`` and are written to results.json.
Every completion goes through ``measure.persona_parse.parse_persona``; outputs that do not parse are
counted, listed in `unparsed_<label>.txt` and shown in results.json, never an error.

Per attribute (first and last name, gender, age, nationality, ethnicity, Myers-Briggs type): distinct values,
entropy in bits, missing share, the most common values, and with ``experiment.ground_truth_file`` (the tiny
world's truth) the total-variation distance to the true distribution. Base vs aligned: the entropy and
distinct-count differences with bootstrap intervals and permutation tests; review length (characters),
VADER compound and age with ``measure.stats.compare``. Reviews are split into sentences, SBERT-embedded,
clustered (k by silhouette) and mapped with t-SNE (Figure 9); three sentences per cluster (Tables 2-3).
"""
from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from measure.config import ConfigError, ExperimentConfig, MeasureConfig
from measure.experiments.common import sample_each_model
from measure.experiments.diversity import TextSet, compare_set_statistic, measure_sets
from measure.figures import personas as figs
from measure.figures.semantic import cluster_samples, plot_clusters, write_cluster_table
from measure.metrics.attributes import attribute_entropy_bits, distinct_count, missing_share, tv_distance
from measure.metrics.lexical import sentences
from measure.metrics.sentiment import polarity_shares, vader_compound
from measure.stats import compare, summarize

log = logging.getLogger(__name__)
ATTRIBUTES = ("first_name", "last_name", "gender", "age", "nationality", "ethnicity", "mbti")
SHOWN_UNPARSED = 5  # unparsed outputs quoted in results.json (all of them go to unparsed_<label>.txt)


def persona_prompts(exp: ExperimentConfig) -> Dict[str, str]:
    """The chat instruction and the plain-text prompt actually used (config, else persona_parse's defaults)."""
    from measure.persona_parse import PERSONA_CARD_PROMPT, PERSONA_INSTRUCTION

    return {"chat": exp.persona_prompt or PERSONA_INSTRUCTION, "plain": exp.persona_plain_prompt or PERSONA_CARD_PROMPT}


def load_ground_truth(path: Optional[str]) -> Optional[dict]:
    """The tiny world's truth JSON (attribute -> {value: probability}), or None when no path is set."""
    if not path:
        return None
    try:
        return json.loads(Path(path).expanduser().read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"experiment.ground_truth_file: cannot read {path!r}: {err}") from err


def truth_distribution(truth: Optional[dict], attribute: str) -> Optional[Dict[str, float]]:
    """The true marginal distribution of ``attribute`` (names marginalised over nationality), if known."""
    if not truth:
        return None
    if attribute in truth and isinstance(truth[attribute], dict):
        return {str(k): float(v) for k, v in truth[attribute].items()}
    by_nat = truth.get({"first_name": "first_names_given_nationality",
                        "last_name": "last_names_given_nationality"}.get(attribute, ""))
    if by_nat and isinstance(truth.get("nationality"), dict):
        marginal: Dict[str, float] = {}
        for nat, p_nat in truth["nationality"].items():
            for name, p in by_nat.get(nat, {}).items():
                marginal[name] = marginal.get(name, 0.0) + p_nat * p
        return marginal
    return None


def attribute_block(cards: list, attribute: str, truth: Optional[Dict[str, float]]) -> dict:
    """Distinct values, entropy (bits), missing share, top values and (with truth) TV distance of one attribute."""
    present = [str(getattr(c, attribute)) for c in cards if getattr(c, attribute) is not None]
    block = {"distinct": distinct_count(present), "entropy_bits": attribute_entropy_bits(present) if present else 0.0,
             "missing_share": missing_share(cards, attribute) if cards else 1.0, "n_parsed": len(present),
             "top": Counter(present).most_common(10)}
    if truth is not None:
        block["tv_distance"] = tv_distance(present, truth) if present else 1.0
    return block


def analyse_personas(texts: Dict[str, List[str]], cfg: MeasureConfig, out_dir: Path,
                     truth: Optional[dict] = None) -> dict:
    """Parse, measure and plot personas of each model (the model-free half of Experiment 1)."""
    from measure.persona_parse import parse_persona

    exp, seed = cfg.experiment, cfg.experiment.stats_seed
    parsed = {label: [parse_persona(t) for t in ts] for label, ts in texts.items()}
    results: dict = {"models": {}}
    reviews = {label: [c.review for c in cards if c.review] for label, cards in parsed.items()}
    compounds = {label: vader_compound(rs) for label, rs in reviews.items()}
    for label, cards in parsed.items():
        unparsed = [t for t, c in zip(texts[label], cards) if not c.ok]
        (out_dir / f"unparsed_{label}.txt").write_text("\n\n=====\n\n".join(unparsed))
        lengths = np.array([len(r) for r in reviews[label]], dtype=float)
        compound = compounds[label]
        results["models"][label] = {
            "n_outputs": len(cards), "parse_rate": float(np.mean([c.ok for c in cards])) if cards else 0.0,
            "n_unparsed": len(unparsed), "unparsed_examples": [u[:400] for u in unparsed[:SHOWN_UNPARSED]],
            "review_missing_share": missing_share(cards, "review") if cards else 1.0,
            "attributes": {a: attribute_block(cards, a, truth_distribution(truth, a)) for a in ATTRIBUTES},
            "review_length_chars": summarize(lengths, exp.n_bootstrap, seed) if lengths.size else {"n": 0},
            "review_vader_compound": ({**summarize(compound, exp.n_bootstrap, seed), **polarity_shares(compound)}
                                      if compound.size else {"n": 0}),
        }
    if {"base", "aligned"} <= set(parsed):
        results["comparison"] = _compare_models(parsed, compounds, exp, seed)
    results["review_sentences"], sets = _review_sentences(reviews, cfg, out_dir)
    figures = figs.plot_all(parsed, reviews, out_dir)
    if sets:
        figures["fig9_review_clusters"] = plot_clusters(sets, out_dir, name="fig9_review_clusters",
                                                        title="Figure 9: review sentences, t-SNE and k-means")
    else:
        figures["fig9_review_clusters"] = figs.placeholder(out_dir, "fig9_review_clusters",
                                                           "Figure 9: fewer than 2 parsed review sentences per model")
    results["figures"] = {name: path.name for name, path in figures.items()}
    return results


def _compare_models(parsed, compounds: Dict[str, np.ndarray], exp: ExperimentConfig, seed: int) -> dict:
    comp: dict = {}
    stats = {"entropy_bits": attribute_entropy_bits, "distinct": lambda v: float(distinct_count(v))}
    for a in ATTRIBUTES:
        va = [str(getattr(c, a)) for c in parsed["base"] if getattr(c, a) is not None]
        vb = [str(getattr(c, a)) for c in parsed["aligned"] if getattr(c, a) is not None]
        for name, statistic in stats.items():
            comp[f"{a}_{name}"] = compare_set_statistic(va, vb, statistic, exp.n_bootstrap, seed,
                                                        n_perm=min(exp.n_bootstrap, 1000))
    ages = {l: [c.age for c in parsed[l] if c.age is not None] for l in ("base", "aligned")}
    lengths = {l: [len(c.review) for c in parsed[l] if c.review] for l in ("base", "aligned")}
    for name, (x, y) in {"age": (ages["base"], ages["aligned"]),
                         "review_length_chars": (lengths["base"], lengths["aligned"]),
                         "review_vader_compound": (compounds["base"], compounds["aligned"]),
                         }.items():
        comp[name] = (compare(x, y, exp.n_bootstrap, seed) if len(x) >= 2 and len(y) >= 2
                      else {"skipped": f"needs >= 2 parsed values per model; got {len(x)} and {len(y)}"})
    comp["parse_ok"] = compare([float(c.ok) for c in parsed["base"]], [float(c.ok) for c in parsed["aligned"]],
                               exp.n_bootstrap, seed) if min(len(parsed["base"]), len(parsed["aligned"])) >= 2 else {}
    return comp


def _review_sentences(reviews: Dict[str, List[str]], cfg: MeasureConfig,
                      out_dir: Path) -> tuple[dict, Dict[str, TextSet]]:
    """Figure 9 / Tables 2-3: review sentences of each model, embedded, clustered, mapped, sampled."""
    by_label = {label: [s for r in rs for s in sentences(r)] for label, rs in reviews.items()}
    usable = {label: ss for label, ss in by_label.items() if len(ss) >= 3}
    block: dict = {"n_sentences": {label: len(ss) for label, ss in by_label.items()}}
    if not usable:
        block["skipped"] = "fewer than 3 review sentences for every model"
        return block, {}
    exp = dataclasses.replace(cfg.experiment, chunk_size=min(cfg.experiment.chunk_size,
                                                            max(2, min(len(s) for s in usable.values()) // 2)))
    measured, sets = measure_sets(usable, exp, seed=exp.stats_seed)
    samples = {label: cluster_samples(ts, m=3) for label, ts in sets.items()}
    for label in sets:
        measured["models"][label]["clusters"]["samples"] = samples[label]
    write_cluster_table(samples, out_dir, "tables_2_3_review_clusters",
                        "Tables 2-3: review sentences nearest each k-means centroid")
    block.update(measured)
    block["table"] = "tables_2_3_review_clusters.md"
    return block, sets


def run(cfg: MeasureConfig, out_dir: Path) -> dict:
    truth = load_ground_truth(cfg.experiment.ground_truth_file)  # fail before sampling
    prompts = persona_prompts(cfg.experiment)
    generations, formats = {}, {}
    for label in cfg.labels:
        chat = getattr(cfg.model, label).chat
        formats[label] = "chat template ([INST] when the tokenizer has none)" if chat else "plain text"
        one = dataclasses.replace(cfg, labels=[label])
        generations.update(sample_each_model(one, out_dir, prompts["chat" if chat else "plain"], chat=True))
    texts = {label: [g.text for g in gens] for label, gens in generations.items()}
    results = {"prompts": prompts, "prompt_format": formats, "temperature": cfg.sampling.temperature,
               "n_predict": cfg.sampling.n_predict, "ground_truth_file": cfg.experiment.ground_truth_file,
               **analyse_personas(texts, cfg, out_dir, truth)}
    for label, gens in generations.items():
        results["models"][label]["path"] = getattr(cfg.model, label).path
        results["models"][label]["eos_share"] = float(np.mean([g.stopped_at_eos for g in gens]))
    _log_wandb(results, out_dir)
    return results


def _log_wandb(results: dict, out_dir: Path) -> None:
    import wandb

    if wandb.run is None:
        return
    scalars = {}
    for label, m in results["models"].items():
        scalars[f"personas/{label}/parse_rate"] = m["parse_rate"]
        for a, block in m["attributes"].items():
            scalars[f"personas/{label}/{a}_entropy_bits"] = block["entropy_bits"]
            scalars[f"personas/{label}/{a}_distinct"] = block["distinct"]
            if "tv_distance" in block:
                scalars[f"personas/{label}/{a}_tv_distance"] = block["tv_distance"]
    images = {f"personas/{name}": wandb.Image(str(out_dir / f)) for name, f in results["figures"].items()}
    wandb.log({**scalars, **images})
