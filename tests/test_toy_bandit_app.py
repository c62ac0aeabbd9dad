"""End-to-end tests of `python -m toy_bandit` (Hydra app) via subprocess, wandb disabled."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_app(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_SILENT": "true", "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "toy_bandit", "wandb=disabled", f"hydra.run.dir={tmp_path}",
                           *overrides], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_table1_app_writes_results_and_figure(tmp_path):
    proc = run_app(tmp_path)  # experiment=table1 is the default
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["experiment"] == "table1"
    rows = results["table1"]["rows"]
    assert [r["t"] for r in rows] == [0, 1, 2, 3, 4]
    for r in rows:
        assert {"t", "action", "reward", "advantage", "value", "p_jeepiti", "p_chats", "paper_p_jeepiti",
                "matches_paper"} <= set(r)
    assert results["table1"]["flagged_rows"] == [2, 3, 4]
    assert (tmp_path / "table1_pi_jeepiti.png").stat().st_size > 0
    assert (tmp_path / "toy_bandit.log").exists()
    assert "0.90 [0.93] *" in proc.stdout + proc.stderr


def test_simulate_app_writes_results_and_figures(tmp_path):
    proc = run_app(tmp_path, "experiment=simulate", "simulate.n_seeds=40", "simulate.n_steps=30",
                   "simulate.betas=[0.0,1.0]")
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    sim = results["simulate"]
    assert sim["n_seeds"] == 40 and sim["n_steps"] == 30
    assert set(sim["rules"]) == {"advantage", "actde", "reinforce", "ppo_kl"}
    for s in sim["rules"].values():
        assert {"final_mean_pi_best", "final_mean_entropy_bits", "trap_escape_share"} <= set(s)
    assert [b["beta"] for b in sim["beta_sweep"]] == [0.0, 1.0]
    for png in ("pi_best_over_time.png", "entropy_vs_beta.png", "exploration_trap.png"):
        assert (tmp_path / png).stat().st_size > 0
        assert png in results["figures"]


def test_bad_value_fails_before_work_with_one_line(tmp_path):
    field = "rules.ppo_kl.beta"  # the other fields' messages are checked in-process (test_toy_bandit.py)
    proc = run_app(tmp_path, "experiment=simulate", f"{field}=-1.0")
    assert proc.returncode == 2
    out = proc.stdout + proc.stderr
    lines = [ln for ln in out.splitlines() if field in ln]
    assert len(lines) == 1 and "accepted" in lines[0], out[-2000:]
    assert not (tmp_path / "results.json").exists()


def test_misspelt_key_fails(tmp_path):
    proc = run_app(tmp_path, "simulate.n_seed=10")
    assert proc.returncode != 0
    assert "n_seed" in proc.stdout + proc.stderr
