"""The measurement app as a user runs it: config errors at start-up, and Experiment 3 end to end."""
import json

import pytest
from conftest import run_app

BAD_CONFIGS = [
    ("sampling.temperature=0", "sampling.temperature"),
    ("sampling.temperature=-1", "temperature > 0"),
    ("sampling.n_predict=0", "sampling.n_predict"),
    ("sampling.top_k=1", "top_k >= 2"),
    ("sampling.temprature=1.0", "temprature"),
    ("wandb.mode=sometimes", "wandb.mode"),
    ("experiment.name=nonsense", "experiment.name"),
    ("model.base.path=/nonexistent/model/dir", "model.base.path"),
]


@pytest.mark.parametrize("override,expected", BAD_CONFIGS)
def test_bad_config_fails_at_start_up_with_one_line(override, expected, tmp_path):
    proc = run_app("measure", override, "model.base.build=null", "wandb=disabled",
                   f"hydra.run.dir={tmp_path}", timeout=120)
    assert proc.returncode != 0
    err = proc.stderr + proc.stdout
    error_lines = [l for l in err.splitlines() if expected in l]
    assert error_lines, err[-2000:]
    assert "Traceback" not in err
    assert "loaded base" not in err  # failed before any model loaded
    assert not (tmp_path / "results.json").exists()


def test_missing_hub_model_offline_says_how_to_fix(tmp_path):
    proc = run_app("measure", "model=llama2_7b", "wandb=disabled", f"hydra.run.dir={tmp_path}", timeout=120)
    assert proc.returncode == 2
    line = [l for l in (proc.stderr + proc.stdout).splitlines() if "model.base.path" in l][0]
    assert "meta-llama/Llama-2-7b-hf" in line and "huggingface-cli login" in line


def test_experiment_entropy_end_to_end_on_tiny_random(tmp_path):
    out = tmp_path / "run"
    proc = run_app("measure", "experiment=entropy", "model=tiny_random", "wandb=disabled",
                   "sampling.n_samples=12", "sampling.batch_size=6", "sampling.n_predict=16",
                   f"cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    for label in ("base", "aligned"):
        m = results["models"][label]
        assert m["n_completions"] == 12
        assert 0 <= m["top5_entropy_bits"]["mean"] <= 2.33
        lo, hi = m["top5_entropy_bits"]["ci95"]
        assert lo <= m["top5_entropy_bits"]["mean"] <= hi
        assert {"mean", "std"} <= set(m["full_entropy_bits"])
    comp = results["comparison"]
    assert {"welch_p", "mannwhitney_p", "effect_size"} <= set(comp)
    # the tiny "aligned" model is initialised with peakier logits: it must come out colder
    assert results["models"]["aligned"]["top5_entropy_bits"]["mean"] < results["models"]["base"]["top5_entropy_bits"]["mean"]
    for fig in ("fig11_entropy_boxplot.png", "fig12_token_entropy.png", "fig13_topk_probabilities.png"):
        assert (out / fig).stat().st_size > 1000
    assert (out / "measure.log").exists()
    assert len((out / "generations_base.jsonl").read_text().splitlines()) == 12
