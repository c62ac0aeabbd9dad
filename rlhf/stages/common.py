"""What the preferences, reward, ppo and summary stages share: the start-up check of the base model (one line
and exit 2 when it is missing, before anything loads), CPU threads, and the config record for wandb."""
from __future__ import annotations

import dataclasses
import logging
import os
import sys

import torch

from measure.config import ConfigError
from measure.loading import check_model_source

log = logging.getLogger("rlhf")


def require_base_model(cfg) -> None:
    """Stop with one line naming `ppo.base.path` (and how to build it) when the base model is missing.

    Then pin the build: a path through the moving `tinyworld/current` link (the default) is resolved once, here,
    so every model and file this run reads comes from one build even if another build repoints the link while
    it runs (a reward model and a policy of two different base models, with two tokenizers, were seen)."""
    try:
        check_model_source(cfg.ppo.base, "ppo.base.path")
    except ConfigError as err:
        log.error("%s", err)
        sys.exit(2)
    if os.path.exists(cfg.ppo.base.path):
        cfg.ppo.base.path = os.path.realpath(cfg.ppo.base.path)
    truth = getattr(getattr(cfg, "diversity", None), "ground_truth", None)
    if truth and os.path.exists(truth):
        cfg.diversity.ground_truth = os.path.realpath(truth)


def set_threads(threads: int) -> None:
    """torch CPU threads (0 = torch's default). On a busy shared CPU, 1 thread avoids OpenMP spin contention."""
    if threads > 0:
        torch.set_num_threads(threads)


def stage_config(cfg, *names: str) -> dict:
    """The named parts of the typed config as plain dicts (for wandb and results.json)."""
    return {name: dataclasses.asdict(getattr(cfg, name)) for name in names}
