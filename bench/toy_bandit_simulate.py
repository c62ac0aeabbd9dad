"""Time the default `python -m toy_bandit experiment=simulate` run (the issue's bar: < 30 s on 2 cores).

Prints per-repeat timings and medians; the LAST line is one JSON object of the figures:
  end_to_end_s      the whole command as a user runs it (default wandb=offline), imports included
  end_to_end_wandb_disabled_s   the same with wandb=disabled
  simulate_core_s   simulate_all() in-process (2000 seeds x 300 steps x 4 rules, trap, beta sweep)
Usage: python bench/toy_bandit_simulate.py [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def time_command(args: list, run_dir: str) -> float:
    env = {**os.environ, "WANDB_SILENT": "true", "MPLBACKEND": "Agg"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "toy_bandit", "experiment=simulate", f"hydra.run.dir={run_dir}", *args],
                   cwd=REPO, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def time_core() -> float:
    from toy_bandit.config import BanditConfig, RulesConfig, SimulateConfig
    from toy_bandit.simulate import simulate_all

    start = time.perf_counter()
    simulate_all(BanditConfig(), RulesConfig(), SimulateConfig())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    figures = {"end_to_end_s": [], "end_to_end_wandb_disabled_s": [], "simulate_core_s": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            figures["end_to_end_s"].append(time_command([], os.path.join(tmp, f"offline{i}")))
            figures["end_to_end_wandb_disabled_s"].append(time_command(["wandb=disabled"], os.path.join(tmp, f"off{i}")))
            figures["simulate_core_s"].append(time_core())
            print(f"repeat {i}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in figures.items()), flush=True)
    summary = {f"{k}_median": round(statistics.median(v), 3) for k, v in figures.items()}
    summary.update({"repeats": args.repeats, "cpu_count": os.cpu_count(), "n_seeds": 2000, "n_steps": 300})
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
