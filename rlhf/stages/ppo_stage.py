"""`python -m rlhf stage=ppo ppo.beta=<beta>`: one LoRA PPO run of the tiny-world base, tracked in wandb.

The preference set and reward model for ``preferences.alpha`` are built on first use and cached (one process
builds while the others of a multi-process run wait). The run's checkpoints and adapter live under
``<cache_dir>/ppo/alpha{alpha}_beta{beta}_seed{seed}/``; ``results.json``, ``diversity.jsonl`` and the
figure go to the Hydra run directory. After training, a final measurement samples ``diversity.final_n_samples``
completions per prompt from the policy and as many from the base (adapter off) and scores both: diversity (the
callback's metrics), distance of each persona attribute to the tiny world's ground truth, the reward model's
score, the annotator's quality utility (``final``, ``final_base``); the policy's KL to the base on its samples,
in all and by card field (``kl_by_field/<field>``: where the policy spends its KL); counted persona statistics
of both at equal n (``persona/equal_n/...``); the exact attribute distributions of both on the prefixes of
``diversity.final_exact_contexts`` base cards (``persona/exact/...``, full blocks under ``attributes_exact``); and,
with ``align.cross_input_samples`` > 0, per-input vs cross-input diversity over the world's product prompts
(``cross_input/...``, rlhf/stages/products.py).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from measure.exact_attributes import exact_blocks, flat_metrics
from measure.loading import load_model
from measure.metrics.registry import metric, topk_key
from measure.persona_parse import ATTRIBUTES
from measure.prompts import encode_prompt
from measure.results import write_results
from measure.tracking import wandb_run
from rlhf.stages.annotator import quality_terms, quality_utility, typicality_logp
from rlhf.stages.callbacks import (EXACT_BOOTSTRAP, DiversityCallback, MetricsLogCallback, base_view,
                                   diversity_metrics, draw_samples, exact_probe, read_truth)
from rlhf.stages.ppo import PPORun, load_value_and_reward, ppo_dir, run_name, use_cpu, world_size
from rlhf.stages.preferences import load_or_build_preferences, preference_summary
from rlhf.stages.reward import load_or_train_reward_model
from rlhf.stages.common import require_base_model, set_threads, stage_config

log = logging.getLogger(__name__)
TRL_KEYS = ("objective/kl", "objective/rlhf_reward", "objective/scores", "policy/entropy_avg", "objective/entropy")


def control_run_name(beta: float, seed: int) -> str:
    return f"control_beta{beta:g}_seed{seed}"


def reward_id_hash(reward_id: str) -> str:
    from measure.tiny import config_hash

    return config_hash({"reward": reward_id})


def control_reward(cfg, tokenizer, device) -> tuple:
    """(reward, value) for the positive control: the control's utility as TRL's reward model, and a value model
    on the base weights with a new head drawn from ``ppo.seed``."""
    from rlhf.stages.control import ControlReward
    from rlhf.stages.reward import init_reward_model

    ids = [encode_prompt(tokenizer, p.text, chat=p.chat) for p in cfg.ppo.prompts]
    reward = ControlReward(tokenizer, ids, cfg.control.attribute, cfg.control.value, cfg.control.weight)
    value = init_reward_model(cfg.ppo.base.path, tokenizer, cfg.ppo.seed)
    return reward.to(device).eval(), value.to(device)


def reward_model_for(cfg) -> tuple:
    """(reward model dir, its held-out metrics, preference summary) for ``cfg.preferences``, built if missing.

    Under `accelerate launch` the main process samples the preferences while the others wait; then all
    processes train the reward model together (or all find it cached).
    """
    from accelerate import PartialState
    from transformers import AutoTokenizer

    base = cfg.ppo.base
    with PartialState(cpu=use_cpu(base.device)).main_process_first():
        prefs, prefs_dir = load_or_build_preferences(lambda: load_model(base), base.path, cfg.preferences,
                                                     cfg.cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(base.path)
    rm_dir, rm_metrics = load_or_train_reward_model(base.path, tokenizer, prefs, prefs_dir, cfg.reward, cfg.cache_dir)
    return rm_dir, rm_metrics, preference_summary(prefs)


def sweep_group(cfg) -> str:
    """wandb group: the config's, else the Hydra sweep directory (multirun), else `ppo`."""
    if cfg.wandb.group:
        return cfg.wandb.group
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        if hc.mode == RunMode.MULTIRUN:
            return f"ppo-sweep-{Path(hc.sweep.dir).name}"
    except ValueError:  # not inside a Hydra app (library use)
        pass
    return "ppo"


@torch.no_grad()
def token_log_ratios(policy, tokenizer, samples: Dict[str, list], prompts,
                     base_logprobs: Optional[Dict[str, List[np.ndarray]]] = None) -> Dict[str, List[np.ndarray]]:
    """Per sample, per generated token: log pi(y_t) - log pi_0(y_t) (nats), pi_0 being the policy with its LoRA
    adapter off (the reference of Eq. 5.2); a sample without tokens gives an empty array. ``base_logprobs``, when
    given, receives log pi_0(y_t) per token (the annotator's typicality term reads it)."""
    device = next(policy.parameters()).device
    texts = {p.key: p for p in prompts}
    out: Dict[str, List[np.ndarray]] = {}
    for key, gens in samples.items():
        prompt_ids = encode_prompt(tokenizer, texts[key].text, chat=texts[key].chat)
        out[key] = []
        if base_logprobs is not None:
            base_logprobs[key] = []
        for g in gens:
            if not g.token_ids:
                out[key].append(np.zeros(0))
                if base_logprobs is not None:
                    base_logprobs[key].append(np.zeros(0))
                continue
            ids = torch.tensor([prompt_ids + g.token_ids], device=device)
            logits = policy(input_ids=ids).logits[0, len(prompt_ids) - 1:-1].float()
            with base_view(policy):
                ref = policy(input_ids=ids).logits[0, len(prompt_ids) - 1:-1].float()
            target = ids[0, len(prompt_ids):, None]
            ref_lp = torch.log_softmax(ref, -1).gather(1, target)
            ratio = torch.log_softmax(logits, -1).gather(1, target) - ref_lp
            out[key].append(ratio.squeeze(1).cpu().double().numpy())
            if base_logprobs is not None:
                base_logprobs[key].append(ref_lp.squeeze(1).cpu().double().numpy())
    return out


def sequence_kl_nats(ratios: Dict[str, List[np.ndarray]]) -> float:
    """Mean over samples of sum_t [log pi(y_t) - log pi_0(y_t)] (nats): the k1 estimate of KL(pi || pi_0) on the
    policy's own samples (``token_log_ratios``; samples without tokens left out)."""
    totals = [float(r.sum()) for rs in ratios.values() for r in rs if r.size]
    return float(np.mean(totals)) if totals else math.nan


def kl_by_field(tokenizer, gens: list, ratios: List[np.ndarray]) -> Dict[str, float]:
    """The persona samples' sequence KL broken down by card field: per sample, the log-ratio summed over the tokens
    of each field (its label, value and line break; ``measure.persona_parse.field_spans``), then the mean over
    samples (a field a sample lacks counts 0). The fields add up to the persona prompt's sequence KL."""
    from measure.metrics.attributes import fields_in_order, sum_by_field
    from measure.persona_parse import field_spans

    sums = []
    for g, r in zip(gens, ratios):
        if not r.size:
            continue
        ends = [len(tokenizer.decode(g.token_ids[:j + 1], skip_special_tokens=True)) for j in range(len(g.token_ids))]
        sums.append(sum_by_field(r, ends, field_spans(g.text), len(g.text)))
    names = fields_in_order(n for s in sums for n in s)
    return {n: float(np.mean([s.get(n, 0.0) for s in sums])) for n in names}


def truth_comparison(samples: Dict[str, list], truth_path: Optional[str]) -> Dict[str, float]:
    """Per persona attribute: TV distance to the ground truth and the truth's own entropy (bits)."""
    from measure.metrics.attributes import truth_distribution, tv_distance
    from measure.metrics.entropy import entropy_bits
    from measure.persona_parse import parse_persona

    truth = read_truth(truth_path)
    if "persona" not in samples or not truth:
        return {}
    cards = [parse_persona(g.text) for g in samples["persona"]]
    out = {}
    for attr in ATTRIBUTES:
        probs = truth_distribution(truth, attr)
        if not probs:
            continue
        values = [getattr(c, attr) for c in cards if getattr(c, attr) is not None]
        out[f"truth_entropy_bits/{attr}"] = float(entropy_bits(np.array(list(probs.values()))))
        out[f"tv_distance/{attr}"] = tv_distance(values, probs) if values else math.nan
    return out


def sample_metrics(tokenizer, reward_model, cfg, samples: Dict[str, list]) -> Dict[str, float]:
    """Diversity (the callback's metrics), truth distances, reward-model score and annotator quality of samples."""
    from rlhf.stages.reward import score_sequences

    out = {k.removeprefix("diversity/"): v
           for k, v in diversity_metrics(samples, cfg.diversity.sbert, cfg.diversity.sampling.top_k).items()}
    out.update(truth_comparison(samples, cfg.diversity.ground_truth))
    scores, quality = [], []
    for p in cfg.ppo.prompts:
        prompt_ids = encode_prompt(tokenizer, p.text, chat=p.chat)
        scores += score_sequences(reward_model, [prompt_ids + g.token_ids for g in samples[p.key]],
                                  tokenizer.pad_token_id).tolist()
        quality += [quality_utility(quality_terms(g.text, p.key == "persona", g.stopped_at_eos),
                                    cfg.preferences.annotator) for g in samples[p.key]]
    out["reward_model_score"] = float(np.mean(scores))
    out["annotator_quality"] = float(np.mean(quality))
    return out


def true_utilities(samples: Dict[str, list], base_probs: Dict[str, List[np.ndarray]], cfg) -> np.ndarray:
    """The annotator's utility u = u_quality + alpha * log p_base (in ``preferences.typicality``'s form: summed or
    per token) of every sample (all prompts, in order); ``base_probs`` are the base's per-token probabilities
    (a base sample's own ``token_probs`` at T = 1)."""
    out = []
    for key, gens in samples.items():
        for g, probs in zip(gens, base_probs[key]):
            u_q = quality_utility(quality_terms(g.text, key == "persona", g.stopped_at_eos), cfg.preferences.annotator)
            out.append(u_q + cfg.preferences.alpha * typicality_logp(probs, cfg.preferences.typicality))
    return np.array(out)


def base_token_probs(base_logprobs: Dict[str, List[np.ndarray]]) -> Dict[str, List[np.ndarray]]:
    return {k: [np.exp(lp) for lp in v] for k, v in base_logprobs.items()}


def control_share(samples: Dict[str, list], cfg) -> Dict[str, float]:
    """The positive control's share: persona samples whose card names control.value (over all persona samples,
    parsed or not, as the closed form counts them), and their number."""
    from measure.persona_parse import parse_persona

    if "persona" not in samples:
        return {}
    hits = [getattr(parse_persona(g.text), cfg.control.attribute) == cfg.control.value for g in samples["persona"]]
    return {"control_share": float(np.mean(hits)), "control_n": len(hits)}


def truth_scorer(tokenizer, reward_model, cfg):
    """The over-optimisation curve's metrics of a measurement's samples (Gao et al. 2023): the annotator's true
    utility, the reward the policy is trained on, the sequence KL to the base, and the control share."""
    from rlhf.stages.reward import score_sequences

    def score(policy, samples: Dict[str, list]) -> Dict[str, float]:
        base_lp: Dict[str, List[np.ndarray]] = {}
        ratios = token_log_ratios(policy, tokenizer, samples, cfg.ppo.prompts, base_logprobs=base_lp)
        scores = []
        for p in cfg.ppo.prompts:
            ids = encode_prompt(tokenizer, p.text, chat=p.chat)
            scores += score_sequences(reward_model, [ids + g.token_ids for g in samples[p.key]],
                                      tokenizer.pad_token_id).tolist()
        out = {"truth/true_utility": float(np.mean(true_utilities(samples, base_token_probs(base_lp), cfg))),
               "truth/reward_score": float(np.mean(scores)), "truth/kl_nats": sequence_kl_nats(ratios)}
        out.update({f"truth/{k}": v for k, v in control_share(samples, cfg).items() if k == "control_share"})
        return out

    return score


EQUAL_N = {"entropy_bits": "attribute_entropy_bits", "entropy_chao_shen_bits": "attribute_entropy_chao_shen_bits",
           "distinct": "attribute_distinct"}  # measure.metrics.attributes statistic -> registry key


def equal_n_attributes(policy_samples: Dict[str, list], base_samples: Dict[str, list], seed: int) -> tuple:
    """(policy, base) dicts of ``persona/equal_n/<registry key>/<attr>``: each attribute's plug-in and Chao-Shen
    entropy (bits) and distinct values with both sides at the smaller number of parsed values (the larger side
    subsampled without replacement, averaged over draws), and ``persona/n_matched/<attr>`` in both."""
    from measure.metrics.attributes import at_equal_n
    from measure.persona_parse import parse_persona

    out: Dict[str, dict] = {"policy": {}, "base": {}}
    if "persona" not in policy_samples or "persona" not in base_samples:
        return out["policy"], out["base"]
    cards = {side: [parse_persona(g.text) for g in s["persona"]]
             for side, s in (("policy", policy_samples), ("base", base_samples))}
    for attr in ATTRIBUTES:
        values = {side: [getattr(c, attr) for c in cs] for side, cs in cards.items()}
        for stat, (vp, vb, m) in at_equal_n(values["policy"], values["base"], list(EQUAL_N), seed=seed).items():
            out["policy"][f"persona/equal_n/{EQUAL_N[stat]}/{attr}"] = vp
            out["base"][f"persona/equal_n/{EQUAL_N[stat]}/{attr}"] = vb
            out["policy"][f"persona/n_matched/{attr}"] = out["base"][f"persona/n_matched/{attr}"] = m
    return out["policy"], out["base"]


def final_measurement(policy, tokenizer, reward_model, cfg) -> tuple:
    """(final, final_base, exact, samples), on fresh samples.

    ``final``: the policy's diversity, truth distances, reward-model score, annotator quality, KL to the base (in
    all and by card field), counted attribute statistics at equal n with the base, exact attribute distributions.
    ``final_base``: the same for the base (adapter off) on as many samples, so the summary's base line is measured
    at the cells' n. ``exact``: the results.json blocks of the exact distributions of both, on the prefixes of
    ``diversity.final_exact_contexts`` base cards.
    """
    n = cfg.diversity.final_n_samples
    samples = draw_samples(policy, tokenizer, cfg.ppo.prompts, cfg.diversity, n=n)
    with base_view(policy):
        base_samples = draw_samples(policy, tokenizer, cfg.ppo.prompts, cfg.diversity, n=n)
        base = sample_metrics(tokenizer, reward_model, cfg, base_samples)
    out = sample_metrics(tokenizer, reward_model, cfg, samples)
    base_lp: Dict[str, List[np.ndarray]] = {}
    ratios = token_log_ratios(policy, tokenizer, samples, cfg.ppo.prompts, base_logprobs=base_lp)
    out["sequence_kl_nats"] = sequence_kl_nats(ratios)
    out["true_utility"] = float(np.mean(true_utilities(samples, base_token_probs(base_lp), cfg)))
    base["true_utility"] = float(np.mean(true_utilities(
        base_samples, {k: [g.token_probs for g in gs] for k, gs in base_samples.items()}, cfg)))
    out.update(control_share(samples, cfg))
    base.update(control_share(base_samples, cfg))
    if "persona" in samples:
        out.update({f"kl_by_field/{f}": v for f, v in kl_by_field(tokenizer, samples["persona"],
                                                                  ratios["persona"]).items()})
    matched_policy, matched_base = equal_n_attributes(samples, base_samples, cfg.ppo.seed)
    out.update(matched_policy)
    base.update(matched_base)
    exact: dict = {}
    probe = exact_probe(policy, tokenizer, cfg.ppo.prompts, cfg.diversity, cfg.diversity.final_exact_contexts)
    if probe is not None:
        blocks, comparison = probe.measure(policy, EXACT_BOOTSTRAP, seed=cfg.ppo.seed)
        base_blocks = exact_blocks(probe.base, EXACT_BOOTSTRAP, cfg.ppo.seed, probe.truth)
        exact = {"models": {"policy": blocks, "base": base_blocks}, "comparison": comparison,
                 "n_cards": cfg.diversity.final_exact_contexts}
        out.update(flat_metrics(blocks, comparison, prefix="persona/exact"))
        base.update(flat_metrics(base_blocks, prefix="persona/exact"))
    if getattr(getattr(cfg, "align", None), "cross_input_samples", 0):  # per-input vs cross-input diversity
        from rlhf.stages.products import product_measurement

        n_cross = cfg.align.cross_input_samples
        out.update(product_measurement(policy, tokenizer, cfg.diversity, n_cross))
        with base_view(policy):
            base.update(product_measurement(policy, tokenizer, cfg.diversity, n_cross))
    return out, base, exact, samples


def trl_final(history: List[dict], last: int = 8) -> Dict[str, float]:
    """TRL's metrics averaged over the last ``last`` PPO steps (one step's batch is small and noisy)."""
    rows = [h for h in history if "objective/kl" in h][-last:]
    return {k: float(np.mean([r[k] for r in rows])) for k in TRL_KEYS if rows and k in rows[0]}


def diversity_figure(history: List[dict], path: Path, title: str, k: int = 5) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(f"diversity/{topk_key(k)}", metric("top{k}_entropy_bits").title(k=k)),
              ("diversity/full_entropy_bits", "full entropy (bits)"), ("diversity/sbert_cosine", "SBERT cosine"),
              ("objective/rlhf_reward", "RLHF reward"), ("objective/kl", "KL (nats)"),
              ("diversity/persona/missing_share/review", "review missing")]
    fig, axes = plt.subplots(2, 3, figsize=(12, 6))
    for ax, (key, label) in zip(axes.ravel(), panels):
        rows = [(h["step"], h[key]) for h in history if key in h and h[key] is not None]
        if rows:
            ax.plot(*zip(*rows), marker="o", ms=3)
        ax.set_title(label)
        ax.set_xlabel("PPO step")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_stage(cfg, out: Optional[Path] = None) -> dict:
    """The `ppo` stage; returns the results (also written to ``out/results.json`` by the main process)."""
    from measure.results import run_dir

    out = Path(out) if out is not None else run_dir()
    require_base_model(cfg)
    started = time.time()
    set_threads(cfg.ppo.threads)
    control = cfg.ppo.reward == "control"
    policy, tokenizer = load_model(cfg.ppo.base)
    device = next(policy.parameters()).device
    if control:  # the positive control: PPO maximises the control's utility itself, no reward model
        rm_dir, rm_metrics, prefs = None, {}, {}
        reward_model, value_model = control_reward(cfg, tokenizer, device)
        reward_id = f"control:{cfg.control.attribute}={cfg.control.value}:w{cfg.control.weight:g}"
    else:
        rm_dir, rm_metrics, prefs = reward_model_for(cfg)
        reward_model, value_model = load_value_and_reward(str(rm_dir), device=device)
        reward_id = str(rm_dir)
    alpha = cfg.preferences.alpha
    name = control_run_name(cfg.ppo.beta, cfg.ppo.seed) if control else run_name(alpha, cfg.ppo.beta, cfg.ppo.seed)
    main = int(os.environ.get("RANK", "0")) == 0  # `accelerate launch` sets RANK
    wandb_cfg = cfg.wandb if main else dataclasses.replace(cfg.wandb, mode="disabled")
    config = {**stage_config(cfg, "ppo", "preferences", "reward", "diversity"), "world_size": world_size()}
    with wandb_run(wandb_cfg, str(out), name=f"ppo-{name}", config=config, job_type="rlhf/ppo",
                   group=sweep_group(cfg)) as wb:
        log_fn = (lambda metrics, step: wb.log(metrics, step=step)) if main else None
        if log_fn:
            wb.log({f"reward/heldout_{k}": v for k, v in rm_metrics.items() if isinstance(v, float)}, step=0)
        work = (Path(cfg.cache_dir) / "ppo" / f"{name}_{reward_id_hash(reward_id)}") if control else \
            ppo_dir(cfg.cache_dir, alpha, cfg.ppo)
        run = PPORun(cfg.ppo, policy, tokenizer, reward_model, value_model, work, reward_id=reward_id)
        diversity = DiversityCallback(lambda: run.peft_policy, tokenizer, cfg.ppo.prompts, cfg.diversity,
                                      log_fn=log_fn, jsonl=out / "diversity.jsonl" if main else None,
                                      extra=truth_scorer(tokenizer, reward_model, cfg))
        run.callbacks += [diversity] + ([MetricsLogCallback(log_fn)] if log_fn else [])
        trained = time.time()
        history = run.train()
        train_seconds = time.time() - trained
        if not main:
            return {}
        final, final_base, exact, samples = final_measurement(run.peft_policy, tokenizer, reward_model, cfg)
        final.update(trl_final(history))
        wb.log({f"final/{k}": v for k, v in final.items()}, step=max(run.trainer.state.global_step, 1))
    with open(out / "final_samples.jsonl", "w") as fh:
        for key, gens in samples.items():
            fh.writelines(json.dumps({"prompt": key, "text": g.text}) + "\n" for g in gens)
    diversity_figure(history, out / "ppo_diversity.png", f"PPO {name}", k=cfg.diversity.sampling.top_k)
    baseline = next((h for h in history if "diversity/seconds" in h and h["step"] == 0), {})
    costs = [h["diversity/cost_share"] for h in history if "diversity/cost_share" in h]
    results = {
        "stage": "ppo", "run": name, "alpha": alpha, "beta": cfg.ppo.beta, "seed": cfg.ppo.seed,
        "steps": cfg.ppo.steps, "world_size": world_size(), "adapter": str(run.adapter_dir),
        "reward": cfg.ppo.reward,
        "reward_model": {"path": str(rm_dir), **rm_metrics} if rm_dir else None, "preferences": prefs,
        "control": dataclasses.asdict(cfg.control) if control else None,
        "final": final,
        # the base policy (adapter off) measured like `final`, on as many samples: the summary's base line
        "final_base": final_base,
        "attributes_exact": exact,
        "top_k": cfg.diversity.sampling.top_k,
        "baseline": {k.removeprefix("diversity/"): v for k, v in baseline.items() if k.startswith("diversity/")},
        "history": [h for h in history if "objective/kl" in h or "diversity/seconds" in h],
        "timing": {"wall_seconds": time.time() - started, "train_seconds": train_seconds,
                   "callback_cost_share": costs[-1] if costs else None,
                   "seconds_per_step": train_seconds / max(cfg.ppo.steps - run.start, 1)},
    }
    write_results(out, results)
    return results
