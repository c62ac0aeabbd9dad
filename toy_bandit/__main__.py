"""Entry point: ``python -m toy_bandit [experiment=table1|simulate] [wandb=offline|online|disabled] [key=value ...]``.

Writes ``results.json`` (strict JSON), PNG figures and the Hydra log into the Hydra run directory. A bad value,
a setting the schema lacks (with or without `+`) or a secret on the command line stops it in one line (exit 2);
Ctrl-C in one line (exit 130).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
from typing import Optional

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from toy_bandit import figures
from toy_bandit.cli import command_line_app, typed_config
from toy_bandit.config import ToyBanditConfig
from toy_bandit.results import write_results
from toy_bandit.simulate import chatbot_bandit, simulate_all
from toy_bandit.table1 import format_table1, replay_table1, table1_summary
from toy_bandit.tracking import log_simulation, log_table1, wandb_run

log = logging.getLogger(__name__)


def run_table1(cfg: ToyBanditConfig, run_dir: str) -> tuple:
    """Replay Table 1, log the comparison table, draw the figure; returns (results block, figures)."""
    rows = replay_table1(cfg.bandit.actions, cfg.bandit.rewards, cfg.rules.advantage.lr,
                         cfg.rules.advantage.value_lr, cfg.table1.decimals)
    summary = table1_summary(rows)
    log.info("Table 1 replayed under the stated rule:\n%s", format_table1(rows, cfg.table1.decimals))
    log.info("rows matching the paper: %s; flagged: %s", summary["matching_rows"], summary["flagged_rows"])
    return summary, [figures.plot_table1(rows, run_dir)]


def run_simulate(cfg: ToyBanditConfig, run_dir: str) -> tuple:
    """Simulate every rule, the trap and the beta sweep; returns (results block, figures)."""
    sim_cfg = cfg.simulate
    sim = simulate_all(cfg.bandit, cfg.rules, sim_cfg, progress=True)
    chat = chatbot_bandit(cfg.bandit)
    pngs = [
        figures.plot_pi_best(sim["curves"], sim["rules"], sim["best_action"], sim_cfg.band_percentiles, run_dir),
        figures.plot_entropy_vs_beta(sim["beta_sweep"], chat.init_logits, chat.rewards, sim["max_entropy_bits"],
                                     run_dir),
        figures.plot_trap(sim["trap"], sim["trap_action"], sim_cfg.trap_init_prob, sim_cfg.escape_threshold,
                          run_dir),
    ]
    for name, s in sim["rules"].items():
        log.info("%-10s final mean pi(%s) %.4f | final entropy %.4f bits | trap escape share %.4f",
                 name, sim["best_action"], s["final_mean_pi_best"], s["final_mean_entropy_bits"],
                 s["trap_escape_share"])
    for s in sim["beta_sweep"]:
        log.info("beta %-6g final entropy %.4f bits (optimum %.4f)", s["beta"], s["final_mean_entropy_bits"],
                 s["optimum_entropy_bits"])
    return sim, pngs


def run(cfg: ToyBanditConfig, run_dir: str, group: Optional[str] = None) -> dict:
    """Run ``cfg.experiment`` into ``run_dir`` (wandb run, figures, results.json); returns the results.

    The entry point below and the one-command pipeline both call this.
    """
    os.makedirs(run_dir, exist_ok=True)
    if group:
        cfg = dataclasses.replace(cfg, wandb=dataclasses.replace(cfg.wandb, group=group))
    config = dataclasses.asdict(cfg)
    start = time.perf_counter()
    with wandb_run(cfg, run_dir, config) as wb:
        if cfg.experiment.name == "table1":
            block, pngs = run_table1(cfg, run_dir)
            if cfg.wandb.mode != "disabled":
                log_table1(wb, block, pngs)
        else:
            block, pngs = run_simulate(cfg, run_dir)
            if cfg.wandb.mode != "disabled":
                log_simulation(wb, block, pngs)
        results = {
            "experiment": cfg.experiment.name,
            cfg.experiment.name: block,
            "figures": [os.path.basename(p) for p in pngs],
            "wall_s": time.perf_counter() - start,
            "config": config,
        }
        log.info("wrote %s", write_results(run_dir, results))
    return results


# absolute, so that the console script (rmc-*) finds conf/ as `python -m` does
CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


@command_line_app("toy_bandit")
@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="toy_bandit")
def main(dcfg: DictConfig) -> None:
    try:
        cfg: ToyBanditConfig = typed_config(dcfg)
    except ValueError as err:
        log.error("invalid config: %s", str(err).splitlines()[0])
        sys.exit(2)
    run(cfg, HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
