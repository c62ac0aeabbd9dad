"""Benchmark: the diversity callback's cost as a share of a PPO step, at the default settings.

Times a few LoRA PPO steps (TRL 1.12, default `ppo` settings) and a few diversity measurements (default
`diversity` settings: sampling.n_samples per prompt, sampling.n_predict tokens, SBERT on), then reports the share
t_callback / (every * t_step) for several `every` values. The reward and value models are untrained heads
on the base (the cost of a step does not depend on what the reward model learned).

    python bench/ppo_callback.py [--base DIR] [--steps 6] [--repeats 2] [--threads 1]

Uses the tiny-world base (<cache_dir>/tinyworld/current/model) when it exists, else builds a micro Llama.
The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=None, help="base model dir (default: the tiny world, else a micro Llama)")
    parser.add_argument("--steps", type=int, default=6, help="PPO steps timed (the first is dropped as warm-up)")
    parser.add_argument("--repeats", type=int, default=2, help="diversity measurements timed")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0 = torch default)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import torch
    from transformers import AutoModelForSequenceClassification, TrainerCallback

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from measure.config import default_cache_dir
    from measure.loading import load_model
    from rlhf.config import register_configs
    from rlhf.stages.callbacks import DiversityCallback
    from rlhf.stages.ppo import PPORun

    if args.threads:
        torch.set_num_threads(args.threads)
    base = args.base or str(Path(default_cache_dir()) / "tinyworld" / "current" / "model")
    work = Path(tempfile.mkdtemp(prefix="bench_ppo_"))
    if not (Path(base) / "config.json").exists():
        from measure.tiny import build_tiny_llama

        base = str(build_tiny_llama(work / "micro_base", seed=1, init_std=0.3))
    register_configs()
    with initialize_config_dir(config_dir=str(Path(__file__).resolve().parents[1] / "conf"), version_base="1.3"):
        app = OmegaConf.to_object(compose(config_name="rlhf", overrides=[
            f"ppo.base.path={base}", "ppo.base.device=cpu", f"ppo.steps={args.steps}",
            f"ppo.checkpoint_every={10**6}", "diversity.ground_truth=null"]))
    cfg, div = app.ppo, app.diversity
    policy, tokenizer = load_model(cfg.base)
    reward = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1).eval().requires_grad_(False)
    value = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)

    step_ends = []

    class StepClock(TrainerCallback):
        def on_step_end(self, a, state, control, **kw):
            step_ends.append(time.perf_counter())

    run = PPORun(cfg, policy, tokenizer, reward, value, work / "ppo", callbacks=[StepClock()])
    started = time.perf_counter()
    run.train()
    steps = [b - a for a, b in zip([started] + step_ends[:-1], step_ends)][1:]  # drop the warm-up step
    probe = DiversityCallback(lambda: run.peft_policy, tokenizer, cfg.prompts, div)
    probe.measure(0)  # warm-up: loads SBERT
    seconds = [probe.measure(i)["diversity/seconds"] for i in range(args.repeats)]
    shutil.rmtree(work, ignore_errors=True)
    t_step, t_cb = sum(steps) / len(steps), sum(seconds) / len(seconds)
    shares = {str(n): t_cb / (n * t_step) for n in (1, 4, 8, 16, 32)}
    print(f"PPO step {t_step:.2f} s (batch {cfg.batch_size}, {cfg.response_length} tokens); diversity measurement "
          f"{t_cb:.2f} s ({div.sampling.n_samples} x {len(cfg.prompts)} completions, {div.sampling.n_predict} tokens, "
          "SBERT on)")
    for n, share in shares.items():
        print(f"  every {n:>2} steps: {100 * share:5.1f}% of step time")
    print(json.dumps({"base": base, "threads": args.threads, "ppo_step_seconds": t_step, "steps_timed": len(steps),
                      "callback_seconds": t_cb, "every_default": div.every,
                      "cost_share_at_default": shares[str(div.every)], "cost_share_by_every": shares,
                      "n_samples": div.sampling.n_samples, "n_predict": div.sampling.n_predict,
                      "batch_size": cfg.batch_size,
                      "response_length": cfg.response_length}))


if __name__ == "__main__":
    main()
