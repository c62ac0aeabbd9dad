"""Tiny-world build speed: the whole `python -m rlhf stage=pretrain` build (world, tokenizer, pretraining,
quality sample) into a fresh cache, timed. Prints the stage timings, training tokens per second and the
held-out loss; the last line is one JSON object. The issue's budget: <= 600 s wall on 2 CPU cores.

    python bench/pretrain.py                       # the default build
    python bench/pretrain.py world=test pretrain=test   # any Hydra overrides of the rlhf app
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

BUDGET_S = 600


def main(overrides: list) -> None:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from rlhf.config import register_configs
    from rlhf.world.pretrain import run_stage

    register_configs()
    root = Path(tempfile.mkdtemp(prefix="bench_pretrain_"))
    conf = Path(__file__).resolve().parents[1] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = OmegaConf.to_object(compose(config_name="rlhf", overrides=["wandb=disabled",
                                                                         f"cache_dir={root / 'cache'}", *overrides]))
    start = time.perf_counter()
    results = run_stage(cfg, out=root / "run")
    wall = time.perf_counter() - start
    train, quality = results["train"], results["quality"]
    summary = {"wall_s": wall, "budget_s": BUDGET_S, "within_budget": wall <= BUDGET_S,
               "world_s": train["world_s"], "tokenizer_s": train["tokenizer_s"], "train_wall_s": train["train_wall_s"],
               "quality_s": quality.get("wall_s"), "train_tokens": train["tokens"],
               "tokens_per_s": train["tokens_per_s"], "n_params": train["n_params"],
               "heldout_loss_nats": train["heldout_loss_nats"], "quality_passed": quality["passed"],
               "run_dir": str(root / "run")}
    for key, value in summary.items():
        print(f"{key:>18}: {value:.3f}" if isinstance(value, float) else f"{key:>18}: {value}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main(sys.argv[1:])
