"""Typed configuration for the rlhf app (Hydra structured configs): `python -m rlhf stage=<stage>`.

YAML in ``conf/`` (``conf/rlhf.yaml`` and its groups) extends these schemas; ranges are checked in
``__post_init__`` when the entry point converts the DictConfig with ``OmegaConf.to_object``, so a bad value
stops the run with one line before anything is built. A later stage adds its own dataclass field here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from hydra.core.config_store import ConfigStore

from measure.config import WandbConfig, default_cache_dir, require
from measure.config import ModelConfig
from measure.persona_parse import PERSONA_INSTRUCTION

# The paper's Experiment 1 instruction (section 3.1), sent through the chat template (Llama-2 [INST] format):
# a policy being aligned is a chat model, as the paper's aligned model is.
PERSONA_PROMPT = PERSONA_INSTRUCTION
LORA_ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
KL_ESTIMATORS = ("k1", "k3")


@dataclass
class ProbePrompt:
    key: str = "persona"  # short name used in wandb keys and results.json (diversity/<key>/...)
    text: str = PERSONA_PROMPT
    chat: bool = True  # True: through the chat template (Experiment 1); False: plain text with BOS (Exp 2, 3)


def paper_prompts() -> List[ProbePrompt]:
    """The paper's three prompts: Experiment 1 (persona, chat), Experiment 2 (Grace Hopper), Experiment 3 (Steve)."""
    return [ProbePrompt("persona", PERSONA_PROMPT, True),
            ProbePrompt("hopper", "Grace Hopper was", False),
            ProbePrompt("steve", "Steve is the CEO of a startup company", False)]


def _check_prompts(prompts: List[ProbePrompt], name: str) -> None:
    require(len(prompts) > 0, name, prompts, "at least one prompt")
    keys = [p.key for p in prompts]
    require(len(set(keys)) == len(keys), name, keys, "distinct prompt keys")


@dataclass
class AnnotatorConfig:
    """Weights of the simulated annotator's utility (rlhf/stages/annotator.py documents each term)."""

    w_sentiment: float = 2.0  # x VADER compound of the review (persona) or the whole text: prefers positive
    w_enthusiasm: float = 0.5  # x min(exclamation marks, 3) / 3: prefers enthusiastic text
    w_rude: float = 1.0  # x share of sentences with a rude word: prefers polite text
    w_complete: float = 2.0  # x share of the persona card's 7 fields present (+ a review): prefers complete cards
    w_finished: float = 0.5  # x [the text ended with EOS]: prefers answers that finish
    bt_scale: float = 1.0  # Bradley-Terry: P(A preferred) = sigmoid((u_A - u_B) / bt_scale)

    def __post_init__(self):
        require(self.bt_scale > 0, "preferences.annotator.bt_scale", self.bt_scale, "bt_scale > 0")


@dataclass
class PreferencesConfig:
    n_pairs_per_prompt: int = 256  # pairs of base-model samples per prompt (3 prompts -> 768 pairs)
    n_predict: int = 96  # tokens per sample; keep equal to rlhf.response_length (the reward model's inputs)
    batch_size: int = 64  # sampling batch (the shared engine)
    heldout_share: float = 0.2  # pairs kept out of reward-model training to measure its accuracy
    seed: int = 0  # sampling and label noise; one preference set (and reward model) per typicality alpha
    prompts: List[ProbePrompt] = field(default_factory=paper_prompts)
    annotator: AnnotatorConfig = field(default_factory=AnnotatorConfig)

    def __post_init__(self):
        require(self.n_pairs_per_prompt >= 4, "preferences.n_pairs_per_prompt", self.n_pairs_per_prompt, ">= 4")
        require(self.n_predict >= 1, "preferences.n_predict", self.n_predict, ">= 1")
        require(self.batch_size >= 1, "preferences.batch_size", self.batch_size, ">= 1")
        require(0 < self.heldout_share < 1, "preferences.heldout_share", self.heldout_share, "0 < share < 1")
        _check_prompts(self.prompts, "preferences.prompts")


@dataclass
class RewardConfig:
    epochs: float = 3.0  # passes over the training pairs
    lr: float = 5e-4  # tiny models need far more than TRL's 1e-4 default to fit in a few hundred steps
    batch_size: int = 16  # pairs per optimiser step
    center_rewards_coefficient: Optional[float] = 0.01  # keeps rewards near 0 so PPO's scores start centred
    seed: int = 0

    def __post_init__(self):
        require(self.epochs > 0, "reward.epochs", self.epochs, "epochs > 0")
        require(self.lr > 0, "reward.lr", self.lr, "lr > 0")
        require(self.batch_size >= 1, "reward.batch_size", self.batch_size, ">= 1")


def run_name(alpha: float, beta: float, seed: int) -> str:
    """`alpha{alpha}_beta{beta}_seed{seed}`: the run's directory under <cache_dir>/ppo and its wandb name."""
    return f"alpha{alpha:g}_beta{beta:g}_seed{seed}"


@dataclass
class PPOStageConfig:
    """One PPO run (the `rlhf` node): `rlhf.beta` is the KL coefficient of Eq. 5.2."""

    base: ModelConfig = field(default_factory=lambda: ModelConfig(
        path="${cache_dir}/tinyworld/current/model", label="base",
        missing_hint="build it with `python -m rlhf stage=pretrain`"))
    beta: float = 0.01  # KL coefficient (TRL kl_coef); Llama-2 used 0.01 (7B/13B) and 0.005 (34B/70B)
    alpha: float = 0.0  # typicality bias of the annotator: utility + alpha * log p_base (Zhang et al. fit 0.57)
    seed: int = 0  # PPO seed (LoRA init, sampling); the sweep varies it for CIs
    steps: int = 64  # PPO updates (one rollout batch each)
    batch_size: int = 12  # rollouts per update across all processes (4 per paper prompt)
    mini_batches: int = 2  # minibatches per PPO epoch
    ppo_epochs: int = 4  # optimisation passes over each rollout batch (TRL default)
    lr: float = 2e-3  # LoRA r16 on attention needed about 2e-3 to move in 64 steps (feasibility run)
    response_length: int = 96  # max new tokens per rollout (stops at EOS); ~90% of tiny-world cards fit
    temperature: float = 1.0  # rollout temperature (Eq. 3.1 at T = 1, as the paper samples)
    kl_estimator: str = "k1"  # TRL: k1 (unbiased, TRL default) | k3 (lower variance)
    missing_eos_penalty: Optional[float] = None  # subtract from the score of rollouts that never end (None: off)
    lora_r: int = 16
    lora_alpha: int = 32  # LoRA scaling alpha (not the typicality alpha above)
    lora_dropout: float = 0.0
    lora_targets: List[str] = field(default_factory=lambda: list(LORA_ATTENTION))
    checkpoint_every: int = 8  # steps between checkpoints; a killed run resumes from the last one
    resume: bool = True  # continue from <cache_dir>/ppo/<run>/checkpoint when it matches this config
    threads: int = 0  # torch CPU threads; 0 = torch's default (1 is much faster on a busy shared machine)
    prompts: List[ProbePrompt] = field(default_factory=paper_prompts)

    def __post_init__(self):
        require(self.beta >= 0, "rlhf.beta", self.beta, "beta >= 0")
        require(self.alpha >= 0, "rlhf.alpha", self.alpha, "alpha >= 0")
        require(self.steps >= 1, "rlhf.steps", self.steps, "steps >= 1")
        require(self.batch_size >= 2, "rlhf.batch_size", self.batch_size, "batch_size >= 2")
        require(self.mini_batches >= 1 and self.batch_size % self.mini_batches == 0, "rlhf.mini_batches",
                self.mini_batches, f"a divisor of rlhf.batch_size ({self.batch_size})")
        require(self.ppo_epochs >= 1, "rlhf.ppo_epochs", self.ppo_epochs, ">= 1")
        require(self.lr > 0, "rlhf.lr", self.lr, "lr > 0")
        require(self.response_length >= 1, "rlhf.response_length", self.response_length, ">= 1")
        require(self.temperature > 0, "rlhf.temperature", self.temperature, "temperature > 0")
        require(self.kl_estimator in KL_ESTIMATORS, "rlhf.kl_estimator", self.kl_estimator, " | ".join(KL_ESTIMATORS))
        require(self.missing_eos_penalty is None or self.missing_eos_penalty > 0, "rlhf.missing_eos_penalty",
                self.missing_eos_penalty, "null or > 0")
        require(self.lora_r >= 1, "rlhf.lora_r", self.lora_r, "lora_r >= 1")
        require(len(self.lora_targets) > 0, "rlhf.lora_targets", self.lora_targets, "at least one module name")
        require(self.checkpoint_every >= 1, "rlhf.checkpoint_every", self.checkpoint_every, ">= 1")
        require(self.threads >= 0, "rlhf.threads", self.threads, "threads >= 0 (0 = default)")
        _check_prompts(self.prompts, "rlhf.prompts")


@dataclass
class DiversityConfig:
    """The diversity callback: every `every` PPO steps, `n_samples` completions per probe prompt."""

    every: int = 16  # N: PPO steps between measurements (its cost stays under ~15% of a step at 16)
    n_samples: int = 24  # M: completions per prompt per measurement
    n_predict: int = 96  # tokens per completion (as rlhf.response_length)
    batch_size: int = 24  # sampling batch (the shared engine)
    top_k: int = 5  # Eq. 3.2 uses the top five tokens
    final_n_samples: int = 100  # completions per prompt for the final measurement in results.json
    seed: int = 1234  # the same seed at every measurement, so steps differ by the policy, not the draw
    sbert: bool = True  # SBERT cosine (the slowest metric; off = NaN)
    ground_truth: Optional[str] = "${cache_dir}/tinyworld/current/world/ground_truth.json"  # tiny world's truth

    def __post_init__(self):
        require(self.every >= 1, "diversity.every", self.every, "every >= 1")
        require(self.n_samples >= 2, "diversity.n_samples", self.n_samples, "n_samples >= 2 (pairwise metrics)")
        require(self.n_predict >= 1, "diversity.n_predict", self.n_predict, ">= 1")
        require(self.batch_size >= 1, "diversity.batch_size", self.batch_size, ">= 1")
        require(self.top_k >= 2, "diversity.top_k", self.top_k, "top_k >= 2")
        require(self.final_n_samples >= 2, "diversity.final_n_samples", self.final_n_samples, ">= 2")


@dataclass
class SummaryConfig:
    runs: Optional[str] = None  # a multirun dir (or any dir) searched for PPO results.json; None: latest sweep
    min_seeds: int = 2  # (alpha, beta) cells with fewer seeds are reported but flagged

    def __post_init__(self):
        require(self.min_seeds >= 1, "summary.min_seeds", self.min_seeds, ">= 1")


# Every stage of the pipeline; `rlhf/__main__.py` maps the implemented ones to their functions.
STAGES = ("pretrain", "preferences", "reward", "ppo", "summary", "pipeline")


@dataclass
class WorldConfig:
    """The synthetic corpus (rlhf/world/corpus.py). Part of the cache key: a change builds a new world and model."""

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
    """Tokenizer + tiny Llama trained from scratch (rlhf/world/pretrain.py). Defaults fit 10 min on 2 CPU cores."""

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
    # RLHF stages (schemas in rlhf/config.py): `rlhf.beta` is the KL coefficient of a PPO run
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
