"""Attractor test (section 5.1, Figure 14), quantified.

1. Unperturbed completions of ``experiment.prompt`` ("Grace Hopper was") from both models: read from a
   semantic run (``experiment.source_dir``) or sampled here. Each model's are SBERT-embedded and clustered
   (k by silhouette).
2. The aligned model's cluster representatives (the completion nearest each centroid) are perturbed as the
   paper does: keep the first sentence, take the next sentence up to its first was/is/were/are and add "not"
   ("... in New York City. She was not"); ``perturb`` documents the fallbacks.
3. Both models continue every perturbed prompt (``experiment.attractor_continuations`` each) through the
   sampling engine, which records the probability of each sampled token.
4. Measured, per model: the mean probability of the sampled token at each position (does it climb back?),
   ``early_prob`` (first EARLY_TOKENS tokens), ``late_prob`` (from LATE_FROM on) and ``climb`` = late - early
   per continuation; and ``return_share``: the share of continuations whose SBERT embedding (continuation
   text only) lies within the 95th-percentile radius of the nearest of the model's OWN unperturbed clusters.
   Each with a bootstrap CI; base vs aligned with ``measure.stats.compare``.
Figures: `fig14_attractor.html` and `.png` (tokens coloured by probability, red = unlikely, green = likely)
and `fig14_prob_by_position.png`.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from measure.config import ConfigError, MeasureConfig
from measure.embeddings import embed
from measure.figures import attractor as figs
from measure.metrics.clusters import Clustering, choose_k, nearest_cluster, nearest_to_centroids
from measure.metrics.lexical import sentences
from measure.samplers import open_sampler
from measure.sampling import Generation, read_generations, read_header
from measure.stats import bootstrap_ci, compare, summarize

log = logging.getLogger(__name__)
EARLY_TOKENS = 4  # "the first few tokens" that struggle after the perturbation (section 5.1)
LATE_FROM = 16  # tokens from this position on count as "back in a familiar state"
RADIUS_QUANTILE = 0.95  # a continuation "returns" within this quantile of a cluster's own member distances
VERB = re.compile(r"\b(was|is|were|are)\b")


def _join(prompt: str, text: str) -> str:
    return prompt + text if text[:1].isspace() or not text else f"{prompt} {text}"


def perturb(prompt: str, completion: str) -> Tuple[str, str]:
    """The perturbed prompt of section 5.1 and the rule used.

    - ``second_sentence``: prompt + first sentence + the next sentence up to its first was/is/were/are + " not"
      (the paper: "Grace Hopper was born on November 9, 1906 in New York City. She was not");
    - ``first_sentence``: no such second sentence: the first sentence cut after its first such verb + " not";
    - ``prompt``: no such verb at all: the prompt itself negated at its last such verb ("Grace Hopper was not"),
      or prompt + " not" when the prompt has none.
    """
    parts = sentences(completion)
    if len(parts) >= 2 and VERB.search(parts[1]):
        cut = parts[1][:VERB.search(parts[1]).end()]
        return _join(prompt, f"{parts[0]} {cut} not"), "second_sentence"
    if parts and VERB.search(parts[0]):
        return _join(prompt, parts[0][:VERB.search(parts[0]).end()] + " not"), "first_sentence"
    matches = list(VERB.finditer(prompt))
    if matches:
        return prompt[:matches[-1].end()] + " not", "prompt"
    return prompt + " not", "prompt"


def probability_curve(gens: List[Generation], n_boot: int, seed: int) -> Dict[str, list]:
    """Mean probability of the sampled token at each position, with a bootstrap 95% interval and n."""
    length = max((len(g.token_probs) for g in gens), default=0)
    mean, lo, hi, n = [], [], [], []
    for t in range(length):
        vals = [g.token_probs[t] for g in gens if len(g.token_probs) > t]
        ci = bootstrap_ci(vals, n_boot=n_boot, seed=seed) if len(vals) > 1 else [float(vals[0])] * 2
        mean.append(float(np.mean(vals)))
        lo.append(ci[0])
        hi.append(ci[1])
        n.append(len(vals))
    return {"mean": mean, "ci95_lo": lo, "ci95_hi": hi, "n": n}


def early_late(gens: List[Generation]) -> Dict[str, np.ndarray]:
    """Per continuation: mean probability of its first EARLY_TOKENS tokens, of its tokens from LATE_FROM on, and
    late - early (NaN where a continuation is too short)."""
    early = np.array([np.mean(g.token_probs[:EARLY_TOKENS]) if g.token_probs else np.nan for g in gens])
    late = np.array([np.mean(g.token_probs[LATE_FROM:]) if len(g.token_probs) > LATE_FROM else np.nan for g in gens])
    return {"early_prob": early, "late_prob": late, "climb": late - early}


def cluster_radii(X: np.ndarray, clustering: Clustering, quantile: float = RADIUS_QUANTILE) -> np.ndarray:
    """Per cluster: the ``quantile`` of its members' Euclidean distances to its centroid."""
    radii = np.zeros(clustering.k)
    for c in range(clustering.k):
        members = X[clustering.labels == c]
        radii[c] = np.quantile(np.linalg.norm(members - clustering.centroids[c], axis=1), quantile)
    return radii


def returns(X_cont: np.ndarray, clustering: Clustering, radii: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(nearest own cluster, 1.0 if within that cluster's radius else 0.0) for each continuation embedding."""
    nearest = nearest_cluster(X_cont, clustering.centroids)
    dist = np.linalg.norm(X_cont - clustering.centroids[nearest], axis=1)
    return nearest, (dist <= radii[nearest]).astype(float)


def _read_source(source_dir: str, label: str, prompt: str) -> Tuple[List[Generation], Optional[str]]:
    """A semantic run's completions of ``prompt`` (header skipped) and the fingerprint of the model that drew
    them (None for a file without a header); a file of another prompt stops the run."""
    path = Path(source_dir).expanduser() / f"generations_{label}.jsonl"
    if not path.exists():
        raise ConfigError(f"experiment.source_dir: no {path.name} in {source_dir!r}; point it at a semantic run "
                          "directory, or leave it null to sample here")
    header = read_header(path)
    if header is None:
        log.warning("experiment.source_dir: %s has no header; its model and prompt cannot be checked", path)
    elif header["prompt"] != prompt:
        raise ConfigError(f"experiment.source_dir: {path} holds completions of {header['prompt']!r}, not of "
                          f"experiment.prompt {prompt!r}")
    return read_generations(path), (header or {}).get("model_fingerprint")


def _check_source_model(state: dict, label: str, fingerprint: str) -> None:
    drawn_by = state["source_fingerprints"].get(label)
    if drawn_by is not None and drawn_by != fingerprint:
        raise ConfigError(f"experiment.source_dir: generations_{label}.jsonl there were drawn by another model "
                          f"(fingerprint {drawn_by[:12]}) than model.{label} (fingerprint {fingerprint[:12]})")


def perturbations(prompt: str, texts: List[str], X: np.ndarray, clustering: Clustering) -> List[dict]:
    """One perturbed prompt per cluster, from its representative (the completion nearest the centroid)."""
    reps = [m[0] for m in nearest_to_centroids(X, clustering.labels, clustering.centroids)]
    out = []
    for c, i in enumerate(reps):
        text, rule = perturb(prompt, texts[i])
        out.append({"cluster": c, "size": int(np.sum(clustering.labels == c)), "representative": texts[i],
                    "perturbed_prompt": text, "rule": rule})
    return out


def _sample_model(cfg: MeasureConfig, out_dir: Path, label: str, state: dict) -> None:
    """Open one model once (loaded here, or its server) and sample with it: its unperturbed completions (unless read
    from ``source_dir``), and, once the source model's clusters give the perturbed prompts, its continuations of each
    of them. Both need the sampled tokens' probabilities: a server that returns none stops the run in one line."""
    exp, spec = cfg.experiment, getattr(cfg.model, label)
    with open_sampler(spec) as sampler:
        _check_source_model(state, label, sampler.fingerprint)
        if label not in state["unperturbed"]:
            state["unperturbed"][label] = sampler.sample(
                exp.prompt, cfg.sampling, progress_file=out_dir / f"generations_{label}.jsonl",
                desc=f"sampling {label}", need_logprobs=True)
        texts = [g.text for g in state["unperturbed"][label]]
        state["clusters"][label] = _clusters(texts, exp, exp.stats_seed)
        if label == state["source"]:
            state["perturbations"] = perturbations(exp.prompt, texts, *state["clusters"][label])
        state["continuations"][label] = [
            sampler.sample(p["perturbed_prompt"], cfg.sampling, n=exp.attractor_continuations,
                           progress_file=out_dir / f"attractor_{label}_prompt{j}.jsonl",
                           desc=f"{label} perturbed prompt {j}", need_logprobs=True)
            for j, p in enumerate(state["perturbations"])]


def measure_model(label: str, state: dict, n_boot: int, seed: int) -> Tuple[dict, Dict[str, np.ndarray]]:
    """results.json entry of one model and its per-continuation values (for the comparison)."""
    X_un, clustering = state["clusters"][label]
    unperturbed, continuations = state["unperturbed"][label], state["continuations"][label]
    flat = [g for gens in continuations for g in gens]
    nearest, back = returns(embed([g.text for g in flat]), clustering, cluster_radii(X_un, clustering))
    el, base_el = early_late(flat), early_late(unperturbed)
    block = {
        "n_continuations": len(flat), "n_prompts": len(continuations),
        **{k: summarize(v, n_boot, seed) for k, v in el.items()},
        "return_share": summarize(back, n_boot, seed),
        "nearest_own_cluster_counts": np.bincount(nearest, minlength=clustering.k).tolist(),
        "prob_by_position": probability_curve(flat, n_boot, seed),
        "unperturbed": {"n": len(unperturbed), "clusters_k": clustering.reported_k, "clusters_k_fitted": clustering.k,
                        "clusters_note": clustering.note(),
                        "silhouette": {str(k): v for k, v in clustering.silhouette.items()},
                        "early_prob": summarize(base_el["early_prob"], n_boot, seed),
                        "late_prob": summarize(base_el["late_prob"], n_boot, seed),
                        "prob_by_position": probability_curve(unperturbed, n_boot, seed)},
    }
    if label == state["source"]:  # did each continuation come back to the very cluster it was pushed out of?
        target = np.repeat([p["cluster"] for p in state["perturbations"]], [len(g) for g in continuations])
        block["same_cluster_share"] = summarize((nearest == target).astype(float), n_boot, seed)
    log.info("%s: early p %.3f, late p %.3f, climb %.3f, return share %.2f over %d continuations", label,
             block["early_prob"]["mean"], block["late_prob"]["mean"], block["climb"]["mean"],
             block["return_share"]["mean"], len(flat))
    return block, {**el, "return_share": back}


def run(cfg: MeasureConfig, out_dir: Path) -> dict:
    exp, seed, n_boot = cfg.experiment, cfg.experiment.stats_seed, cfg.experiment.n_bootstrap
    labels = list(cfg.labels)
    source = "aligned" if "aligned" in labels else labels[0]  # whose clusters give the representatives
    read = {l: _read_source(exp.source_dir, l, exp.prompt) for l in labels} if exp.source_dir else {}
    state = {"source": source, "clusters": {}, "continuations": {}, "perturbations": [],
             "unperturbed": {l: gens for l, (gens, _) in read.items()},
             "source_fingerprints": {l: fingerprint for l, (_, fingerprint) in read.items()}}
    for label in [source] + [l for l in labels if l != source]:  # the source first: it makes the prompts
        _sample_model(cfg, out_dir, label, state)
    results: dict = {"prompt": exp.prompt, "representatives_from": source, "perturbations": state["perturbations"],
                     "early_tokens": EARLY_TOKENS, "late_from": LATE_FROM, "radius_quantile": RADIUS_QUANTILE,
                     "return_embedding": "SBERT of the continuation text only", "models": {}}
    per_item = {}
    for label in labels:
        results["models"][label], per_item[label] = measure_model(label, state, n_boot, seed)
    if {"base", "aligned"} <= set(per_item):
        results["comparison"] = {k: _compare(per_item["base"][k], per_item["aligned"][k], n_boot, seed)
                                 for k in ("early_prob", "late_prob", "climb", "return_share")}
    figures = figs.plot_all(state["perturbations"], state["continuations"], results, out_dir)
    results["figures"] = {name: path.name for name, path in figures.items()}
    _log_wandb(results, out_dir)
    return results


def _clusters(texts: List[str], exp, seed: int) -> Tuple[np.ndarray, Clustering]:
    """SBERT rows and k-means clusters of a model's completions. Without cluster structure (best silhouette below
    experiment.min_silhouette) the best fit still gives the representatives to perturb; results say so."""
    X = embed(texts, show_progress=True)
    return X, choose_k(X, exp.k_min, exp.k_max, seed=seed, min_silhouette=exp.min_silhouette)


def _compare(a, b, n_boot: int, seed: int) -> dict:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    na, nb = int(np.sum(~np.isnan(a))), int(np.sum(~np.isnan(b)))
    if na < 2 or nb < 2:
        return {"skipped": f"needs >= 2 values per model; got {na} and {nb}", "n": [na, nb]}
    return compare(a, b, n_boot, seed)


def _log_wandb(results: dict, out_dir: Path) -> None:
    import wandb

    if wandb.run is None:
        return
    scalars = {f"attractor/{label}/{k}": m[k]["mean"] for label, m in results["models"].items()
               for k in ("early_prob", "late_prob", "climb", "return_share")}
    images = {f"attractor/{n}": wandb.Image(str(out_dir / f))
              for n, f in results["figures"].items() if f.endswith(".png")}
    wandb.log({**scalars, **images})
