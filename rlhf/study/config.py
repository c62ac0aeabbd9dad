"""Typed configuration of the one-command study (`python -m rlhf.study demo=<preset>`, `make demo`).

The study is a list of commands of the three apps (`python -m rlhf`, `python -m measure`,
`python -m toy_bandit`). A preset in ``conf/demo/`` (default, fast, test) says which betas, alphas, seeds and
experiments to run and at what size (``stage_overrides``); the user's own overrides
(``demo.rlhf_overrides``, ``demo.measure_overrides``, ``demo.bandit_overrides``) are appended after the
preset's, so they win. Every step's config is composed and validated before the first step starts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from hydra.core.config_store import ConfigStore

from measure.config import WandbConfig, default_cache_dir, require, require_finite

EXPERIMENTS = ("entropy", "semantic", "personas", "attractor")


@dataclass
class StageOverrides:
    """A preset's settings for the steps of each app (Hydra overrides, as on the command line)."""

    rlhf: List[str] = field(default_factory=list)  # every `python -m rlhf` step (pretrain, reward, predict, ppo, ...)
    ppo: List[str] = field(default_factory=list)  # the study's PPO cells only (after `rlhf`): the training regime
    control: List[str] = field(default_factory=list)  # the positive control's PPO runs only (after `rlhf`)
    align: List[str] = field(default_factory=list)  # the other methods' runs (stage=align, after `rlhf` and `ppo`)
    measure: List[str] = field(default_factory=list)  # every `python -m measure` step
    bandit: List[str] = field(default_factory=list)  # every `python -m toy_bandit` step


@dataclass
class DemoConfig:
    name: str = "default"  # the preset (conf/demo/<name>.yaml); printed in the report
    out_dir: str = "outputs/demo"  # stable folder: running again reuses the steps whose config and inputs match
    betas: List[float] = field(default_factory=lambda: [0.0, 0.05, 0.5])  # KL coefficients of the PPO models
    alphas: List[float] = field(default_factory=lambda: [0.0])  # annotator typicality bias (0 = quality only)
    seeds: List[int] = field(default_factory=lambda: [0])  # PPO seeds; experiments run on the first seed's model
    experiments: List[str] = field(default_factory=lambda: list(EXPERIMENTS))
    # the positive control (rlhf/stages/control.py): PPO on control.weight * [attribute == value] at these betas and
    # seeds, read against its closed form; [] = none (then no statement about ignored attributes stands)
    control_betas: List[float] = field(default_factory=lambda: [0.5, 1.0])
    control_seeds: List[int] = field(default_factory=lambda: [0, 1])
    # alignment methods (rlhf/stages/align.py): ppo | rloo | grpo | dpo | bon | rft | sft_curated. PPO always runs
    # (the cells above); the others run at method_betas (rloo, grpo, dpo), best_of (bon, rft) or once (sft_curated),
    # for every alpha and method seed
    methods: List[str] = field(default_factory=lambda: ["ppo"])
    method_betas: Optional[List[float]] = None  # null = demo.betas
    method_seeds: Optional[List[int]] = None  # null = demo.seeds
    best_of: List[int] = field(default_factory=lambda: [4, 16])  # n of best-of-n and k of rft
    reward_arms: List[str] = field(default_factory=lambda: ["model", "oracle"])  # of rloo, grpo and bon (rft: model)
    predict: bool = True  # the predict stage (KL-optimal targets from base samples) before PPO
    # betas whose first-seed PPO model the paper's experiments measure against the base (null = every beta)
    measure_betas: Optional[List[float]] = None
    stage_overrides: StageOverrides = field(default_factory=StageOverrides)  # the preset's sizes
    rlhf_overrides: List[str] = field(default_factory=list)  # yours, appended to every rlhf step
    measure_overrides: List[str] = field(default_factory=list)  # yours, appended to every measurement step
    bandit_overrides: List[str] = field(default_factory=list)  # yours, appended to both toy-bandit steps
    # steps run side by side, each a subprocess of `cores // jobs` torch threads; pretraining and the reward
    # models use every core and run alone. Two 1-thread processes did ~2x the PPO work of one 2-thread one here.
    jobs: int = 2
    progress_every: float = 30.0  # seconds between progress lines (the last line of each running step's log)

    def __post_init__(self):
        require_finite(self, "demo")
        require(self.jobs >= 1, "demo.jobs", self.jobs, "jobs >= 1")
        require(self.progress_every > 0, "demo.progress_every", self.progress_every, "seconds > 0")
        for name in ("betas", "alphas"):
            values = getattr(self, name)
            require(len(values) > 0 and all(v >= 0 for v in values), f"demo.{name}", values,
                    "a non-empty list of values >= 0")
            require(len(set(values)) == len(values), f"demo.{name}", values, "distinct values")
        require(len(self.seeds) > 0 and len(set(self.seeds)) == len(self.seeds), "demo.seeds", self.seeds,
                "a non-empty list of distinct seeds")
        require(self.measure_betas is None or (len(self.measure_betas) > 0 and set(self.measure_betas) <= set(self.betas)),
                "demo.measure_betas", self.measure_betas, f"null or a non-empty subset of demo.betas {self.betas}")
        require(all(b > 0 for b in self.control_betas) and len(set(self.control_betas)) == len(self.control_betas),
                "demo.control_betas", self.control_betas, "distinct betas > 0 (or [] for no control)")
        require(len(set(self.control_seeds)) == len(self.control_seeds) and
                (len(self.control_seeds) > 0 or not self.control_betas), "demo.control_seeds", self.control_seeds,
                "distinct seeds, at least one when demo.control_betas is set")
        from rlhf.config import ALIGN_REWARDS, METHODS

        require(set(self.methods) <= set(METHODS) and len(set(self.methods)) == len(self.methods), "demo.methods",
                self.methods, f"distinct names among {list(METHODS)}")
        require(self.method_betas is None or (len(self.method_betas) > 0 and all(b > 0 for b in self.method_betas)),
                "demo.method_betas", self.method_betas, "null or a non-empty list of betas > 0")
        require(self.method_seeds is None or (len(self.method_seeds) > 0 and
                                              len(set(self.method_seeds)) == len(self.method_seeds)),
                "demo.method_seeds", self.method_seeds, "null or a non-empty list of distinct seeds")
        require(len(self.best_of) > 0 and all(n >= 2 for n in self.best_of), "demo.best_of", self.best_of,
                "a non-empty list of n >= 2")
        require(len(self.reward_arms) > 0 and set(self.reward_arms) <= set(ALIGN_REWARDS), "demo.reward_arms",
                self.reward_arms, f"a non-empty subset of {list(ALIGN_REWARDS)}")
        require(set(self.experiments) <= set(EXPERIMENTS) and len(set(self.experiments)) == len(self.experiments),
                "demo.experiments", self.experiments, f"distinct names among {list(EXPERIMENTS)}")
        require("attractor" not in self.experiments or "semantic" in self.experiments, "demo.experiments",
                self.experiments, "attractor only together with semantic (it perturbs semantic's clusters)")


@dataclass
class StudyConfig:
    demo: DemoConfig = field(default_factory=DemoConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)  # passed on to every step (wandb=<mode>)
    cache_dir: str = field(default_factory=default_cache_dir)  # models and data, shared by every step
    seed: int = 0  # the root seed of every step (each app derives its stage seeds from it)


def register_configs() -> None:
    ConfigStore.instance().store(name="study_schema", node=StudyConfig)
