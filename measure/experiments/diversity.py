"""Every model-free diversity measure of a set of texts, per set and compared between sets. Shared by
Experiment 2 (semantic), Experiment 1 (review sentences), the attractor test and `experiment=texts`.

Per set (``measure_set``): the set metrics of ``measure.experiments.set_metrics`` (distinct-1/2/3, EAD,
self-BLEU-4, gzip compression ratio, TF-IDF and SBERT pairwise cosine, Vendi), the cosine std over all distinct
pairs i < j and the std of each point's mean similarity (the statistic we suspect behind the paper's
"0.16 (STD = 0.03)"), VADER compound, length in tokens, k-means clusters (k by silhouette, None without cluster
structure) and a t-SNE map. Empty or whitespace-only texts are counted and left out, with a warning.

What can fool a comparison of sets, and what is done about it (``measure.experiments.set_compare``):
- n: most set metrics depend on how many texts are pooled. Each is compared at equal n (the larger set
  subsampled to the smaller n, averaged over draws: ``equal_n``), on disjoint chunks of ``chunk_size`` texts
  (independent units of equal size: Welch, Mann-Whitney, effect sizes), and by a permutation test that keeps
  the group sizes (``permutation_p``);
- length: lexical metrics depend on text length. Each is recomputed on texts cut to a common number of tokens
  (``length_matched``); mean lengths that differ by more than 20% are flagged;
- nothing to measure: a metric without material (no 4-gram for BLEU-4, no TF-IDF term) is NaN with a reason
  (``undefined``), never a number that reads as diverse; identical inputs give "no difference".
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from measure.config import ExperimentConfig
from measure.embeddings import embed, truncation_report
from measure.experiments.set_compare import PER_TEXT, compare_sets, length_matched
from measure.experiments.set_metrics import LEXICAL_METRICS, SBERT_METRICS, SET_METRICS, SetFeatures
from measure.metrics.clusters import Clustering, choose_k, tsne_sample
from measure.metrics.sentiment import polarity_shares, vader_compound
from measure.metrics.similarity import pairwise_cosine_stats, point_mean_similarity
from measure.stats import parallel_map, summarize

log = logging.getLogger(__name__)
CHUNKED = SET_METRICS  # set metrics: compared over chunks, at equal n and by permutation
__all__ = ["CHUNKED", "PER_TEXT", "TextSet", "compare_set_statistic", "measure_set", "measure_sets", "pair_order"]


@dataclass
class TextSet:
    """One model's texts with what was computed from them (vectors, clusters, map, per-text scores)."""

    label: str
    texts: List[str]
    sbert: np.ndarray  # (n, 384) unit rows; NaN rows for texts not embedded (``experiment.sbert_max_texts``)
    tfidf: object = None  # scipy sparse (n, vocab), unit or zero rows
    clustering: Clustering | None = None
    tsne: np.ndarray | None = None  # (n, 2); NaN rows: not in the mapped sample
    per_text: Dict[str, np.ndarray] = field(default_factory=dict)  # vader_compound, length_words, point means
    chunks: Dict[str, np.ndarray] = field(default_factory=dict)  # set metrics on disjoint chunks (comparisons)
    index: np.ndarray | None = None  # positions of these texts in the pool of every set (``SetFeatures``)

    @property
    def embedded(self) -> np.ndarray:
        """Which texts have an SBERT row (all, unless the set is larger than ``experiment.sbert_max_texts``)."""
        return np.isfinite(self.sbert[:, 0])


def embed_sets(texts_by_label: Dict[str, Sequence[str]], batch_size: int = 64,
               max_seq_length: int | None = None) -> Dict[str, np.ndarray]:
    """SBERT embeddings of each set (the model is loaded once per process)."""
    return {label: embed(list(texts), batch_size=batch_size, show_progress=True, max_seq_length=max_seq_length)
            for label, texts in texts_by_label.items()}


def sbert_sample(n: int, max_texts: int, seed: int = 0) -> np.ndarray:
    """Which of a set's n texts SBERT embeds: all, or a seeded sample of ``max_texts`` (sorted positions)."""
    if n <= max_texts:
        return np.arange(n)
    return np.sort(np.random.default_rng([seed, n]).choice(n, max_texts, replace=False))


def drop_empty(texts_by_label: Dict[str, Sequence[str]]) -> tuple[Dict[str, List[str]], Dict[str, np.ndarray]]:
    """Each set without its empty or whitespace-only texts (a warning names how many), and the kept positions."""
    kept, positions = {}, {}
    for label, texts in texts_by_label.items():
        keep = np.array([bool(t.strip()) for t in texts], dtype=bool)
        kept[label] = [t for t, k in zip(texts, keep) if k]
        positions[label] = np.flatnonzero(keep)
        if not keep.all():
            log.warning("%s: %d of %d texts are empty or whitespace; left out of every measure", label,
                        int((~keep).sum()), len(texts))
    return kept, positions


def _cosine_block(X) -> tuple[dict, np.ndarray]:
    stats = pairwise_cosine_stats(X)
    point = point_mean_similarity(X)
    return {"mean": stats["mean"], "std": stats["std"], "std_of": "all distinct pairs i<j (ddof=0)",
            "point_mean_std": float(point.std(ddof=1)) if point.size > 1 else 0.0,
            "point_mean_std_of": "each text's mean similarity to the others (ddof=1)",
            "n_pairs": stats["n_pairs"]}, point


def _tfidf_block(features: SetFeatures, idx: np.ndarray) -> tuple[dict, np.ndarray, object]:
    """TF-IDF cosine block over the texts with a term (the others counted), per-text means (NaN without a term)."""
    X, has_terms = features.tfidf_rows(idx)
    point = np.full(idx.size, np.nan)
    if has_terms.sum() < 2:
        block = {"mean": float("nan"), "std": float("nan"), "n_pairs": 0}
    else:
        block, point[has_terms] = _cosine_block(X[has_terms])
    block["n_without_terms"] = int((~has_terms).sum())
    return block, point, X


def clusters_entry(clustering: Clustering) -> dict:
    """results.json block of a clustering: k (None without cluster structure), the fit behind it, the curve."""
    return {"k": clustering.reported_k, "k_fitted": clustering.k, "structure": clustering.structure,
            "best_silhouette": clustering.best_silhouette, "min_silhouette": clustering.min_silhouette,
            "criterion": clustering.criterion, "note": clustering.note(),
            "silhouette": {str(k): v for k, v in clustering.silhouette.items()}, "sizes": clustering.sizes()}


def measure_set(label: str, features: SetFeatures, idx: np.ndarray, exp: ExperimentConfig, seed: int = 0,
                with_map: bool = True) -> tuple[dict, TextSet]:
    """All metrics of one set (texts ``idx`` of the pool, >= 2): its results.json entry and ``TextSet``."""
    idx = np.asarray(idx, dtype=np.int64)
    texts = [features.texts[i] for i in idx]
    if len(texts) < 2:
        raise ValueError(f"{label}: diversity needs at least 2 non-empty texts; got {len(texts)}")
    ts = TextSet(label=label, texts=texts, sbert=features.sbert[idx], index=idx)
    embedded = ts.embedded
    if embedded.sum() < 2:
        raise ValueError(f"{label}: SBERT measures need at least 2 embedded texts; got {int(embedded.sum())}")
    tfidf_block, tfidf_point, ts.tfidf = _tfidf_block(features, idx)
    sbert_block, sbert_point = _cosine_block(ts.sbert[embedded])
    ts.per_text = {"vader_compound": vader_compound(texts), "length_words": features.lengths[idx].astype(float),
                   "tfidf_point_mean": tfidf_point, "sbert_point_mean": _expand(sbert_point, embedded),
                   "self_bleu_4": features.ngrams.self_bleu_per_text(idx, features.bleu_reference_sample(idx))}
    ts.clustering = choose_k(ts.sbert[embedded], exp.k_min, exp.k_max, seed=seed, min_silhouette=exp.min_silhouette)
    ts.clustering.labels = _expand(ts.clustering.labels, embedded, fill=-1)
    if with_map:
        ts.tsne = _expand(tsne_sample(ts.sbert[embedded], exp.map_max_points, exp.tsne_perplexity, seed=seed),
                          embedded)
    values = features.values(idx)
    entry = {k: values[k] for k in ("distinct_1", "distinct_2", "distinct_3", "ead_1to5", "self_bleu_4",
                                    "compression_ratio", "vendi_sbert")}
    undefined = features.undefined_reasons(idx, values)
    entry.update({
        "ead_vocab_size": exp.ead_vocab_size,
        "self_bleu_references": (f"all other texts ({len(texts) - 1})" if idx.size <= exp.self_bleu_references + 1
                                 else f"a seeded sample of {exp.self_bleu_references} texts of the set"),
        "tfidf_cosine": tfidf_block, "sbert_cosine": sbert_block,
        "vader_compound": {**summarize(ts.per_text["vader_compound"], exp.n_bootstrap, seed),
                           **polarity_shares(ts.per_text["vader_compound"])},
        "length_words": summarize(ts.per_text["length_words"], exp.n_bootstrap, seed),
        "clusters": clusters_entry(ts.clustering),
        "n_texts": len(texts),
        "sbert_n": int(embedded.sum()),
        "sbert_texts": ("all" if embedded.all() else f"a seeded sample of {int(embedded.sum())} of {len(texts)} "
                        "(experiment.sbert_max_texts): sbert_cosine, vendi_sbert, clusters and the map"),
        "undefined": undefined,
    })
    for metric, reason in undefined.items():
        log.warning("%s: %s is undefined: %s", label, metric, reason)
    ts.chunks = {**chunk_values(features, idx, exp.chunk_size, seed, LEXICAL_METRICS),
                 **chunk_values(features, idx[embedded], exp.chunk_size, seed, SBERT_METRICS)}
    entry["chunked"] = {"chunk_size": exp.chunk_size, **{m: summarize(v, exp.n_bootstrap, seed)
                                                         for m, v in ts.chunks.items() if np.isfinite(v).any()}}
    log.info("%s: %d texts, distinct-2 %.3f, tf-idf cosine %.3f, sbert cosine %.3f, vendi %.2f, k=%s", label,
             len(texts), entry["distinct_2"], tfidf_block["mean"], sbert_block["mean"], entry["vendi_sbert"],
             ts.clustering.reported_k if ts.clustering.structure else f"none ({ts.clustering.note()})")
    return entry, ts


def chunk_values(features: SetFeatures, idx: np.ndarray, chunk_size: int, seed: int = 0,
                 metrics: Sequence[str] = SET_METRICS) -> Dict[str, np.ndarray]:
    """Each of ``metrics`` on disjoint chunks of ``chunk_size`` texts of ``idx`` (seeded shuffle; a short tail
    dropped): the same ``SetFeatures.values`` as the whole set."""
    order = np.random.default_rng(seed).permutation(len(idx))
    n_chunks = len(order) // chunk_size
    chunks = parallel_map(lambda sub: features.values(sub, metrics),
                          [idx[order[c * chunk_size:(c + 1) * chunk_size]] for c in range(n_chunks)])
    return {m: np.asarray([vals[m] for vals in chunks], dtype=float) for m in metrics}


def _expand(values: np.ndarray, where: np.ndarray, fill=np.nan) -> np.ndarray:
    """Rows for the texts marked in ``where`` spread back over every text (``fill`` for the others)."""
    if where.all():
        return values
    out = np.full((where.size,) + values.shape[1:], fill, dtype=np.result_type(values, np.asarray(fill)))
    out[where] = values
    return out


def pair_order(labels: Sequence[str]) -> List[tuple]:
    """Pairs to compare: (base, aligned) first when both exist, then every other pair in first-seen order."""
    labels = list(labels)
    pairs = [(labels[i], labels[j]) for i in range(len(labels)) for j in range(i + 1, len(labels))]
    if "base" in labels and "aligned" in labels:
        pairs = [("base", "aligned")] + [p for p in pairs if set(p) != {"base", "aligned"}]
    return pairs


def measure_sets(texts_by_label: Dict[str, Sequence[str]], exp: ExperimentConfig, seed: int = 0,
                 embeddings: Dict[str, np.ndarray] | None = None) -> tuple[dict, Dict[str, TextSet]]:
    """``models``, ``comparison`` (first pair) and ``comparisons`` (all pairs) blocks for several sets.

    ``embeddings`` (optional) are the SBERT rows of ``texts_by_label`` as given (empty texts included)."""
    kept, positions = drop_empty(texts_by_label)
    given = embeddings is not None
    if given:
        embeddings = {label: np.asarray(embeddings[label])[positions[label]] for label in kept}
    else:
        chosen = {label: sbert_sample(len(texts), exp.sbert_max_texts, seed) for label, texts in kept.items()}
        rows = embed_sets({label: [kept[label][i] for i in chosen[label]] for label in kept},
                          max_seq_length=exp.sbert_max_seq_length)
        embeddings = {label: _expand(rows[label], np.isin(np.arange(len(kept[label])), chosen[label]))
                      for label in kept}
    with threadpool_limits(limits=1):  # see measure.stats.parallel_map: one BLAS/OpenMP thread per worker
        return _measure_embedded(texts_by_label, kept, embeddings, given, exp, seed)


def _measure_embedded(texts_by_label, kept, embeddings, given: bool, exp: ExperimentConfig,
                      seed: int) -> tuple[dict, Dict[str, TextSet]]:
    labels = list(kept)
    pool = [t for label in labels for t in kept[label]]
    sizes = np.array([len(kept[label]) for label in labels])
    starts = np.cumsum(sizes) - sizes
    features = SetFeatures.build(pool, np.concatenate([embeddings[label] for label in labels]), exp.ead_vocab_size,
                                 exp.self_bleu_references, seed)
    models, sets = {}, {}
    for label, start, size in zip(labels, starts, sizes):
        models[label], sets[label] = measure_set(label, features, np.arange(start, start + size), exp, seed)
        models[label]["n_empty_excluded"] = int(len(texts_by_label[label]) - size)
        models[label]["sbert_truncated"] = (
            {"skipped": "embeddings given by the caller"} if given
            else truncation_report(kept[label], max_seq_length=exp.sbert_max_seq_length))
        if models[label]["sbert_truncated"].get("share", 0) > 0:
            log.warning("%s: SBERT read only the first %d word pieces of %.0f%% of the texts", label,
                        models[label]["sbert_truncated"]["max_seq_length"],
                        100 * models[label]["sbert_truncated"]["share"])
    matched = length_matched(sets, features, exp, seed)
    for label in labels:
        models[label]["length_matched"] = matched.entries[label]
    results: dict = {"models": models}
    pairs = pair_order(labels)
    if pairs:
        comparisons = {f"{a}_vs_{b}": compare_sets(sets[a], sets[b], features, matched, exp, seed) for a, b in pairs}
        results["comparison"] = comparisons[f"{pairs[0][0]}_vs_{pairs[0][1]}"]
        results["comparisons"] = comparisons
        results["comparison_units"] = (
            f"set metrics: disjoint chunks of {exp.chunk_size} texts per model (seeded shuffle; Welch, Mann-Whitney, "
            f"effect sizes), equal_n (the larger set subsampled to the smaller n, {exp.equal_n_draws} draws) and "
            f"permutation_p (texts shuffled between the sets, sizes kept, {exp.n_permutations} permutations on at "
            f"most {exp.permutation_max_n} texts per set); vader_compound, length_words: texts")
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
