"""The tiny base model scored against its world's ground truth: the `quality` block of results.json.

``card_quality`` is a pure function of generated card texts and the ground truth; ``measure_quality`` draws
the samples through the shared engine under ``pretrain.quality.sampling`` (cards from the plain persona prompt,
cards from the chat instruction, and the paper's three prompts for token entropy, Eq. 3.2) and writes continuations of
"Grace Hopper was" and "Steve is the CEO of a startup company" for a person to read.
"""
from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from measure.metrics.attributes import attribute_entropy_bits, distinct_count, missing_share, tv_distance
from measure.metrics.entropy import entropy_bits, mean_per_completion, top_k_entropy_bits
from measure.metrics.sentiment import polarity_shares, vader_compound
from measure.persona_parse import FIELDS, PERSONA_CARD_PROMPT, PERSONA_INSTRUCTION, parse_persona
from measure.prompts import encode_prompt
from measure.sampling import sample
from measure.stats import summarize
from rlhf.config import QualityConfig
from rlhf.world.corpus import GRACE_HOPPER_PROMPT, STEVE_PROMPT

log = logging.getLogger(__name__)

# The bars.
MIN_PARSE_RATE = 0.95
MAX_TV = 0.15
MIN_DISTINCT_AGES = 40
MIN_POLARITY_SHARE = 0.15
VADER_THRESHOLD = 0.3
TV_FIELDS = ("gender", "nationality", "ethnicity", "mbti")


def _or_none(fn, *args):
    try:
        return fn(*args)
    except ValueError:  # no valid value at all (e.g. an untrained model)
        return None


def _truth_entropy_bits(probs: Dict[str, float]) -> float:
    return float(entropy_bits(np.array(list(probs.values()))))


def card_quality(texts: Sequence[str], truth: dict) -> dict:
    """Parse rate, attribute distances to the truth, diversity and review polarity of generated cards.

    Unparseable cards count against ``parse_rate``; each attribute's distribution uses the cards where that
    attribute was read. ``checks`` says which of the issue's bars are met.
    """
    if len(texts) == 0:
        raise ValueError("card_quality needs at least one text")
    parsed = [parse_persona(t) for t in texts]
    column = {f: [getattr(p, f) for p in parsed] for f in FIELDS}
    ages = np.array([a for a in column["age"] if a is not None], dtype=np.float64)
    truth_ages = {int(k): p for k, p in truth["age"].items()}
    reviews = [r for r in column["review"] if r is not None]
    polarity = polarity_shares(vader_compound(reviews), VADER_THRESHOLD) if reviews else None
    truth_vader = truth.get("review_vader", {}).get("coffee_machine", {})
    out = {
        "n_samples": len(texts),
        "parse_rate": sum(p.ok for p in parsed) / len(parsed),
        "missing_share": {f: missing_share(parsed, f) for f in FIELDS},
        "tv_distance": {f: _or_none(tv_distance, column[f], truth[f]) for f in TV_FIELDS},
        "mbti_types_seen": distinct_count(column["mbti"]),
        "distinct_ages": distinct_count(column["age"]),
        "distinct_first_names": distinct_count(column["first_name"]),
        "distinct_last_names": distinct_count(column["last_name"]),
        "age_mean": float(ages.mean()) if ages.size else None,
        "age_std": float(ages.std(ddof=1)) if ages.size > 1 else None,
        "truth_age_mean": sum(a * p for a, p in truth_ages.items()),
        "attribute_entropy_bits": {
            f: {"generated": _or_none(attribute_entropy_bits, column[f]),
                "truth": _truth_entropy_bits(truth[f]) if f in truth else None}
            for f in ("first_name", "last_name", "gender", "age", "nationality", "ethnicity", "mbti")},
        "vader_neg_share": polarity["neg_share"] if polarity else None,
        "vader_pos_share": polarity["pos_share"] if polarity else None,
        "truth_vader_neg_share": truth_vader.get("vader_neg_share"),
        "truth_vader_pos_share": truth_vader.get("vader_pos_share"),
        "review_length_chars_mean": float(np.mean([len(r) for r in reviews])) if reviews else None,
    }
    out["checks"] = quality_checks(out)
    out["passed"] = all(out["checks"].values())
    return out


def quality_checks(q: dict) -> Dict[str, bool]:
    """Each bar of the issue as a boolean; a polarity bar applies only where the truth has that share."""
    checks = {"parse_rate": q["parse_rate"] >= MIN_PARSE_RATE,
              "mbti_types_seen": q["mbti_types_seen"] == 16,
              "distinct_ages": q["distinct_ages"] >= MIN_DISTINCT_AGES}
    for f in TV_FIELDS:
        checks[f"tv_distance.{f}"] = q["tv_distance"][f] is not None and q["tv_distance"][f] <= MAX_TV
    for side in ("neg", "pos"):
        truth_share = q[f"truth_vader_{side}_share"]
        if truth_share is None or truth_share >= MIN_POLARITY_SHARE:
            checks[f"vader_{side}_share"] = (q[f"vader_{side}_share"] or 0.0) >= MIN_POLARITY_SHARE
    return checks


def token_entropy(generations: List) -> dict:
    """Mean per-completion token entropy (Eq. 3.2 over the top 5, and over the full vocabulary), bits."""
    top5 = mean_per_completion([top_k_entropy_bits(np.array(g.topk_probs)) if g.topk_probs else []
                                for g in generations])
    full = mean_per_completion([g.entropy_bits for g in generations])
    s_top5, s_full = summarize(top5), summarize(full)
    return {"top5": s_top5["mean"], "full": s_full["mean"], "top5_std": s_top5["std"], "full_std": s_full["std"],
            "top5_ci95": s_top5["ci95"], "full_ci95": s_full["ci95"], "n": s_top5["n"]}


def _write_samples(path: Path, prompt: str, generations: List, n: int) -> None:
    blocks = [f"--- {i + 1}\n{prompt}{g.text}" for i, g in enumerate(generations[:n])]
    path.write_text("\n\n".join(blocks) + "\n")


def measure_quality(model, tokenizer, truth: dict, cfg: QualityConfig, out_dir: Path) -> dict:
    """Sample from the model and score it; sample texts go to ``out_dir/samples/``."""
    samples_dir = Path(out_dir) / "samples"
    samples_dir.mkdir(parents=True, exist_ok=True)
    runs = {
        "persona_card": (PERSONA_CARD_PROMPT, False, cfg.n_cards, cfg.card_tokens),
        "persona_instruction": (PERSONA_INSTRUCTION, True, cfg.n_chat_cards, cfg.card_tokens),
        "grace_hopper": (GRACE_HOPPER_PROMPT, False, cfg.n_entropy, cfg.grace_tokens),
        "steve": (STEVE_PROMPT, False, cfg.n_entropy, cfg.steve_tokens),
    }
    generations = {}
    for key, (prompt, chat, n, n_predict) in runs.items():
        ids = encode_prompt(tokenizer, prompt, chat=chat)
        generations[key] = sample(model, tokenizer, ids, replace(cfg.sampling, n_predict=n_predict, n_samples=n),
                                  prompt=prompt, desc=f"quality: {key}",
                                  name="pretrain.quality.sampling")
    cards = [g.text for g in generations["persona_card"]]
    quality = card_quality(cards, truth)
    chat_parsed = [parse_persona(g.text) for g in generations["persona_instruction"]]
    quality["chat_parse_rate"] = sum(p.ok for p in chat_parsed) / len(chat_parsed)
    quality["cards_stopped_at_eos"] = float(np.mean([g.stopped_at_eos for g in generations["persona_card"]]))
    quality["token_entropy_bits"] = {key: token_entropy(gens) for key, gens in generations.items()}
    with open(samples_dir / "persona_cards.jsonl", "w") as fh:
        fh.writelines(json.dumps({"text": t, **parse_persona(t).as_dict()}) + "\n" for t in cards)
    with open(samples_dir / "persona_instruction_cards.jsonl", "w") as fh:
        fh.writelines(json.dumps({"text": g.text}) + "\n" for g in generations["persona_instruction"])
    _write_samples(samples_dir / "grace_hopper.txt", GRACE_HOPPER_PROMPT, generations["grace_hopper"], cfg.n_show)
    _write_samples(samples_dir / "steve.txt", STEVE_PROMPT, generations["steve"], cfg.n_show)
    log.info("quality: parse rate %.3f, TV %s, %d types, %d ages, VADER neg %.2f pos %.2f; passed=%s",
             quality["parse_rate"], {k: None if v is None else round(v, 3) for k, v in quality["tv_distance"].items()},
             quality["mbti_types_seen"], quality["distinct_ages"], quality["vader_neg_share"] or 0.0,
             quality["vader_pos_share"] or 0.0, quality["passed"])
    return quality
