"""Figures of Experiment 3: the boxplot of Figure 11, per-token entropy bars (Figure 12) and stacked top-k
probability bars (Figure 13) for one sample per model. Paths of the PNGs are returned."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from measure.figures.common import color as _color, printable, save  # noqa: E402
from measure.metrics.entropy import top_k_entropy_bits  # noqa: E402


def plot_boxplot(topk: Dict[str, np.ndarray], full: Dict[str, np.ndarray], k: int, out_dir: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, data, title in ((axes[0], topk, f"top-{k} entropy (Eq. 3.2), bits"),
                            (axes[1], full, "full-vocabulary entropy, bits")):
        labels = list(data)
        if not labels:  # a served model: full-vocabulary entropy is not returned
            ax.text(0.5, 0.5, "unavailable\n(served model: top-k log-probabilities only)", ha="center",
                    va="center", transform=ax.transAxes)
            ax.set_title(title)
            continue
        box = ax.boxplot([data[l][~np.isnan(data[l])] for l in labels], patch_artist=True)
        ax.set_xticks(range(1, len(labels) + 1), labels)
        for patch, label in zip(box["boxes"], labels):
            patch.set_facecolor(_color(label))
            patch.set_alpha(0.6)
        ax.set_title(title)
        ax.set_ylabel("mean entropy per completion (bits)")
    axes[0].axhline(np.log2(k), ls=":", c="grey", lw=1)
    fig.suptitle("Figure 11: average token entropy per completion")
    return save(fig, out_dir / "fig11_entropy_boxplot.png")


def _tick_labels(gen, n: int) -> List[str]:
    return [printable(t) for t in gen.token_texts[:n]]


def plot_token_entropy(generations: Dict[str, list], k: int, n_tokens: int, out_dir: Path) -> Path:
    labels = list(generations)
    fig, axes = plt.subplots(len(labels), 1, figsize=(10, 3 * len(labels)), squeeze=False)
    for ax, label in zip(axes[:, 0], labels):
        gen = generations[label][0]
        ent = top_k_entropy_bits(np.asarray(gen.topk_probs[:n_tokens])) if gen.topk_probs else np.array([])
        ax.bar(range(len(ent)), ent, color=_color(label))
        ax.set_xticks(range(len(ent)), _tick_labels(gen, n_tokens), rotation=60, ha="right", fontsize=8)
        ax.set_ylim(0, np.log2(k) * 1.05)
        ax.set_ylabel(f"top-{k} entropy (bits)")
        ax.set_title(printable(f"{label}: {gen.prompt}{gen.text[:80]}"), fontsize=9)
    fig.suptitle("Figure 12: token entropies of one sample")
    return save(fig, out_dir / "fig12_token_entropy.png")


def plot_topk_stacks(generations: Dict[str, list], n_tokens: int, out_dir: Path) -> Path:
    labels = list(generations)
    fig, axes = plt.subplots(len(labels), 1, figsize=(10, 3 * len(labels)), squeeze=False)
    for ax, label in zip(axes[:, 0], labels):
        gen = generations[label][0]
        probs = np.asarray(gen.topk_probs[:n_tokens]).reshape(-1, len(gen.topk_probs[0]) if gen.topk_probs else 1)
        bottom = np.zeros(probs.shape[0])
        shades = plt.cm.viridis(np.linspace(0.1, 0.9, probs.shape[1]))
        for j in range(probs.shape[1]):
            ax.bar(range(probs.shape[0]), probs[:, j], bottom=bottom, color=shades[j], label=f"rank {j + 1}")
            bottom += probs[:, j]
        ax.set_xticks(range(probs.shape[0]), _tick_labels(gen, n_tokens), rotation=60, ha="right", fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability")
        ax.set_title(f"{label}: top-{probs.shape[1]} next-token probabilities at each sampled step", fontsize=9)
    axes[0, 0].legend(fontsize=7, ncol=probs.shape[1], loc="upper right")
    fig.suptitle("Figure 13: token probabilities of one sample")
    return save(fig, out_dir / "fig13_topk_probabilities.png")
