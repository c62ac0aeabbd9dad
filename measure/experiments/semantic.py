"""Experiment 2 (section 3.2, Figure 10): semantic diversity of completions of "Grace Hopper was".

Each model writes ``sampling.n_samples`` completions (paper: 200, n_predict 128, T = 1) through the sampling
engine. Whole completions (prompt excluded) are embedded with SBERT, mapped to 2-D with t-SNE (perplexity 30)
and clustered with k-means, k chosen by silhouette (reported with its curve). Pairwise cosine similarity of
TF-IDF vectors and of SBERT vectors: mean and std over all distinct pairs, and the std of each point's mean
similarity (the paper's 0.16 (0.03) vs 0.35 (0.06) does not say which). Lexical and set-level diversity of
the same completions (``measure.experiments.diversity``). Figure 10 colours each point by its mean TF-IDF
similarity to the others; cluster representatives go to `table5_cluster_representatives.md`.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Dict, List

import numpy as np

from measure.config import MeasureConfig
from measure.experiments.common import sample_each_model
from measure.experiments.diversity import TextSet, measure_sets
from measure.figures.semantic import cluster_samples, plot_clusters, plot_tsne_similarity, write_cluster_table
from measure.samplers import model_source
from measure.sampling import Generation

log = logging.getLogger(__name__)


def write_points(sets: Dict[str, TextSet], out_dir: Path, name: str = "points.jsonl") -> Path:
    """One line per text: model, index, t-SNE x/y, cluster, mean TF-IDF and SBERT similarity, text."""
    path = out_dir / name
    with open(path, "w") as fh:
        for label, ts in sets.items():
            for i, text in enumerate(ts.texts):
                x, y = (float(v) if np.isfinite(v) else None for v in ts.tsne[i])  # None: not in the mapped sample
                point_tfidf, point_sbert = ts.per_text["tfidf_point_mean"][i], ts.per_text["sbert_point_mean"][i]
                cluster = int(ts.clustering.labels[i])  # -1: not embedded (a large set embeds a sample)
                fh.write(json.dumps({"model": label, "index": i, "x": x, "y": y,
                                     "cluster": cluster if cluster >= 0 else None,
                                     "tfidf_point_mean": float(point_tfidf) if np.isfinite(point_tfidf) else None,
                                     "sbert_point_mean": float(point_sbert) if np.isfinite(point_sbert) else None,
                                     "text": text}) + "\n")
    return path


def analyse_texts(texts: Dict[str, List[str]], cfg: MeasureConfig, out_dir: Path, prefix: str = "fig10",
                  table_title: str = "Cluster representatives") -> tuple[dict, Dict[str, TextSet]]:
    """Every model-free measure, the Figure 10 maps, the cluster table and points.jsonl for sets of texts."""
    results, sets = measure_sets(texts, cfg.experiment, seed=cfg.experiment.stats_seed)
    samples = {label: cluster_samples(ts) for label, ts in sets.items()}
    for label, ts in sets.items():
        results["models"][label]["clusters"]["samples"] = samples[label]
    figures = {
        f"{prefix}_tsne_similarity": plot_tsne_similarity(sets, out_dir, name=f"{prefix}_tsne_similarity"),
        f"{prefix}_clusters": plot_clusters(sets, out_dir, name=f"{prefix}_clusters"),
    }
    tables = {"cluster_representatives": write_cluster_table(samples, out_dir, "table5_cluster_representatives",
                                                             table_title).name,
              "points": write_points(sets, out_dir).name}
    results["figures"] = {name: path.name for name, path in figures.items()}
    results["tables"] = tables
    return results, sets


def generation_stats(gens: List[Generation]) -> dict:
    lengths = np.array([len(g.token_texts) for g in gens])
    return {"n_completions": len(gens), "mean_tokens": float(lengths.mean()),
            "eos_share": float(np.mean([g.stopped_at_eos for g in gens]))}


def run(cfg: MeasureConfig, out_dir: Path) -> dict:
    generations = sample_each_model(cfg, out_dir, cfg.experiment.prompt)
    texts = {label: [g.text for g in gens] for label, gens in generations.items()}
    analysed, sets = analyse_texts(texts, cfg, out_dir, table_title=f"Completions of {cfg.experiment.prompt!r}: "
                                                                   "texts nearest each k-means centroid")
    results = {"prompt": cfg.experiment.prompt, "temperature": cfg.sampling.temperature,
               "n_predict": cfg.sampling.n_predict, "embedding": "SBERT all-MiniLM-L6-v2 (384-d), whole completions",
               **analysed}
    for label, gens in generations.items():
        results["models"][label] = {**model_source(getattr(cfg.model, label)), **generation_stats(gens),
                                    **results["models"][label]}
    log_wandb("semantic", results, out_dir, sets)
    return results


def log_wandb(namespace: str, results: dict, out_dir: Path, sets: Dict[str, TextSet]) -> None:
    """Scalars as `<namespace>/<label>/<metric>`, the figures, and a table of sample texts."""
    import wandb

    if wandb.run is None:
        return
    scalars = {}
    for label, m in results["models"].items():
        for key in ("distinct_1", "distinct_2", "distinct_3", "ead_1to5", "self_bleu_4", "compression_ratio",
                    "vendi_sbert"):
            scalars[f"{namespace}/{label}/{key}"] = m[key]
        for key in ("tfidf_cosine", "sbert_cosine"):
            scalars[f"{namespace}/{label}/{key}_mean"] = m[key]["mean"]
            scalars[f"{namespace}/{label}/{key}_std"] = m[key]["std"]
        if m["clusters"]["k"] is not None:  # None: no cluster structure
            scalars[f"{namespace}/{label}/clusters_k"] = m["clusters"]["k"]
    images = {f"{namespace}/{name}": wandb.Image(str(out_dir / f)) for name, f in results.get("figures", {}).items()}
    wandb.log({**scalars, **images})
    table = wandb.Table(columns=["model", "cluster", "text"])
    for label, ts in sets.items():
        for i, text in enumerate(ts.texts[:20]):
            table.add_data(label, int(ts.clustering.labels[i]), text)
    wandb.log({f"{namespace}/samples": table})
