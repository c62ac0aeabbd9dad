"""Typed configuration for the rlhf app (Hydra structured configs): `python -m rlhf stage=<stage>`.

YAML in ``conf/`` (``conf/rlhf.yaml`` and its groups) extends these schemas; ranges are checked in
``__post_init__`` when the entry point converts the DictConfig with ``OmegaConf.to_object``, so a bad value
stops the run with one line before anything is built. A later stage adds its own dataclass field here.

Some defaults are interpolations (``omegaconf.II``) of other fields, so that a value stands once: every stage
seed is ``${seed}``, and the sample lengths of the preferences and of the diversity callback are
``${ppo.response_length}`` (the reward model scores, and the callback measures, responses of the length PPO
rolls out). They resolve only inside the app's config tree; code that builds a stage's schema by hand passes
those fields itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import II

from measure.config import (MIN_TEMPERATURE, ModelConfig, SamplingConfig, WandbConfig, default_cache_dir, require,
                            require_finite)
from measure.persona_parse import PERSONA_INSTRUCTION

# The paper's Experiment 1 instruction (section 3.1), sent through the chat template (Llama-2 [INST] format):
# a policy being aligned is a chat model, as the paper's aligned model is.
PERSONA_PROMPT = PERSONA_INSTRUCTION
LORA_ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
KL_ESTIMATORS = ("k1", "k3")
PPO_REWARDS = ("model", "control")


def sampling_config(**values) -> SamplingConfig:
    """A SamplingConfig with ``values``, any of which may be a `${...}` interpolation.

    The values are set after construction: SamplingConfig's range checks cannot compare an unresolved string.
    ``OmegaConf.to_object`` builds the checked SamplingConfig from the resolved values when the app starts.
    """
    cfg = SamplingConfig()
    for name, value in values.items():
        if not hasattr(cfg, name):
            raise TypeError(f"SamplingConfig has no field {name!r}")
        setattr(cfg, name, value)
    return cfg


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


# ---------------------------------------------------------------- the tiny world: stage `pretrain`

@dataclass
class WorldConfig:
    """The synthetic corpus (rlhf/world/corpus.py). Part of the cache key: a change builds a new world and model."""

    seed: int = II("seed")  # same seed, same corpus
    n_docs: int = 24000  # training documents (~2.3M tokens at the default tokenizer; a build sees ~0.7 of them)
    n_heldout_docs: int = 400  # documents drawn from a separate stream for the held-out loss
    # kinds of document and their shares; persona cards dominate because Experiment 1 is the one scored
    mix: Dict[str, float] = field(default_factory=lambda: {"persona": 0.60, "chat": 0.15, "bio": 0.15,
                                                           "story": 0.10})

    def __post_init__(self):
        require_finite(self, "world")
        require(self.n_docs >= 10, "world.n_docs", self.n_docs, "n_docs >= 10")
        require(self.n_heldout_docs >= 1, "world.n_heldout_docs", self.n_heldout_docs, "n_heldout_docs >= 1")
        kinds = ("persona", "chat", "bio", "story")
        require(set(self.mix) <= set(kinds), "world.mix", dict(self.mix), f"keys among {list(kinds)}")
        require(all(v >= 0 for v in self.mix.values()) and sum(self.mix.values()) > 0, "world.mix",
                dict(self.mix), "shares >= 0 with a positive sum")


@dataclass
class QualityConfig:
    """What the build samples to score itself (results.json `quality`); not part of the model's cache key.

    ``sampling`` gives temperature, batch size, top-k and seed of every quality sample; its n_samples and
    n_predict are not read: each prompt has its own count (n_cards, n_chat_cards, n_entropy) and length
    (card_tokens, grace_tokens, steve_tokens).
    """

    n_cards: int = 500  # persona cards sampled from the plain card prompt (the bar: 500 at T = 1)
    n_chat_cards: int = 100  # cards sampled from the chat instruction (checks the chat format is in distribution)
    n_entropy: int = 100  # completions per paper prompt for token entropy (the paper uses 100)
    card_tokens: int = 200  # n_predict for a card; a card ends with EOS well before this
    grace_tokens: int = 128  # n_predict for "Grace Hopper was" (Experiment 2 uses 128)
    steve_tokens: int = 64  # n_predict for "Steve is the CEO of a startup company" (Experiment 3 uses 64)
    n_show: int = 20  # continuations of each paper prompt written out for a person to read
    # T = 1 as the paper samples; 100 sequences together; Eq. 3.2's top 5; the build's seed
    sampling: SamplingConfig = field(default_factory=lambda: sampling_config(
        batch_size=100, top_k=5, seed=II("pretrain.seed")))

    def __post_init__(self):
        require_finite(self, "pretrain.quality")
        for name in ("n_cards", "n_chat_cards", "n_entropy", "card_tokens", "grace_tokens", "steve_tokens"):
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
    steps: int = 1000  # optimiser steps: ~1.9M tokens, about 0.8 of the default corpus
    lr: float = 3e-3  # peak learning rate (tiny models tolerate a high one)
    min_lr_ratio: float = 0.1  # cosine decay ends at lr * min_lr_ratio
    warmup_steps: int = 20
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    seed: int = II("seed")  # init and data order
    eval_every: int = 100  # steps between held-out evaluations (on eval_docs documents; all of them at the end)
    eval_docs: int = 100
    checkpoint_every: int = 50  # steps between checkpoints (a killed build resumes from the last one)
    log_every: int = 10  # steps between loss log lines / wandb points
    threads: int = 1  # torch CPU threads per process (0 = torch's default); 1 beat 2 threads on a shared 2-core box
    processes: int = 2  # data-parallel training processes (one per core; 1 = train in this process only)
    quality: QualityConfig = field(default_factory=QualityConfig)

    def __post_init__(self):
        require_finite(self, "pretrain")
        require(self.vocab_size >= 300, "pretrain.vocab_size", self.vocab_size, "vocab_size >= 300 (bytes + merges)")
        for name in ("hidden_size", "num_layers", "num_heads", "block_size", "batch_size", "steps",
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


# ---------------------------------------------------------------- the RLHF stages

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
        require_finite(self, "preferences.annotator")
        require(self.bt_scale > 0, "preferences.annotator.bt_scale", self.bt_scale, "bt_scale > 0")


@dataclass
class PreferencesConfig:
    """The preference set: pairs of base-model samples labelled by the annotator, one set per ``alpha``.

    ``sampling`` draws the samples: 2 * n_pairs_per_prompt per prompt (its n_samples is not read), prompt i
    with seed ``sampling.seed * 1000 + i``. At T = 1 (the default) each token probability is the base model's
    own, so log p_base in the typicality term is the base model's log-likelihood; another temperature makes
    it the log-likelihood of the tempered distribution.
    """

    TYPICALITY_FORMS = ("sum", "per_token")  # accepted `typicality` values (not a field)

    alpha: float = 0.0  # typicality bias of the annotator: utility + alpha * log p_base (Zhang et al. fit 0.57)
    # log p_base in that term: "sum" over the response's tokens (the sequence log-likelihood pi* is written in) or
    # "per_token" mean (what Zhang et al.'s released fitting script measures; rlhf/stages/annotator.py)
    typicality: str = "sum"
    n_pairs_per_prompt: int = 256  # pairs of base-model samples per prompt (3 prompts -> 768 pairs)
    heldout_share: float = 0.2  # pairs kept out of reward-model training to measure its accuracy
    seed: int = II("seed")  # label noise and the held-out split (and, through sampling.seed, the samples)
    # responses as long as PPO's rollouts (the reward model's inputs); 64 sequences sampled together
    sampling: SamplingConfig = field(default_factory=lambda: sampling_config(
        n_predict=II("ppo.response_length"), batch_size=64, seed=II("preferences.seed")))
    prompts: List[ProbePrompt] = field(default_factory=paper_prompts)
    annotator: AnnotatorConfig = field(default_factory=AnnotatorConfig)

    def __post_init__(self):
        require_finite(self, "preferences")
        require(self.alpha >= 0, "preferences.alpha", self.alpha, "alpha >= 0")
        require(self.typicality in self.TYPICALITY_FORMS, "preferences.typicality", self.typicality,
                " | ".join(self.TYPICALITY_FORMS))
        require(self.n_pairs_per_prompt >= 4, "preferences.n_pairs_per_prompt", self.n_pairs_per_prompt, ">= 4")
        require(0 < self.heldout_share < 1, "preferences.heldout_share", self.heldout_share, "0 < share < 1")
        _check_prompts(self.prompts, "preferences.prompts")


@dataclass
class RewardConfig:
    epochs: float = 3.0  # passes over the training pairs
    lr: float = 5e-4  # tiny models need far more than TRL's 1e-4 default to fit in a few hundred steps
    batch_size: int = 16  # pairs per optimiser step
    center_rewards_coefficient: Optional[float] = 0.01  # keeps rewards near 0 so PPO's scores start centred
    seed: int = II("seed")  # the new score head's init and the data order

    def __post_init__(self):
        require_finite(self, "reward")
        require(self.epochs > 0, "reward.epochs", self.epochs, "epochs > 0")
        require(self.lr > 0, "reward.lr", self.lr, "lr > 0")
        require(self.batch_size >= 1, "reward.batch_size", self.batch_size, ">= 1")


def run_name(alpha: float, beta: float, seed: int) -> str:
    """`alpha{alpha}_beta{beta}_seed{seed}` (preferences.alpha, ppo.beta, ppo.seed): the run's directory under
    <cache_dir>/ppo and its wandb name."""
    return f"alpha{alpha:g}_beta{beta:g}_seed{seed}"


@dataclass
class PPOConfig:
    """One LoRA PPO run (the `ppo` node): `ppo.beta` is the KL coefficient of Eq. 5.2."""

    base: ModelConfig = field(default_factory=lambda: ModelConfig(
        path="${cache_dir}/tinyworld/current/model", label="base",
        missing_hint="build it with `python -m rlhf stage=pretrain`"))
    beta: float = 0.01  # KL coefficient (TRL kl_coef); Llama-2 used 0.01 (7B/13B) and 0.005 (34B/70B)
    seed: int = II("seed")  # PPO seed (LoRA init, sampling); the sweep varies it for CIs
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
    lora_alpha: int = 32  # LoRA scaling alpha (not the typicality alpha, preferences.alpha)
    lora_dropout: float = 0.0
    lora_targets: List[str] = field(default_factory=lambda: list(LORA_ATTENTION))
    checkpoint_every: int = 8  # steps between checkpoints; a killed run resumes from the last one
    resume: bool = True  # continue from <cache_dir>/ppo/<run>/checkpoint when it matches this config
    threads: int = 0  # torch CPU threads of every RLHF stage; 0 = torch's default (1 is faster on a busy machine)
    prompts: List[ProbePrompt] = field(default_factory=paper_prompts)
    # what PPO maximises: `model` = the reward model of preferences.alpha; `control` = the positive control's own
    # utility, control.weight * [card's control.attribute == control.value] (rlhf/stages/control.py), no reward model
    reward: str = "model"
    # share of the rollouts on the persona prompt (the one whose attributes are measured); null = every prompt equally
    persona_share: Optional[float] = None

    def __post_init__(self):
        require_finite(self, "ppo")
        require(self.reward in PPO_REWARDS, "ppo.reward", self.reward, " | ".join(PPO_REWARDS))
        require(self.persona_share is None or 0 < self.persona_share <= 1, "ppo.persona_share", self.persona_share,
                "null or 0 < share <= 1")
        require(self.beta >= 0, "ppo.beta", self.beta, "beta >= 0")
        require(self.steps >= 1, "ppo.steps", self.steps, "steps >= 1")
        require(self.batch_size >= 2, "ppo.batch_size", self.batch_size, "batch_size >= 2")
        require(self.mini_batches >= 1 and self.batch_size % self.mini_batches == 0, "ppo.mini_batches",
                self.mini_batches, f"a divisor of ppo.batch_size ({self.batch_size})")
        require(self.ppo_epochs >= 1, "ppo.ppo_epochs", self.ppo_epochs, ">= 1")
        require(self.lr > 0, "ppo.lr", self.lr, "lr > 0")
        require(self.response_length >= 1, "ppo.response_length", self.response_length, ">= 1")
        require(self.temperature > 0, "ppo.temperature", self.temperature, "temperature > 0")
        require(self.temperature >= MIN_TEMPERATURE, "ppo.temperature", self.temperature,
                f"temperature >= {MIN_TEMPERATURE:g} (lower is greedy to float precision and overflows float32)")
        require(self.kl_estimator in KL_ESTIMATORS, "ppo.kl_estimator", self.kl_estimator, " | ".join(KL_ESTIMATORS))
        require(self.missing_eos_penalty is None or self.missing_eos_penalty > 0, "ppo.missing_eos_penalty",
                self.missing_eos_penalty, "null or > 0")
        require(self.lora_r >= 1, "ppo.lora_r", self.lora_r, "lora_r >= 1")
        require(len(self.lora_targets) > 0, "ppo.lora_targets", self.lora_targets, "at least one module name")
        require(self.checkpoint_every >= 1, "ppo.checkpoint_every", self.checkpoint_every, ">= 1")
        require(self.threads >= 0, "ppo.threads", self.threads, "threads >= 0 (0 = default)")
        _check_prompts(self.prompts, "ppo.prompts")


@dataclass
class DiversityConfig:
    """The diversity callback: every `every` PPO steps, `sampling.n_samples` completions per probe prompt."""

    every: int = 16  # N: PPO steps between measurements (its cost stays under ~15% of a step at 16)
    # M = 24 completions per prompt per measurement, as long as PPO's rollouts, at T = 1, Eq. 3.2's top 5.
    # The seed is a fixed 1234, not ${seed}: the same draw at every measurement and in every run of a sweep, so
    # measurements differ by the policy only, and apart from the preference samples' seeds.
    sampling: SamplingConfig = field(default_factory=lambda: sampling_config(
        n_samples=24, n_predict=II("ppo.response_length"), batch_size=24, top_k=5, seed=1234))
    final_n_samples: int = 100  # completions per prompt for the final measurement in results.json
    sbert: bool = True  # SBERT cosine (the slowest metric; off = NaN)
    ground_truth: Optional[str] = "${cache_dir}/tinyworld/current/world/ground_truth.json"  # tiny world's truth
    # exact (teacher-forced) persona attribute distributions over the truth's values: scored at every measurement on
    # the prefixes of this many cards of the base policy (adapter off, drawn once per run, so every measurement is
    # paired with the same contexts). ~0.22 s per card on the tiny-world base (one thread; all ~960 values of the 7
    # attributes), so 16 cards add ~3.5 s to a measurement. 0 = off
    exact_contexts: int = 16
    # cards for the exact distributions of the final measurement (policy and base: ~30 s at 64; CIs of ~0.1 bit)
    final_exact_contexts: int = 64

    def __post_init__(self):
        require_finite(self, "diversity")
        require(self.every >= 1, "diversity.every", self.every, "every >= 1")
        require(self.exact_contexts >= 0, "diversity.exact_contexts", self.exact_contexts, ">= 0 (0 = off)")
        require(self.final_exact_contexts >= 0, "diversity.final_exact_contexts", self.final_exact_contexts,
                ">= 0 (0 = off)")
        require(self.sampling.n_samples >= 2, "diversity.sampling.n_samples", self.sampling.n_samples,
                "n_samples >= 2 (pairwise metrics)")
        require(self.final_n_samples >= 2, "diversity.final_n_samples", self.final_n_samples, ">= 2")


@dataclass
class SummaryConfig:
    runs: Optional[str] = None  # a multirun dir (or any dir) searched for PPO results.json; None: latest sweep
    run_dirs: List[str] = field(default_factory=list)  # only these folders of `runs` ([] = every results.json in it)
    min_seeds: int = 2  # (alpha, beta) cells with fewer seeds are reported but flagged
    predict: Optional[str] = None  # the predict stage's folder (or results.json): the cells' predicted blocks

    def __post_init__(self):
        require(self.min_seeds >= 1, "summary.min_seeds", self.min_seeds, ">= 1")


@dataclass
class ControlConfig:
    """The positive control (rlhf/stages/control.py): an annotator term that rewards one attribute value directly,
    u = weight * [card's attribute == value], with the closed form pi*(value) = p0 e^{w/beta} / (p0 e^{w/beta} + 1 - p0).
    `ppo.reward=control` trains on it; the predict stage gives p0 and the closed form."""

    attribute: str = "nationality"  # a card attribute (measure.persona_parse.ATTRIBUTES)
    value: str = "American"  # the base model writes it on ~21% of cards
    weight: float = 1.0  # w, in the utility's units

    def __post_init__(self):
        from measure.persona_parse import ATTRIBUTES

        require_finite(self, "control")
        require(self.attribute in ATTRIBUTES, "control.attribute", self.attribute, " | ".join(ATTRIBUTES))
        require(bool(self.value), "control.value", self.value, "a non-empty attribute value")
        require(self.weight > 0, "control.weight", self.weight, "weight > 0")


@dataclass
class PredictConfig:
    """stage=predict (rlhf/stages/predict.py): the KL-optimal targets before any training, from base samples.

    For each (alpha, beta) the optimum pi*(y) ~ pi0(y) exp(r(y) / beta) is approximated by self-normalised
    importance resampling of ``n_samples`` base samples per prompt, once with r = the annotator's true utility and
    once with r = the reward model's score (``reward_models[i]`` is the model of ``alphas[i]``)."""

    n_samples: int = 2000  # M base samples per prompt (the floor is 2,000)
    alphas: List[float] = field(default_factory=lambda: [0.0])
    reward_models: List[str] = field(default_factory=list)  # one path per alpha ([] = true utility only)
    betas: List[float] = field(default_factory=lambda: [0.05, 0.1, 0.2, 0.5])  # the cells' betas
    control_betas: List[float] = field(default_factory=lambda: [0.5, 1.0])  # the positive control's betas
    frontier_points: int = 25  # betas of the drawn frontier, log-spaced over [frontier_min_beta, frontier_max_beta]
    frontier_min_beta: float = 0.01
    frontier_max_beta: float = 10.0
    best_of_n: List[int] = field(default_factory=lambda: [2, 4, 8, 16, 32, 64])
    min_ess: float = 30.0  # an effective sample size below this is "beyond resolution": no number is given
    entropy_n: int = 100  # cards per entropy draw: the trained models' diversity.final_n_samples (the study sets it)
    entropy_draws: int = 200  # resampling draws averaged per entropy at n = entropy_n
    sampling: SamplingConfig = field(default_factory=lambda: sampling_config(
        n_predict=II("ppo.response_length"), batch_size=100, top_k=5, seed=II("seed")))

    def __post_init__(self):
        require_finite(self, "predict")
        require(self.n_samples >= 100, "predict.n_samples", self.n_samples, ">= 100 (2,000 for the study)")
        require(len(self.alphas) > 0 and all(a >= 0 for a in self.alphas), "predict.alphas", self.alphas,
                "a non-empty list of alpha >= 0")
        require(len(self.reward_models) in (0, len(self.alphas)), "predict.reward_models", self.reward_models,
                f"[] or one path per alpha ({len(self.alphas)})")
        require(all(b >= 0 for b in self.betas + self.control_betas), "predict.betas", self.betas, "beta >= 0")
        require(self.frontier_points >= 2, "predict.frontier_points", self.frontier_points, ">= 2")
        require(0 < self.frontier_min_beta < self.frontier_max_beta, "predict.frontier_min_beta",
                self.frontier_min_beta, "0 < frontier_min_beta < frontier_max_beta")
        require(all(n >= 2 for n in self.best_of_n), "predict.best_of_n", self.best_of_n, "n >= 2")
        require(self.min_ess >= 1, "predict.min_ess", self.min_ess, ">= 1")
        require(self.entropy_n >= 2, "predict.entropy_n", self.entropy_n, ">= 2")
        require(self.entropy_draws >= 1, "predict.entropy_draws", self.entropy_draws, ">= 1")


METHODS = ("ppo", "rloo", "grpo", "dpo", "bon", "rft", "sft_curated")  # stage=align's align.method
ALIGN_REWARDS = ("model", "oracle")  # the reward arm of rloo, grpo, bon and rft
GRPO_SCALE_REWARDS = ("none", "group", "batch")
GRPO_LOSS_TYPES = ("dapo", "dr_grpo", "grpo", "bnpo")


@dataclass
class AlignConfig:
    """stage=align (rlhf/stages/align.py): one alignment method on the tiny-world base, LoRA, measured like PPO.

    The shared settings are the ``ppo`` node's: base, seed, beta (the KL coefficient of rloo, grpo and dpo),
    steps and batch_size (rollout batches and completions per batch of rloo and grpo, as PPO's), mini_batches and
    ppo_epochs (updates per batch: rloo and grpo take ``mini_batches * ppo_epochs`` optimiser steps per batch, as
    PPO does), lr, response_length, temperature, the LoRA fields, prompts and persona_share. ``method=ppo`` runs
    the ppo stage itself."""

    method: str = "rloo"  # ppo | rloo | grpo | dpo | bon | rft | sft_curated
    # what rloo, grpo, bon and rft maximise: `model` = the reward model of preferences.alpha; `oracle` = the
    # annotator's true utility (u_quality + alpha * log p_base) as a Python reward function
    reward: str = "model"
    num_generations: int = 4  # completions per prompt of rloo and grpo (the leave-one-out / group baseline)
    # GRPO, theory-matched: TRL's defaults are scale_rewards="group" (a different objective) and beta=0
    scale_rewards: str = "none"
    loss_type: str = "dapo"  # TRL's default; the KL sits in GRPO's loss as k3 per token (biased gradient)
    dpo_epochs: float = 2.0  # passes over the preference set's training pairs
    dpo_batch_size: int = 8  # pairs per optimiser step
    dpo_lr: Optional[float] = None  # null = ppo.lr
    best_of: int = 4  # n of best-of-n (bon) and k of rft's best-of-k under the reward arm
    rft_prompts: int = 64  # rft: best-of-k groups per prompt (each group's best is one SFT example)
    sft_epochs: float = 2.0  # rft and sft_curated: passes over the SFT examples
    sft_batch_size: int = 8
    sft_lr: Optional[float] = None  # null = ppo.lr
    demos: int = 256  # sft_curated: demonstrations of the simulated demonstrator (persona prompt)
    demo_names: int = 20  # its first names: a Zipf prior over this many names per gender
    demo_exponent: float = 1.0  # the Zipf exponent (p(rank r) ~ r^-exponent)
    cross_input_samples: int = 0  # per product prompt for per-input vs cross-input diversity (0 = off)

    def __post_init__(self):
        require_finite(self, "align")
        require(self.method in METHODS, "align.method", self.method, " | ".join(METHODS))
        require(self.reward in ALIGN_REWARDS, "align.reward", self.reward, " | ".join(ALIGN_REWARDS))
        require(self.num_generations >= 2, "align.num_generations", self.num_generations,
                ">= 2 (the baseline leaves one out)")
        require(self.scale_rewards in GRPO_SCALE_REWARDS, "align.scale_rewards", self.scale_rewards,
                " | ".join(GRPO_SCALE_REWARDS))
        require(self.loss_type in GRPO_LOSS_TYPES, "align.loss_type", self.loss_type, " | ".join(GRPO_LOSS_TYPES))
        for name in ("dpo_epochs", "sft_epochs"):
            require(getattr(self, name) > 0, f"align.{name}", getattr(self, name), "> 0")
        for name in ("dpo_lr", "sft_lr"):
            require(getattr(self, name) is None or getattr(self, name) > 0, f"align.{name}", getattr(self, name),
                    "null or > 0")
        for name in ("dpo_batch_size", "sft_batch_size", "rft_prompts", "demos", "demo_names"):
            require(getattr(self, name) >= 1, f"align.{name}", getattr(self, name), ">= 1")
        require(self.best_of >= 2, "align.best_of", self.best_of, ">= 2")
        require(self.demo_exponent >= 0, "align.demo_exponent", self.demo_exponent, ">= 0")
        require(self.cross_input_samples == 0 or self.cross_input_samples >= 2, "align.cross_input_samples",
                self.cross_input_samples, "0 (off) or >= 2")


# Every stage of the app; `rlhf/__main__.py` maps each to its function. The study is its own app (rlhf.study).
STAGES = ("pretrain", "preferences", "reward", "predict", "ppo", "align", "summary")


@dataclass
class RlhfConfig:
    """The whole `python -m rlhf` config.

    ``seed`` is the root seed: world.seed, pretrain.seed (and pretrain.quality.sampling.seed), preferences.seed
    (and preferences.sampling.seed), reward.seed and ppo.seed default to ``${seed}``, so `seed=1` moves every
    stage, while `ppo.seed=1` (the sweep's) moves one stage and leaves the others where they are. The diversity
    callback's draw keeps its own fixed seed (DiversityConfig).
    """

    stage: str = "pretrain"  # which stage to run: see STAGES
    seed: int = 0  # root seed: every stage seed is ${seed} unless overridden
    cache_dir: str = field(default_factory=default_cache_dir)  # built worlds/models, keyed by config hash
    world: WorldConfig = field(default_factory=WorldConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    preferences: PreferencesConfig = field(default_factory=PreferencesConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    diversity: DiversityConfig = field(default_factory=DiversityConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    summary: SummaryConfig = field(default_factory=SummaryConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)

    def __post_init__(self):
        require(self.stage in STAGES, "stage", self.stage, " | ".join(STAGES))
        if self.stage == "align" and self.align.method in ("rloo", "grpo"):  # TRL's baseline is per generation batch
            require(self.ppo.batch_size % self.align.num_generations == 0, "align.num_generations",
                    self.align.num_generations, f"a divisor of ppo.batch_size ({self.ppo.batch_size})")


def register_configs() -> None:
    ConfigStore.instance().store(name="rlhf_schema", node=RlhfConfig)
