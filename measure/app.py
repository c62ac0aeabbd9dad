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
from measure.metrics.registry import METRICS_VERSION
from measure.results import write_results
from measure.tracking import wandb_run


N_KEYS = ("n_completions", "n_texts", "n_outputs", "n_continuations")  # how each experiment names its n per model


def provenance(cfg: MeasureConfig, results: dict) -> dict:
    """What every results.json states up front: the metric definitions' version, n per model, and the temperature
    and seed of the samples where known (sampled here: the config's; texts: what the records say, else null)."""
    n = {label: next((m[k] for k in N_KEYS if isinstance(m, dict) and k in m), None)
         for label, m in results.get("models", {}).items()}
    if cfg.experiment.name == "texts":
        known = results.get("generation_settings", {}).get("known", {})
        generation = {label: {"temperature": s.get("temperature"), "seed": s.get("seed")} for label, s in known.items()}
    else:
        generation = {label: {"temperature": cfg.sampling.temperature, "seed": cfg.sampling.seed,
                              "n_predict": cfg.sampling.n_predict,
                              "backend": "endpoint" if getattr(cfg.model, label).base_url else "transformers"}
                      for label in cfg.labels}
    return {"metrics_version": METRICS_VERSION, "n": n, "generation": generation,
            "stats_seed": cfg.experiment.stats_seed}


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
                       "python": platform.python_version(), **provenance(cfg, results), "config": config}
    write_results(out_dir, results)
    return results
