"""The RLHF stages as a user runs them: start-up errors, the stages end to end on a micro model (a beta sweep
with one failing job, then the summary), and the same PPO run under `accelerate launch` with 2 processes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from conftest import REPO, run_app

# Micro-size settings for every stage (seconds per stage on 2 CPU cores).
# The sample lengths of preferences and diversity follow ppo.response_length.
SMALL = ["ppo.steps=4", "ppo.batch_size=6", "ppo.mini_batches=1", "ppo.response_length=12",
         "ppo.checkpoint_every=2", "ppo.threads=1", "preferences.n_pairs_per_prompt=8",
         "preferences.sampling.batch_size=16", "reward.epochs=1", "diversity.every=2", "diversity.sampling.n_samples=4",
         "diversity.sampling.batch_size=4", "diversity.final_n_samples=6", "diversity.sbert=false",
         "wandb=disabled"]


@pytest.fixture(scope="module")
def micro_base(tmp_path_factory):
    from measure.tiny import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("rlhf_app") / "base", seed=1, init_std=0.3)


@pytest.mark.parametrize("override,field", [("ppo.beta=-0.1", "ppo.beta"),
                                            ("ppo.base.path=/nonexistent/tinyworld/model", "ppo.base.path")])
def test_ppo_bad_config_fails_at_start_up_with_one_line(override, field, tmp_path):
    proc = run_app("rlhf", "stage=ppo", override, "wandb=disabled", f"cache_dir={tmp_path}",
                   f"hydra.run.dir={tmp_path / 'run'}", timeout=180)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-2000:]
    assert [line for line in out.splitlines() if field in line and "ERROR" in line], out[-2000:]
    assert "Traceback" not in out and "loaded base" not in out
    assert not (tmp_path / "run" / "results.json").exists()


def compose(*overrides: str):
    """The typed config as `python -m rlhf <overrides>` would see it."""
    from hydra import compose as hydra_compose, initialize_config_dir
    from omegaconf import OmegaConf

    from rlhf.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return OmegaConf.to_object(hydra_compose(config_name="rlhf", overrides=list(overrides)))


def test_stage_seeds_and_sample_lengths_derive_from_one_value_each():
    cfg = compose("seed=7", "ppo.response_length=40")
    seeds = [cfg.world.seed, cfg.pretrain.seed, cfg.pretrain.quality.sampling.seed, cfg.preferences.seed,
             cfg.preferences.sampling.seed, cfg.reward.seed, cfg.ppo.seed]
    assert seeds == [7] * 7
    assert cfg.preferences.sampling.n_predict == cfg.diversity.sampling.n_predict == 40
    assert cfg.diversity.sampling.seed == 1234  # fixed: every run of a sweep measures on the same draw
    one = compose("ppo.seed=3", "preferences.sampling.n_predict=8")  # each stays overridable on its own
    assert (one.seed, one.ppo.seed, one.reward.seed, one.world.seed) == (0, 3, 0, 0)
    assert one.preferences.sampling.n_predict == 8 and one.diversity.sampling.n_predict == one.ppo.response_length


def test_unknown_stage_fails_at_start_up_naming_the_stages(tmp_path):
    proc = run_app("rlhf", "stage=nonsense", "wandb=disabled", f"hydra.run.dir={tmp_path}", timeout=180)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "stage" in out and "ppo" in out and "Traceback" not in out


@pytest.mark.slow
def test_stages_end_to_end_with_a_failing_sweep_job_and_the_summary(micro_base, tmp_path):
    common = [f"ppo.base.path={micro_base}", f"cache_dir={tmp_path / 'cache'}", *SMALL]
    prefs = run_app("rlhf", "stage=preferences", *common, f"hydra.run.dir={tmp_path / 'prefs'}")
    assert prefs.returncode == 0, prefs.stderr[-3000:]
    assert json.loads((tmp_path / "prefs" / "results.json").read_text())["n_pairs"] == 24
    assert (tmp_path / "prefs" / "preferences" / "dataset_info.json").exists()
    reward = run_app("rlhf", "stage=reward", *common, f"hydra.run.dir={tmp_path / 'reward'}")
    assert reward.returncode == 0, reward.stderr[-3000:]
    assert 0 <= json.loads((tmp_path / "reward" / "results.json").read_text())["heldout"]["accuracy"] <= 1

    # job 0 fails inside PPO (no such LoRA target); jobs 1-2 must still run and write their results
    sweep = run_app("rlhf", "stage=ppo", "sweep=beta", *common, "preferences.alpha=0", "ppo.seed=0",
                    "ppo.beta=0,1.0", "ppo.lora_targets=[no_such_proj],[q_proj,v_proj]",
                    f"hydra.sweep.dir={tmp_path / 'sweep'}", "-m")
    assert sweep.returncode != 0  # Hydra reports the failed job at the end
    done = sorted((tmp_path / "sweep").glob("*/results.json"))
    assert len(done) == 2, (sweep.stdout + sweep.stderr)[-3000:]
    result = json.loads(done[0].read_text())
    assert result["stage"] == "ppo" and [h["step"] for h in result["history"] if "objective/kl" in h] == [1, 2, 3, 4]
    assert (tmp_path / "cache" / "ppo" / "alpha0_beta1_seed0" / "adapter" / "adapter_config.json").exists()
    assert (done[0].parent / "ppo_diversity.png").exists()

    summary = run_app("rlhf", "stage=summary", f"summary.runs={tmp_path / 'sweep'}", "wandb=disabled",
                      f"hydra.run.dir={tmp_path / 'summary'}")
    assert summary.returncode == 0, summary.stderr[-3000:]
    res = json.loads((tmp_path / "summary" / "results.json").read_text())
    assert [(e["alpha"], e["beta"], e["n_seeds"]) for e in res["by_beta"]] == [(0.0, 0.0, 1), (0.0, 1.0, 1)]
    entry = res["by_beta"][0]
    for key in ("reward", "kl", "top5_entropy_bits", "full_entropy_bits", "sbert_cosine"):
        assert set(entry[key]) >= {"mean", "ci95"}
    assert set(entry["attribute_entropy_bits"]) >= {"first_name", "age", "nationality", "mbti"}
    assert (tmp_path / "summary" / "summary_beta.png").exists() and (tmp_path / "summary" / "summary_table.md").exists()


@pytest.mark.slow
def test_ppo_stage_under_accelerate_launch_with_two_processes(micro_base, tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "rlhf", "stage=ppo",
           f"ppo.base.path={micro_base}", f"cache_dir={tmp_path / 'cache'}", *SMALL,
           f"hydra.run.dir={tmp_path / 'run'}"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # its own process group: a hang is killed whole
    try:
        output, _ = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
    assert proc.returncode == 0, output[-4000:]
    result = json.loads((tmp_path / "run" / "results.json").read_text())
    assert result["world_size"] == 2
    assert [h["step"] for h in result["history"] if "objective/kl" in h] == [1, 2, 3, 4]
    assert (tmp_path / "cache" / "ppo" / "alpha0_beta0.01_seed0" / "adapter" / "adapter_model.safetensors").exists()
