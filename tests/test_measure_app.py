"""The measurement app as a user runs it: config errors at start-up, and Experiment 3 end to end."""
import json

import pytest
from conftest import REPO, run_app
from omegaconf import OmegaConf

from measure.config import (ConfigError, ExperimentConfig, MeasureConfig, SamplingConfig, check_inputs,
                            register_configs)
from measure.sampling import read_generations, read_header

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
    assert len(read_generations(out / "generations_base.jsonl")) == 12
    assert read_header(out / "generations_base.jsonl")["model_fingerprint"]  # the model that drew them


def test_missing_input_file_exits_2_in_one_line_naming_the_field(tmp_path):
    proc = run_app("measure", "experiment=texts", f"experiment.texts_file={tmp_path / 'missing.jsonl'}",
                   "wandb=disabled", f"hydra.run.dir={tmp_path / 'run'}", timeout=120)
    assert proc.returncode == 2
    err = proc.stderr + proc.stdout
    assert len([l for l in err.splitlines() if "experiment.texts_file" in l]) == 1, err[-2000:]
    assert "Traceback" not in err


def _compose(*overrides: str) -> MeasureConfig:
    from hydra import compose, initialize_config_dir

    register_configs()
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        return OmegaConf.to_object(compose("measure", overrides=list(overrides)))


def test_one_root_seed_drives_samples_and_statistics_each_overridable():
    cfg = _compose("seed=3")
    assert (cfg.seed, cfg.sampling.seed, cfg.experiment.stats_seed) == (3, 3, 3)
    cfg = _compose("seed=3", "sampling.seed=1")
    assert (cfg.sampling.seed, cfg.experiment.stats_seed) == (1, 3)
    cfg = _compose("experiment=semantic", "experiment.stats_seed=9")
    assert (cfg.seed, cfg.sampling.seed, cfg.experiment.stats_seed) == (0, 0, 9)
    built = MeasureConfig(seed=4)  # built in Python, the same rule
    assert (built.sampling.seed, built.experiment.stats_seed) == (4, 4)
    assert SamplingConfig().seed == 0 and ExperimentConfig().stats_seed == 0  # no root: the root's default


def test_configs_validate_before_their_input_files_exist(tmp_path):
    """The demo composes every step's config before earlier steps write the files it reads."""
    missing = tmp_path / "not_yet"
    for overrides, field in ((["experiment=texts", f"experiment.texts_file={missing}.jsonl"], "experiment.texts_file"),
                             (["experiment=personas", f"experiment.ground_truth_file={missing}.json"],
                              "experiment.ground_truth_file"),
                             (["experiment=attractor", f"experiment.source_dir={missing}"], "experiment.source_dir")):
        cfg = _compose(*overrides)  # no error: schemas do not touch the filesystem
        with pytest.raises(ConfigError, match=field):
            check_inputs(cfg)
    check_inputs(_compose("experiment=semantic", f"sampling.reuse_from={missing}"))  # nothing to reuse yet: fine
