"""`python -m rlhf stage=summary`: gather a sweep's PPO runs into one figure and one table across beta.

Reads every ``results.json`` with ``"stage": "ppo"`` under ``summary.runs`` (default: the latest
``multirun/rlhf/ppo/<time>`` directory), groups them by (alpha, beta) and pools each final metric over
seeds as ``{mean, ci95}`` (Student-t interval over seeds, see ``seed_interval``). ``results.json``
holds ``by_beta`` (one entry per (alpha, beta)), ``base`` (the policy before PPO, from the runs' step-0
measurement), ``truth`` (the ground truth's attribute entropies) and ``findings``: for each alpha and
metric, how the smallest beta compares with the largest, and whether their intervals overlap.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from scipy import stats as sps
from rlhf.stages.callbacks import ATTRIBUTES

log = logging.getLogger(__name__)
# by_beta key -> key in a PPO run's results["final"]
METRICS = {"reward": "reward_model_score", "kl": "sequence_kl_nats", "top5_entropy_bits": "top5_entropy_bits",
           "full_entropy_bits": "full_entropy_bits", "sbert_cosine": "sbert_cosine", "tfidf_cosine": "tfidf_cosine",
           "distinct_2": "distinct_2", "annotator_quality": "annotator_quality", "rlhf_reward": "objective/rlhf_reward",
           "trl_kl": "objective/kl"}
NESTED = {"attribute_entropy_bits": "persona/attribute_entropy_bits/{}", "tv_distance": "tv_distance/{}",
          "missing_share": "persona/missing_share/{}"}
NESTED_KEYS = {"attribute_entropy_bits": ATTRIBUTES, "tv_distance": ATTRIBUTES,
               "missing_share": ATTRIBUTES + ("review",)}
HEADLINE = ("reward", "kl", "top5_entropy_bits", "full_entropy_bits", "sbert_cosine")


def latest_sweep(root: Path = Path("multirun/rlhf/ppo")) -> Optional[Path]:
    dirs = sorted(p for p in root.glob("*") if p.is_dir()) if root.exists() else []
    return dirs[-1] if dirs else None


def find_runs(directory: Path) -> List[dict]:
    """Every PPO results.json under ``directory``; a run resumed or rerun in several dirs counts once (latest)."""
    runs: Dict[str, dict] = {}
    for path in sorted(directory.rglob("results.json"), key=lambda p: p.stat().st_mtime):
        try:
            res = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
        if res.get("stage") == "ppo" and "final" in res:
            runs[res["run"]] = res | {"_dir": str(path.parent)}
    return list(runs.values())


def seed_interval(values: List[float]) -> dict:
    """{mean, ci95, n, values} over seeds: Student-t 95% interval of the mean (a single seed gives [mean, mean]).

    Seeds are few (2-4); a percentile bootstrap over so few values collapses to their range and understates
    the uncertainty, so the t interval is used here (``measure.stats.summarize`` pools completions).
    """
    clean = np.array([v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))],
                     dtype=np.float64)
    if clean.size == 0:
        return {"mean": None, "ci95": [None, None], "n": 0}
    mean = float(clean.mean())
    if clean.size == 1:
        return {"mean": mean, "ci95": [mean, mean], "n": 1, "values": clean.tolist()}
    half = float(sps.t.ppf(0.975, clean.size - 1) * clean.std(ddof=1) / math.sqrt(clean.size))
    return {"mean": mean, "ci95": [mean - half, mean + half], "n": int(clean.size), "values": clean.tolist()}


def pool_block(blocks: List[dict]) -> dict:
    """{by_beta key: {mean, ci95, n}} over runs' final (or baseline) blocks."""
    entry = {key: seed_interval([b.get(src) for b in blocks]) for key, src in METRICS.items()}
    for key, pattern in NESTED.items():
        entry[key] = {a: seed_interval([b.get(pattern.format(a)) for b in blocks]) for a in NESTED_KEYS[key]}
    return entry


def by_beta(runs: List[dict]) -> List[dict]:
    cells: Dict[tuple, List[dict]] = {}
    for r in runs:
        cells.setdefault((float(r["alpha"]), float(r["beta"])), []).append(r)
    out = []
    for (alpha, beta), rs in sorted(cells.items()):
        entry = {"alpha": alpha, "beta": beta, "n_seeds": len(rs), "seeds": sorted(r["seed"] for r in rs)}
        entry.update(pool_block([r["final"] for r in rs]))
        out.append(entry)
    return out


def findings(rows: List[dict]) -> List[str]:
    """Plain sentences: smallest vs largest beta for each alpha and headline metric (CI overlap stated)."""
    lines = []
    for alpha in sorted({r["alpha"] for r in rows}):
        cells = [r for r in rows if r["alpha"] == alpha]
        if len(cells) < 2:
            continue
        lo, hi = cells[0], cells[-1]
        metrics = [(k, lo[k], hi[k]) for k in HEADLINE]
        metrics += [(f"attribute_entropy_bits.{a}", lo["attribute_entropy_bits"][a], hi["attribute_entropy_bits"][a])
                    for a in ATTRIBUTES]
        for name, a, b in metrics:
            if a["mean"] is None or b["mean"] is None:
                continue
            if min(lo["n_seeds"], hi["n_seeds"]) < 2:  # one seed has no interval: say so, do not compare
                verdict = "one seed, so no CI"
            else:
                overlap = not (a["ci95"][1] < b["ci95"][0] or b["ci95"][1] < a["ci95"][0])
                verdict = f"{'CIs overlap' if overlap else 'CIs do not overlap'}; {lo['n_seeds']} and " \
                          f"{hi['n_seeds']} seeds"
            lines.append(f"alpha {alpha:g}: {name} {a['mean']:.3f} at beta {lo['beta']:g} vs {b['mean']:.3f} at beta "
                         f"{hi['beta']:g} ({verdict})")
    return lines


def _draw_series(ax, cells: List[dict], alpha: float, label: str) -> List[float]:
    """Mean over seeds with its 95% CI (bars may run off the axes) and each seed as a dot; returns the dots."""
    pts = [c for c in cells if c["cell"]["mean"] is not None]
    if not pts:
        return []
    x = np.array([c["beta"] for c in pts])
    m = np.array([c["cell"]["mean"] for c in pts])
    err = np.array([[c["cell"]["mean"] - c["cell"]["ci95"][0], c["cell"]["ci95"][1] - c["cell"]["mean"]]
                    for c in pts]).T
    line = ax.errorbar(x, m, yerr=err, marker="o", ms=4, capsize=3, label=label, ls="-" if alpha == 0 else "--")
    dots = [(c["beta"], v) for c in pts for v in c["cell"].get("values", [])]
    if dots:
        ax.scatter(*zip(*dots), s=9, alpha=0.5, color=line[0].get_color())
    return [v for _, v in dots] + list(m)


def summary_figure(rows: List[dict], base: dict, truth: Dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(k, k) for k in HEADLINE] + [("attribute_entropy_bits", "attribute entropy (bits)")]
    betas = [r["beta"] for r in rows] or [1.0]
    fig, axes = plt.subplots(2, 3, figsize=(14, 7.5))
    for ax, (key, title) in zip(axes.ravel(), panels):
        shown: List[float] = []
        for alpha in sorted({r["alpha"] for r in rows}):
            cells = [r for r in rows if r["alpha"] == alpha]
            if key != "attribute_entropy_bits":
                shown += _draw_series(ax, [{"beta": r["beta"], "cell": r[key]} for r in cells], alpha,
                                      f"alpha {alpha:g}")
                continue
            for attr in ATTRIBUTES:
                shown += _draw_series(ax, [{"beta": r["beta"], "cell": r[key][attr]} for r in cells], alpha,
                                      f"{attr} (alpha {alpha:g})")
        if key in base and base[key].get("mean") is not None:
            ax.axhline(base[key]["mean"], color="grey", ls=":", label="base model")
            shown.append(base[key]["mean"])
        if key == "attribute_entropy_bits":
            for h in truth.values():
                ax.axhline(h, color="black", lw=0.5, ls=":")  # the ground truth's entropy of each attribute
            shown += list(truth.values())
        if shown:
            lo, hi = min(shown), max(shown)
            pad = 0.1 * (hi - lo) or 0.1 * (abs(hi) or 1.0)
            ax.set_ylim(lo - pad, hi + pad)
        ax.set_xscale("symlog", linthresh=0.005)
        ax.set_xlim(-0.001, max(betas) * 2)
        ax.set_xlabel("beta (KL coefficient)")
        ax.set_title(title)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
    fig.suptitle("LoRA PPO on the tiny world: metric vs KL coefficient beta (mean, 95% t-CI over seeds, dots = seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _fmt(cell: dict) -> str:
    if cell["mean"] is None:
        return "-"
    return f"{cell['mean']:.3f} [{cell['ci95'][0]:.3f}, {cell['ci95'][1]:.3f}]"


def summary_table(rows: List[dict]) -> str:
    """A markdown table: one row per (alpha, beta), mean [95% CI] over seeds."""
    cols = list(HEADLINE) + [f"H({a})" for a in ATTRIBUTES]
    lines = ["| alpha | beta | seeds | " + " | ".join(cols) + " |", "|" + "---|" * (3 + len(cols))]
    for r in rows:
        cells = [_fmt(r[k]) for k in HEADLINE] + [_fmt(r["attribute_entropy_bits"][a]) for a in ATTRIBUTES]
        lines.append(f"| {r['alpha']:g} | {r['beta']:g} | {r['n_seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summarize_runs(runs: List[dict], min_seeds: int = 2) -> dict:
    rows = by_beta(runs)
    base = pool_block([r["baseline"] for r in runs if r.get("baseline")])
    truth = {}
    for r in runs:
        truth = {a: r["final"][f"truth_entropy_bits/{a}"] for a in ATTRIBUTES
                 if f"truth_entropy_bits/{a}" in r["final"]}
        if truth:
            break
    few = [f"alpha {r['alpha']:g} beta {r['beta']:g}" for r in rows if r["n_seeds"] < min_seeds]
    return {"by_beta": rows, "base": base, "truth": {"attribute_entropy_bits": truth}, "findings": findings(rows),
            "cells_with_too_few_seeds": few, "n_runs": len(runs)}


def run_stage(cfg, out: Optional[Path] = None) -> dict:
    from measure.results import run_dir, write_results
    from measure.tracking import wandb_run

    out = Path(out) if out is not None else run_dir()
    source = Path(cfg.summary.runs) if cfg.summary.runs else latest_sweep()
    if source is None or not source.exists():
        log.error("summary.runs: %r has no PPO sweep; run `python -m rlhf stage=ppo sweep=beta -m` first or set "
                  "summary.runs=<dir>", str(source) if source else "multirun/rlhf/ppo/<latest>")
        raise SystemExit(2)
    runs = find_runs(source)
    if not runs:
        log.error("summary.runs: no PPO results.json under %s", source)
        raise SystemExit(2)
    results = {"stage": "summary", "source": str(source),
               **summarize_runs(runs, cfg.summary.min_seeds), "ci95_method": "student_t_over_seeds"}
    summary_figure(results["by_beta"], results["base"], results["truth"]["attribute_entropy_bits"],
                   out / "summary_beta.png")
    (out / "summary_table.md").write_text(summary_table(results["by_beta"]))
    with wandb_run(cfg.wandb, str(out), name="ppo-summary", job_type="rlhf/summary",
                   group=cfg.wandb.group or f"ppo-sweep-{source.name}") as wb:
        import wandb

        wb.log({"summary/figure": wandb.Image(str(out / "summary_beta.png"))})
        wb.summary.update({"summary/n_runs": len(runs)})
    write_results(out, results)
    for line in results["findings"]:
        log.info("%s", line)
    log.info("summary of %d runs -> %s", len(runs), out)
    return results
