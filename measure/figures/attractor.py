"""Figure 14 (section 5.1): continuations of perturbed prompts with every token coloured by the probability
the model gave it (red = unlikely, yellow, green = likely, matplotlib's RdYlGn), as HTML (every prompt,
a few continuations per model) and PNG (the first prompt); and the mean token probability by position."""
from __future__ import annotations

import html
import warnings
from pathlib import Path
from typing import Dict, List

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from measure.figures.common import color, save  # noqa: E402

CMAP = plt.get_cmap("RdYlGn")
SHOWN = 3  # continuations shown per model and prompt in the HTML
PNG_SHOWN = 2  # ... and in the PNG (first prompt only)
LINE_CHARS = 120  # PNG wrap width, characters
FONT_PT = 8  # PNG font size
CHAR_EM = 0.602  # advance of a DejaVu Sans Mono glyph, in em


def _printable(token: str) -> str:
    """A token as it can be drawn: newlines as the return sign, control characters as a middle dot."""
    token = token.replace("\n", "\u23ce").replace("\t", " ")
    return "".join(ch if ch.isprintable() else "\u00b7" for ch in token)


def token_html(gen) -> str:
    spans = []
    for tok, p in zip(gen.token_texts, gen.token_probs):
        spans.append(f'<span style="background:{to_hex(CMAP(p))}" title="p = {p:.3f}">'
                     f'{html.escape(tok).replace(chr(10), "<br>")}</span>')
    return "".join(spans)


def write_html(perturbations: List[dict], continuations: Dict[str, List[list]], out_dir: Path) -> Path:
    """Every perturbed prompt with SHOWN continuations per model, tokens coloured by probability."""
    parts = ["<!doctype html><meta charset='utf-8'><title>Figure 14: attractor test</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:auto}"
             ".c{font-family:monospace;white-space:pre-wrap;line-height:1.7;margin:.4em 0 1em}"
             ".p{color:#555;font-weight:bold}</style>",
             "<h1>Figure 14: nudging the models out of their completions</h1>",
             "<p>Each token is coloured by the probability the model gave it: "
             + "".join(f'<span style="background:{to_hex(CMAP(p))}">&nbsp;{p:.1f}&nbsp;</span>'
                       for p in np.linspace(0, 1, 6)) + "</p>"]
    for j, pert in enumerate(perturbations):
        parts.append(f"<h2>Cluster {pert['cluster']} ({pert['size']} completions), rule: {pert['rule']}</h2>")
        parts.append(f"<p><i>representative:</i> {html.escape(pert['representative'][:400])}</p>")
        for label, by_prompt in continuations.items():
            parts.append(f"<h3>{html.escape(label)}</h3>")
            for gen in by_prompt[j][:SHOWN]:
                parts.append(f"<div class='c'><span class='p'>{html.escape(pert['perturbed_prompt'])}</span>"
                             f"{token_html(gen)}</div>")
    path = out_dir / "fig14_attractor.html"
    path.write_text("\n".join(parts))
    return path


def _layout(prompt: str, gen) -> List[tuple]:
    """(x, line, text, probability or None) in character cells, wrapped at LINE_CHARS."""
    x, line, cells = 0, 0, []
    items = [(_printable(prompt), None)] + [(_printable(t), p) for t, p in zip(gen.token_texts, gen.token_probs)]
    for text, p in items:
        for piece in [text[i:i + LINE_CHARS] for i in range(0, max(len(text), 1), LINE_CHARS)]:
            if x + len(piece) > LINE_CHARS:
                x, line = 0, line + 1
            cells.append((x, line, piece, p))
            x += len(piece)
    return cells


def plot_tokens(perturbations: List[dict], continuations: Dict[str, List[list]], out_dir: Path) -> Path:
    """The first perturbed prompt and PNG_SHOWN continuations per model, each token on its probability colour."""
    blocks = []  # (title, cells)
    for label, by_prompt in continuations.items():
        for gen in (by_prompt[0][:PNG_SHOWN] if perturbations and by_prompt else []):
            blocks.append((f"{label}: mean token probability {np.mean(gen.token_probs) if gen.token_probs else 0:.2f}",
                           _layout(perturbations[0]["perturbed_prompt"], gen)))
    total = sum(max(c[1] for c in cells) + 3 for _, cells in blocks) or 1
    width_in = LINE_CHARS * CHAR_EM * FONT_PT / 72 + 0.6
    fig = plt.figure(figsize=(width_in, 0.6 + total * FONT_PT * 1.9 / 72))
    ax = fig.add_axes([0.3 / width_in, 0.02, 1 - 0.6 / width_in, 0.93])
    ax.set_xlim(0, LINE_CHARS)
    ax.set_ylim(total, 0)
    ax.axis("off")
    row = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing glyphs in odd tokens
        for title, cells in blocks:
            ax.text(0, row + 0.8, title, fontsize=FONT_PT + 1, weight="bold", va="bottom")
            for x, line, text, p in cells:
                box = dict(boxstyle="square,pad=0.1", fc=to_hex(CMAP(p)), ec="white", lw=0.6) if p is not None else None
                ax.text(x, row + line + 1.8, text, family="monospace", fontsize=FONT_PT, va="bottom",
                        color="#555" if p is None else "black", bbox=box)
            row += max(c[1] for c in cells) + 3
        if not blocks:
            ax.text(0, 0.8, "no continuations", color="grey")
        fig.suptitle("Figure 14: perturbed prompt (grey) and continuations, each token on the colour of its "
                     "probability (red low, green high)", fontsize=FONT_PT + 1)
        path = out_dir / "fig14_attractor.png"
        fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_prob_by_position(results: dict, out_dir: Path) -> Path:
    """Mean sampled-token probability by position after the perturbation (band: bootstrap 95% CI); dashed:
    the same model's unperturbed completions."""
    fig, ax = plt.subplots(figsize=(8, 4))
    for label, m in results["models"].items():
        colour = color(label)
        curve, base = m["prob_by_position"], m["unperturbed"]["prob_by_position"]
        t = np.arange(1, len(curve["mean"]) + 1)
        ax.plot(t, curve["mean"], color=colour, label=f"{label}, perturbed (n = {m['n_continuations']})")
        ax.fill_between(t, curve["ci95_lo"], curve["ci95_hi"], color=colour, alpha=0.2)
        ax.plot(np.arange(1, len(base["mean"]) + 1), base["mean"], color=colour, ls="--", lw=1,
                label=f"{label}, unperturbed")
    ax.axvspan(0.5, results["early_tokens"] + 0.5, color="grey", alpha=0.1)
    ax.set_xlabel("position of the generated token")
    ax.set_ylabel("probability of the sampled token")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title("Does the continuation climb back to high-probability tokens?")
    return save(fig, out_dir / "fig14_prob_by_position.png")


def plot_all(perturbations: List[dict], continuations: Dict[str, List[list]], results: dict,
             out_dir: Path) -> Dict[str, Path]:
    return {"fig14_attractor_html": write_html(perturbations, continuations, out_dir),
            "fig14_attractor": plot_tokens(perturbations, continuations, out_dir),
            "fig14_prob_by_position": plot_prob_by_position(results, out_dir)}
