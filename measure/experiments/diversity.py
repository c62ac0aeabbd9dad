"""Every model-free diversity measure of a set of texts, per set and compared between sets. Shared by
Experiment 2 (semantic), Experiment 1 (review sentences), the attractor test and `experiment=texts`.

Per set (``measure_set``): distinct-1/2/3, EAD (n = 1..5), self-BLEU-4, gzip compression ratio, pairwise
cosine of TF-IDF and of SBERT vectors (mean and std over all distinct pairs i < j, and the std of each
point's mean similarity, the statistic we suspect behind the paper's "0.16 (STD = 0.03)"), Vendi score of
the SBERT cosine kernel, VADER compound, length in words, k-means clusters (k by silhouette) and a t-SNE map.

Comparisons (``compare_sets``): most of these are properties of a whole set, not of one text, so texts are
not independent units for them. Each set is shuffled (seeded) and cut into disjoint chunks of
``chunk_size`` texts; the metric is computed on every chunk (TF-IDF and SBERT vectors come from the whole
set) and ``measure.stats.compare`` runs on the chunk values: bootstrap CI of the mean difference, Welch,
Mann-Whitney, effect sizes, with n = chunks. Per-text metrics (VADER, length) compare texts directly.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Sequence

import numpy as np

from measure.config import ExperimentConfig
from measure.embeddings import embed
from measure.metrics.clusters import Clustering, choose_k, tsne_2d
from measure.metrics.lexical import compression_ratio, distinct_n, ead_averaged, self_bleu, self_bleu_per_text, words
from measure.metrics.sentiment import polarity_shares, vader_compound
from measure.metrics.similarity import pairwise_cosine_stats, point_mean_similarity, tfidf_vectors, vendi_score
from measure.stats import compare, summarize

log = logging.getLogger(__name__)
CHUNKED = ("distinct_1", "distinct_2", "distinct_3", "ead_1to5", "self_bleu_4", "compression_ratio",
           "tfidf_cosine", "sbert_cosine", "vendi_sbert")
PER_TEXT = ("vader_compound", "length_words")


@dataclass
class TextSet:
    """One model's texts with what was computed from them (vectors, clusters, map, per-text scores)."""

    label: str
    texts: List[str]
    sbert: np.ndarray  # (n, 384) unit rows
    tfidf: object = None  # scipy sparse (n, vocab), unit or zero rows
    clustering: Clustering | None = None
    tsne: np.ndarray | None = None  # (n, 2)
    per_text: Dict[str, np.ndarray] = field(default_factory=dict)  # vader_compound, length_words, point means
    chunks: Dict[str, np.ndarray] = field(default_factory=dict)  # set metrics on disjoint chunks (comparisons)


def embed_sets(texts_by_label: Dict[str, Sequence[str]], batch_size: int = 64) -> Dict[str, np.ndarray]:
    """SBERT embeddings of each set (the model is loaded once per process)."""
    return {label: embed(list(texts), batch_size=batch_size, show_progress=True)
            for label, texts in texts_by_label.items()}


def _cosine_block(X) -> dict:
    stats = pairwise_cosine_stats(X)
    point = point_mean_similarity(X)
    return {"mean": stats["mean"], "std": stats["std"], "std_of": "all distinct pairs i<j (ddof=0)",
            "point_mean_std": float(point.std(ddof=1)) if point.size > 1 else 0.0,
            "point_mean_std_of": "each text's mean similarity to the others (ddof=1)",
            "n_pairs": stats["n_pairs"]}, point


def set_values(texts: Sequence[str], sbert: np.ndarray, tfidf, vocab_size: int) -> Dict[str, float]:
    """The set-level metrics of one (sub)set; ``sbert`` and ``tfidf`` are its rows of the full-set vectors."""
    return {
        "distinct_1": distinct_n(texts, 1), "distinct_2": distinct_n(texts, 2), "distinct_3": distinct_n(texts, 3),
        "ead_1to5": ead_averaged(texts, 5, vocab_size),
        "self_bleu_4": self_bleu(texts) if len(texts) > 1 else float("nan"),
        "compression_ratio": compression_ratio(texts) if any(texts) else float("nan"),
        "tfidf_cosine": pairwise_cosine_stats(tfidf)["mean"],
        "sbert_cosine": pairwise_cosine_stats(sbert)["mean"],
        "vendi_sbert": vendi_score(sbert),
    }


def measure_set(label: str, texts: Sequence[str], sbert: np.ndarray, exp: ExperimentConfig, seed: int = 0,
                with_map: bool = True) -> tuple[dict, TextSet]:
    """All metrics of one set (needs >= 2 texts): the results.json entry and the ``TextSet`` behind it."""
    texts = list(texts)
    if len(texts) < 2:
        raise ValueError(f"{label}: diversity needs at least 2 texts; got {len(texts)}")
    ts = TextSet(label=label, texts=texts, sbert=np.asarray(sbert), tfidf=tfidf_vectors(texts))
    tfidf_block, tfidf_point = _cosine_block(ts.tfidf)
    sbert_block, sbert_point = _cosine_block(ts.sbert)
    ts.per_text = {"vader_compound": vader_compound(texts),
                   "length_words": np.array([len(words(t)) for t in texts], dtype=float),
                   "tfidf_point_mean": tfidf_point, "sbert_point_mean": sbert_point,
                   "self_bleu_4": self_bleu_per_text(texts)}
    ts.clustering = choose_k(ts.sbert, exp.k_min, exp.k_max, seed=seed)
    if with_map:
        ts.tsne = tsne_2d(ts.sbert, exp.tsne_perplexity, seed=seed)
    values = set_values(texts, ts.sbert, ts.tfidf, exp.ead_vocab_size)
    entry = {k: values[k] for k in ("distinct_1", "distinct_2", "distinct_3", "ead_1to5", "self_bleu_4",
                                    "compression_ratio", "vendi_sbert")}
    entry.update({
        "ead_vocab_size": exp.ead_vocab_size,
        "tfidf_cosine": tfidf_block, "sbert_cosine": sbert_block,
        "vader_compound": {**summarize(ts.per_text["vader_compound"], exp.n_bootstrap, seed),
                           **polarity_shares(ts.per_text["vader_compound"])},
        "length_words": summarize(ts.per_text["length_words"], exp.n_bootstrap, seed),
        "clusters": {"k": ts.clustering.k, "criterion": ts.clustering.criterion,
                     "silhouette": {str(k): v for k, v in ts.clustering.silhouette.items()},
                     "sizes": ts.clustering.sizes()},
        "n_texts": len(texts),
    })
    ts.chunks = chunk_values(ts, exp.chunk_size, exp.ead_vocab_size, seed)
    entry["chunked"] = {"chunk_size": exp.chunk_size, **{m: summarize(v, exp.n_bootstrap, seed)
                                                         for m, v in ts.chunks.items() if np.isfinite(v).any()}}
    log.info("%s: %d texts, distinct-2 %.3f, tf-idf cosine %.3f (std %.3f), sbert cosine %.3f, vendi %.2f, k=%d",
             label, len(texts), entry["distinct_2"], tfidf_block["mean"], tfidf_block["std"], sbert_block["mean"],
             entry["vendi_sbert"], ts.clustering.k)
    return entry, ts


def chunk_values(ts: TextSet, chunk_size: int, vocab_size: int, seed: int = 0) -> Dict[str, np.ndarray]:
    """Each set-level metric on disjoint chunks of ``chunk_size`` texts (seeded shuffle; a short tail dropped)."""
    order = np.random.default_rng(seed).permutation(len(ts.texts))
    n_chunks = len(order) // chunk_size
    out: Dict[str, List[float]] = {m: [] for m in CHUNKED}
    for c in range(n_chunks):
        idx = np.sort(order[c * chunk_size:(c + 1) * chunk_size])
        vals = set_values([ts.texts[i] for i in idx], ts.sbert[idx], ts.tfidf[idx], vocab_size)
        for m in CHUNKED:
            out[m].append(vals[m])
    return {m: np.asarray(v, dtype=float) for m, v in out.items()}


def compare_sets(a: TextSet, b: TextSet, n_boot: int, seed: int = 0) -> Dict[str, dict]:
    """``a`` vs ``b`` for every metric: chunk-level for set metrics, text-level for per-text ones."""
    out: Dict[str, dict] = {}
    for metric in CHUNKED:
        out[metric] = _safe_compare(a.chunks[metric], b.chunks[metric], n_boot, seed, unit="chunk")
    for metric in PER_TEXT:
        out[metric] = _safe_compare(a.per_text[metric], b.per_text[metric], n_boot, seed, unit="text")
    out["labels"] = [a.label, b.label]
    return out


def _safe_compare(x, y, n_boot: int, seed: int, unit: str) -> dict:
    """``measure.stats.compare`` with the unit named; a comparison with < 2 units per side says why it is absent."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    nx, ny = int(np.sum(~np.isnan(x))), int(np.sum(~np.isnan(y)))
    if nx < 2 or ny < 2:
        return {"skipped": f"needs >= 2 {unit}s per side; got {nx} and {ny} (lower experiment.chunk_size "
                           "or sample more)", "n": [nx, ny], "unit": unit}
    return {**compare(x, y, n_boot, seed), "unit": unit}


def pair_order(labels: Sequence[str]) -> List[tuple]:
    """Pairs to compare: (base, aligned) first when both exist, then every other pair in first-seen order."""
    labels = list(labels)
    pairs = [(labels[i], labels[j]) for i in range(len(labels)) for j in range(i + 1, len(labels))]
    if "base" in labels and "aligned" in labels:
        pairs = [("base", "aligned")] + [p for p in pairs if set(p) != {"base", "aligned"}]
    return pairs


def measure_sets(texts_by_label: Dict[str, Sequence[str]], exp: ExperimentConfig, seed: int = 0,
                 embeddings: Dict[str, np.ndarray] | None = None) -> tuple[dict, Dict[str, TextSet]]:
    """``models``, ``comparison`` (first pair) and ``comparisons`` (all pairs) blocks for several sets."""
    embeddings = embeddings or embed_sets(texts_by_label)
    models, sets = {}, {}
    for label, texts in texts_by_label.items():
        models[label], sets[label] = measure_set(label, texts, embeddings[label], exp, seed)
    results: dict = {"models": models}
    pairs = pair_order(list(sets))
    if pairs:
        comparisons = {f"{a}_vs_{b}": compare_sets(sets[a], sets[b], exp.n_bootstrap, seed) for a, b in pairs}
        results["comparison"] = comparisons[f"{pairs[0][0]}_vs_{pairs[0][1]}"]
        results["comparisons"] = comparisons
        results["comparison_units"] = (f"set metrics: disjoint chunks of {exp.chunk_size} texts per model "
                                       "(seeded shuffle); vader_compound, length_words: texts")
    return results, sets


def compare_set_statistic(a: Sequence, b: Sequence, statistic: Callable[[Sequence], float], n_boot: int,
                          seed: int = 0, n_perm: int = 1000) -> dict:
    """A statistic of a whole set (an attribute's entropy, its number of distinct values), ``a`` vs ``b``:
    the difference, its percentile bootstrap 95% interval (each set resampled with replacement) and a
    two-sided permutation p-value (set labels shuffled ``n_perm`` times), with both sizes.
    """
    a, b = list(a), list(b)
    if len(a) < 2 or len(b) < 2:
        return {"skipped": f"needs >= 2 items per side; got {len(a)} and {len(b)}", "n": [len(a), len(b)]}
    rng = np.random.default_rng(seed)
    observed = statistic(a) - statistic(b)
    boots = [statistic([a[i] for i in rng.integers(0, len(a), len(a))])
             - statistic([b[i] for i in rng.integers(0, len(b), len(b))]) for _ in range(n_boot)]
    pooled = a + b
    extreme = 0
    for _ in range(n_perm):
        order = rng.permutation(len(pooled))
        diff = statistic([pooled[i] for i in order[:len(a)]]) - statistic([pooled[i] for i in order[len(a):]])
        extreme += abs(diff) >= abs(observed) - 1e-12
    return {"diff": float(observed), "diff_ci95": [float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))],
            "permutation_p": (1 + extreme) / (1 + n_perm), "n_permutations": n_perm, "n": [len(a), len(b)],
            "unit": "item (bootstrap and permutation over items)"}
