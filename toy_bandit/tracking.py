"""wandb for the toy bandit: one run per Hydra job, keys namespaced ``bandit/<rule>/...``."""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Iterator, List

from toy_bandit.config import ToyBanditConfig

log = logging.getLogger(__name__)


@contextlib.contextmanager
def wandb_run(cfg: ToyBanditConfig, run_dir: str, config: dict) -> Iterator[object]:
    """Start a wandb run in ``run_dir`` (mode from ``cfg.wandb``) and finish it whatever happens."""
    import wandb

    run = wandb.init(mode=cfg.wandb.mode, project=cfg.wandb.project, entity=cfg.wandb.entity,
                     group=cfg.wandb.group, job_type=f"toy_bandit/{cfg.experiment.name}", dir=run_dir,
                     config=config)
    try:
        yield run
    finally:
        run.finish()


def log_table1(run, summary: dict, figures: List[str]) -> None:
    """Table 1 rows as a wandb table plus how many rows match the paper."""
    import wandb

    cols = ["t", "action", "reward", "advantage", "value", "p_jeepiti", "p_chats", "paper_p_jeepiti",
            "matches_paper"]
    table = wandb.Table(columns=cols, data=[[r[c] for c in cols] for r in summary["rows"]])
    run.log({"bandit/table1/rows": table, **_images(figures)})
    run.summary["bandit/table1/n_matching_rows"] = len(summary["matching_rows"])
    run.summary["bandit/table1/flagged_rows"] = summary["flagged_rows"]


def log_simulation(run, sim: dict, figures: List[str]) -> None:
    """Curves per step (mean pi(best), band, entropy bits, pi(trap)), final summaries per rule, the
    beta sweep and the figures."""
    import wandb

    n_points = sim["n_steps"] + 1
    for t in range(n_points):
        row = {}
        for name, c in sim["curves"].items():
            row[f"bandit/{name}/pi_best"] = c["pi_best_mean"][t]
            row[f"bandit/{name}/pi_best_low"] = c["pi_best_band"][t][0]
            row[f"bandit/{name}/pi_best_high"] = c["pi_best_band"][t][1]
            row[f"bandit/{name}/entropy_bits"] = c["entropy_bits_mean"][t]
            row[f"bandit/{name}/trap/pi_trap"] = sim["trap"][name]["pi_trap_mean"][t]
        run.log(row, step=t)
    for name, s in sim["rules"].items():
        run.summary[f"bandit/{name}/final_pi_best"] = s["final_mean_pi_best"]
        run.summary[f"bandit/{name}/final_entropy_bits"] = s["final_mean_entropy_bits"]
        run.summary[f"bandit/{name}/trap_escape_share"] = s["trap_escape_share"]
    cols = list(sim["beta_sweep"][0])
    sweep = wandb.Table(columns=cols, data=[[str(s[c]) if isinstance(s[c], list) else s[c] for c in cols]
                                            for s in sim["beta_sweep"]])
    run.log({"bandit/ppo_kl/beta_sweep": sweep, **_images(figures)}, step=n_points - 1)


def _images(paths: List[str]) -> dict:
    import wandb

    return {f"bandit/figures/{os.path.splitext(os.path.basename(p))[0]}": wandb.Image(p) for p in paths}
