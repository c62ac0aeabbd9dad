"""Run one measurement experiment on a typed config: wandb run, the experiment, `results.json`.

Shared by the `python -m measure` entry point and the one-command pipeline (rlhf/study/steps.py), so an
experiment run from either place writes the same files.
"""
from __future__ import annotations

import importlib
import platform
import time
from pathlib import Path
from typing import Optional

from measure.config import MeasureConfig
from measure.results import write_results
from measure.tracking import wandb_run


def run_experiment(cfg: MeasureConfig, out_dir: Path, config: dict, group: Optional[str] = None,
                   name: Optional[str] = None) -> dict:
    """Run ``cfg.experiment.name`` into ``out_dir``; returns the results (also written as results.json)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    experiment = importlib.import_module(f"measure.experiments.{cfg.experiment.name}")
    started = time.time()
    with wandb_run(cfg.wandb, str(out_dir), name=name or f"{cfg.experiment.name}-{'-'.join(cfg.labels)}",
                   config=config, job_type=f"measure/{cfg.experiment.name}", group=group):
        results = experiment.run(cfg, out_dir)
    results["meta"] = {"experiment": cfg.experiment.name, "seconds": time.time() - started,
                       "python": platform.python_version(), "config": config}
    write_results(out_dir, results)
    return results
