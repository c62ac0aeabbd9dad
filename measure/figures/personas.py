"""Figures 1-8 of Experiment 1: word clouds of first and last names, bar charts of nationality, ethnicity,
personality type and gender, histograms of age and review length, and VADER compound distributions; and
``fig_exact_attributes``: the exact (teacher-forced) marginal and conditional entropy of each attribute with the
ground truth's, and the covered mass. Every figure is written even when a model produced nothing parseable (its
panel says so)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Dict, List

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from measure.figures.common import color as _color, save  # noqa: E402
from measure.metrics.sentiment import vader_compound  # noqa: E402

BARS = (("fig2_nationality", "nationality", "Figure 2: nationality"),
        ("fig3_ethnicity", "ethnicity", "Figure 3: ethnicity"),
        ("fig4_mbti", "mbti", "Figure 4: Myers-Briggs type"),
        ("fig6_gender", "gender", "Figure 6: gender"))
MAX_BARS = 20  # most common values shown per model; the rest are summed into "other"


def _save(fig, path: Path) -> Path:
    return save(fig, path, dpi=110)


def _empty(ax, message: str = "nothing parsed") -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


def placeholder(out_dir: Path, name: str, message: str) -> Path:
    """A figure that says why it has no data (so every run writes every figure)."""
    fig, ax = plt.subplots(figsize=(6, 2))
    _empty(ax, message)
    return _save(fig, out_dir / f"{name}.png")


def plot_wordclouds(parsed: Dict[str, list], out_dir: Path) -> Path:
    """Figure 1: word clouds of first and last names (size = frequency), one row per model."""
    from wordcloud import WordCloud

    labels = list(parsed)
    fig, axes = plt.subplots(len(labels), 2, figsize=(10, 3.2 * len(labels)), squeeze=False)
    for row, label in enumerate(labels):
        for col, field in enumerate(("first_name", "last_name")):
            ax = axes[row, col]
            freq = Counter(getattr(c, field) for c in parsed[label] if getattr(c, field))
            if freq:
                cloud = WordCloud(width=500, height=260, background_color="white", random_state=0,
                                  prefer_horizontal=1.0).generate_from_frequencies(freq)
                ax.imshow(cloud, interpolation="bilinear")
                ax.axis("off")
            else:
                _empty(ax)
            ax.set_title(f"{label}: {field.replace('_', ' ')}s ({len(freq)} distinct)", fontsize=10)
    fig.suptitle("Figure 1: first and last names")
    return _save(fig, out_dir / "fig1_names_wordcloud.png")


def plot_bars(parsed: Dict[str, list], field: str, title: str, name: str, out_dir: Path) -> Path:
    """Share of each value among a model's parsed personas, one panel per model (most common first)."""
    labels = list(parsed)
    fig, axes = plt.subplots(1, len(labels), figsize=(5.5 * len(labels), 4.5), squeeze=False)
    for ax, label in zip(axes[0], labels):
        values = [str(getattr(c, field)) for c in parsed[label] if getattr(c, field) is not None]
        if not values:
            _empty(ax)
            ax.set_title(label)
            continue
        counts = Counter(values).most_common()
        shown, rest = counts[:MAX_BARS], sum(c for _, c in counts[MAX_BARS:])
        if rest:
            shown.append(("other", rest))
        names = [v for v, _ in shown][::-1]
        shares = [c / len(values) for _, c in shown][::-1]
        ax.barh(names, shares, color=_color(label))
        ax.set_xlabel("share of parsed personas")
        ax.set_title(f"{label}: {len(counts)} distinct of {len(values)}", fontsize=10)
        ax.tick_params(axis="y", labelsize=8)
    fig.suptitle(title)
    return _save(fig, out_dir / f"{name}.png")


def plot_hist(values: Dict[str, np.ndarray], title: str, xlabel: str, name: str, out_dir: Path,
              bins=20, range_=None) -> Path:
    """Overlaid histograms (density) of one quantity per model."""
    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = False
    for label, v in values.items():
        v = np.asarray(v, dtype=float)
        if v.size:
            ax.hist(v, bins=bins, range=range_, alpha=0.55, color=_color(label), density=True,
                    label=f"{label} (n = {v.size}, mean {v.mean():.2f})")
            drawn = True
    if drawn:
        ax.legend()
        ax.set_xlabel(xlabel)
        ax.set_ylabel("density")
    else:
        _empty(ax)
    ax.set_title(title)
    return _save(fig, out_dir / f"{name}.png")


def plot_all(parsed: Dict[str, list], reviews: Dict[str, List[str]], out_dir: Path) -> Dict[str, Path]:
    """Figures 1-8; returns name -> path."""
    figures = {"fig1_names_wordcloud": plot_wordclouds(parsed, out_dir)}
    for name, field, title in BARS:
        figures[name] = plot_bars(parsed, field, title, name, out_dir)
    ages = {l: [c.age for c in cards if c.age is not None] for l, cards in parsed.items()}
    figures["fig5_age"] = plot_hist(ages, "Figure 5: age", "age (years)", "fig5_age", out_dir, bins=24, range_=(0, 96))
    figures["fig7_review_length"] = plot_hist({l: [len(r) for r in rs] for l, rs in reviews.items()},
                                              "Figure 7: review length", "characters", "fig7_review_length", out_dir)
    figures["fig8_vader"] = plot_hist({l: vader_compound(rs) for l, rs in reviews.items()},
                                      "Figure 8: review sentiment (VADER compound)", "compound score",
                                      "fig8_vader", out_dir, bins=20, range_=(-1, 1))
    return figures


def plot_exact_attributes(blocks: Dict[str, dict], out_dir: Path) -> Path:
    """Exact attribute distributions (teacher forcing): marginal and conditional entropy per attribute and model
    with their bootstrap 95% intervals, the ground truth's entropy as a black tick; covered mass below."""
    labels = list(blocks)
    attrs = list(dict.fromkeys(a for label in labels for a in blocks[label]))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(7.0, 1.3 * len(attrs) + 2), 7), sharex=True)
    if not attrs:
        _empty(top, "no attribute had a context")
        _empty(bottom)
        return _save(fig, out_dir / "fig_exact_attributes.png")
    x, width = np.arange(len(attrs)), 0.8 / max(len(labels), 1)
    for i, label in enumerate(labels):
        for ax, metric, marker in ((top, "marginal_entropy_bits", "o"), (top, "conditional_entropy_bits", "v"),
                                   (bottom, "covered_mass", "s")):
            pts = [(j, blocks[label][a][metric]) for j, a in enumerate(attrs) if a in blocks[label]]
            xs = np.array([x[j] + (i - (len(labels) - 1) / 2) * width for j, _ in pts])
            m = np.array([b["mean"] for _, b in pts])
            err = np.maximum(np.array([[b["mean"] - b["ci95"][0], b["ci95"][1] - b["mean"]] for _, b in pts]).T, 0)
            ax.errorbar(xs, m, yerr=err, fmt=marker, color=_color(label), capsize=3, ms=5,
                        label=f"{label}: {metric.replace('_bits', '').replace('_', ' ')}")
    truth = [(j, blocks[labels[0]][a].get("truth_entropy_bits")) for j, a in enumerate(attrs) if a in blocks[labels[0]]]
    truth = [(j, h) for j, h in truth if h is not None]
    if truth:
        top.scatter([x[j] for j, _ in truth], [h for _, h in truth], marker="_", s=600, color="black",
                    label="ground truth entropy", zorder=3)
    top.set_ylabel("entropy (bits)")
    top.set_title("Exact attribute distributions (teacher forcing on the base model's cards), 95% CI over contexts")
    top.legend(fontsize=7, ncol=2)
    bottom.set_ylabel("covered mass")
    bottom.set_ylim(0, 1.05)
    bottom.set_xticks(x)
    bottom.set_xticklabels(attrs)
    bottom.legend(fontsize=7)
    return _save(fig, out_dir / "fig_exact_attributes.png")
