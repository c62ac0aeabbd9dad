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
    values = values[np.isfinite(values)]
    vmin, vmax = (float(np.min(values)), float(np.max(values))) if values.size else (0.0, 1.0)
    fig, axes = plt.subplots(1, len(labels), figsize=(5.2 * len(labels), 4.6), squeeze=False)
    scatter = None
    for ax, label in zip(axes[0], labels):
        ts = sets[label]
        c = ts.per_text[colour_by]
        mapped = np.isfinite(ts.tsne[:, 0])  # large sets: a sample is mapped
        scatter = ax.scatter(ts.tsne[mapped, 0], ts.tsne[mapped, 1], c=c[mapped], cmap="viridis", vmin=vmin,
                             vmax=vmax + 1e-12, s=14, plotnonfinite=True)
        known = c[np.isfinite(c)]
        ax.set_title(f"{label}: mean {known.mean() if known.size else float('nan'):.2f} (std of point means "
                     f"{known.std(ddof=1) if known.size > 1 else 0:.2f}), n = {c.size}"
                     + (f", {int(mapped.sum())} mapped" if not mapped.all() else ""), fontsize=10)
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
        mapped = np.isfinite(ts.tsne[:, 0])
        ax.scatter(ts.tsne[mapped, 0], ts.tsne[mapped, 1], c=cl.labels[mapped], cmap="tab20", s=14, vmin=0,
                   vmax=max(19, cl.k))
        for c, members in enumerate(nearest_to_centroids(ts.sbert, cl.labels, cl.centroids)):
            if members and mapped[members[0]]:
                ax.annotate(str(c), ts.tsne[members[0]], fontsize=9, weight="bold")
        ax.set_title(f"{label}: k = {cl.k}" if cl.structure else
                     f"{label}: no cluster structure (best silhouette {cl.best_silhouette:.2f} < "
                     f"{cl.min_silhouette}); k-means fit k = {cl.k} shown", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        curve = axes[1, col]
        if cl.silhouette:
            ks = sorted(cl.silhouette)
            curve.plot(ks, [cl.silhouette[k] for k in ks], marker="o", ms=3)
            curve.axvline(cl.k, ls=":", c="grey")
            curve.axhline(cl.min_silhouette, ls="--", c="red", lw=0.8)
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
        if not cl.structure:
            out[-1]["no_structure"] = cl.note()
    return out


def write_cluster_table(samples: Dict[str, List[dict]], out_dir: Path, name: str, title: str) -> Path:
    """Markdown: per model, per cluster, the sample texts (the paper's Tables 2-3 and 5)."""
    lines = [f"# {title}", ""]
    for label, clusters in samples.items():
        lines += [f"## {label} ({len(clusters)} clusters)", ""]
        if clusters and clusters[0].get("no_structure"):
            lines += [f"_{clusters[0]['no_structure']}: the groups below are the best k-means fit, not a finding._",
                      ""]
        for c in clusters:
            lines.append(f"**Cluster {c['cluster']}** ({c['size']} items)")
            lines += [f"- {t.strip() or '(empty)'}".replace("\n", " ") for t in c["texts"]]
            lines.append("")
    path = out_dir / f"{name}.md"
    path.write_text("\n".join(lines))
    return path
