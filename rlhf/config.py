"""Typed configuration for the rlhf app (Hydra structured configs): `python -m rlhf stage=<stage>`.

YAML in ``conf/`` (``conf/rlhf.yaml`` and its groups) extends these schemas; ranges are checked in
``__post_init__`` when the entry point converts the DictConfig with ``OmegaConf.to_object``, so a bad value
stops the run with one line before anything is built. A later stage adds its own dataclass field here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List

from hydra.core.config_store import ConfigStore

from measure.config import WandbConfig, default_cache_dir, require
from rlhf.rlhf_config import DiversityConfig, PPOStageConfig, PreferencesConfig, RewardConfig, SummaryConfig

# Every stage of the pipeline; `rlhf/__main__.py` maps the implemented ones to their functions.
STAGES = ("pretrain", "preferences", "reward", "ppo", "summary", "pipeline")


@dataclass
class WorldConfig:
    """The synthetic corpus (rlhf/world.py). Part of the cache key: a change builds a new world and model."""

    seed: int = 0  # same seed, same corpus
    n_docs: int = 24000  # training documents (~2.3M tokens at the default tokenizer; a build sees ~0.7 of them)
    n_heldout_docs: int = 400  # documents drawn from a separate stream for the held-out loss
    # kinds of document and their shares; persona cards dominate because Experiment 1 is the one scored
    mix: Dict[str, float] = field(default_factory=lambda: {"persona": 0.60, "chat": 0.15, "bio": 0.15,
                                                           "story": 0.10})

    def __post_init__(self):
        require(self.n_docs >= 10, "world.n_docs", self.n_docs, "n_docs >= 10")
        require(self.n_heldout_docs >= 1, "world.n_heldout_docs", self.n_heldout_docs, "n_heldout_docs >= 1")
        kinds = ("persona", "chat", "bio", "story")
        require(set(self.mix) <= set(kinds), "world.mix", dict(self.mix), f"keys among {list(kinds)}")
        require(all(v >= 0 for v in self.mix.values()) and sum(self.mix.values()) > 0, "world.mix",
                dict(self.mix), "shares >= 0 with a positive sum")


@dataclass
class QualityConfig:
    """What the build samples to score itself (results.json `quality`); not part of the model's cache key."""

    n_cards: int = 500  # persona cards sampled from the plain card prompt at T = 1 (the bar)
    n_chat_cards: int = 100  # cards sampled from the chat instruction (checks the chat format is in distribution)
    n_entropy: int = 100  # completions per paper prompt for token entropy (the paper uses 100)
    card_tokens: int = 200  # n_predict for a card; a card ends with EOS well before this
    grace_tokens: int = 128  # n_predict for "Grace Hopper was" (Experiment 2 uses 128)
    steve_tokens: int = 64  # n_predict for "Steve is the CEO of a startup company" (Experiment 3 uses 64)
    batch_size: int = 100  # sequences sampled together
    n_show: int = 20  # continuations of each paper prompt written out for a person to read
    seed: int = 0

    def __post_init__(self):
        for name in ("n_cards", "n_chat_cards", "n_entropy", "card_tokens", "grace_tokens", "steve_tokens",
                     "batch_size"):
            require(getattr(self, name) >= 1, f"pretrain.quality.{name}", getattr(self, name), ">= 1")
        require(self.n_show >= 0, "pretrain.quality.n_show", self.n_show, ">= 0")


@dataclass
class PretrainConfig:
    """Tokenizer + tiny Llama trained from scratch (rlhf/pretrain.py). Defaults fit 10 min on 2 CPU cores."""

    vocab_size: int = 2048  # byte-level BPE; names and field labels take one to three tokens
    hidden_size: int = 128  # 1.6M parameters: on 2 cores a wider model sees too few tokens in the budget
    num_layers: int = 4
    num_heads: int = 4
    block_size: int = 256  # training row length (tokens); whole documents packed per row, attention within each
    batch_size: int = 8  # rows per step (~1,900 tokens): more updates per token than 16 rows, which matters here
    max_steps: int = 1000  # ~1.9M tokens, about 0.8 of the default corpus
    lr: float = 3e-3  # peak learning rate (tiny models tolerate a high one)
    min_lr_ratio: float = 0.1  # cosine decay ends at lr * min_lr_ratio
    warmup_steps: int = 20
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0  # init and data order
    eval_every: int = 100  # steps between held-out evaluations (on eval_docs documents; all of them at the end)
    eval_docs: int = 100
    checkpoint_every: int = 50  # steps between checkpoints (a killed build resumes from the last one)
    log_every: int = 10  # steps between loss log lines / wandb points
    threads: int = 1  # torch CPU threads per process (0 = torch's default); 1 beat 2 threads on a shared 2-core box
    processes: int = 2  # data-parallel training processes (one per core; 1 = train in this process only)
    quality: QualityConfig = field(default_factory=QualityConfig)

    def __post_init__(self):
        require(self.vocab_size >= 300, "pretrain.vocab_size", self.vocab_size, "vocab_size >= 300 (bytes + merges)")
        for name in ("hidden_size", "num_layers", "num_heads", "block_size", "batch_size", "max_steps",
                     "eval_every", "eval_docs", "checkpoint_every", "log_every"):
            require(getattr(self, name) >= 1, f"pretrain.{name}", getattr(self, name), ">= 1")
        require(self.hidden_size % self.num_heads == 0, "pretrain.num_heads", self.num_heads,
                f"a divisor of hidden_size ({self.hidden_size})")
        require(self.lr > 0, "pretrain.lr", self.lr, "lr > 0")
        require(0 <= self.min_lr_ratio <= 1, "pretrain.min_lr_ratio", self.min_lr_ratio, "0 <= min_lr_ratio <= 1")
        require(self.warmup_steps >= 0, "pretrain.warmup_steps", self.warmup_steps, "warmup_steps >= 0")
        require(self.weight_decay >= 0, "pretrain.weight_decay", self.weight_decay, "weight_decay >= 0")
        require(self.grad_clip > 0, "pretrain.grad_clip", self.grad_clip, "grad_clip > 0")
        require(self.threads >= 0, "pretrain.threads", self.threads, "threads >= 0 (0 = default)")
        require(1 <= self.processes <= self.batch_size, "pretrain.processes", self.processes,
                f"1 <= processes <= batch_size ({self.batch_size})")


@dataclass
class DemoConfig:
    """`stage=pipeline` (`make demo`): the whole study, offline, into one folder, then one report."""

    fast: bool = False  # a quick look (< 5 min cold): small world and model, two betas, few steps and samples
    out_dir: str = "outputs/demo"  # stable folder: running again continues where an interrupted run stopped
    fast_out_dir: str = "outputs/demo-fast"  # the fast variant's own folder, so the two never mix
    betas: List[float] = field(default_factory=lambda: [0.0, 0.05, 0.5])  # KL coefficients of the PPO models
    fast_betas: List[float] = field(default_factory=lambda: [0.0, 0.5])
    alphas: List[float] = field(default_factory=lambda: [0.0])  # annotator typicality bias (0 = quality only)
    seeds: List[int] = field(default_factory=lambda: [0])  # PPO seeds; experiments run on the first seed's model
    experiments: List[str] = field(default_factory=lambda: ["entropy", "semantic", "personas", "attractor"])
    rlhf_overrides: List[str] = field(default_factory=list)  # extra Hydra overrides for every rlhf stage
    measure_overrides: List[str] = field(default_factory=list)  # ... for every measurement experiment
    bandit_overrides: List[str] = field(default_factory=list)  # ... for the toy bandit
    fast_rlhf_overrides: List[str] = field(default_factory=list)  # applied when fast=true (conf/stage/pipeline.yaml)
    fast_measure_overrides: List[str] = field(default_factory=list)
    # steps run side by side in this many worker processes (cores // jobs threads each); 1 = one after another
    # in this process. Two 1-thread processes did ~2x the PPO work of one 2-thread process on 2 cores here.
    jobs: int = 2
    progress_every: float = 30.0  # seconds between progress lines of the steps running in workers

    def __post_init__(self):
        require(self.jobs >= 1, "demo.jobs", self.jobs, "jobs >= 1")
        require(self.progress_every > 0, "demo.progress_every", self.progress_every, "seconds > 0")
        require(len(self.betas) > 0 and all(b >= 0 for b in self.betas), "demo.betas", self.betas,
                "a non-empty list of beta >= 0")
        require(len(self.fast_betas) > 0 and all(b >= 0 for b in self.fast_betas), "demo.fast_betas",
                self.fast_betas, "a non-empty list of beta >= 0")
        require(len(self.alphas) > 0 and all(a >= 0 for a in self.alphas), "demo.alphas", self.alphas,
                "a non-empty list of alpha >= 0")
        require(len(self.seeds) > 0, "demo.seeds", self.seeds, "at least one seed")
        known = ("entropy", "semantic", "personas", "attractor")
        require(set(self.experiments) <= set(known), "demo.experiments", self.experiments, f"a subset of {list(known)}")
        require("attractor" not in self.experiments or "semantic" in self.experiments, "demo.experiments",
                self.experiments, "attractor only together with semantic (it perturbs semantic's clusters)")


@dataclass
class RlhfConfig:
    stage: str = "pretrain"  # which stage to run: see STAGES
    world: WorldConfig = field(default_factory=WorldConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)
    cache_dir: str = field(default_factory=default_cache_dir)  # built worlds/models, keyed by config hash
    # RLHF stages (schemas in rlhf/rlhf_config.py): `rlhf.beta` is the KL coefficient of a PPO run
    preferences: PreferencesConfig = field(default_factory=PreferencesConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    rlhf: PPOStageConfig = field(default_factory=PPOStageConfig)
    diversity: DiversityConfig = field(default_factory=DiversityConfig)
    summary: SummaryConfig = field(default_factory=SummaryConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)  # stage=pipeline

    def __post_init__(self):
        require(self.stage in STAGES, "stage", self.stage, " | ".join(STAGES))


def register_configs() -> None:
    ConfigStore.instance().store(name="rlhf_schema", node=RlhfConfig)
