"""Typed configuration of the toy bandit app (Hydra structured configs).

``conf/toy_bandit.yaml`` extends ``ToyBanditConfig``, so a misspelt key or a wrong type fails while
Hydra composes the config; ranges are checked in ``__post_init__`` when the entry point turns the
DictConfig into these objects with ``OmegaConf.to_object``, with one line naming the field.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import List, Optional

from hydra.core.config_store import ConfigStore

WANDB_MODES = ("disabled", "offline", "online")
EXPERIMENTS = ("table1", "simulate")
RULES = ("advantage", "actde", "reinforce", "ppo_kl")


def require(ok: bool, field_name: str, value, accepted: str) -> None:
    """Raise ValueError(`field: value is out of range; accepted ...`) unless ``ok``."""
    if not ok:
        raise ValueError(f"{field_name}: {value!r} is out of range; accepted {accepted}")


def require_finite(node, prefix: str) -> None:
    """Every float of the dataclass ``node`` (in lists too) is finite: ``inf`` passes ``lr > 0`` and then turns
    every probability into NaN. Call first in ``__post_init__``."""
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        items = value if isinstance(value, (list, tuple)) else [value]
        bad = [v for v in items if isinstance(v, float) and not math.isfinite(v)]
        require(not bad, f"{prefix}.{f.name}", value, "a finite number (not inf or nan)")


@dataclass
class WandbConfig:
    mode: str = "offline"  # disabled | offline (default: no login, sync later) | online
    project: str = "rlhf-mode-collapse"  # one project for every app of the repository
    entity: Optional[str] = None  # wandb team/user; None = the logged-in default
    group: Optional[str] = None  # runs of one sweep share a group

    def __post_init__(self):
        require(self.mode in WANDB_MODES, "wandb.mode", self.mode, " | ".join(WANDB_MODES))


@dataclass
class ExperimentConfig:
    name: str = "table1"  # table1 (replay the paper's Table 1) | simulate (sampled actions, many seeds)

    def __post_init__(self):
        require(self.name in EXPERIMENTS, "experiment.name", self.name, " | ".join(EXPERIMENTS))


@dataclass
class BanditConfig:
    # The paper's Section 5.2 prompt "Create a name for a new chat bot powered by generative AI".
    actions: List[str] = field(default_factory=lambda: ["Jeepiti", "Chats and Giggles"])
    rewards: List[float] = field(default_factory=lambda: [1.0, 0.4])  # the paper's rewards
    init_probs: List[float] = field(default_factory=lambda: [0.5, 0.5])  # "equal probability" at t = 0

    def __post_init__(self):
        require_finite(self, "bandit")
        k = len(self.actions)
        require(k >= 2, "bandit.actions", self.actions, "at least 2 actions")
        require(len(self.rewards) == k, "bandit.rewards", self.rewards, f"one reward per action ({k})")
        require(len(self.init_probs) == k, "bandit.init_probs", self.init_probs, f"one probability per action ({k})")
        require(all(p > 0 for p in self.init_probs) and math.isclose(sum(self.init_probs), 1.0, abs_tol=1e-6),
                "bandit.init_probs", self.init_probs, "probabilities > 0 summing to 1")


@dataclass
class AdvantageRuleConfig:
    lr: float = 1.0  # Table 1 adds the whole advantage to the logit
    value_lr: float = 1.0  # 1.0: v(s) jumps to the last reward, as in Table 1

    def __post_init__(self):
        require_finite(self, "rules.advantage")
        require(self.lr > 0, "rules.advantage.lr", self.lr, "lr > 0")
        require(0 < self.value_lr <= 1, "rules.advantage.value_lr", self.value_lr, "0 < value_lr <= 1")


@dataclass
class ActdeRuleConfig:
    lr: float = 1.0  # same step as the paper's rule, so the two differ only in the baseline
    q_lr: float = 1.0  # 1.0: q(s, a) jumps to the last reward of a; lr = q_lr gives softmax(logits0 + R)

    def __post_init__(self):
        require_finite(self, "rules.actde")
        require(self.lr > 0, "rules.actde.lr", self.lr, "lr > 0")
        require(0 < self.q_lr <= 1, "rules.actde.q_lr", self.q_lr, "0 < q_lr <= 1")


@dataclass
class ReinforceRuleConfig:
    lr: float = 0.5  # logit step per unit advantage; large enough to converge within a few hundred steps
    baseline_lr: float = 0.1  # running-mean baseline: slower than the policy, so it averages rewards

    def __post_init__(self):
        require_finite(self, "rules.reinforce")
        require(self.lr > 0, "rules.reinforce.lr", self.lr, "lr > 0")
        require(0 < self.baseline_lr <= 1, "rules.reinforce.baseline_lr", self.baseline_lr, "0 < baseline_lr <= 1")


@dataclass
class PpoKlRuleConfig:
    beta: float = 0.1  # KL coefficient of Eq. 5.2 for the curves and the trap (simulate.betas sweeps it)
    lr: float = 0.5  # logit step per unit advantage in each epoch
    value_lr: float = 0.1  # running-mean value of the shaped reward
    clip_eps: float = 0.2  # PPO's usual clip range
    epochs: int = 4  # optimisation epochs on each sample, as PPO reuses a batch
    scale_lr_with_beta: bool = True  # step lr / (1 + beta): same optimum, no overshoot at large beta

    def __post_init__(self):
        require_finite(self, "rules.ppo_kl")
        require(self.beta >= 0, "rules.ppo_kl.beta", self.beta, "beta >= 0")
        require(self.lr > 0, "rules.ppo_kl.lr", self.lr, "lr > 0")
        require(0 < self.value_lr <= 1, "rules.ppo_kl.value_lr", self.value_lr, "0 < value_lr <= 1")
        require(0 < self.clip_eps < 1, "rules.ppo_kl.clip_eps", self.clip_eps, "0 < clip_eps < 1")
        require(self.epochs >= 1, "rules.ppo_kl.epochs", self.epochs, "epochs >= 1")


@dataclass
class RulesConfig:
    advantage: AdvantageRuleConfig = field(default_factory=AdvantageRuleConfig)
    actde: ActdeRuleConfig = field(default_factory=ActdeRuleConfig)
    reinforce: ReinforceRuleConfig = field(default_factory=ReinforceRuleConfig)
    ppo_kl: PpoKlRuleConfig = field(default_factory=PpoKlRuleConfig)


@dataclass
class Table1Config:
    decimals: int = 2  # the paper prints two decimals; a value matches if it rounds to the printed one

    def __post_init__(self):
        require(0 <= self.decimals <= 6, "table1.decimals", self.decimals, "0 <= decimals <= 6")


@dataclass
class SimulateConfig:
    n_seeds: int = 2000  # independent policies simulated side by side (vectorised)
    n_steps: int = 300  # one sampled action and one update per step
    seed: int = 0  # numpy Generator seed; same seed, same trajectories
    rules: List[str] = field(default_factory=lambda: list(RULES))  # which rules to simulate
    # KL coefficients of the entropy-vs-beta sweep (ppo_kl rule); 0 is drawn apart on the symlog axis.
    betas: List[float] = field(default_factory=lambda: [0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0])
    trap_action: str = "Chad-Chat"  # the paper's better name that exploration may never find
    trap_reward: float = 1.5  # the paper's reward for "Chad-Chat"
    trap_init_prob: float = 0.01  # small initial probability; the others share the rest as in bandit
    escape_threshold: float = 0.5  # "most of its mass": a seed escapes once pi(trap) exceeds this
    band_percentiles: List[float] = field(default_factory=lambda: [10.0, 90.0])  # band drawn across seeds

    def __post_init__(self):
        require_finite(self, "simulate")
        require(self.n_seeds >= 1, "simulate.n_seeds", self.n_seeds, "n_seeds >= 1")
        require(self.n_steps >= 1, "simulate.n_steps", self.n_steps, "n_steps >= 1")
        require(len(self.rules) >= 1 and all(r in RULES for r in self.rules), "simulate.rules", self.rules,
                "a non-empty subset of " + " | ".join(RULES))
        require(len(self.betas) >= 1 and all(b >= 0 for b in self.betas), "simulate.betas", self.betas,
                "a non-empty list of beta >= 0")
        require(0 < self.trap_init_prob < 1, "simulate.trap_init_prob", self.trap_init_prob, "0 < trap_init_prob < 1")
        require(0 < self.escape_threshold < 1, "simulate.escape_threshold", self.escape_threshold,
                "0 < escape_threshold < 1")
        lo_hi = self.band_percentiles
        require(len(lo_hi) == 2 and 0 <= lo_hi[0] < lo_hi[1] <= 100, "simulate.band_percentiles", lo_hi,
                "[low, high] with 0 <= low < high <= 100")


@dataclass
class ToyBanditConfig:
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    bandit: BanditConfig = field(default_factory=BanditConfig)
    rules: RulesConfig = field(default_factory=RulesConfig)
    table1: Table1Config = field(default_factory=Table1Config)
    simulate: SimulateConfig = field(default_factory=SimulateConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)


def register_configs() -> None:
    """Register the schema under the name the primary config's defaults list uses."""
    ConfigStore.instance().store(name="toy_bandit_schema", node=ToyBanditConfig)


register_configs()
