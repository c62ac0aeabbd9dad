"""The one-command study at test size: every stage runs, the report is written, a rerun reuses every step,
and a failing step stops the pipeline with one line naming it and the log; the step graph the scheduler runs
side by side lets no step start before the steps whose outputs it reads."""
import json
from pathlib import Path

import pytest
from conftest import REPO, run_app

TEST_RLHF = ["world=test", "pretrain=test", "preferences.n_pairs_per_prompt=8", "reward.epochs=1", "rlhf.steps=2",
             "rlhf.batch_size=6", "rlhf.mini_batches=1", "diversity.every=1", "diversity.n_samples=4",
             "diversity.final_n_samples=4", "rlhf.response_length=16", "preferences.n_predict=16",
             "diversity.n_predict=16"]
TEST_MEASURE = ["sampling.n_samples=12", "sampling.n_predict=16", "experiment.attractor_continuations=4"]


def _overrides(tmp_path, *extra):
    as_list = lambda xs: "[" + ",".join(f'"{x}"' for x in xs) + "]"  # noqa: E731
    return ["stage=pipeline", "demo.fast=true", "wandb=disabled", f"cache_dir={tmp_path / 'cache'}",
            f"demo.fast_out_dir={tmp_path / 'demo'}", f"demo.fast_rlhf_overrides={as_list(TEST_RLHF)}",
            f"demo.fast_measure_overrides={as_list(TEST_MEASURE)}", *extra]


@pytest.mark.slow
def test_pipeline_end_to_end_then_reuse(tmp_path):
    first = run_app("rlhf", *_overrides(tmp_path), f"hydra.run.dir={tmp_path / 'run1'}", timeout=1200)
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    manifest = json.loads((tmp_path / "demo" / "manifest.json").read_text())
    names = [m["step"] for m in manifest["steps"]]
    assert names[0] == "pretrain" and "summary" in names and "bandit/simulate" in names
    assert any(n.startswith("measure/attractor/") for n in names)
    page = (tmp_path / "demo" / "report.html").read_text()
    assert "What this run shows" in page and "data:image/png;base64," in page
    second = run_app("rlhf", *_overrides(tmp_path), f"hydra.run.dir={tmp_path / 'run2'}", timeout=600)
    assert second.returncode == 0
    again = json.loads((tmp_path / "demo" / "manifest.json").read_text())
    assert all(m["reused"] for m in again["steps"])


def test_failing_step_names_the_step_and_the_log(tmp_path):
    proc = run_app("rlhf", *_overrides(tmp_path, 'demo.rlhf_overrides=["pretrain.max_steps=0"]'),
                   f"hydra.run.dir={tmp_path / 'run'}", timeout=300)
    assert proc.returncode != 0
    line = [l for l in (proc.stdout + proc.stderr).splitlines() if "pipeline stopped" in l]
    assert line and "step pretrain failed" in line[0] and "rlhf.log" in line[0]


def test_failing_worker_step_stops_the_pipeline_and_names_its_log(tmp_path):
    """A step running in a worker process fails: the pipeline stops at once with the step's own log."""
    bad = 'demo.bandit_overrides=["simulate.n_seeds=0"]'
    proc = run_app("rlhf", *_overrides(tmp_path, "demo.fast_betas=[0.0]", "demo.jobs=2", bad),
                   f"hydra.run.dir={tmp_path / 'run'}", timeout=300)
    assert proc.returncode != 0
    line = [l for l in (proc.stdout + proc.stderr).splitlines() if "pipeline stopped" in l]
    assert line and "step bandit/table1 failed" in line[0] and "simulate.n_seeds" in line[0]
    step_log = Path(line[0].rsplit("log: ", 1)[1].strip())
    assert step_log == tmp_path / "demo" / "bandit" / "table1" / "step.log"
    assert "simulate.n_seeds" in step_log.read_text()
    assert not (tmp_path / "demo" / "manifest.json").exists()


def _pipeline(*overrides):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from rlhf.config import register_configs
    from rlhf.study.steps import Pipeline

    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = OmegaConf.to_object(compose(config_name="rlhf", overrides=["stage=pipeline", *overrides]))
    return Pipeline(cfg, Path("/nonexistent/demo"))


@pytest.mark.parametrize("overrides", [[], ["demo.fast=true"], ["demo.alphas=[0,0.5]", "demo.seeds=[0,1]"]])
def test_every_step_waits_for_the_steps_it_reads(overrides):
    specs = _pipeline(*overrides).specs()
    order = {spec.name: i for i, spec in enumerate(specs)}
    assert len(order) == len(specs)  # names are unique: they are folders
    for spec in specs:
        assert all(order[dep] < order[spec.name] for dep in spec.after), spec.name  # listed earlier, so it runs
    by_name = {spec.name: spec for spec in specs}
    assert by_name["pretrain"].exclusive and all(by_name[n].exclusive for n in order if n.startswith("reward/"))
    ppo = [n for n in order if n.startswith("ppo/")]
    assert set(by_name["summary"].after) == set(ppo)
    for name, spec in by_name.items():
        if name.startswith("ppo/"):
            alpha = name.split("/")[1].split("_")[0]
            assert spec.after == (f"reward/{alpha}",)
        if name.startswith("measure/"):
            _, experiment, run = name.split("/")
            assert f"ppo/{run}" in spec.after
            if experiment == "attractor":
                assert f"measure/semantic/{run}" in spec.after  # it perturbs semantic's clusters
            first = next(n for n in order if n.startswith(f"measure/{experiment}/"))
            assert name == first or first in spec.after  # later betas reuse the first one's base samples


def test_jobs_is_checked_before_anything_runs():
    with pytest.raises(ValueError, match="demo.jobs"):
        _pipeline("demo.jobs=0")
