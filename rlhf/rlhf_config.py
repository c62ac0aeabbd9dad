"""Typed configuration of the RLHF stages: preferences, reward model, PPO (+ diversity callback), summary.

These dataclasses are fields of ``rlhf.config.RlhfConfig`` (``preferences``, ``reward``, ``rlhf``,
``diversity``, ``summary``), so ``python -m rlhf stage=ppo rlhf.beta=0.01`` sets the KL coefficient of
Eq. 5.2. Ranges are checked in ``__post_init__``: a bad value stops the run at start-up with one line
naming the field, before any model loads.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from measure.config import ModelConfig, require
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
    """Weights of the simulated annotator's utility (rlhf/annotator.py documents each term)."""

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
