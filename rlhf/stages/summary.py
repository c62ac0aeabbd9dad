"""`python -m rlhf stage=summary`: gather a sweep's PPO runs into one figure and one table across beta.

Reads every ``results.json`` with ``"stage": "ppo"`` under ``summary.runs`` (default: the latest
``multirun/rlhf/ppo/<time>`` directory), groups them by (alpha, beta) and pools each final metric over
seeds as ``{mean, ci95}`` (Student-t interval over seeds, see ``seed_interval``). Metric names come from
``measure.metrics.registry`` (the top-k key from the runs' ``top_k``). ``results.json`` holds ``by_beta`` (one
entry per (alpha, beta), with ``base``: the base policy measured in those runs' final measurement, on as many
samples as the cell, so each cell has a base line at its own n), ``base`` (all runs' base measurements pooled;
runs written before the final measurement measured the base fall back to their step-0 callback measurement, and
``base_source`` says so), ``truth`` (the ground truth's attribute entropies) and ``findings``: for each alpha and
metric, how the smallest beta compares with the largest, and whether their intervals overlap.

Attribute entropies counted over parsed cards depend on n: ``attribute_entropy_bits`` is each run's value with
policy and base at the smaller number of parsed values (``persona/equal_n/...``; ``n_matched``), and the cell's
``base.attribute_entropy_bits`` is the base at that same n; ``attribute_entropy_bits_unmatched`` keeps the raw
plug-in value. The exact, teacher-forced entropies (``marginal_entropy_bits``, ``conditional_kl_nats``, ...) do not
depend on how many cards parse.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from measure.metrics.registry import key as metric_key, topk_key
from measure.persona_parse import ATTRIBUTES, FIELDS

log = logging.getLogger(__name__)
DEFAULT_TOP_K = 5  # runs that did not record top_k sampled with the engine's default
# by_beta names that are not registry keys -> key in a PPO run's results["final"]
ALIASES = {"reward": "reward_model_score", "kl": "sequence_kl_nats", "rlhf_reward": "objective/rlhf_reward",
           "trl_kl": "objective/kl"}
# registry keys pooled under their own name ({k} = the runs' top_k)
POOLED = ("top{k}_entropy_bits", "full_entropy_bits", "sbert_cosine", "tfidf_cosine", "distinct_2", "annotator_quality")
EXACT = ("marginal_entropy_bits", "conditional_entropy_bits", "covered_mass", "conditional_kl_nats")
KL_FIELDS = ("preamble",) + FIELDS + ("end_of_text",)
# by_beta name -> (source patterns in results["final"], first found wins; the keys it is broken down by)
NESTED = {
    "attribute_entropy_bits": (("persona/equal_n/attribute_entropy_bits/{}", "persona/attribute_entropy_bits/{}"),
                               ATTRIBUTES),
    "attribute_entropy_chao_shen_bits": (("persona/equal_n/attribute_entropy_chao_shen_bits/{}",
                                          "persona/attribute_entropy_chao_shen_bits/{}"), ATTRIBUTES),
    "attribute_entropy_bits_unmatched": (("persona/attribute_entropy_bits/{}",), ATTRIBUTES),
    "n_matched": (("persona/n_matched/{}",), ATTRIBUTES),
    "tv_distance": (("tv_distance/{}",), ATTRIBUTES),
    "missing_share": (("persona/missing_share/{}",), ATTRIBUTES + ("review",)),
    **{m: ((f"persona/exact/{{}}/{metric_key(m)}",), ATTRIBUTES) for m in EXACT},
    "kl_by_field": (("kl_by_field/{}",), KL_FIELDS),
}


def headline(k: int = DEFAULT_TOP_K) -> tuple:
    """The summary's headline metrics (figure panels, table columns, findings)."""
    return ("reward", "kl", topk_key(k), "full_entropy_bits", "sbert_cosine")


def scalar_sources(k: int = DEFAULT_TOP_K) -> Dict[str, str]:
    """{by_beta key: key in a run's final block} for the metrics that are one number per run."""
    return {**ALIASES, **{metric_key(m, k=k): metric_key(m, k=k) for m in POOLED}}


def runs_top_k(runs: List[dict]) -> int:
    """The k of the runs' top-k entropy (``top_k`` in their results; one k per summary)."""
    ks = sorted({int(r.get("top_k", DEFAULT_TOP_K)) for r in runs}) or [DEFAULT_TOP_K]
    if len(ks) > 1:
        log.warning("runs sampled with several top_k %s; the summary uses top_k = %d", ks, ks[0])
    return ks[0]


def latest_sweep(root: Path = Path("multirun/rlhf/ppo")) -> Optional[Path]:
    dirs = sorted(p for p in root.glob("*") if p.is_dir()) if root.exists() else []
    return dirs[-1] if dirs else None


def find_runs(directory: Path, only: Optional[List[str]] = None) -> List[dict]:
    """Every PPO and align results.json under ``directory`` (or only in its folders ``only``); a run resumed or rerun
    in several dirs counts once (latest)."""
    runs: Dict[str, dict] = {}
    paths = [directory / d / "results.json" for d in only] if only else directory.rglob("results.json")
    for path in sorted((p for p in paths if p.exists()), key=lambda p: p.stat().st_mtime):
        try:
            res = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
        if res.get("stage") in ("ppo", "align") and "final" in res:
            runs[res["run"]] = res | {"_dir": str(path.parent)}
    return list(runs.values())


def is_control(run: dict) -> bool:
    return run.get("reward") == "control"


def seed_interval(values: List[float]) -> dict:
    """{mean, ci95, n, values} over seeds: the Student-t 95% interval of the mean; ``ci95`` is None for one seed
    (one value has no interval). Seeds are few (2-4); a percentile bootstrap over so few values collapses to their
    range and understates the uncertainty, so the t interval is used (``measure.stats.summarize`` pools completions)."""
    from rlhf.stages.verdict import interval

    return interval(values)


def _nested_value(block: dict, patterns: tuple, key: str):
    return next((block[p.format(key)] for p in patterns if p.format(key) in block), None)


def pool_block(blocks: List[dict], k: int = DEFAULT_TOP_K) -> dict:
    """{by_beta key: {mean, ci95, n}} over runs' final (or base) blocks."""
    entry = {name: seed_interval([b.get(src) for b in blocks]) for name, src in scalar_sources(k).items()}
    for name, (patterns, keys) in NESTED.items():
        entry[name] = {a: seed_interval([_nested_value(b, patterns, a) for b in blocks]) for a in keys}
    return entry


def run_base(run: dict) -> Optional[dict]:
    """The base measurement of a run at the run's own n (``final_base``), else None."""
    return run.get("final_base") or None


def by_beta(runs: List[dict], k: Optional[int] = None) -> List[dict]:
    k = runs_top_k(runs) if k is None else k
    cells: Dict[tuple, List[dict]] = {}
    for r in runs:
        cells.setdefault((float(r["alpha"]), float(r["beta"])), []).append(r)
    out = []
    for (alpha, beta), rs in sorted(cells.items()):
        entry = {"alpha": alpha, "beta": beta, "n_seeds": len(rs), "seeds": sorted(r["seed"] for r in rs), "top_k": k}
        entry.update(pool_block([r["final"] for r in rs], k))
        bases = [b for b in (run_base(r) for r in rs) if b]
        if bases:
            entry["base"] = pool_block(bases, k)  # the base at this cell's n (counted attributes: at n_matched)
        out.append(entry)
    return out


def _row_k(rows: List[dict]) -> int:
    return int(rows[0].get("top_k", DEFAULT_TOP_K)) if rows else DEFAULT_TOP_K


def findings(rows: List[dict]) -> List[str]:
    """Plain sentences: smallest vs largest beta for each alpha and headline metric (CI overlap stated), then the
    attribute entropies (counted at equal n, and exact)."""
    lines = []
    for alpha in sorted({r["alpha"] for r in rows}):
        cells = [r for r in rows if r["alpha"] == alpha]
        if len(cells) < 2:
            continue
        lo, hi = cells[0], cells[-1]
        metrics = [(k, lo[k], hi[k]) for k in headline(_row_k(rows))]
        for nested in ("attribute_entropy_bits", "marginal_entropy_bits"):
            metrics += [(f"{nested}.{a}", lo[nested][a], hi[nested][a]) for a in ATTRIBUTES
                        if nested in lo and nested in hi]
        for name, a, b in metrics:
            if a["mean"] is None or b["mean"] is None:
                continue
            if min(lo["n_seeds"], hi["n_seeds"]) < 2 or a["ci95"] is None or b["ci95"] is None:
                verdict = "one seed, so no CI"  # one value has no interval: say so, do not compare
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
                    if c["cell"]["ci95"] is not None else [0.0, 0.0] for c in pts]).T  # one seed: no bar
    line = ax.errorbar(x, m, yerr=err, marker="o", ms=4, capsize=3, label=label, ls="-" if alpha == 0 else "--")
    dots = [(c["beta"], v) for c in pts for v in c["cell"].get("values", [])]
    if dots:
        ax.scatter(*zip(*dots), s=9, alpha=0.5, color=line[0].get_color())
    return [v for _, v in dots] + list(m)


def _draw_base_points(ax, cells: List[dict], key: str, attr: str) -> List[float]:
    """Each cell's base measurement (at that cell's n) as a grey cross at the cell's beta."""
    pts = [(r["beta"], r["base"][key][attr]["mean"]) for r in cells
           if "base" in r and r["base"][key][attr]["mean"] is not None]
    if pts:
        ax.scatter(*zip(*pts), marker="x", s=14, color="grey", zorder=3)
    return [v for _, v in pts]


def summary_figure(rows: List[dict], base: dict, truth: Dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_attr = {"attribute_entropy_bits": "attribute entropy at equal n (bits; x = base at that n)",
                "marginal_entropy_bits": "exact marginal entropy (bits)",
                "conditional_kl_nats": "exact KL(policy || base) per attribute (nats)"}
    panels = [(k, k) for k in headline(_row_k(rows))] + list(per_attr.items())
    betas = [r["beta"] for r in rows] or [1.0]
    fig, axes = plt.subplots(2, 4, figsize=(18, 7.5))
    for ax, (key, title) in zip(axes.ravel(), panels):
        shown: List[float] = []
        for alpha in sorted({r["alpha"] for r in rows}):
            cells = [r for r in rows if r["alpha"] == alpha]
            if key not in per_attr:
                shown += _draw_series(ax, [{"beta": r["beta"], "cell": r[key]} for r in cells], alpha,
                                      f"alpha {alpha:g}")
                continue
            for attr in ATTRIBUTES:
                shown += _draw_series(ax, [{"beta": r["beta"], "cell": r[key][attr]} for r in cells if key in r],
                                      alpha, f"{attr} (alpha {alpha:g})")
                if key == "attribute_entropy_bits":
                    shown += _draw_base_points(ax, cells, key, attr)
        if key not in per_attr and key in base and base[key].get("mean") is not None:
            ax.axhline(base[key]["mean"], color="grey", ls=":", label="base model")
            shown.append(base[key]["mean"])
        if key == "marginal_entropy_bits":
            for attr in ATTRIBUTES:
                if base.get(key, {}).get(attr, {}).get("mean") is not None:
                    ax.axhline(base[key][attr]["mean"], color="grey", lw=0.5, ls=":")
                    shown.append(base[key][attr]["mean"])
        if key in ("attribute_entropy_bits", "marginal_entropy_bits"):
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
        ax.set_title(title, fontsize=9)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=5)
    fig.suptitle("LoRA PPO on the tiny world: metric vs KL coefficient beta (mean, 95% t-CI over seeds, dots = seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _fmt(cell: dict) -> str:
    if cell["mean"] is None:
        return "-"
    if cell["ci95"] is None:
        return f"{cell['mean']:.3f} (one seed)"
    return f"{cell['mean']:.3f} [{cell['ci95'][0]:.3f}, {cell['ci95'][1]:.3f}]"


def summary_table(rows: List[dict]) -> str:
    """A markdown table: one row per (alpha, beta), mean [95% CI] over seeds; attribute entropies at equal n."""
    heads = headline(_row_k(rows))
    cols = list(heads) + [f"H({a})" for a in ATTRIBUTES] + [f"exact H({a})" for a in ATTRIBUTES]
    lines = ["| alpha | beta | seeds | " + " | ".join(cols) + " |", "|" + "---|" * (3 + len(cols))]
    for r in rows:
        cells = [_fmt(r[k]) for k in heads] + [_fmt(r["attribute_entropy_bits"][a]) for a in ATTRIBUTES]
        cells += [_fmt(r["marginal_entropy_bits"][a]) for a in ATTRIBUTES]
        lines.append(f"| {r['alpha']:g} | {r['beta']:g} | {r['n_seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summarize_runs(runs: List[dict], min_seeds: int = 2) -> dict:
    k = runs_top_k(runs)
    rows = by_beta(runs, k)
    bases = [run_base(r) for r in runs]
    if all(bases):
        base, source = pool_block(bases, k), "final_base: the base policy in each run's final measurement (its n)"
    else:  # runs written before the final measurement measured the base
        base = pool_block([r["baseline"] for r in runs if r.get("baseline")], k)
        source = "baseline: the step-0 callback measurement (diversity.sampling.n_samples, not the cells' n)"
        log.warning("some runs have no final_base; the base line is their step-0 measurement, at another n")
    truth = {}
    for r in runs:
        truth = {a: r["final"][f"truth_entropy_bits/{a}"] for a in ATTRIBUTES
                 if f"truth_entropy_bits/{a}" in r["final"]}
        if truth:
            break
    few = [f"alpha {r['alpha']:g} beta {r['beta']:g}" for r in rows if r["n_seeds"] < min_seeds]
    return {"by_beta": rows, "base": base, "base_source": source, "top_k": k,
            "truth": {"attribute_entropy_bits": truth}, "findings": findings(rows),
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
    found = find_runs(source, cfg.summary.run_dirs)
    runs, controls = [r for r in found if not is_control(r)], [r for r in found if is_control(r)]
    methods = runs  # every method's runs (the align stage's too): the cells and the method comparison
    runs = [r for r in runs if r.get("stage") == "ppo"]  # the by-beta blocks and figures are PPO's
    if not methods:
        log.error("summary.runs: no PPO or align results.json under %s", source)
        raise SystemExit(2)
    results = {"stage": "summary", "source": str(source), "ci95_method": "student_t_over_seeds"}
    if runs:
        results.update(summarize_runs(runs, cfg.summary.min_seeds))
    from rlhf.stages.verdict import (frontier_figure, methods_figure, overoptimisation_figure, read_predict,
                                     study_blocks)

    predict = read_predict(cfg.summary.predict)
    results.update(study_blocks(methods, controls, predict))
    frontier_figure(results, predict, out / "frontier.png")
    if any(c["method"] != "ppo" for c in results["cells"]):
        methods_figure(results, predict, out / "methods.png")
    overoptimisation_figure(methods + controls, out / "overoptimisation.png")
    if runs:
        summary_figure(results["by_beta"], results["base"], results["truth"]["attribute_entropy_bits"],
                       out / "summary_beta.png")
        (out / "summary_table.md").write_text(summary_table(results["by_beta"]))
    with wandb_run(cfg.wandb, str(out), name="ppo-summary", job_type="rlhf/summary",
                   group=cfg.wandb.group or f"ppo-sweep-{source.name}") as wb:
        import wandb

        if runs:
            wb.log({"summary/figure": wandb.Image(str(out / "summary_beta.png"))})
        wb.summary.update({"summary/n_runs": len(runs)})
    write_results(out, results)
    for line in results.get("findings", []):
        log.info("%s", line)
    log.info("summary of %d runs -> %s", len(runs), out)
    return results
