"""What the preferences, reward, ppo and summary stages share: the start-up check of the base model (one line
and exit 2 when it is missing, before anything loads), CPU threads, and the config record for wandb."""
from __future__ import annotations

import dataclasses
import logging
import sys

import torch

from measure.config import ConfigError
from measure.loading import check_model_source

log = logging.getLogger("rlhf")


def require_base_model(cfg) -> None:
    """Stop with one line naming `rlhf.base.path` (and how to build it) when the base model is missing."""
    try:
        check_model_source(cfg.rlhf.base, "rlhf.base.path")
    except ConfigError as err:
        log.error("%s", err)
        sys.exit(2)


def set_threads(threads: int) -> None:
    """torch CPU threads (0 = torch's default). On a busy shared CPU, 1 thread avoids OpenMP spin contention."""
    if threads > 0:
        torch.set_num_threads(threads)


def stage_config(cfg, *names: str) -> dict:
    """The named parts of the typed config as plain dicts (for wandb and results.json)."""
    return {name: dataclasses.asdict(getattr(cfg, name)) for name in names}
