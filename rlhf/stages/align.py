"""`python -m rlhf stage=align align.method=<method>`: one alignment method on the tiny-world base, measured as PPO is.

Methods (rlhf/stages/methods.py documents each objective): ``ppo`` (the ppo stage itself), ``rloo`` and ``grpo``
(on-policy RL against ``align.reward``: the reward model or the oracle, the annotator's true utility), ``dpo`` (on
the reward model's training pairs), ``bon`` (best-of-n sampling from the base under the reward arm, no training),
``rft`` (SFT on best-of-k base samples) and ``sft_curated`` (SFT on a Zipf-named demonstrator's cards). Every
trained method is a LoRA adapter on the same base, with the same diversity callback and the same final measurement
(``rlhf.stages.ppo_stage.final_measurement``), so results.json has the ppo stage's layout plus ``method``,
``reward_arm`` and ``setting`` (the knob of the method: beta, or best_of's n or k, or the demonstrator's prior).

Best-of-n has no adapter: its final block scores ``diversity.final_n_samples`` selections per prompt, each the best
of ``align.best_of`` base samples; its KL is the estimate log n + (n - 1) log F(r) averaged over the selections
(``methods.best_of_n_log_ratio``, ``kl_estimate_nats``), capped at the bound log n - (n - 1) / n (``kl_bound_nats``); it has no exact attribute
distributions (no policy to teacher-force). With ``align.cross_input_samples`` > 0 the final blocks add per-input vs
cross-input diversity over the world's product prompts (``cross_input/...``).

Runs are cached under ``<cache_dir>/align/<run>_<hash>``: a finished run with the same hash reloads its adapter.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
from transformers import TrainerCallback

from measure.loading import load_model
from measure.prompts import chat_prompt_text, encode_prompt
from measure.results import write_results
from measure.tiny import config_hash
from measure.tracking import wandb_run
from rlhf.stages.callbacks import DiversityCallback, MetricsLogCallback, base_view, draw_samples
from rlhf.stages.common import require_base_model, set_threads, stage_config
from rlhf.stages.methods import (RL_METHODS, RewardFunction, best_of_groups, best_of_n_kl_bound,
                                 best_of_n_log_ratio, dpo_trainer, rl_trainer, sft_trainer, updates_per_batch)

log = logging.getLogger(__name__)
BETA_METHODS = ("ppo", "rloo", "grpo", "dpo")


def setting(cfg) -> Dict[str, float]:
    """The method's own knob: {"beta"} (ppo, rloo, grpo, dpo), {"n"} (bon), {"k"} (rft), or the demonstrator's
    prior {"names", "exponent"} (sft_curated)."""
    method, align = cfg.align.method, cfg.align
    if method in BETA_METHODS:
        return {"beta": cfg.ppo.beta}
    if method == "bon":
        return {"n": align.best_of}
    if method == "rft":
        return {"k": align.best_of}
    return {"names": align.demo_names, "exponent": align.demo_exponent}


def setting_key(values: Dict[str, float]) -> str:
    return "_".join(f"{k}{v:g}" for k, v in values.items())


def reward_arm(cfg) -> Optional[str]:
    """What the method optimises: "model" or "oracle" (rloo, grpo, bon, rft); "pairs" (dpo: the preference pairs
    the reward model was trained on); "demonstrations" (sft_curated)."""
    method = cfg.align.method
    if method in ("rloo", "grpo", "bon", "rft"):
        return cfg.align.reward
    return {"dpo": "pairs", "sft_curated": "demonstrations", "ppo": "model"}[method]


def align_run_name(cfg) -> str:
    """`<method>[_<arm>]_alpha<alpha>_<setting>_seed<seed>`: the run's wandb name and its folder under
    <cache_dir>/align."""
    arm = f"_{cfg.align.reward}" if cfg.align.method in ("rloo", "grpo", "bon", "rft") else ""
    return f"{cfg.align.method}{arm}_alpha{cfg.preferences.alpha:g}_{setting_key(setting(cfg))}_seed{cfg.ppo.seed}"


def run_hash(cfg, reward_id: str) -> str:
    """Everything that shapes the trained weights (the reward model by its path)."""
    ppo = dataclasses.asdict(cfg.ppo)
    for volatile in ("resume", "checkpoint_every", "threads"):
        ppo.pop(volatile)
    align = dataclasses.asdict(cfg.align)
    align.pop("cross_input_samples")
    return config_hash({"ppo": ppo, "align": align, "reward": reward_id,
                        "preferences": dataclasses.asdict(cfg.preferences)})


def rft_examples(policy, tokenizer, reward_fn: RewardFunction, cfg) -> tuple:
    """(examples, stats): the best of ``align.best_of`` base samples in each of ``align.rft_prompts`` groups per
    prompt, as (prompt ids, response ids); the base draws use their own seed (not the final measurement's)."""
    align = cfg.align
    diversity = dataclasses.replace(cfg.diversity, sampling=dataclasses.replace(
        cfg.diversity.sampling, seed=cfg.ppo.seed * 1000 + 17))
    pool = draw_samples(policy, tokenizer, cfg.ppo.prompts, diversity, n=align.rft_prompts * align.best_of)
    examples, chosen, mean = [], [], []
    for p in cfg.ppo.prompts:
        gens = pool[p.key]
        scores = reward_fn.scores([p.key] * len(gens), [g.token_ids for g in gens], [g.text for g in gens])
        ids = encode_prompt(tokenizer, p.text, chat=p.chat)
        for i in best_of_groups(scores, align.best_of):
            examples.append((ids, gens[i].token_ids))
            chosen.append(scores[i])
        mean += scores
    return examples, {"selected_reward": float(np.mean(chosen)), "pool_reward": float(np.mean(mean)),
                      "n_examples": len(examples)}


def demonstration_examples(tokenizer, cfg) -> tuple:
    """(examples, stats): the simulated demonstrator's cards as (prompt ids, response ids), the response tokenised
    as the base model's chat documents were (the chat template's text after the prompt, then EOS)."""
    from rlhf.world.demonstrator import demonstrations, name_prior, prior_entropy_bits

    align = cfg.align
    demos = demonstrations(align.demos, seed=cfg.ppo.seed, n_names=align.demo_names, exponent=align.demo_exponent)
    examples = []
    for d in demos:
        prompt = chat_prompt_text(tokenizer, d["prompt"])
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if getattr(tokenizer, "chat_template", None):
            full = tokenizer.apply_chat_template([{"role": "user", "content": d["prompt"]},
                                                  {"role": "assistant", "content": d["completion"]}], tokenize=False)
        else:  # the Llama-2 [INST] layout of measure.prompts, as the world's chat documents
            full = f"{prompt} {d['completion']}"
        full_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
        if full_ids[:len(prompt_ids)] != prompt_ids:
            raise ValueError("the chat template's prompt is not a prefix of its prompt + answer")
        response = full_ids[len(prompt_ids):]
        if not response or response[-1] != tokenizer.eos_token_id:
            response = response + [tokenizer.eos_token_id]
        examples.append((prompt_ids, response))
    prior = name_prior(align.demo_names, align.demo_exponent)
    return examples, {"n_examples": len(examples), "prior_first_name_entropy_bits": prior_entropy_bits(prior)}


def cross_input(policy, tokenizer, cfg) -> Dict[str, float]:
    """Per-input vs cross-input diversity over the world's product prompts (``align.cross_input_samples`` each)."""
    if not cfg.align.cross_input_samples:
        return {}
    from rlhf.stages.products import product_measurement

    return product_measurement(policy, tokenizer, cfg.diversity, cfg.align.cross_input_samples)


def bon_measurement(policy, tokenizer, reward_fn: RewardFunction, reward_model, cfg) -> tuple:
    """(final, final_base, samples) of best-of-n: ``diversity.final_n_samples`` selections per prompt, each the best
    of ``align.best_of`` base samples drawn with ``ppo.seed``; the base at as many samples, as the other cells'."""
    from rlhf.stages.ppo_stage import control_share, equal_n_attributes, sample_metrics, true_utilities

    n, m = cfg.align.best_of, cfg.diversity.final_n_samples
    pool_cfg = dataclasses.replace(cfg.diversity, sampling=dataclasses.replace(
        cfg.diversity.sampling, seed=cfg.ppo.seed * 1000 + 29))
    pool = draw_samples(policy, tokenizer, cfg.ppo.prompts, pool_cfg, n=n * m)
    base_samples = draw_samples(policy, tokenizer, cfg.ppo.prompts, cfg.diversity, n=m)
    selected, ratios = {}, []
    for p in cfg.ppo.prompts:
        gens = pool[p.key]
        scores = reward_fn.scores([p.key] * len(gens), [g.token_ids for g in gens], [g.text for g in gens])
        picks = best_of_groups(scores, n)
        selected[p.key] = [gens[i] for i in picks]
        ratios += [best_of_n_log_ratio(scores[i], scores, n) for i in picks]
    final = sample_metrics(tokenizer, reward_model, cfg, selected)
    base = sample_metrics(tokenizer, reward_model, cfg, base_samples)
    probs = lambda s: {k: [g.token_probs for g in gs] for k, gs in s.items()}  # noqa: E731 (T = 1: the base's own)
    final["true_utility"] = float(np.mean(true_utilities(selected, probs(selected), cfg)))
    base["true_utility"] = float(np.mean(true_utilities(base_samples, probs(base_samples), cfg)))
    # the estimate can exceed the bound (a theorem) only by noise in F at small n: the bound caps it
    final["kl_estimate_nats"] = float(np.mean(ratios))
    final["kl_bound_nats"] = best_of_n_kl_bound(n)
    final["sequence_kl_nats"] = min(final["kl_estimate_nats"], final["kl_bound_nats"])
    final.update(control_share(selected, cfg))
    base.update(control_share(base_samples, cfg))
    matched_policy, matched_base = equal_n_attributes(selected, base_samples, cfg.ppo.seed)
    final.update(matched_policy)
    base.update(matched_base)
    if cfg.align.cross_input_samples:
        final.update(bon_cross_input(policy, tokenizer, reward_fn, cfg))
        base.update(cross_input(policy, tokenizer, cfg))
    return final, base, selected


def bon_cross_input(policy, tokenizer, reward_fn: RewardFunction, cfg) -> Dict[str, float]:
    """Cross-input diversity of best-of-n over the product prompts: selections scored as the persona prompt's."""
    from measure.metrics.cross_input import cross_input_metrics
    from rlhf.stages.products import draw_per_prompt, product_prompts

    n, m = cfg.align.best_of, cfg.align.cross_input_samples
    prompts = product_prompts()
    pool_cfg = dataclasses.replace(cfg.diversity, sampling=dataclasses.replace(
        cfg.diversity.sampling, seed=cfg.ppo.seed * 1000 + 31))
    pool = draw_per_prompt(policy, tokenizer, prompts, pool_cfg, n * m)  # a seed per product (no shared draws)
    scorer = RewardFunction(reward_fn.kind, tokenizer, prompts, cfg, reward_fn.reward_model, reward_fn.policy)
    cards = {}
    for p in prompts:
        gens = pool[p.key]
        scores = scorer.scores([p.key] * len(gens), [g.token_ids for g in gens], [g.text for g in gens])
        cards[p.key] = [gens[i].text for i in best_of_groups(scores, n)]
    return cross_input_metrics(cards, seed=cfg.ppo.seed)


def train(cfg, policy, tokenizer, reward_fn, reward_model, prefs, work: Path, callbacks: list, use_cpu: bool):
    """(trainer, extra stats): the method's trainer built and trained (LoRA from ``ppo``'s fields)."""
    from transformers import set_seed

    method, extra = cfg.align.method, {}
    set_seed(cfg.ppo.seed)
    if method in RL_METHODS:
        trainer = rl_trainer(method, cfg, policy, tokenizer, reward_fn, work, use_cpu, callbacks)
    elif method == "dpo":
        trainer = dpo_trainer(cfg, policy, tokenizer, prefs, work, use_cpu, callbacks)
    else:
        if method == "rft":
            examples, extra = rft_examples(policy, tokenizer, reward_fn, cfg)
        else:
            examples, extra = demonstration_examples(tokenizer, cfg)
        set_seed(cfg.ppo.seed)
        trainer = sft_trainer(cfg, policy, tokenizer, examples, work, use_cpu, callbacks)
    trainer.train()
    return trainer, extra


def rl_kl_row(h: dict) -> dict:
    """A TRL RLOO/GRPO log row with PPO's ``objective/kl`` (nats per sequence): TRL logs ``kl`` per token (k1 for
    RLOO; GRPO's k3), so it is scaled by the batch's mean completion length; ``objective/kl_per_token`` keeps it."""
    return {**h, "objective/kl_per_token": h["kl"],
            "objective/kl": h["kl"] * h["completions/mean_length"] if "completions/mean_length" in h else None}


def save_adapter(model, tokenizer, work: Path) -> Path:
    import shutil

    tmp, final = work / ".adapter.tmp", work / "adapter"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


def run_stage(cfg, out: Optional[Path] = None) -> dict:
    """The `align` stage; returns the results (also written to ``out/results.json``)."""
    from measure.results import run_dir

    if cfg.align.method == "ppo":
        from rlhf.stages import ppo_stage

        return ppo_stage.run_stage(cfg, out)
    from peft import PeftModel

    from rlhf.stages.ppo import load_value_and_reward, use_cpu
    from rlhf.stages.ppo_stage import (final_measurement, reward_model_for, sweep_group, trl_final, truth_scorer,
                                       diversity_figure)

    out = Path(out) if out is not None else run_dir()
    require_base_model(cfg)
    started = time.time()
    set_threads(cfg.ppo.threads)
    method = cfg.align.method
    policy, tokenizer = load_model(cfg.ppo.base)
    device = next(policy.parameters()).device
    rm_dir, rm_metrics, prefs_summary = reward_model_for(cfg)
    reward_model, _ = load_value_and_reward(str(rm_dir), device=device)
    prefs = None
    if method == "dpo":
        from rlhf.stages.preferences import load_or_build_preferences

        prefs, _ = load_or_build_preferences(lambda: (policy, tokenizer), cfg.ppo.base.path, cfg.preferences,
                                             cfg.cache_dir)
    holder = {"model": policy}  # the model being trained (TRL wraps it with LoRA): the oracle and callback read it
    reward_fn = RewardFunction(cfg.align.reward if reward_arm(cfg) in ("model", "oracle") else "model", tokenizer,
                               cfg.ppo.prompts, cfg, reward_model=reward_model, policy=lambda: holder["model"])
    name = align_run_name(cfg)
    work = Path(cfg.cache_dir) / "align" / f"{name}_{run_hash(cfg, str(rm_dir))}"
    work.mkdir(parents=True, exist_ok=True)
    config = stage_config(cfg, "align", "ppo", "preferences", "reward", "diversity")
    history: List[dict] = []
    extra: dict = {}
    exact: dict = {}
    train_seconds = 0.0
    with wandb_run(cfg.wandb, str(out), name=f"{method}-{name}", config=config, job_type=f"rlhf/{method}",
                   group=sweep_group(cfg)) as wb:
        log_fn = lambda metrics, step: wb.log(metrics, step=step)  # noqa: E731
        wb.log({f"reward/heldout_{k}": v for k, v in rm_metrics.items() if isinstance(v, float)}, step=0)
        if method == "bon":
            final, final_base, samples = bon_measurement(policy, tokenizer, reward_fn, reward_model, cfg)
        else:
            done = work / "done.json"
            if done.exists() and (work / "adapter").exists():
                log.info("%s: finished run found in %s; reusing its adapter", name, work)
                saved = json.loads(done.read_text())
                history, extra, train_seconds = saved["history"], saved["extra"], saved["train_seconds"]
                model = PeftModel.from_pretrained(policy, str(work / "adapter"))
            else:
                every = cfg.diversity.every * (updates_per_batch(cfg.ppo) if method in RL_METHODS else 1)
                diversity = DiversityCallback(lambda: holder["model"], tokenizer, cfg.ppo.prompts,
                                              dataclasses.replace(cfg.diversity, every=every), log_fn=log_fn,
                                              jsonl=out / "diversity.jsonl",
                                              extra=truth_scorer(tokenizer, reward_model, cfg))
                callbacks = [ModelRef(holder), diversity, MetricsLogCallback(log_fn)]
                trained = time.time()
                trainer, extra = train(cfg, policy, tokenizer, reward_fn, reward_model, prefs, work, callbacks,
                                       use_cpu(cfg.ppo.base.device))
                train_seconds = time.time() - trained
                model = trainer.accelerator.unwrap_model(trainer.model)
                history = [h for h in trainer.state.log_history]
                save_adapter(model, tokenizer, work)
                done.write_text(json.dumps({"history": history, "extra": extra, "train_seconds": train_seconds}))
            model.eval()
            holder["model"] = model
            final, final_base, exact, samples = final_measurement(model, tokenizer, reward_model, cfg)
            final.update(trl_final([rl_kl_row(h) for h in history if "kl" in h and "completions/mean_length" in h]))
        wb.log({f"final/{k}": v for k, v in final.items() if isinstance(v, (int, float))}, step=max(len(history), 1))
    with open(out / "final_samples.jsonl", "w") as fh:
        for key, gens in samples.items():
            fh.writelines(json.dumps({"prompt": key, "text": g.text}) + "\n" for g in gens)
    if history:
        diversity_figure(history, out / "align_diversity.png", f"{method} {name}", k=cfg.diversity.sampling.top_k)
    results = {
        "stage": "align", "method": method, "run": name, "reward_arm": reward_arm(cfg), "setting": setting(cfg),
        "alpha": cfg.preferences.alpha, "beta": cfg.ppo.beta if method in BETA_METHODS else None,
        "seed": cfg.ppo.seed, "steps": cfg.ppo.steps if method in RL_METHODS else None,
        "adapter": str(work / "adapter") if method != "bon" else None, "reward": cfg.align.reward,
        "reward_model": {"path": str(rm_dir), **rm_metrics}, "preferences": prefs_summary, "control": None,
        "method_stats": extra, "final": final, "final_base": final_base, "attributes_exact": exact,
        "top_k": cfg.diversity.sampling.top_k,
        "history": [h for h in history if "diversity/seconds" in h or "kl" in h or "loss" in h],
        "timing": {"wall_seconds": time.time() - started, "train_seconds": train_seconds},
    }
    write_results(out, results)
    return results


class ModelRef(TrainerCallback):
    """Hands the model TRL trains (the base wrapped with LoRA) to ``ref["model"]`` when training begins; it goes
    first among the callbacks, so the diversity callback's baseline measurement sees it."""

    def __init__(self, ref: dict):
        self.ref = ref

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.ref["model"] = model
