"""Entry point: `python -m measure experiment=<entropy|semantic|personas|attractor|texts> model=<pair>`.

The DictConfig becomes a typed ``MeasureConfig`` here; a bad value stops the run with one line naming the
field and the accepted range, before any model loads. The experiment writes `results.json`, its figures
and generations into the Hydra run directory; the log lands there too (measure.log).
"""
from __future__ import annotations

import logging
import sys

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from measure.config import ConfigError, MeasureConfig, check_inputs, register_configs
from measure.errors import config_error_line, CONFIG_ERRORS
from measure.loading import check_model_source
from measure.app import run_experiment
from measure.results import run_dir

register_configs()
log = logging.getLogger("measure")


def typed_config(dcfg: DictConfig) -> MeasureConfig:
    """The typed config, with every input file and model the run needs checked to exist (no model is loaded)."""
    cfg: MeasureConfig = OmegaConf.to_object(dcfg)
    check_inputs(cfg)
    if cfg.experiment.name != "texts":
        for label in cfg.labels:
            check_model_source(getattr(cfg.model, label), f"model.{label}.path")
    return cfg


# absolute, so that the console script (rmc-*) finds conf/ as `python -m` does
CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="measure")
def main(dcfg: DictConfig) -> None:
    try:
        cfg = typed_config(dcfg)
    except CONFIG_ERRORS as err:
        log.error("config error: %s", config_error_line(err))
        sys.exit(2)
    out = run_dir()
    try:
        run_experiment(cfg, out, OmegaConf.to_container(dcfg, resolve=True))
    except ConfigError as err:  # e.g. a hub model that cannot be fetched: one line, not a traceback
        log.error("%s", err)
        sys.exit(2)
    log.info("results: %s", out / "results.json")


if __name__ == "__main__":
    main()
