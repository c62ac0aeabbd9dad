"""Replay the paper's Table 1 under its stated rule and compare every printed value.

The stated rule (Section 5.2): both responses start at probability 0.5 (logits 0) and v(s) = 0; after
each response the advantage A = (R + 0) - v(s) is added to that response's logit and v(s) becomes the
last reward. Rewards: "Jeepiti" 1.0, "Chats and Giggles" 0.4. The paper's printed table is kept below
verbatim, including the reward that appears inside each advantage expression, so the reward column can
be checked against the advantage column as well as against the recomputation.

What the replay finds: rows 0 and 1 agree in full. Rows 2 and 3 print reward 0.8 for "Chats and
Giggles" while their own advantage expressions (and the text) use 0.4; every other value in those rows
follows from 0.4. Row 4 prints pi(Jeepiti) = 0.93, but the rule gives a logit gap of 1.6 + 0.6 = 2.2,
i.e. 0.90; 0.93 needs a gap of about 2.6 (what adding the reward 1.0 instead of the advantage 0.6 would
give; the paper does not say how it got there).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from toy_bandit.rules import advantage_update, softmax

JEEPITI, CHATS = "Jeepiti", "Chats and Giggles"


@dataclass(frozen=True)
class PaperRow:
    """One row of Table 1 exactly as printed (None where the paper prints a dash)."""
    t: int
    action: Optional[str]
    reward: Optional[float]  # the "Reward R(a|s)" column
    advantage_reward: Optional[float]  # the R inside the printed expression "(R + 0) - v"
    advantage_baseline: Optional[float]  # the v inside the printed expression
    advantage: Optional[float]  # the printed result of that expression
    value: float  # v_t(s)
    p_jeepiti: float
    p_chats: float


PAPER_TABLE1 = (
    PaperRow(0, None, None, None, None, None, 0.0, 0.5, 0.5),
    PaperRow(1, JEEPITI, 1.0, 1.0, 0.0, 1.0, 1.0, 0.73, 0.27),
    PaperRow(2, CHATS, 0.8, 0.4, 1.0, -0.6, 0.4, 0.83, 0.17),
    PaperRow(3, CHATS, 0.8, 0.4, 0.4, 0.0, 0.4, 0.83, 0.17),
    PaperRow(4, JEEPITI, 1.0, 1.0, 0.4, 0.6, 1.0, 0.93, 0.07),
)


def _agrees(recomputed: float, printed: float, decimals: int) -> bool:
    """True when ``recomputed`` rounds to ``printed`` at the paper's precision."""
    return abs(recomputed - printed) <= 0.5 * 10.0 ** -decimals + 1e-9


def replay_table1(actions: List[str], rewards: List[float], lr: float = 1.0, value_lr: float = 1.0,
                  decimals: int = 2) -> List[dict]:
    """Replay Table 1's fixed action sequence with ``advantage_update`` and compare with the paper.

    ``actions``/``rewards`` are the bandit's responses and rewards (they must include both Table 1
    responses). Returns one dict per row (t = 0..4) with the recomputed values, the printed ones
    (``paper_*``), ``mismatches`` (one short line per disagreeing value) and ``matches_paper``.
    """
    missing = [a for a in (JEEPITI, CHATS) if a not in actions]
    if missing:
        raise ValueError(f"bandit.actions: {actions!r} is out of range; accepted a list containing {JEEPITI!r} "
                         f"and {CHATS!r}")
    idx = {JEEPITI: actions.index(JEEPITI), CHATS: actions.index(CHATS)}
    reward_of = {a: float(rewards[i]) for a, i in idx.items()}
    # Only the two Table 1 responses take part; equal logits give the paper's 0.5 / 0.5 start.
    logits = np.zeros((1, 2))
    value = np.zeros(1)
    rows = []
    for paper in PAPER_TABLE1:
        reward = advantage = None
        if paper.action is not None:
            a = 0 if paper.action == JEEPITI else 1
            reward = reward_of[paper.action]
            logits, value, adv = advantage_update(logits, value, np.array([a]), np.array([reward]), lr, value_lr)
            advantage = float(adv[0])
        probs = softmax(logits)[0]
        rows.append(_compare_row(paper, reward, advantage, float(value[0]), probs, logits[0], decimals))
    return rows


def _compare_row(paper: PaperRow, reward, advantage, value, probs, logits, decimals: int) -> dict:
    p_j, p_c = float(probs[0]), float(probs[1])
    mismatches = []

    def check(name: str, ours, printed):
        if ours is not None and printed is not None and not _agrees(ours, printed, decimals):
            mismatches.append(f"{name}: printed {printed:g}, rule gives {ours:.4f}")

    check("reward", reward, paper.reward)
    check("advantage", advantage, paper.advantage)
    check("v_t", value, paper.value)
    check("pi_t(Jeepiti)", p_j, paper.p_jeepiti)
    check("pi_t(Chats and Giggles)", p_c, paper.p_chats)
    # The printed table against itself: its reward column vs the reward its advantage column uses.
    if paper.reward is not None and paper.reward != paper.advantage_reward:
        mismatches.append(f"reward vs advantage column: reward column prints {paper.reward:g} but the "
                          f"advantage column computes with {paper.advantage_reward:g}")
    if paper.advantage is not None and not math.isclose(paper.advantage,
                                                         paper.advantage_reward - paper.advantage_baseline,
                                                         abs_tol=1e-9):
        mismatches.append("advantage column: printed result differs from its own expression")
    return {
        "t": paper.t,
        "action": paper.action,
        "reward": reward,
        "advantage": advantage,
        "value": value,
        "p_jeepiti": p_j,
        "p_chats": p_c,
        "logit_gap": float(logits[0] - logits[1]),  # logit(Jeepiti) - logit(Chats and Giggles)
        "paper_reward": paper.reward,
        "paper_advantage_reward": paper.advantage_reward,
        "paper_advantage": paper.advantage,
        "paper_value": paper.value,
        "paper_p_jeepiti": paper.p_jeepiti,
        "paper_p_chats": paper.p_chats,
        # The gap the printed probabilities imply: ln(p_J / p_C) (subject to the 2-decimal rounding).
        "paper_logit_gap": math.log(paper.p_jeepiti / paper.p_chats),
        "mismatches": mismatches,
        "matches_paper": not mismatches,
    }


def _cell(ours, printed, decimals: int) -> str:
    if ours is None and printed is None:
        return "—"
    fmt = f"{{:.{decimals}f}}"
    ours_s = "—" if ours is None else fmt.format(ours)
    printed_s = "—" if printed is None else fmt.format(printed)
    mark = "" if (ours is None or printed is None or _agrees(ours, printed, decimals)) else " *"
    return f"{ours_s} [{printed_s}]{mark}"


def format_table1(rows: List[dict], decimals: int = 2) -> str:
    """The table in the paper's columns: each cell is `recomputed [paper]`, `*` marks a disagreement."""
    header = ["t", "response", "reward", "advantage", "v_t", "pi_t(Jeepiti)", "pi_t(Chats and Giggles)", "row"]
    body = []
    for r in rows:
        body.append([
            str(r["t"]), r["action"] or "—",
            _cell(r["reward"], r["paper_reward"], decimals),
            _cell(r["advantage"], r["paper_advantage"], decimals),
            _cell(r["value"], r["paper_value"], decimals),
            _cell(r["p_jeepiti"], r["paper_p_jeepiti"], decimals),
            _cell(r["p_chats"], r["paper_p_chats"], decimals),
            "matches" if r["matches_paper"] else "FLAGGED",
        ])
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in body]
    lines.append("cells: recomputed [paper]; * = printed value does not follow from the stated rule")
    for r in rows:
        for m in r["mismatches"]:
            lines.append(f"t={r['t']}: {m}")
        if any(m.startswith("pi_t") for m in r["mismatches"]):
            lines.append(f"t={r['t']}: logit gap under the rule {r['logit_gap']:.2f}; the printed probabilities "
                         f"imply ln(p_J/p_C) = {r['paper_logit_gap']:.2f}")
    return "\n".join(lines)


def table1_summary(rows: List[dict]) -> dict:
    """The results.json block: rows plus which rows the paper gets right."""
    return {
        "rule": "A = (R + 0) - v(s) added to the taken response's logit; v(s) <- R",
        "rows": rows,
        "matching_rows": [r["t"] for r in rows if r["matches_paper"]],
        "flagged_rows": [r["t"] for r in rows if not r["matches_paper"]],
    }
