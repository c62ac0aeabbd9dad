"""Entry point: `python -m rlhf stage=<stage>` (Hydra). Each stage is one function taking the typed config.
The one-command study is its own app, `python -m rlhf.study`.

A new stage is one line in STAGE_FUNCTIONS and its name in rlhf.config.STAGES. Stage modules are imported
when their stage runs (TRL and PEFT alone take ~7 s to import), so a config error is reported at once. Bad input
(a value out of range, a setting the schema lacks with or without `+`, a secret on the command line, a model the
config cannot serve) ends in one line and exit 2; Ctrl-C in one line and exit 130 (a rerun resumes).
"""
from __future__ import annotations

import importlib
import logging
import sys
from typing import Callable

from pathlib import Path

import hydra
from omegaconf import DictConfig

from measure.errors import CONFIG_ERRORS, bad_input_exits, command_line_app, config_error_line, typed_config
from rlhf.config import RlhfConfig, register_configs

log = logging.getLogger("rlhf")

# stage -> the module whose `run_stage(cfg, out=None)` runs it
STAGE_FUNCTIONS = {
    "pretrain": "rlhf.world.pretrain",
    "preferences": "rlhf.stages.preferences",
    "reward": "rlhf.stages.reward",
    "predict": "rlhf.stages.predict",
    "ppo": "rlhf.stages.ppo_stage",
    "align": "rlhf.stages.align",
    "summary": "rlhf.stages.summary",
}


def stage_function(stage: str) -> Callable:
    return importlib.import_module(STAGE_FUNCTIONS[stage]).run_stage


register_configs()


# absolute, so that the console script (rmc-*) finds conf/ as `python -m` does
CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


@command_line_app("rlhf")
@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="rlhf")
def main(dcfg: DictConfig) -> None:
    try:
        cfg: RlhfConfig = typed_config(dcfg)
    except (*CONFIG_ERRORS, TypeError) as err:  # ConfigError is a ValueError; OmegaConf wraps some in its own
        log.error("config error: %s", config_error_line(err))
        sys.exit(2)
    with bad_input_exits(log):
        stage_function(cfg.stage)(cfg)


if __name__ == "__main__":
    main()
