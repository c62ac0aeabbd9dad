"""Entry point: `python -m rlhf stage=<stage>` (Hydra). Each stage is one function taking the typed config.

A new stage is one line in STAGE_FUNCTIONS (and its name in rlhf.config.STAGES).
"""
from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from rlhf.config import RlhfConfig, register_configs
from rlhf.pipeline import run_stage as pipeline
from rlhf.ppo_stage import run_stage as ppo
from rlhf.preferences import run_stage as preferences
from rlhf.pretrain import run_stage as pretrain
from rlhf.reward import run_stage as reward
from rlhf.summary import run_stage as summary

log = logging.getLogger("rlhf")

STAGE_FUNCTIONS = {
    "pretrain": pretrain,
    "preferences": preferences,
    "reward": reward,
    "ppo": ppo,
    "summary": summary,
    "pipeline": pipeline,
}

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="rlhf")
def main(dcfg: DictConfig) -> None:
    try:
        cfg: RlhfConfig = OmegaConf.to_object(dcfg)
    except (ValueError, TypeError) as err:  # ConfigError is a ValueError; OmegaConf wraps some in its own
        log.error("%s", str(err).strip().splitlines()[0])
        sys.exit(2)
    if cfg.stage not in STAGE_FUNCTIONS:
        log.error("stage: %r is not implemented yet; implemented: %s", cfg.stage, " | ".join(STAGE_FUNCTIONS))
        sys.exit(2)
    STAGE_FUNCTIONS[cfg.stage](cfg)


if __name__ == "__main__":
    main()
