"""Sampled-action simulation of the update rules over many seeds at once.

Each seed is one independent policy; all seeds advance together as rows of one (n, k) logits array,
so a step of 2000 seeds costs about as much as a step of one. Actions are drawn by inverse CDF from one
uniform number per seed and step (``rng.random(n)`` each step), so the same seed gives the same
trajectories, and every rule sees the same uniforms (common random numbers for a fair comparison).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple, Union

import numpy as np
from tqdm.auto import tqdm

from toy_bandit import rules as R
from toy_bandit.config import BanditConfig, RulesConfig, SimulateConfig


@dataclass(frozen=True)
class Bandit:
    """A one-state bandit: response names, deterministic rewards and the initial policy's logits."""
    actions: Tuple[str, ...]
    rewards: np.ndarray  # (k,)
    init_logits: np.ndarray  # (k,) log pi0

    @property
    def best(self) -> int:
        return int(np.argmax(self.rewards))


def chatbot_bandit(cfg: BanditConfig) -> Bandit:
    """The paper's two-response bandit ("Jeepiti" 1.0, "Chats and Giggles" 0.4, equal start)."""
    return Bandit(tuple(cfg.actions), np.asarray(cfg.rewards, float), np.log(np.asarray(cfg.init_probs, float)))


def trap_bandit(cfg: BanditConfig, sim: SimulateConfig) -> Bandit:
    """The exploration trap: add the better response (``trap_action``, reward ``trap_reward``) with a
    small initial probability; the other responses share the rest in their original proportions."""
    probs = np.append((1.0 - sim.trap_init_prob) * np.asarray(cfg.init_probs, float), sim.trap_init_prob)
    return Bandit(tuple(cfg.actions) + (sim.trap_action,), np.append(np.asarray(cfg.rewards, float), sim.trap_reward),
                  np.log(probs))


# A rule as the simulator sees it: init(n, k) -> aux state, step(logits, aux, action, reward, logits0).
Beta = Union[float, np.ndarray]
RuleStep = Tuple[Callable[[int, int], np.ndarray], Callable[..., Tuple[np.ndarray, np.ndarray]]]


def make_rule(name: str, cfg: RulesConfig, beta: Optional[Beta] = None) -> RuleStep:
    """Bind a rule's hyper-parameters from config. ``beta`` (float or one per row) overrides
    ``rules.ppo_kl.beta``; the other rules ignore it."""
    if name == "advantage":
        c = cfg.advantage
        return (lambda n, k: np.zeros(n),
                lambda lg, aux, a, r, lg0: R.advantage_update(lg, aux, a, r, c.lr, c.value_lr)[:2])
    if name == "actde":
        c = cfg.actde
        return (lambda n, k: np.zeros((n, k)),
                lambda lg, aux, a, r, lg0: R.actde_update(lg, aux, a, r, c.lr, c.q_lr)[:2])
    if name == "reinforce":
        c = cfg.reinforce
        return (lambda n, k: np.zeros(n),
                lambda lg, aux, a, r, lg0: R.reinforce_update(lg, aux, a, r, c.lr, c.baseline_lr)[:2])
    if name == "ppo_kl":
        c = cfg.ppo_kl
        b = c.beta if beta is None else beta
        return (lambda n, k: np.zeros(n),
                lambda lg, aux, a, r, lg0: R.ppo_kl_update(lg, lg0, aux, a, r, b, c.lr, c.value_lr,
                                                           c.clip_eps, c.epochs, c.scale_lr_with_beta)[:2])
    raise ValueError(f"rule: {name!r} is out of range; accepted advantage | actde | reinforce | ppo_kl")


def sample_actions(probs: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF sampling: the first action whose cumulative probability exceeds u (one u per row)."""
    cdf = np.cumsum(probs, axis=-1)
    return (u[:, None] >= cdf[:, :-1]).sum(axis=-1)


@dataclass
class BanditRun:
    """What a simulation keeps: the policy at every step (or only the last) and each action's peak."""
    probs: np.ndarray  # (n_steps + 1, n, k) float32 with history, else (1, n, k): the final policy
    actions: Optional[np.ndarray]  # (n_steps, n) with history, else None
    peak_probs: np.ndarray  # (n, k) highest probability each action reached over the run

    @property
    def final(self) -> np.ndarray:
        return self.probs[-1]


def run_bandit(rule: RuleStep, bandit: Bandit, n_seeds: int, n_steps: int, seed: int,
               keep_history: bool = True, progress: bool = False, desc: str = "") -> BanditRun:
    """Simulate ``n_seeds`` independent policies for ``n_steps`` sampled actions under one rule."""
    init, step = rule
    k = len(bandit.actions)
    rng = np.random.default_rng(seed)
    logits0 = np.tile(bandit.init_logits, (n_seeds, 1))
    logits = logits0.copy()
    aux = init(n_seeds, k)
    probs = R.softmax(logits)
    peak = probs.copy()
    history = [probs.astype(np.float32)] if keep_history else None
    actions = np.empty((n_steps, n_seeds), dtype=np.int64) if keep_history else None
    for t in tqdm(range(n_steps), desc=desc or "simulate", disable=not progress, leave=False):
        a = sample_actions(probs, rng.random(n_seeds))
        logits, aux = step(logits, aux, a, bandit.rewards[a], logits0)
        probs = R.softmax(logits)
        np.maximum(peak, probs, out=peak)
        if keep_history:
            history.append(probs.astype(np.float32))
            actions[t] = a
    stacked = np.stack(history) if keep_history else probs[None].astype(np.float32)
    return BanditRun(stacked, actions, peak)


def _pct(x: np.ndarray, q: Sequence[float]) -> list:
    return [float(v) for v in np.percentile(x, q)]


def reference_pi(name: str, bandit: Bandit, cfg: RulesConfig) -> Optional[np.ndarray]:
    """Where a rule's limit is known in closed form: advantage and REINFORCE put all mass on the best
    response; ACTDE settles at softmax(logits0 + (lr / q_lr) R) once every response has been tried;
    PPO with the KL penalty targets pi0 exp(R / beta) / Z."""
    if name in ("advantage", "reinforce"):
        return R.kl_optimum(bandit.init_logits, bandit.rewards, 0.0)
    if name == "actde":
        return R.softmax(bandit.init_logits + cfg.actde.lr / cfg.actde.q_lr * bandit.rewards)
    if name == "ppo_kl":
        return R.kl_optimum(bandit.init_logits, bandit.rewards, cfg.ppo_kl.beta)
    return None


def summarise_curves(run: BanditRun, bandit: Bandit, band: Sequence[float]) -> dict:
    """pi(best) over time (mean and band across seeds) and final statistics of one rule."""
    p_best = run.probs[:, :, bandit.best].astype(float)  # (T + 1, n)
    final = run.final.astype(float)
    return {
        "pi_best_mean": p_best.mean(axis=1).tolist(),
        "pi_best_band": np.percentile(p_best, band, axis=1).T.tolist(),  # (T + 1, 2)
        "entropy_bits_mean": R.entropy_bits(run.probs.astype(float)).mean(axis=1).tolist(),
        "final_mean_pi_best": float(final[:, bandit.best].mean()),
        "final_pi_best_band": _pct(final[:, bandit.best], band),
        "final_mean_entropy_bits": float(R.entropy_bits(final).mean()),
    }


def summarise_trap(run: BanditRun, bandit: Bandit, threshold: float, band: Sequence[float]) -> dict:
    """Share of seeds whose policy ever put more than ``threshold`` of its mass on the trap response."""
    trap = len(bandit.actions) - 1
    p_trap = run.probs[:, :, trap].astype(float)
    escaped_by_step = (np.maximum.accumulate(p_trap, axis=0) > threshold).mean(axis=1)
    return {
        "escape_share": float((run.peak_probs[:, trap] > threshold).mean()),
        "escape_share_by_step": escaped_by_step.tolist(),
        # Seeds that produced the trap response at least once: exploration found it at all.
        "ever_sampled_share": None if run.actions is None else float((run.actions == trap).any(axis=0).mean()),
        "pi_trap_mean": p_trap.mean(axis=1).tolist(),
        "pi_trap_band": np.percentile(p_trap, band, axis=1).T.tolist(),
        "final_mean_pi_trap": float(p_trap[-1].mean()),
    }


def beta_sweep(cfg: RulesConfig, bandit: Bandit, sim: SimulateConfig, progress: bool = False) -> list:
    """Final policy entropy of the KL-penalised PPO rule for every beta, all betas in one batch,
    beside the closed-form optimum's entropy."""
    betas = np.repeat(np.asarray(sim.betas, float), sim.n_seeds)
    run = run_bandit(make_rule("ppo_kl", cfg, beta=betas), bandit, len(betas), sim.n_steps, sim.seed,
                     keep_history=False, progress=progress, desc="beta sweep")
    final = run.final.astype(float).reshape(len(sim.betas), sim.n_seeds, -1)
    out = []
    for i, beta in enumerate(sim.betas):
        optimum = R.kl_optimum(bandit.init_logits, bandit.rewards, beta)
        ent = R.entropy_bits(final[i])
        out.append({
            "beta": float(beta),
            "final_mean_entropy_bits": float(ent.mean()),
            "final_entropy_bits_band": _pct(ent, sim.band_percentiles),
            "final_mean_pi_best": float(final[i, :, bandit.best].mean()),
            "optimum_entropy_bits": float(R.entropy_bits(optimum)),
            "optimum_pi_best": float(optimum[bandit.best]),
        })
    return out


def simulate_all(bandit_cfg: BanditConfig, rules_cfg: RulesConfig, sim: SimulateConfig,
                 progress: bool = False) -> dict:
    """The whole simulate experiment: curves per rule, the trap per rule and the beta sweep."""
    chat = chatbot_bandit(bandit_cfg)
    trap = trap_bandit(bandit_cfg, sim)
    per_rule, curves, traps = {}, {}, {}
    for name in tqdm(sim.rules, desc="rules", disable=not progress):
        run = run_bandit(make_rule(name, rules_cfg), chat, sim.n_seeds, sim.n_steps, sim.seed, desc=name)
        curves[name] = summarise_curves(run, chat, sim.band_percentiles)
        trap_run = run_bandit(make_rule(name, rules_cfg), trap, sim.n_seeds, sim.n_steps, sim.seed,
                              desc=f"{name} (trap)")
        traps[name] = summarise_trap(trap_run, trap, sim.escape_threshold, sim.band_percentiles)
        ref = reference_pi(name, chat, rules_cfg)
        trap_ref = reference_pi(name, trap, rules_cfg)
        per_rule[name] = {
            "final_mean_pi_best": curves[name]["final_mean_pi_best"],
            "final_pi_best_band": curves[name]["final_pi_best_band"],
            "final_mean_entropy_bits": curves[name]["final_mean_entropy_bits"],
            "trap_escape_share": traps[name]["escape_share"],
            "trap_ever_sampled_share": traps[name]["ever_sampled_share"],
            "trap_final_mean_pi_trap": traps[name]["final_mean_pi_trap"],
            "trap_reference_pi_trap": None if trap_ref is None else float(trap_ref[-1]),
            "reference_pi_best": None if ref is None else float(ref[chat.best]),
            "reference_entropy_bits": None if ref is None else float(R.entropy_bits(ref)),
        }
    sweep = beta_sweep(rules_cfg, chat, sim, progress=progress)
    return {
        "best_action": chat.actions[chat.best],
        "trap_action": trap.actions[-1],
        "trap_init_prob": sim.trap_init_prob,
        "n_seeds": sim.n_seeds,
        "n_steps": sim.n_steps,
        "max_entropy_bits": math.log2(len(chat.actions)),
        "rules": per_rule,
        "beta_sweep": sweep,
        "curves": curves,
        "trap": traps,
    }
