"""Figures and tables of Experiment 2 and of any set of texts: Figure 10 (t-SNE maps side by side coloured by
each point's mean TF-IDF cosine similarity), the k-means clusters on the same maps with their silhouette
curves, and a markdown table of cluster representatives (Tables 2-3 and 5)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402

from measure.experiments.diversity import TextSet  # noqa: E402
from measure.figures.common import save as _save  # noqa: E402
from measure.metrics.clusters import nearest_to_centroids  # noqa: E402


def plot_tsne_similarity(sets: Dict[str, TextSet], out_dir: Path, name: str = "fig10_tsne_similarity",
                         colour_by: str = "tfidf_point_mean", title: str = "Figure 10") -> Path:
    """t-SNE maps side by side; colour = each point's mean cosine similarity to the others (one shared scale)."""
    labels = list(sets)
    values = np.concatenate([sets[l].per_text[colour_by] for l in labels])
    vmin, vmax = float(np.min(values)), float(np.max(values))
    fig, axes = plt.subplots(1, len(labels), figsize=(5.2 * len(labels), 4.6), squeeze=False)
    scatter = None
    for ax, label in zip(axes[0], labels):
        ts = sets[label]
        c = ts.per_text[colour_by]
        scatter = ax.scatter(ts.tsne[:, 0], ts.tsne[:, 1], c=c, cmap="viridis", vmin=vmin, vmax=vmax + 1e-12, s=14)
        ax.set_title(f"{label}: mean {c.mean():.2f} (std of point means {c.std(ddof=1) if c.size > 1 else 0:.2f}), "
                     f"n = {c.size}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(scatter, ax=axes[0].tolist(), label="mean cosine similarity to the other texts")
    kind = {"tfidf": "TF-IDF", "sbert": "SBERT"}.get(colour_by.split("_")[0], colour_by)
    fig.suptitle(f"{title}: t-SNE of SBERT embeddings, coloured by each point's mean {kind} cosine to the others")
    fig.savefig(out_dir / f"{name}.png", dpi=120)
    plt.close(fig)
    return out_dir / f"{name}.png"


def plot_clusters(sets: Dict[str, TextSet], out_dir: Path, name: str = "fig10_clusters",
                  title: str = "k-means clusters (k by silhouette)") -> Path:
    """Per model: the t-SNE map coloured by k-means cluster, and the silhouette curve that chose k."""
    labels = list(sets)
    fig, axes = plt.subplots(2, len(labels), figsize=(5.2 * len(labels), 8), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1.4]})
    for col, label in enumerate(labels):
        ts = sets[label]
        cl = ts.clustering
        ax = axes[0, col]
        ax.scatter(ts.tsne[:, 0], ts.tsne[:, 1], c=cl.labels, cmap="tab20", s=14, vmin=0, vmax=max(19, cl.k))
        for c, members in enumerate(nearest_to_centroids(ts.sbert, cl.labels, cl.centroids)):
            if members:
                ax.annotate(str(c), ts.tsne[members[0]], fontsize=9, weight="bold")
        ax.set_title(f"{label}: k = {cl.k}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        curve = axes[1, col]
        if cl.silhouette:
            ks = sorted(cl.silhouette)
            curve.plot(ks, [cl.silhouette[k] for k in ks], marker="o", ms=3)
            curve.axvline(cl.k, ls=":", c="grey")
        else:
            curve.text(0.5, 0.5, "k = 1 (points identical)", ha="center", va="center", transform=curve.transAxes)
        curve.xaxis.set_major_locator(MaxNLocator(integer=True))
        curve.set_xlabel("k")
        curve.set_ylabel("mean silhouette")
    fig.suptitle(title)
    return _save(fig, out_dir / f"{name}.png")


def cluster_samples(ts: TextSet, m: int = 3, max_chars: int = 300) -> List[dict]:
    """For each cluster: its size and the ``m`` texts nearest its centroid (first = representative)."""
    cl = ts.clustering
    out = []
    for c, members in enumerate(nearest_to_centroids(ts.sbert, cl.labels, cl.centroids, m=m)):
        out.append({"cluster": c, "size": int(np.sum(cl.labels == c)), "indices": members,
                    "texts": [ts.texts[i][:max_chars] for i in members]})
    return out


def write_cluster_table(samples: Dict[str, List[dict]], out_dir: Path, name: str, title: str) -> Path:
    """Markdown: per model, per cluster, the sample texts (the paper's Tables 2-3 and 5)."""
    lines = [f"# {title}", ""]
    for label, clusters in samples.items():
        lines += [f"## {label} ({len(clusters)} clusters)", ""]
        for c in clusters:
            lines.append(f"**Cluster {c['cluster']}** ({c['size']} items)")
            lines += [f"- {t.strip() or '(empty)'}".replace("\n", " ") for t in c["texts"]]
            lines.append("")
    path = out_dir / f"{name}.md"
    path.write_text("\n".join(lines))
    return path
