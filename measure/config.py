"""Typed configuration for the measurement app (Hydra structured configs).

YAML in ``conf/`` extends these schemas, so a misspelt key or a wrong type fails while Hydra composes
the config; ranges are checked in ``__post_init__`` when the entry point turns the DictConfig into
these objects with ``OmegaConf.to_object``. Either way the run stops before any model loads, with one
line naming the field and the accepted range. The schemas never touch the filesystem (a config can be
validated before the files it names exist); ``check_inputs`` checks the input files, at the entry point.

Seeds: one root ``seed``; ``sampling.seed`` (the samples) and ``experiment.stats_seed`` (bootstraps,
permutation tests, chunk shuffles, k-means, t-SNE) default to it and can each be set on their own.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import II, MISSING

WANDB_MODES = ("disabled", "offline", "online")
DTYPES = ("auto", "float32", "bfloat16", "float16")
DEVICES = ("auto", "cpu", "cuda")
EXPERIMENTS = ("entropy", "semantic", "personas", "attractor", "texts")
MODEL_BUILDERS = ("tiny_random",)
GROUP_BY = ("pooled", "prompt")  # experiment=texts: one set per label (cross-input) | per (label, prompt)
TEXTS_FILE_ACCEPTED = "an existing JSONL file of {model, text} lines (or JSON list, or a datasets save_to_disk folder)"
ROOT_SEED = II("seed")  # "${seed}": a field with this default follows MeasureConfig.seed
ROOT_SEED_DEFAULT = 0  # MeasureConfig.seed's default, used where a config is built in Python without a root
# Lowest sampling temperature: at 1e-4 a logit gap of 0.01 is already a factor e^100 (sampling is greedy to float
# precision), and far below it logits / T overflows float32 (near 1e-37 for logits of ~10) and sampling fails.
MIN_TEMPERATURE = 1e-4


class ConfigError(ValueError):
    """A config value outside its accepted range; the message is one line naming the field."""


def require(ok: bool, field_name: str, value, accepted: str) -> None:
    """Raise ConfigError(`field: value is out of range; accepted ...`) unless ``ok``."""
    if not ok:
        raise ConfigError(f"{field_name}: {value!r} is out of range; accepted {accepted}")


def require_finite(node, prefix: str) -> None:
    """Every float of the dataclass ``node`` (in lists and dicts too) is finite: ``inf`` passes checks such as
    ``lr > 0`` and ``nan`` makes every later number NaN, so neither is a value. Call first in ``__post_init__``."""
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        items = value if isinstance(value, (list, tuple)) else value.values() if isinstance(value, dict) else [value]
        bad = [v for v in items if isinstance(v, float) and not math.isfinite(v)]
        require(not bad, f"{prefix}.{f.name}", value, "a finite number (not inf or nan)")


def _seed_or_default(value):
    """``value``, or ROOT_SEED_DEFAULT when it is the unresolved ``${seed}`` of a config built in Python (Hydra
    resolves it before the dataclass is built; on its own, ``SamplingConfig()`` has no root to follow)."""
    return ROOT_SEED_DEFAULT if value == ROOT_SEED else value


def following_root_seed(node, field_name: str):
    """``node`` with ``field_name`` set back to ``${seed}`` (after __post_init__), so that inside MeasureConfig
    the field follows the root seed both under Hydra and when MeasureConfig is built in Python."""
    setattr(node, field_name, ROOT_SEED)
    return node


def default_cache_dir() -> str:
    """Where built models (tiny random pair, tiny world) are cached: $RMC_CACHE_DIR or ./.cache/rmc."""
    return os.environ.get("RMC_CACHE_DIR", os.path.join(os.getcwd(), ".cache", "rmc"))


@dataclass
class WandbConfig:
    mode: str = "offline"  # disabled | offline (default: no login, sync later) | online
    project: str = "rlhf-mode-collapse"  # one project for every stage, grouped by run
    entity: Optional[str] = None  # wandb team/user; None = the logged-in default
    group: Optional[str] = None  # runs of one sweep or pipeline share a group
    tags: List[str] = field(default_factory=list)

    def __post_init__(self):
        require(self.mode in WANDB_MODES, "wandb.mode", self.mode, " | ".join(WANDB_MODES))


@dataclass
class ModelConfig:
    # hub id (meta-llama/Llama-2-7b-hf) or a local directory; null when the model is served (base_url)
    path: Optional[str] = MISSING
    label: str = "base"  # name used in results.json, figures and wandb
    chat: bool = False  # wrap instruction prompts (Experiment 1) in the model's chat template
    adapter: Optional[str] = None  # PEFT (LoRA) adapter directory applied on top of `path`
    dtype: str = "auto"  # auto: bfloat16 on CUDA when supported, float32 on CPU
    device: str = "auto"  # auto: CUDA when present, else CPU
    trust_remote_code: bool = False  # never run a repository's code unless asked
    # pickle weights (pytorch_model.bin, adapter_model.bin) can run code when loaded: safetensors only unless asked
    allow_pickle: bool = False
    build: Optional[str] = None  # tiny_random: build at `path` from config on first use (tests, smoke runs)
    build_seed: int = 0  # seed of the random init when `build` is set
    init_std: float = 0.02  # initializer_range of a built model (larger = peakier logits)
    missing_hint: Optional[str] = None  # extra advice when `path` is missing (e.g. the command that builds it)
    # --- a served model (OpenAI-compatible endpoint: vLLM, SGLang, llama.cpp, transformers serve, OpenAI) instead
    # of weights in this process; measure/endpoint.py. null = load `path` here.
    base_url: Optional[str] = None  # e.g. http://127.0.0.1:8000/v1 (`make serve MODEL=<dir> PORT=8000`)
    model_name: Optional[str] = None  # the server's model id; null = the one model the server lists
    # NAME of the environment variable holding the API key (OPENAI_API_KEY for OpenAI); the key itself is never
    # in config, results, logs or wandb. null = no key (a local vLLM server needs none)
    auth_env: Optional[str] = None
    concurrency: int = 8  # requests in flight at once
    timeout_s: float = 120.0  # per request: connect, and wait for the whole answer
    max_retries: int = 4  # retries of a request answered 429/5xx or cut off, with exponential backoff
    # extra JSON fields sent with every request, for a server's own options (vLLM: {top_k: -1}); a field named like
    # a credential is refused on the command line (measure.errors); name the key's variable in auth_env instead
    extra_body: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        require_finite(self, f"model.{self.label}")
        require(bool(self.path) or bool(self.base_url), f"model.{self.label}.path", self.path,
                "a hub id or a local directory (or model.<label>.base_url for a served model)")
        if self.base_url:
            require(self.base_url.startswith(("http://", "https://")), f"model.{self.label}.base_url",
                    self.base_url, "an http(s) URL such as http://127.0.0.1:8000/v1")
            require(not self.adapter and not self.build, f"model.{self.label}.adapter",
                    self.adapter or self.build, "null for a served model (serve the adapter with the server: "
                    "vLLM --enable-lora --lora-modules NAME=DIR, then model_name=NAME)")
            require(self.auth_env is None or (bool(self.auth_env) and self.auth_env.replace("_", "").isalnum()),
                    f"model.{self.label}.auth_env", self.auth_env, "null or an environment variable NAME")
        require(self.concurrency >= 1, f"model.{self.label}.concurrency", self.concurrency, ">= 1")
        require(self.timeout_s > 0, f"model.{self.label}.timeout_s", self.timeout_s, "> 0 seconds")
        require(self.max_retries >= 0, f"model.{self.label}.max_retries", self.max_retries, ">= 0")
        require(self.dtype in DTYPES, f"model.{self.label}.dtype", self.dtype, " | ".join(DTYPES))
        require(self.device in DEVICES, f"model.{self.label}.device", self.device, " | ".join(DEVICES))
        require(self.build is None or self.build in MODEL_BUILDERS, f"model.{self.label}.build",
                self.build, "null | " + " | ".join(MODEL_BUILDERS))
        require(self.init_std > 0, f"model.{self.label}.init_std", self.init_std, "> 0")


@dataclass
class ModelPairConfig:
    base: ModelConfig = field(default_factory=lambda: ModelConfig(label="base"))
    aligned: ModelConfig = field(default_factory=lambda: ModelConfig(label="aligned"))


@dataclass
class SamplingConfig:
    temperature: float = 1.0  # Eq. 3.1; the paper uses T = 1 for maximum variation
    n_predict: int = 64  # max new tokens; a sequence stops earlier at EOS
    n_samples: int = 100  # completions per model
    batch_size: int = 50  # sequences sampled together (KV cache); bigger is faster until memory runs out
    top_k: int = 5  # top-k probabilities recorded per token (Eq. 3.2 uses 5)
    # seed of the samples only (per-batch generators, so a resumed run matches a run that was never killed);
    # defaults to the root `seed`. Statistics have their own: experiment.stats_seed.
    seed: int = ROOT_SEED
    # a folder (e.g. another run of this experiment) whose generations_<label>.jsonl (any engine progress file of
    # the same name) is copied in as this run's resume file when its header matches this run's: same model
    # fingerprint, sampling config and prompt. null = sample here. Lets the base model's samples, which do not
    # depend on the PPO beta, be drawn once per experiment. Not part of the header: it changes no sample.
    reuse_from: Optional[str] = None

    def __post_init__(self):
        self.seed = _seed_or_default(self.seed)
        require_finite(self, "sampling")
        require(isinstance(self.seed, int) and not isinstance(self.seed, bool), "sampling.seed", self.seed,
                "an integer")
        require(self.temperature > 0, "sampling.temperature", self.temperature, "temperature > 0")
        require(self.temperature >= MIN_TEMPERATURE, "sampling.temperature", self.temperature,
                f"temperature >= {MIN_TEMPERATURE:g} (lower is greedy to float precision and overflows float32)")
        require(self.n_predict > 0, "sampling.n_predict", self.n_predict, "n_predict >= 1")
        require(self.n_samples > 0, "sampling.n_samples", self.n_samples, "n_samples >= 1")
        require(self.batch_size > 0, "sampling.batch_size", self.batch_size, "batch_size >= 1")
        require(self.top_k >= 2, "sampling.top_k", self.top_k, "top_k >= 2")


@dataclass
class ExperimentConfig:
    name: str = "entropy"  # entropy (Exp 3) | semantic (Exp 2) | personas (Exp 1) | attractor (5.1) | texts
    prompt: str = "Steve is the CEO of a startup company"  # the paper's Experiment 3 prompt
    n_bootstrap: int = 2000  # bootstrap resamples for every 95% interval
    figure_tokens: int = 16  # tokens shown in the per-token figures (Fig. 12 and 13 use 16)
    # experiment=texts: JSONL / JSON list of {"model": label, "text": ...} (or NoveltyBench's {"prompt", "model",
    # "generations": [...]}), or a `datasets` save_to_disk folder; field names: measure/texts_io.py
    texts_file: Optional[str] = None
    group_by: str = "pooled"  # experiment=texts: pooled (one set per label, cross-input) | prompt (per input)
    k_min: int = 2  # k-means: smallest k tried (silhouette is undefined at k = 1; identical texts give k = 1)
    k_max: int = 20  # largest k tried; the paper found 14 clusters (Fig. 9), so 20 leaves room
    tsne_perplexity: float = 30.0  # the paper's t-SNE perplexity (Fig. 9, 10); clipped to n - 1 for small sets
    chunk_size: int = 20  # set-level metrics are compared over disjoint chunks of this many texts (independent units)
    # lexical metrics are also computed on texts cut to this many tokens (shorter texts left out); null = the
    # shortest of the sets' median lengths
    length_control: Optional[int] = None
    length_short_texts: str = "keep"  # texts shorter than length_control: keep (whole) | drop (left out)
    equal_n_draws: int = 10  # set metrics at equal n: draws of the larger set subsampled to the smaller n, averaged
    n_permutations: int = 200  # permutation tests of set metrics (smallest p 1/201); sizes kept
    permutation_max_n: int = 500  # permutation tests run on a seeded sample of at most this many texts per set
    self_bleu_references: int = 500  # self-BLEU: larger sets use a fixed seeded sample of this many references
    min_silhouette: float = 0.25  # best mean silhouette below this: "no cluster structure", k null (Kaufman-Rousseeuw)
    map_max_points: int = 1000  # t-SNE maps a seeded sample of at most this many texts per set
    # SBERT reads at most this many word pieces per text; null = the model's own (256 for all-MiniLM-L6-v2, which
    # was trained on 128): 128 halves the cost of long texts; results.json reports the share of texts cut
    sbert_max_seq_length: Optional[int] = None
    # SBERT measures (cosine, Vendi, clusters, map) of a larger set use a seeded sample of this many of its texts
    # (embedding is the floor of the cost: ~40 texts/s on 2 busy cores); lexical measures use every text
    sbert_max_texts: int = 2000
    ead_vocab_size: int = 50257  # V of expectation-adjusted distinct n-grams (Kirk et al. 2024 use GPT-2's)
    persona_prompt: Optional[str] = None  # Exp 1 chat instruction; null = measure.persona_parse.PERSONA_INSTRUCTION
    persona_plain_prompt: Optional[str] = None  # Exp 1 base-model text; null = persona_parse.PERSONA_CARD_PROMPT
    ground_truth_file: Optional[str] = None  # tiny world's truth JSON (attribute distributions) for TV distances
    # personas, exact attribute distributions (teacher forcing; measure/exact_attributes.py): the base model's cards
    # whose prefixes are the contexts (200: CIs of a few hundredths of a bit on the tiny world; 0 = off)
    n_contexts: int = 200
    exact_context_tokens: int = 160  # tokens drawn per context card: up to its last attribute (the review is not needed)
    # candidate values per attribute for a real model ({nationality: [American, ...]}); an attribute not listed takes
    # the ground truth's values (ground_truth_file), and one with neither is not scored
    attribute_values: Dict[str, List[str]] = field(default_factory=dict)
    exact_value_format: str = " {value}\n"  # a value as written after "Key:": the tiny world's card format
    exact_chat_separator: str = " "  # between a chat prompt and a card drawn as plain text (Llama-2: "[/INST] ")
    source_dir: Optional[str] = None  # attractor: a semantic run dir whose generations_<label>.jsonl are reused
    attractor_continuations: int = 20  # attractor: continuations per model of each perturbed representative
    # seed of the statistics: bootstrap intervals, permutation tests, chunk shuffles, k-means and t-SNE. Apart
    # from sampling.seed so that new samples and a new resampling can be told apart; defaults to the root `seed`.
    stats_seed: int = ROOT_SEED

    def __post_init__(self):
        self.stats_seed = _seed_or_default(self.stats_seed)
        require_finite(self, "experiment")
        require(isinstance(self.stats_seed, int) and not isinstance(self.stats_seed, bool), "experiment.stats_seed",
                self.stats_seed, "an integer")
        require(self.name in EXPERIMENTS, "experiment.name", self.name, " | ".join(EXPERIMENTS))
        require(self.n_bootstrap >= 100, "experiment.n_bootstrap", self.n_bootstrap, "n_bootstrap >= 100")
        require(self.figure_tokens >= 1, "experiment.figure_tokens", self.figure_tokens, "figure_tokens >= 1")
        require(2 <= self.k_min <= self.k_max, "experiment.k_min/k_max", (self.k_min, self.k_max),
                "2 <= k_min <= k_max")
        require(self.tsne_perplexity > 0, "experiment.tsne_perplexity", self.tsne_perplexity, "> 0")
        require(self.chunk_size >= 2, "experiment.chunk_size", self.chunk_size, "chunk_size >= 2")
        require(self.length_control is None or self.length_control >= 1, "experiment.length_control",
                self.length_control, "null or >= 1 (tokens)")
        require(self.length_short_texts in ("keep", "drop"), "experiment.length_short_texts",
                self.length_short_texts, "keep | drop")
        require(self.equal_n_draws >= 1, "experiment.equal_n_draws", self.equal_n_draws, "equal_n_draws >= 1")
        require(self.n_permutations >= 19, "experiment.n_permutations", self.n_permutations, "n_permutations >= 19")
        require(self.permutation_max_n >= 2, "experiment.permutation_max_n", self.permutation_max_n, ">= 2")
        require(self.self_bleu_references >= 2, "experiment.self_bleu_references", self.self_bleu_references, ">= 2")
        require(-1 <= self.min_silhouette <= 1, "experiment.min_silhouette", self.min_silhouette, "-1 <= x <= 1")
        require(self.sbert_max_seq_length is None or 8 <= self.sbert_max_seq_length <= 512,
                "experiment.sbert_max_seq_length", self.sbert_max_seq_length, "null or 8..512 word pieces")
        require(self.sbert_max_texts >= 2, "experiment.sbert_max_texts", self.sbert_max_texts, ">= 2")
        require(self.map_max_points >= 2, "experiment.map_max_points", self.map_max_points, "map_max_points >= 2")
        require(self.ead_vocab_size >= 2, "experiment.ead_vocab_size", self.ead_vocab_size, "ead_vocab_size >= 2")
        require(self.attractor_continuations >= 2, "experiment.attractor_continuations",
                self.attractor_continuations, "attractor_continuations >= 2")
        require(self.n_contexts >= 0, "experiment.n_contexts", self.n_contexts, "n_contexts >= 0 (0 = off)")
        require(self.exact_context_tokens >= 1, "experiment.exact_context_tokens", self.exact_context_tokens, ">= 1")
        from measure.persona_parse import ATTRIBUTES

        require(set(self.attribute_values) <= set(ATTRIBUTES), "experiment.attribute_values",
                sorted(self.attribute_values), f"keys among {list(ATTRIBUTES)}")
        require("{value}" in self.exact_value_format, "experiment.exact_value_format", self.exact_value_format,
                "a string holding {value}")
        require(self.group_by in GROUP_BY, "experiment.group_by", self.group_by, " | ".join(GROUP_BY))
        if self.name == "texts":  # the file itself is checked by check_inputs, not here (no filesystem in schemas)
            require(bool(self.texts_file), "experiment.texts_file", self.texts_file, TEXTS_FILE_ACCEPTED)


@dataclass
class MeasureConfig:
    # the one root seed: sampling.seed and experiment.stats_seed default to it (each still overridable)
    seed: int = ROOT_SEED_DEFAULT
    model: ModelPairConfig = field(default_factory=ModelPairConfig)
    experiment: ExperimentConfig = field(default_factory=lambda: following_root_seed(ExperimentConfig(), "stats_seed"))
    sampling: SamplingConfig = field(default_factory=lambda: following_root_seed(SamplingConfig(), "seed"))
    wandb: WandbConfig = field(default_factory=WandbConfig)
    cache_dir: str = field(default_factory=default_cache_dir)  # built models live here, keyed by config hash
    labels: List[str] = field(default_factory=lambda: ["base", "aligned"])  # which of the pair to run

    def __post_init__(self):
        for label in self.labels:
            require(label in ("base", "aligned"), "labels", label, "a subset of [base, aligned]")
        if self.sampling.seed == ROOT_SEED:  # built in Python: follow the root seed as Hydra would
            self.sampling.seed = self.seed
        if self.experiment.stats_seed == ROOT_SEED:
            self.experiment.stats_seed = self.seed


def check_inputs(cfg: MeasureConfig) -> None:
    """The input files the experiment reads exist; ConfigError in one line naming the field otherwise.

    Kept out of the schemas' ``__post_init__`` so that a config can be composed and validated before the
    files it names are written (the one-command demo validates every step's config before the first runs).
    The entry point calls it before any model loads."""
    exp = cfg.experiment
    if exp.name == "texts":
        path = os.path.expanduser(exp.texts_file or "")
        require(bool(exp.texts_file) and (os.path.isfile(path) or os.path.isdir(path)),
                "experiment.texts_file", exp.texts_file, TEXTS_FILE_ACCEPTED)
    if exp.name == "personas" and exp.ground_truth_file:
        require(os.path.isfile(os.path.expanduser(exp.ground_truth_file)), "experiment.ground_truth_file",
                exp.ground_truth_file, "null or an existing ground-truth JSON file")
    if exp.name == "attractor" and exp.source_dir:
        require(os.path.isdir(os.path.expanduser(exp.source_dir)), "experiment.source_dir",
                exp.source_dir, "null or a semantic run directory")


def register_configs() -> None:
    ConfigStore.instance().store(name="measure_schema", node=MeasureConfig)
