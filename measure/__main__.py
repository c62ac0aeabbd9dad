"""Entry point: `python -m measure experiment=<entropy|semantic|personas|attractor|texts> model=<pair>`.

The DictConfig becomes a typed ``MeasureConfig`` here; a bad value or a setting the schema lacks (with or
without `+`) stops the run with one line naming the field and the accepted range, before any model loads; so do a
secret on the command line and, right after a model loads, a top-k or length it cannot serve. Ctrl-C prints one
line and exits 130 (a rerun resumes the samples). The experiment writes `results.json`, its figures
and generations into the Hydra run directory; the log lands there too (measure.log).
"""
from __future__ import annotations

import logging
import sys

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from measure.config import MeasureConfig, check_inputs, register_configs
from measure.errors import CONFIG_ERRORS, bad_input_exits, command_line_app, config_error_line, typed_config
from measure.loading import check_model_source
from measure.app import run_experiment
from measure.results import run_dir

register_configs()
log = logging.getLogger("measure")


def checked_config(dcfg: DictConfig) -> MeasureConfig:
    """The typed config, with every input file and model the run needs checked to exist (no model is loaded)."""
    cfg: MeasureConfig = typed_config(dcfg)
    check_inputs(cfg)
    if cfg.experiment.name != "texts":
        for label in cfg.labels:
            check_model_source(getattr(cfg.model, label), f"model.{label}.path")
    return cfg


# absolute, so that the console script (rmc-*) finds conf/ as `python -m` does
CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


@command_line_app("measure")
@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="measure")
def main(dcfg: DictConfig) -> None:
    try:
        cfg = checked_config(dcfg)
    except CONFIG_ERRORS as err:
        log.error("config error: %s", config_error_line(err))
        sys.exit(2)
    out = run_dir()
    with bad_input_exits(log):  # e.g. a model that cannot be fetched, a batch that does not fit: one line
        run_experiment(cfg, out, OmegaConf.to_container(dcfg, resolve=True))
    log.info("results: %s", out / "results.json")


if __name__ == "__main__":
    main()
