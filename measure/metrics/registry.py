"""The one table of metrics: each declared once, with its key, unit, level, direction and aggregation.

Everything that names a metric derives the name from here: the PPO diversity callback and the final PPO
measurement (``diversity/<prompt>/<key>``), the summary across beta (its columns and findings), the report's
metric table and "what this run shows" sentences, and the experiments' wandb keys. A key may hold a parameter,
filled by ``key(...)``: ``top{k}_entropy_bits`` takes k from ``sampling.top_k``, so top-k keys follow k everywhere.

To add a metric, add one row to ``METRICS``; nothing else needs to know its unit or which way is "more diverse".

Fields of a row:

- ``key``: the name in results.json and (after a namespace such as ``diversity/``) in wandb; ``{k}`` is a parameter
- ``label``: how tables and figures title it (the same parameters filled in)
- ``unit``: bits | nats | share | count | ratio | cosine | score | effective_count
- ``level``: ``token`` (scored per token, pooled per text), ``text`` (one value per text or context), ``set`` (a
  property of a whole set of texts or values; depends on its size n, so compared at equal n)
- ``direction``: which way is more diverse: ``higher`` | ``lower`` | ``neither`` (not a diversity measure: reward,
  KL, coverage, format)
- ``aggregation``: how the reported number is pooled from its parts
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

# the version of the metric definitions every results.json records (meta.metrics_version): bump it when a metric
# changes what it computes, so numbers from before and after are not compared as if they were one measure
METRICS_VERSION = "1"
DIRECTIONS = ("higher", "lower", "neither")
LEVELS = ("token", "text", "set")


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    level: str
    direction: str
    aggregation: str

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"{self.key}: direction {self.direction!r}; accepted {DIRECTIONS}")
        if self.level not in LEVELS:
            raise ValueError(f"{self.key}: level {self.level!r}; accepted {LEVELS}")

    def name(self, **params) -> str:
        """The key with its parameters filled in (``top{k}_entropy_bits`` -> ``top5_entropy_bits``)."""
        return self.key.format(**params)

    def title(self, **params) -> str:
        return self.label.format(**params)

    def more_diverse(self, a: float, b: float) -> Optional[bool]:
        """Whether value ``a`` is more diverse than ``b`` (None for a metric without a direction, or a tie)."""
        if self.direction == "neither" or a == b:
            return None
        return (a > b) == (self.direction == "higher")


M = Metric
METRICS: Tuple[Metric, ...] = (
    # token level (Experiment 3, Eq. 3.2)
    M("top{k}_entropy_bits", "top-{k} entropy (bits)", "bits", "token", "higher",
      "per token: Eq. 3.2 over the top k renormalised; mean over a completion's tokens, then over completions"),
    M("full_entropy_bits", "full entropy (bits)", "bits", "token", "higher",
      "per token: entropy of the whole next-token distribution; mean per completion, then over completions"),
    # sets of texts (Experiment 2)
    M("distinct_1", "distinct-1", "share", "set", "higher", "distinct unigrams / all unigrams over the set"),
    M("distinct_2", "distinct-2", "share", "set", "higher", "distinct bigrams / all bigrams over the set"),
    M("distinct_3", "distinct-3", "share", "set", "higher", "distinct trigrams / all trigrams over the set"),
    M("ead_1to5", "EAD n=1..5", "share", "set", "higher", "expectation-adjusted distinct n-grams, mean over n"),
    M("self_bleu_4", "self-BLEU-4", "score", "set", "lower", "BLEU-4 of each text against the others, mean"),
    M("compression_ratio", "gzip compression ratio", "ratio", "set", "lower", "raw / gzip bytes of the joined set"),
    M("tfidf_cosine", "TF-IDF cosine", "cosine", "set", "lower", "mean over distinct pairs i < j"),
    M("sbert_cosine", "SBERT cosine", "cosine", "set", "lower", "mean over distinct pairs i < j"),
    M("vendi_sbert", "Vendi (SBERT)", "effective_count", "set", "higher", "exp of the entropy of the kernel's eigenvalues"),
    M("clusters_k", "k-means k", "count", "set", "higher", "k with the best mean silhouette"),
    M("vader_mean", "VADER mean", "score", "text", "neither", "mean VADER compound over texts (the review of a card)"),
    M("vader_std", "VADER std", "score", "text", "higher", "std (ddof 1) of VADER compound over texts"),
    M("mean_tokens", "mean length (tokens)", "count", "text", "neither", "mean over completions"),
    M("eos_share", "EOS share", "share", "text", "neither", "share of completions that ended with EOS"),
    # persona cards (Experiment 1): counted over parsed cards
    M("attribute_entropy_bits", "{attr} entropy (bits)", "bits", "set", "higher",
      "plug-in entropy of the parsed values (at most log2 n: compare at equal n)"),
    M("attribute_entropy_chao_shen_bits", "{attr} Chao-Shen entropy (bits)", "bits", "set", "higher",
      "coverage-adjusted entropy of the parsed values (Chao and Shen 2003)"),
    M("attribute_distinct", "{attr} distinct values", "count", "set", "higher", "distinct parsed values"),
    M("missing_share", "{attr} missing", "share", "set", "neither", "share of cards without a valid value"),
    M("parse_ok_share", "parse rate", "share", "set", "neither", "share of cards with every field valid"),
    M("tv_distance", "{attr} TV distance to truth", "share", "set", "neither", "0.5 sum |p_hat - p_truth|"),
    M("truth_entropy_bits", "{attr} true entropy (bits)", "bits", "set", "neither", "entropy of the ground truth"),
    # persona cards, exact: teacher-forced distributions over the known values (measure.exact_attributes)
    M("marginal_entropy_bits", "{attr} exact marginal entropy (bits)", "bits", "set", "higher",
      "entropy of the context-averaged forced-choice distribution; bootstrap over contexts"),
    M("conditional_entropy_bits", "{attr} exact conditional entropy (bits)", "bits", "text", "higher",
      "mean over contexts of each context's forced-choice entropy; bootstrap over contexts"),
    M("covered_mass", "{attr} covered mass", "share", "text", "neither",
      "mean over contexts of the probability on the candidate values before renormalising"),
    M("conditional_kl_nats", "{attr} exact KL to base (nats)", "nats", "text", "neither",
      "mean over the base model's contexts of KL(model || base) of the forced-choice distributions"),
    # the attractor test (section 5.1)
    M("return_share", "return share", "share", "text", "lower",
      "share of perturbed continuations that return to the model's own nearest cluster"),
    M("climb", "probability climb", "score", "text", "neither", "late - early mean probability of the sampled token"),
    # RLHF: reward, KL (TRL's own keys, objective/kl etc., stay TRL's)
    M("reward_model_score", "reward-model score", "score", "text", "neither", "mean over completions"),
    M("annotator_quality", "annotator quality", "score", "text", "neither", "mean simulated-annotator utility"),
    M("sequence_kl_nats", "sequence KL to base (nats)", "nats", "text", "neither",
      "mean over the policy's samples of sum_t log pi(y_t) - log pi_0(y_t) (k1)"),
    M("kl_by_field", "{field} KL to base (nats)", "nats", "text", "neither",
      "mean over persona samples of the log-ratio summed over the tokens of one card field"),
)
REGISTRY: Dict[str, Metric] = {m.key: m for m in METRICS}
_PATTERNS = [(re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+?)", re.escape(m.key)) + "$"), m)
             for m in METRICS]


def metric(key: str) -> Metric:
    """The row of ``key``: a declared key (``top{k}_entropy_bits``) or a filled-in one (``top5_entropy_bits``)."""
    if key in REGISTRY:
        return REGISTRY[key]
    for pattern, m in _PATTERNS:
        if pattern.match(key):
            return m
    raise KeyError(f"{key!r} is not a registered metric (measure/metrics/registry.py)")


def key(name: str, **params) -> str:
    """The results/wandb key of metric ``name`` with its parameters: ``key("top{k}_entropy_bits", k=5)``."""
    return REGISTRY[name].name(**params)


def topk_key(k: int) -> str:
    """``top{k}_entropy_bits`` for k (Eq. 3.2; the paper's k is 5)."""
    return key("top{k}_entropy_bits", k=int(k))
