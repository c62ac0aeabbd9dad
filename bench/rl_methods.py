"""Benchmark: training throughput of every trained alignment method at the same base, batch and response length.

Times ``--steps`` rollout batches (after one warm-up batch) of each method on one base with the same LoRA adapter:
``ppo`` (rlhf.stages.ppo.PPORun, TRL's experimental PPOTrainer: policy, value model and reward model), ``rloo`` and
``grpo`` (rlhf.stages.methods.rl_trainer, scored by the same reward model as PPO), ``dpo`` (dpo_trainer, ``--batch``
pairs per step) and ``sft`` (sft_trainer, ``--batch`` sequences per step). Episodes are completions generated and
trained on (dpo: the chosen and rejected sequences of each pair; sft: the sequences), per second, the median over
the timed batches. The comparison is per rollout batch: RLOO and GRPO take ``mini_batches * ppo_epochs`` optimiser
steps per batch (``methods.updates_per_batch``), as PPO does, at the same ``ppo.mini_batches`` and
``ppo.ppo_epochs``; DPO and SFT take one step per batch. A TrainerCallback records the time at every on_step_end.

Target: RLOO and GRPO >= 2x PPO's episodes per second at the same batch and response length (they have no value
model to run and train; their baseline is the other completions of the same prompt). ``rloo_1`` and ``grpo_1`` are
the same trainers on TRL's own schedule, one optimiser step per rollout batch (``num_iterations=1``, no minibatches:
on-policy, so no old log-probabilities to compute), as RLOO and GRPO are usually run; the plain ``rloo``/``grpo``
rows take PPO's update count, the schedule `stage=align` uses by default.

    python bench/rl_methods.py [--base DIR] [--batch 24] [--length 48] [--steps 4] [--threads 1] [--device cpu]

Without ``--base`` it builds a random Llama (hidden 128, 4 layers, the tests' 512-token tokenizer; init std 0.02,
so EOS is rare and completions run to ``--length``: a trained base stops at EOS and shortens rollouts, which the
table's mean completion length shows). Reward and value models are untrained sequence-classification heads on the
base (a step's cost does not depend on what they learned). The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

METHODS = ("ppo", "rloo", "grpo", "rloo_1", "grpo_1", "dpo", "sft")
TARGET_VS_PPO = {"rloo": 2.0, "grpo": 2.0, "rloo_1": 2.0, "grpo_1": 2.0}


def step_clock():
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        """perf_counter at every optimiser step's end (PPO: one per rollout batch)."""

        def __init__(self):
            self.ends = []

        def on_step_end(self, args, state, control, **kwargs):
            self.ends.append(time.perf_counter())

    return StepClock()


def batch_seconds(ends: list, per_batch: int) -> list:
    """Seconds of each rollout batch after the first (the warm-up): ``per_batch`` optimiser steps make one."""
    marks = ends[per_batch - 1::per_batch]
    return [b - a for a, b in zip(marks, marks[1:])]


def random_rows(tokenizer, prompts, n: int, length: int, seed: int) -> list:
    """``n`` (prompt ids, response ids) pairs: the prompts in turn, ``length`` random non-special tokens each."""
    import numpy as np

    from measure.prompts import encode_prompt

    rng = np.random.default_rng(seed)
    ids = [encode_prompt(tokenizer, p.text, chat=p.chat) for p in prompts]
    special = set(tokenizer.all_special_ids)
    allowed = np.array([t for t in range(len(tokenizer)) if t not in special])
    return [(ids[i % len(ids)], rng.choice(allowed, size=length).tolist()) for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=None, help="base model dir (default: a random Llama built here)")
    parser.add_argument("--batch", type=int, default=24, help="completions per rollout batch (dpo: pairs per step)")
    parser.add_argument("--length", type=int, default=48, help="response length in tokens")
    parser.add_argument("--steps", type=int, default=4, help="rollout batches timed, after one warm-up batch")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ",".join(METHODS))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0 = torch default)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto (the base's device)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the rlhf app, e.g. ppo.ppo_epochs=2")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or args.steps < 1:
        parser.error(f"--methods: unknown {unknown}" if unknown else "--steps must be >= 1")

    import torch
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf
    from transformers import AutoModelForSequenceClassification, set_seed

    from measure.loading import load_model
    from rlhf.config import register_configs
    from rlhf.stages.methods import RewardFunction, dpo_trainer, rl_trainer, sft_trainer, updates_per_batch
    from rlhf.stages.ppo import PPORun, use_cpu

    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench_rl_methods_"))
    base = args.base
    if base is None:
        from measure.tiny import build_tiny_llama

        base = str(build_tiny_llama(work / "random_base", seed=1, init_std=0.02, hidden_size=128, num_layers=4))
    batches = args.steps + 1
    register_configs()
    with initialize_config_dir(config_dir=str(Path(__file__).resolve().parents[1] / "conf"), version_base="1.3"):
        cfg = OmegaConf.to_object(compose(config_name="rlhf", overrides=[
            "stage=align", "wandb=disabled", f"ppo.base.path={base}", f"ppo.base.device={args.device}",
            f"ppo.batch_size={args.batch}", f"ppo.response_length={args.length}", f"ppo.steps={batches}",
            f"ppo.checkpoint_every={10**6}", "ppo.resume=false", "diversity.ground_truth=null",
            f"align.dpo_batch_size={args.batch}", f"align.sft_batch_size={args.batch}", "align.dpo_epochs=1",
            "align.sft_epochs=1", *args.overrides]))
    ppo, cpu = cfg.ppo, use_cpu(args.device)

    def fresh():
        policy, tokenizer = load_model(ppo.base)
        return policy, tokenizer, next(policy.parameters()).device

    def heads(device):
        reward = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1).eval().requires_grad_(False)
        value = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
        return reward.to(device), value.to(device)

    results = {}
    for method in methods:
        set_seed(ppo.seed)
        policy, tokenizer, device = fresh()
        clock = step_clock()
        out = work / method
        info = {"episodes_per_batch": args.batch, "updates_per_batch": 1, "mean_completion_length": None}
        if method == "ppo":
            reward, value = heads(device)
            PPORun(ppo, policy, tokenizer, reward, value, out, callbacks=[clock]).train()
            info["updates_per_batch"] = updates_per_batch(ppo)
            seconds = batch_seconds(clock.ends, 1)
        elif method in ("rloo", "grpo", "rloo_1", "grpo_1"):
            reward, _ = heads(device)
            run_cfg = cfg
            if method.endswith("_1"):  # TRL's own schedule: one update per rollout batch (num_iterations 1)
                run_cfg = dataclasses.replace(cfg, ppo=dataclasses.replace(ppo, mini_batches=1, ppo_epochs=1))
            reward_fn = RewardFunction("model", tokenizer, ppo.prompts, run_cfg, reward_model=reward)
            trainer = rl_trainer(method.removesuffix("_1"), run_cfg, policy, tokenizer, reward_fn, out, cpu,
                                 callbacks=[clock])
            trainer.train()
            info["updates_per_batch"] = updates_per_batch(run_cfg.ppo)
            seconds = batch_seconds(clock.ends, info["updates_per_batch"])
            lengths = [h["completions/mean_length"] for h in trainer.state.log_history
                       if "completions/mean_length" in h]
            info["mean_completion_length"] = statistics.mean(lengths) if lengths else None
        elif method == "dpo":
            chosen = random_rows(tokenizer, ppo.prompts, batches * args.batch, args.length, ppo.seed)
            rejected = random_rows(tokenizer, ppo.prompts, batches * args.batch, args.length, ppo.seed + 1)
            prefs = [{"split": "train", "chosen_ids": p + c, "rejected_ids": p + r, "n_tokens_chosen": len(c)}
                     for (p, c), (_, r) in zip(chosen, rejected)]
            dpo_trainer(cfg, policy, tokenizer, prefs, out, cpu, callbacks=[clock]).train()
            info["episodes_per_batch"] = 2 * args.batch  # chosen and rejected sequences
            seconds = batch_seconds(clock.ends, 1)
        else:
            examples = random_rows(tokenizer, ppo.prompts, batches * args.batch, args.length, ppo.seed)
            sft_trainer(cfg, policy, tokenizer, examples, out, cpu, callbacks=[clock]).train()
            seconds = batch_seconds(clock.ends, 1)
        if not seconds:
            raise RuntimeError(f"{method}: no timed batch ({len(clock.ends)} steps recorded)")
        median = statistics.median(seconds)
        results[method] = dict(info, seconds_per_batch=median, batches_timed=len(seconds),
                               episodes_per_s=info["episodes_per_batch"] / median)
        del policy
    shutil.rmtree(work, ignore_errors=True)

    rate = {m: r["episodes_per_s"] for m, r in results.items()}
    vs_ppo = {m: rate[m] / rate["ppo"] for m in rate} if "ppo" in rate else {}
    print(f"batch {args.batch}, response length {args.length}, {args.steps} batches timed after 1 warm-up; "
          f"ppo.mini_batches {ppo.mini_batches} x ppo_epochs {ppo.ppo_epochs}; base {base}")
    print(f"{'method':>7} {'s/batch':>9} {'episodes/batch':>15} {'updates/batch':>14} {'episodes/s':>11} "
          f"{'vs ppo':>7} {'mean len':>9}")
    for m, r in results.items():
        length = r["mean_completion_length"]
        print(f"{m:>7} {r['seconds_per_batch']:9.3f} {r['episodes_per_batch']:15d} {r['updates_per_batch']:14d} "
              f"{r['episodes_per_s']:11.2f} {vs_ppo.get(m, float('nan')):7.2f} "
              f"{'' if length is None else f'{length:.1f}':>9}")
    meets = {m: vs_ppo[m] >= t for m, t in TARGET_VS_PPO.items() if m in vs_ppo}
    print(json.dumps({"episodes_per_s": rate, "vs_ppo": vs_ppo, "target_vs_ppo": TARGET_VS_PPO, "meets_target": meets,
                      "seconds_per_batch": {m: r["seconds_per_batch"] for m, r in results.items()},
                      "episodes_per_batch": {m: r["episodes_per_batch"] for m, r in results.items()},
                      "updates_per_batch": {m: r["updates_per_batch"] for m, r in results.items()},
                      "mean_completion_length": {m: r["mean_completion_length"] for m, r in results.items()},
                      "batches_timed": args.steps, "batch": args.batch, "response_length": args.length,
                      "mini_batches": ppo.mini_batches, "ppo_epochs": ppo.ppo_epochs,
                      "num_generations": cfg.align.num_generations, "threads": args.threads, "device": args.device,
                      "base": args.base or "random (hidden 128, 4 layers)"}))


if __name__ == "__main__":
    main()
