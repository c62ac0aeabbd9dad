"""Entry point: `python -m measure experiment=<entropy|semantic|personas|attractor|texts> model=<pair>`.

The DictConfig becomes a typed ``MeasureConfig`` here; a bad value stops the run with one line naming the
field and the accepted range, before any model loads. The experiment writes `results.json`, its figures
and generations into the Hydra run directory; the log lands there too (measure.log).
"""
from __future__ import annotations

import importlib
import logging
import platform
import sys
import time

import hydra
from omegaconf import DictConfig, OmegaConf

from measure.config import ConfigError, MeasureConfig, register_configs
from measure.errors import config_error_line, CONFIG_ERRORS
from measure.loading import check_model_source
from measure.results import run_dir, write_results
from measure.tracking import wandb_run

register_configs()
log = logging.getLogger("measure")


def typed_config(dcfg: DictConfig) -> MeasureConfig:
    """The typed config, with every model the run needs checked to exist (no model is loaded)."""
    cfg: MeasureConfig = OmegaConf.to_object(dcfg)
    if cfg.experiment.name != "texts":
        for label in cfg.labels:
            check_model_source(getattr(cfg.model, label), f"model.{label}.path")
    return cfg


@hydra.main(version_base="1.3", config_path="../conf", config_name="measure")
def main(dcfg: DictConfig) -> None:
    try:
        cfg = typed_config(dcfg)
    except CONFIG_ERRORS as err:
        log.error("config error: %s", config_error_line(err))
        sys.exit(2)
    out = run_dir()
    experiment = importlib.import_module(f"measure.experiments.{cfg.experiment.name}")
    started = time.time()
    config = OmegaConf.to_container(dcfg, resolve=True)
    try:
        with wandb_run(cfg.wandb, str(out), name=f"{cfg.experiment.name}-{'-'.join(cfg.labels)}", config=config,
                       job_type=f"measure/{cfg.experiment.name}"):
            results = experiment.run(cfg, out)
    except ConfigError as err:  # e.g. a hub model that cannot be fetched: one line, not a traceback
        log.error("%s", err)
        sys.exit(2)
    results["meta"] = {"experiment": cfg.experiment.name, "seconds": time.time() - started,
                       "python": platform.python_version(), "config": config}
    path = write_results(out, results)
    log.info("results: %s", path)


if __name__ == "__main__":
    main()
