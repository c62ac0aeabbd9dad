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

Counted statistics depend on n (a plug-in entropy cannot exceed log2 n), so base and aligned are compared at equal
n: ``comparison.<attr>_{entropy_bits,entropy_chao_shen_bits,distinct}`` hold the difference with the larger side
subsampled to the smaller n (``n``, ``n_matched``), a permutation p-value and the range chance alone gives
(``null_diff_95``; ``measure.metrics.attributes.compare_at_equal_n``); each model's block has the Chao-Shen entropy
beside the plug-in one.

Exact attribute distributions (``measure.exact_attributes``): the base model draws ``experiment.n_contexts`` more
cards (``contexts_base.jsonl``); each card cut where an attribute's value begins is a context, and every model
scores every candidate value (the truth's, or ``experiment.attribute_values``) by teacher forcing under its own
prompt format. ``models.<label>.attributes_exact.<attr>``: ``marginal_entropy_bits``, ``conditional_entropy_bits``,
``covered_mass`` ({mean, ci95, n_contexts}, bootstrap over contexts), the top values; ``comparison.attributes_exact``:
``conditional_kl_nats`` KL(aligned || base) and the entropy differences, paired on the same contexts, the base scored
under the aligned model's prompt format so that the two see the same tokens (that reference's own marginal entropy
and covered mass beside them: ``reference_*``).
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
from measure.exact_attributes import (candidate_values, card_contexts, contexts_per_attribute, exact_blocks,
                                     exact_comparison, score_contexts)
from measure.experiments.diversity import TextSet, measure_sets
from measure.figures import personas as figs
from measure.figures.semantic import cluster_samples, plot_clusters, write_cluster_table
from measure.metrics.attributes import (attribute_entropy_bits, chao_shen_entropy_bits, compare_at_equal_n,
                                        distinct_count, missing_share, truth_distribution, tv_distance)
from measure.metrics.lexical import sentences
from measure.metrics.registry import key as metric_key
from measure.metrics.sentiment import polarity_shares, vader_compound
from measure.persona_parse import ATTRIBUTES
from measure.prompts import encode_prompt
from measure.samplers import model_source, open_sampler
from measure.sampling import sample
from measure.stats import compare, summarize

log = logging.getLogger(__name__)
SHOWN_UNPARSED = 5  # unparsed outputs quoted in results.json (all of them go to unparsed_<label>.txt)
COUNTED = ("entropy_bits", "entropy_chao_shen_bits", "distinct")  # compared at equal n (comparison.<attr>_<stat>)


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


def attribute_block(cards: list, attribute: str, truth: Optional[Dict[str, float]]) -> dict:
    """Distinct values, plug-in and Chao-Shen entropy (bits), missing share, top values and (with truth) TV distance
    of one attribute (counted over the parsed cards: these depend on n_parsed)."""
    present = [str(getattr(c, attribute)) for c in cards if getattr(c, attribute) is not None]
    block = {"distinct": distinct_count(present), "entropy_bits": attribute_entropy_bits(present) if present else 0.0,
             "entropy_chao_shen_bits": chao_shen_entropy_bits(present) if present else 0.0,
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
    for a in ATTRIBUTES:
        va = [getattr(c, a) for c in parsed["base"]]
        vb = [getattr(c, a) for c in parsed["aligned"]]
        matched = compare_at_equal_n(va, vb, COUNTED, n_perm=min(exp.n_bootstrap, 1000), seed=seed)
        for name, block in matched.items():
            comp[f"{a}_{name}"] = block
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
    values = candidate_values(truth, cfg.experiment.attribute_values)
    labels = sorted(cfg.labels, key=lambda label: label != "base")  # base first: its cards are the exact contexts
    generations, formats, exact = {}, {}, ExactRun(cfg, values, labels)
    for label in labels:
        spec = getattr(cfg.model, label)
        formats[label] = "chat template ([INST] when the tokenizer has none)" if spec.chat else "plain text"
        prompt = prompts["chat" if spec.chat else "plain"]
        with open_sampler(spec) as sampler:
            generations[label] = sampler.sample(prompt, cfg.sampling, chat=spec.chat,
                                                progress_file=out_dir / f"generations_{label}.jsonl",
                                                desc=f"sampling {label}")
            if not sampler.served:
                exact.score(label, sampler.model, sampler.tokenizer, prompts, out_dir, sampler.fingerprint)
    texts = {label: [g.text for g in gens] for label, gens in generations.items()}
    results = {"prompts": prompts, "prompt_format": formats, "temperature": cfg.sampling.temperature,
               "n_predict": cfg.sampling.n_predict, "ground_truth_file": cfg.experiment.ground_truth_file,
               **analyse_personas(texts, cfg, out_dir, truth)}
    for label, gens in generations.items():
        results["models"][label].update(model_source(getattr(cfg.model, label)))
        results["models"][label]["eos_share"] = float(np.mean([g.stopped_at_eos for g in gens]))
    exact.write(results, truth, out_dir)
    _log_wandb(results, out_dir)
    return results


class ExactRun:
    """The exact attribute distributions of Experiment 1: contexts from the base model's cards, every model scored
    under its own prompt format, the base also under each other format (the reference of that model's KL)."""

    def __init__(self, cfg: MeasureConfig, values: Dict[str, List[str]], labels: List[str]):
        self.cfg, self.values, self.labels = cfg, values, labels
        self.contexts: Optional[List[Dict[str, str]]] = None  # per base card: {attribute: card up to its value}
        self.scored: Dict[str, dict] = {}  # label -> attribute -> ScoredAttribute
        self.base_by_format: Dict[bool, dict] = {}  # chat? -> the base scored under that prompt format
        self.skipped = self._why_not()

    def _why_not(self) -> Optional[str]:
        if self.cfg.experiment.n_contexts == 0:
            return "experiment.n_contexts is 0"
        served = [label for label in self.labels if getattr(self.cfg.model, label).base_url]
        if served:
            return (f"model {', '.join(served)} is served (base_url): teacher-forced scoring needs the weights in this "
                    "process (set model.<label>.path instead)")
        if not self.values:
            return "no candidate values: set experiment.ground_truth_file or experiment.attribute_values"
        if "base" not in self.labels:
            return "the contexts are the base model's cards: labels must include base"
        return None

    def score(self, label: str, model, tokenizer, prompts: Dict[str, str], out_dir: Path, fingerprint) -> None:
        if self.skipped:
            return
        exp, spec = self.cfg.experiment, getattr(self.cfg.model, label)
        if label == "base":
            self.contexts = self._draw_contexts(model, tokenizer, prompts, out_dir, fingerprint)
        formats = [spec.chat] + ([getattr(self.cfg.model, other).chat for other in self.labels if other != "base"]
                                 if label == "base" else [])
        for chat in dict.fromkeys(formats):
            ids = encode_prompt(tokenizer, prompts["chat" if chat else "plain"], chat=chat)
            scored = score_contexts(model, tokenizer, ids, self.contexts, self.values, exp.exact_value_format,
                                    separator=exp.exact_chat_separator if chat else "",
                                    desc=f"exact attributes {label}{' (chat format)' if chat != spec.chat else ''}")
            if chat == spec.chat:
                self.scored[label] = scored
            if label == "base":
                self.base_by_format[chat] = scored

    def _draw_contexts(self, model, tokenizer, prompts, out_dir: Path, fingerprint) -> List[Dict[str, str]]:
        """``experiment.n_contexts`` cards of the base model (resumable, reusable like every engine file), cut."""
        spec, n = self.cfg.model.base, self.cfg.experiment.n_contexts
        prompt = prompts["chat" if spec.chat else "plain"]
        gens = sample(model, tokenizer, encode_prompt(tokenizer, prompt, chat=spec.chat),
                      dataclasses.replace(self.cfg.sampling, n_samples=n,
                                          n_predict=self.cfg.experiment.exact_context_tokens), prompt=prompt,
                      progress_file=out_dir / "contexts_base.jsonl", desc="base cards (exact contexts)",
                      model_fingerprint=fingerprint)
        # a card drawn after a chat prompt starts with the template's space: cut, it is joined per format when scored
        return card_contexts([g.text.lstrip(" ") for g in gens], list(self.values))

    def write(self, results: dict, truth: Optional[dict], out_dir: Path) -> None:
        exp = self.cfg.experiment
        if self.skipped:
            results["attributes_exact"] = {"skipped": self.skipped}
            return
        n_boot, seed = exp.n_bootstrap, exp.stats_seed
        results["attributes_exact"] = {
            "n_cards": exp.n_contexts, "contexts_file": "contexts_base.jsonl",
            "n_contexts": contexts_per_attribute(self.contexts),
            "n_candidates": {a: len(v) for a, v in self.values.items()},
            "candidates_from": {a: "experiment.attribute_values" if exp.attribute_values.get(a) else "ground truth"
                                for a in self.values},
            "value_format": exp.exact_value_format, "chat_separator": exp.exact_chat_separator}
        for label, scored in self.scored.items():
            results["models"][label]["attributes_exact"] = exact_blocks(scored, n_boot, seed, truth)
        if {"base", "aligned"} <= set(self.scored):
            chat = self.cfg.model.aligned.chat
            reference = self.base_by_format[chat]
            comparison = exact_comparison(self.scored["aligned"], reference, n_boot, seed)
            reference_blocks = exact_blocks(reference, n_boot, seed)
            for a, block in comparison.items():
                block["reference"] = f"base scored under the aligned model's prompt format ({'chat' if chat else 'plain'})"
                block["reference_marginal_entropy_bits"] = reference_blocks[a]["marginal_entropy_bits"]
                block["reference_covered_mass"] = reference_blocks[a]["covered_mass"]
            results.setdefault("comparison", {})["attributes_exact"] = comparison
        figure = figs.plot_exact_attributes({label: results["models"][label]["attributes_exact"]
                                             for label in self.scored}, out_dir)
        results["figures"]["fig_exact_attributes"] = figure.name
        for label in self.scored:
            for a, block in results["models"][label]["attributes_exact"].items():
                log.info("%s %s: exact marginal entropy %.3f bits [%.3f, %.3f], conditional %.3f, covered mass %.3f "
                         "(%d contexts)", label, a, block["marginal_entropy_bits"]["mean"],
                         *block["marginal_entropy_bits"]["ci95"], block["conditional_entropy_bits"]["mean"],
                         block["covered_mass"]["mean"], block["marginal_entropy_bits"]["n_contexts"])


def _log_wandb(results: dict, out_dir: Path) -> None:
    import wandb

    if wandb.run is None:
        return
    scalars = {}
    for label, m in results["models"].items():
        scalars[f"personas/{label}/{metric_key('parse_ok_share')}"] = m["parse_rate"]
        for a, block in m["attributes"].items():
            for name, key in (("entropy_bits", "attribute_entropy_bits"),
                              ("entropy_chao_shen_bits", "attribute_entropy_chao_shen_bits"),
                              ("distinct", "attribute_distinct"), ("tv_distance", "tv_distance")):
                if name in block:
                    scalars[f"personas/{label}/{metric_key(key)}/{a}"] = block[name]
        for a, block in m.get("attributes_exact", {}).items():
            for key in ("marginal_entropy_bits", "conditional_entropy_bits", "covered_mass"):
                scalars[f"personas/{label}/exact/{a}/{metric_key(key)}"] = block[key]["mean"]
    for a, block in results.get("comparison", {}).get("attributes_exact", {}).items():
        scalars[f"personas/aligned/exact/{a}/{metric_key('conditional_kl_nats')}"] = block["conditional_kl_nats"]["mean"]
    images = {f"personas/{name}": wandb.Image(str(out_dir / f)) for name, f in results["figures"].items()}
    wandb.log({**scalars, **images})
