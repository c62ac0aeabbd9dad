"""PNG figures of the toy bandit: Table 1, pi(best) over time, entropy against beta, the exploration trap.

Each function takes plain summaries (lists and dicts from ``table1`` and ``simulate``), writes one PNG
and returns its path.
"""
from __future__ import annotations

import os
from typing import List

import matplotlib

matplotlib.use("Agg")  # files only; no display on the machines this runs on
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from toy_bandit.rules import entropy_bits, kl_optimum  # noqa: E402

RULE_LABELS = {
    "advantage": "paper's advantage rule (Table 1)",
    "actde": "ACTDE",
    "reinforce": "REINFORCE + learned baseline",
    "ppo_kl": "PPO clip + KL penalty",
}
RULE_COLORS = {"advantage": "tab:red", "actde": "tab:green", "reinforce": "tab:blue", "ppo_kl": "tab:purple"}
SYMLOG_LINTHRESH = 0.01  # below this the beta axis is linear, so beta = 0 has a place on it


def _save(fig, path: str) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_table1(rows: List[dict], out_dir: str) -> str:
    """pi_t(Jeepiti) under the stated rule against the paper's printed values; flagged rows circled."""
    t = [r["t"] for r in rows]
    fig, ax = plt.subplots(figsize=(5.5, 3.9))
    ax.plot(t, [r["p_jeepiti"] for r in rows], "o-", label="recomputed under the stated rule")
    ax.plot(t, [r["paper_p_jeepiti"] for r in rows], "s--", label="printed in Table 1")
    for r in rows:
        if not r["matches_paper"]:
            ax.plot(r["t"], r["paper_p_jeepiti"], "o", ms=14, mfc="none", mec="tab:red")
    ax.set_xticks(t)
    ax.set_xticklabels([f"{r['t']}\n" + (r["action"] or "-").replace(" and ", " and\n") for r in rows], fontsize=7)
    ax.set_ylabel("pi_t(Jeepiti)")
    ax.set_title("Table 1 replay (red circles: rows flagged in any column)", fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, os.path.join(out_dir, "table1_pi_jeepiti.png"))


def plot_pi_best(curves: dict, rules_summary: dict, best_action: str, band: List[float], out_dir: str) -> str:
    """Mean pi(best) per rule over steps with a percentile band across seeds; dashed: known limit."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, c in curves.items():
        mean = np.asarray(c["pi_best_mean"])
        lo_hi = np.asarray(c["pi_best_band"])
        steps = np.arange(len(mean))
        color = RULE_COLORS.get(name)
        ax.plot(steps, mean, color=color, label=RULE_LABELS.get(name, name))
        ax.fill_between(steps, lo_hi[:, 0], lo_hi[:, 1], color=color, alpha=0.2)
        ref = rules_summary[name].get("reference_pi_best")
        if ref is not None:
            ax.axhline(ref, color=color, ls="--", lw=0.8)
    ax.set_xlabel("update step")
    ax.set_ylabel(f"pi({best_action})")
    ax.set_ylim(0.4, 1.01)
    ax.set_title(f"pi(best) over time: mean and {band[0]:g}-{band[1]:g}th percentile band across seeds; "
                 "dashed: limit in closed form", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, os.path.join(out_dir, "pi_best_over_time.png"))


def plot_entropy_vs_beta(sweep: List[dict], init_logits: np.ndarray, rewards: np.ndarray, max_bits: float,
                         out_dir: str) -> str:
    """Final entropy of the KL-penalised rule against beta (symlog axis, linear below 0.01 so beta = 0
    sits at the origin, drawn as its own marker) beside the closed-form optimum's entropy."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    betas = np.asarray([s["beta"] for s in sweep])
    hi = max(10.0, float(betas.max()))
    dense = np.concatenate([[0.0], np.geomspace(1e-3, hi, 200)])
    ax.plot(dense, [entropy_bits(kl_optimum(init_logits, rewards, b)) for b in dense], "k-", lw=1,
            label="optimum pi0 exp(R/beta)/Z")
    mean = np.asarray([s["final_mean_entropy_bits"] for s in sweep])
    band = np.asarray([s["final_entropy_bits_band"] for s in sweep])
    err = np.vstack([mean - band[:, 0], band[:, 1] - mean]).clip(min=0)
    pos = betas > 0
    ax.errorbar(betas[pos], mean[pos], yerr=err[:, pos], fmt="o", color="tab:purple", capsize=3,
                label="PPO clip + KL penalty, final (mean, band)")
    if (~pos).any():
        ax.errorbar(betas[~pos], mean[~pos], yerr=err[:, ~pos], fmt="D", ms=8, color="tab:orange", capsize=3,
                    label="beta = 0 (no KL penalty)")
    ax.axhline(max_bits, color="grey", ls=":", lw=0.8, label=f"pi0 entropy ({max_bits:.2f} bits)")
    ax.set_xscale("symlog", linthresh=SYMLOG_LINTHRESH)
    ax.set_xlim(-0.002, hi * 1.3)
    ax.set_xlabel(f"beta (symlog: linear below {SYMLOG_LINTHRESH:g}, log above)")
    ax.set_ylabel("final policy entropy (bits)")
    ax.set_title("Mode collapse against the KL penalty (Eq. 5.2)", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, os.path.join(out_dir, "entropy_vs_beta.png"))


def plot_trap(traps: dict, trap_action: str, trap_init_prob: float, threshold: float, out_dir: str) -> str:
    """Left: share of seeds whose pi(trap response) has exceeded ``threshold`` by each step, per rule.
    Right: that share at the end, beside the share of seeds that ever produced the trap response."""
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [3, 2]})
    for name, c in traps.items():
        share = np.asarray(c["escape_share_by_step"])
        ax.plot(np.arange(len(share)), share, color=RULE_COLORS.get(name), label=RULE_LABELS.get(name, name))
    ax.set_xlabel("update step")
    ax.set_ylabel(f"share of seeds escaped (pi > {threshold:g})")
    ax.set_title(f"{trap_action}: highest reward, initial probability {trap_init_prob:g}", fontsize=9)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="upper left")
    names = list(traps)
    x = np.arange(len(names))
    escaped = [traps[n]["escape_share"] for n in names]
    sampled = [traps[n]["ever_sampled_share"] or 0.0 for n in names]
    bx.bar(x - 0.2, sampled, 0.4, color="lightgrey", label=f"ever produced {trap_action}")
    bx.bar(x + 0.2, escaped, 0.4, color=[RULE_COLORS.get(n) for n in names], label="escaped the trap")
    for i, (s_, e_) in enumerate(zip(sampled, escaped)):
        bx.text(i - 0.2, s_, f"{s_:.0%}", ha="center", va="bottom", fontsize=7)
        bx.text(i + 0.2, e_, f"{e_:.1%}", ha="center", va="bottom", fontsize=7)
    bx.set_xticks(x)
    bx.set_xticklabels(names, fontsize=8)
    bx.set_ylim(0, 1.0)
    bx.set_ylabel("share of seeds")
    bx.set_title("exploration vs escape, end of run", fontsize=9)
    bx.legend(fontsize=7, loc="upper right")
    return _save(fig, os.path.join(out_dir, "exploration_trap.png"))
