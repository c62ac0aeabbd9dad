"""The one-command study at test size: every stage runs, the report is written, a rerun reuses every step,
and a failing step stops the pipeline with one line naming it and the log."""
import json

import pytest
from conftest import run_app

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
