"""Bad input gets one clear line, never a traceback, a silent wrong result or a leaked secret (issue 17).

Every case of the issue's table runs through the real command line (`python -m <app>` in a subprocess) and must
end with the expected exit code, exactly one line naming the field (or file and line) and no "Traceback". The
cases are independent, so they run two at a time (one per core) the first time one of them is asked for; each
case is still its own test. Then: Ctrl-C in every app, a fake secret that must reach no file of a run, and the
pieces underneath (the scrubber, strict JSON, the out-of-memory line, toy_bandit's copies of the shared checks).
"""
from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import REPO

FAKE_SECRET = "rmc-fake-secret-3f9c2a7d51e84b06"  # never a real key: the tests look for these bytes
TINY = ["model=tiny_random", "labels=[base]", "wandb=disabled"]  # one tiny random model, built in seconds


def _env(**extra) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", WANDB_MODE="disabled", PYTHONUNBUFFERED="1", MPLBACKEND="Agg",
               OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    env.update(extra)
    return env


def _run(argv, env=None, timeout=240) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=REPO, env=env or _env(), capture_output=True, text=True, timeout=timeout)


def assert_one_line(proc, *needles: str, code: int = 2) -> str:
    """Exit ``code``, no traceback, and exactly one output line holding every needle; returns that line."""
    out = proc.stdout + proc.stderr
    assert proc.returncode == code, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    lines = [line for line in out.splitlines() if all(n in line for n in needles)]
    assert len(lines) == 1, (needles, out[-3000:])
    errors = [line for line in out.splitlines() if "[ERROR]" in line]
    assert len(errors) <= 1, errors  # one message, not one per frame or per layer
    return lines[0]


# ---------------------------------------------------------------- inputs the cases need

@pytest.fixture(scope="session")
def bad_inputs(tmp_path_factory, tiny_pair_dir) -> dict:
    """Files a new user might hand the apps: broken texts files, weights as pickles, a model needing its own code."""
    import torch
    from safetensors.torch import load_file

    root = tmp_path_factory.mktemp("bad_inputs")
    base = tiny_pair_dir / "base"
    paths = {"root": root, "base": base, "cache": root / "cache", "marker": root / "code-ran"}
    # model=tiny_random's base (conf/model/tiny_random.yaml: seed 1, init_std 0.02, as tiny_pair_dir's), in place
    # before cases that load it run side by side
    shutil.copytree(base, paths["cache"] / "tiny_random" / "v1_seed1_std0.02")

    texts = root / "latin1.jsonl"
    texts.write_bytes(b'{"model": "a", "text": "fine"}\n{"model": "a", "text": "caf\xe9"}\n')
    paths["texts_latin1"] = texts
    null_model = root / "null_model.jsonl"
    null_model.write_text('{"model": "a", "text": "x"}\n{"model": null, "text": "y"}\n{"model": "a", "text": "z"}\n')
    paths["texts_null_model"] = null_model

    pickled = root / "pickle_model"  # the tiny model with pytorch_model.bin in place of model.safetensors
    shutil.copytree(base, pickled, ignore=shutil.ignore_patterns("*.safetensors"))
    torch.save(load_file(str(base / "model.safetensors")), pickled / "pytorch_model.bin")
    paths["pickle_model"] = pickled

    custom = root / "custom_code_model"  # config.json asks for code shipped in the folder
    shutil.copytree(base, custom)
    config = json.loads((custom / "config.json").read_text())
    config.update(model_type="rmc_custom", architectures=["RmcCustomForCausalLM"],
                  auto_map={"AutoConfig": "configuration_rmc.RmcConfig",
                            "AutoModelForCausalLM": "modeling_rmc.RmcCustomForCausalLM"})
    (custom / "config.json").write_text(json.dumps(config))
    for name in ("configuration_rmc.py", "modeling_rmc.py"):
        (custom / name).write_text(f"open({str(paths['marker'])!r}, 'w').write('ran')\n")
    paths["custom_code"] = custom

    class RunsCode:  # what a malicious pickle does: call a function while it is unpickled
        def __reduce__(self):
            return (os.system, (f"touch {paths['marker']}",))

    adapter = root / "pickle_adapter"  # a LoRA adapter whose weights are a malicious pickle
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 2, "lora_alpha": 4, "lora_dropout": 0.0,
        "target_modules": ["q_proj", "v_proj"], "base_model_name_or_path": str(base)}))
    (adapter / "adapter_model.bin").write_bytes(pickle.dumps({"weights": RunsCode()}, protocol=2))
    paths["pickle_adapter"] = adapter
    return paths


def _measure_tiny(p, *extra):
    return ["measure", *TINY, f"cache_dir={p['cache']}", *extra]


def _aligned_adapter(p, *extra):
    return ["measure", "labels=[aligned]", "wandb=disabled", f"model.aligned.path={p['base']}",
            "model.aligned.build=null", f"model.aligned.adapter={p['pickle_adapter']}", *extra]


def _study(p, *extra):
    return ["rlhf.study", "demo=test", "wandb=disabled", f"cache_dir={p['cache']}",
            f"demo.out_dir={p['root'] / 'demo'}", *extra]


# id -> (command line from the paths, needles the one line must hold); every case exits 2
CASES = {
    # a misspelt key with `+`: refused like one without it, with the nearest real key
    "plus_typo_leaf": (lambda p: ["measure", "+sampling.temprature=0.7"], ("sampling.temprature", "sampling.temperature")),
    "plus_typo_node": (lambda p: ["measure", "+sampl.temperature=0.7"], ("sampl", "did you mean sampling")),
    "plus_typo_bandit": (lambda p: ["toy_bandit", "+rules.ppo_kl.bta=0.3"], ("rules.ppo_kl.bta", "rules.ppo_kl.beta")),
    "plus_typo_rlhf": (lambda p: ["rlhf", "stage=ppo", "+ppo.bta=0.3"], ("ppo.bta", "ppo.beta")),
    "plus_typo_study_step": (lambda p: _study(p, 'demo.measure_overrides=["+sampling.temprature=0.5"]'),
                             ("step measure/", "sampling.temprature")),
    # values no schema should take
    "temperature_tiny": (lambda p: ["measure", "sampling.temperature=1e-40"], ("sampling.temperature", "0.0001")),
    "temperature_inf": (lambda p: ["measure", "sampling.temperature=inf"], ("sampling.temperature", "finite")),
    "ppo_lr_inf": (lambda p: ["rlhf", "stage=ppo", "ppo.lr=inf"], ("ppo.lr", "finite")),
    "ppo_beta_inf": (lambda p: ["rlhf", "stage=ppo", "ppo.beta=inf"], ("ppo.beta", "finite")),
    "ppo_beta_nan": (lambda p: ["rlhf", "stage=ppo", "ppo.beta=nan"], ("ppo.beta", "finite")),
    "bandit_lr_inf": (lambda p: ["toy_bandit", "experiment=simulate", "rules.ppo_kl.lr=inf"],
                      ("rules.ppo_kl.lr", "finite")),
    "study_betas_inf": (lambda p: _study(p, "demo.betas=[0,inf]"), ("demo.betas", "finite")),
    "duplicate_betas": (lambda p: _study(p, "demo.betas=[0.5,0.5]"), ("demo.betas", "distinct")),
    "duplicate_seeds": (lambda p: _study(p, "demo.seeds=[0,0]"), ("demo.seeds", "distinct")),
    # what the model cannot serve, right after it loads
    "top_k_above_vocabulary": (lambda p: _measure_tiny(p, "sampling.top_k=100000"), ("sampling.top_k", "vocabulary")),
    "n_predict_beyond_context": (lambda p: _measure_tiny(p, "sampling.n_predict=1500"),
                                 ("sampling.n_predict", "512 positions")),
    # texts files
    "texts_not_utf8": (lambda p: ["measure", "experiment=texts", f"experiment.texts_file={p['texts_latin1']}"],
                       ("latin1.jsonl line 2", "UTF-8")),
    "texts_null_model": (lambda p: ["measure", "experiment=texts", f"experiment.texts_file={p['texts_null_model']}"],
                         ("line 2", '"model" is null')),
    # weights
    "custom_code_model": (lambda p: ["measure", "labels=[base]", "wandb=disabled", f"model.base.path={p['custom_code']}",
                                     "model.base.build=null"], ("model.base", "trust_remote_code")),
    "pickle_model": (lambda p: ["measure", "labels=[base]", "wandb=disabled", f"model.base.path={p['pickle_model']}",
                                "model.base.build=null"], ("model.base.path", "allow_pickle=true")),
    "pickle_adapter": (lambda p: _aligned_adapter(p), ("model.aligned.adapter", "allow_pickle=true")),
    "malicious_pickle_adapter_allowed": (lambda p: _aligned_adapter(p, "model.aligned.allow_pickle=true"),
                                         ("model.aligned.adapter", "not plain weights", "system")),
    # secrets on the command line: refused before Hydra writes anything, pointing at the environment variable
    "secret_plus": (lambda p: ["measure", f"+wandb.api_key={FAKE_SECRET}"], ("wandb.api_key", "WANDB_API_KEY")),
    "secret_plain": (lambda p: ["measure", f"wandb.api_key={FAKE_SECRET}"], ("wandb.api_key", "WANDB_API_KEY")),
    "secret_rlhf": (lambda p: ["rlhf", f"+hf_token={FAKE_SECRET}"], ("hf_token", "HF_TOKEN")),
    "secret_bandit": (lambda p: ["toy_bandit", f"+wandb.api_key={FAKE_SECRET}"], ("wandb.api_key", "WANDB_API_KEY")),
    "secret_in_study_step": (lambda p: _study(p, f'demo.measure_overrides=["+wandb.api_key={FAKE_SECRET}"]'),
                             ("wandb.api_key", "WANDB_API_KEY")),
}


def _case_argv(case: str, paths: dict) -> list:
    app, *overrides = CASES[case][0](paths)
    return [sys.executable, "-m", app, *overrides, f"hydra.run.dir={paths['root'] / 'runs' / case}"]


@pytest.fixture(scope="session")
def case_results(bad_inputs, request) -> dict:
    """Every selected case run once, two at a time (they are independent subprocesses)."""
    selected = [item.callspec.params["case"] for item in request.session.items
                if getattr(item, "originalname", "") == "test_each_case_of_the_issue_ends_in_one_line"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {case: pool.submit(_run, _case_argv(case, bad_inputs)) for case in selected}
        return {case: future.result() for case, future in futures.items()}


@pytest.mark.parametrize("case", list(CASES))
def test_each_case_of_the_issue_ends_in_one_line(case, case_results, bad_inputs):
    proc = case_results[case]
    assert_one_line(proc, *CASES[case][1])
    out = proc.stdout + proc.stderr
    assert FAKE_SECRET not in out  # a refused secret is not echoed
    assert not (bad_inputs["root"] / "runs" / case / "results.json").exists()
    assert not bad_inputs["marker"].exists()  # neither the custom code nor the malicious pickle ran
    if case.startswith("secret"):
        assert not (bad_inputs["root"] / "runs" / case).exists()  # refused before Hydra wrote .hydra/
    if case.startswith(("plus_typo", "temperature", "ppo", "bandit", "texts", "pickle", "duplicate", "study")):
        assert "loaded base" not in out and "loaded aligned" not in out  # before any model loads


def test_out_of_memory_while_sampling_says_to_lower_the_batch_size(bad_inputs, tmp_path):
    """The real CLI with the engine's batch forced to raise what torch raises when memory runs out."""
    code = ("import sys, torch, measure.sampling as engine\n"
            "def no_memory(*args, **kwargs):\n"
            "    raise torch.OutOfMemoryError('CUDA out of memory. Tried to allocate 20.00 GiB')\n"
            "engine.sample_batch = no_memory\n"
            "from measure.__main__ import main\n"
            "main()\n")
    argv = [sys.executable, "-c", code, *TINY, f"cache_dir={bad_inputs['cache']}", "sampling.batch_size=8",
            f"hydra.run.dir={tmp_path}"]
    line = assert_one_line(_run(argv), "sampling.batch_size", "smaller")
    assert "e.g. 4" in line


def test_pickle_weights_load_only_when_allowed(bad_inputs):
    from measure.config import ConfigError, ModelConfig
    from measure.loading import load_model

    spec = ModelConfig(path=str(bad_inputs["pickle_model"]), label="base", device="cpu")
    with pytest.raises(ConfigError, match=r"model\.base\.path: .* pickle weights only .*allow_pickle=true"):
        load_model(spec)
    model, _ = load_model(ModelConfig(path=str(bad_inputs["pickle_model"]), label="base", device="cpu",
                                      allow_pickle=True))
    assert sum(p.numel() for p in model.parameters()) > 0  # the opt-in loads them (as plain tensors only)


# ---------------------------------------------------------------- Ctrl-C

def _interrupt_once_started(argv, started: str, log_path: Path, timeout: float = 180):
    """Start ``argv``, send SIGINT once its output shows ``started``; returns (exit code, output)."""
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(argv, cwd=REPO, env=_env(), stdout=log_file, stderr=subprocess.STDOUT)
    deadline = time.time() + timeout
    try:
        while started not in log_path.read_text(errors="replace"):
            assert proc.poll() is None, log_path.read_text(errors="replace")[-3000:]
            assert time.time() < deadline, log_path.read_text(errors="replace")[-3000:]
            time.sleep(0.2)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return code, log_path.read_text(errors="replace")


def _assert_interrupted(code, out):
    assert code == 130, out[-3000:]
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out[-3000:]
    assert len([line for line in out.splitlines() if "interrupted; rerun the same command to continue" in line]) == 1, \
        out[-3000:]


def test_ctrl_c_while_sampling_prints_one_line_and_exits_130(bad_inputs, tmp_path):
    argv = [sys.executable, "-m", "measure", *TINY, f"cache_dir={bad_inputs['cache']}", "sampling.n_samples=100000",
            "sampling.batch_size=4", f"hydra.run.dir={tmp_path / 'run'}"]
    _assert_interrupted(*_interrupt_once_started(argv, "sampling base", tmp_path / "out.txt"))


def test_ctrl_c_while_rlhf_samples_preferences_prints_one_line_and_exits_130(bad_inputs, tmp_path):
    argv = [sys.executable, "-m", "rlhf", "stage=preferences", f"ppo.base.path={bad_inputs['base']}",
            f"cache_dir={tmp_path / 'cache'}", "preferences.n_pairs_per_prompt=100000", "ppo.threads=1",
            "wandb=disabled", f"hydra.run.dir={tmp_path / 'run'}"]
    _assert_interrupted(*_interrupt_once_started(argv, "preference samples", tmp_path / "out.txt"))


def test_ctrl_c_while_the_toy_bandit_simulates_prints_one_line_and_exits_130(tmp_path):
    argv = [sys.executable, "-m", "toy_bandit", "experiment=simulate", "simulate.n_seeds=1",
            "simulate.n_steps=5000000", "wandb=disabled", f"hydra.run.dir={tmp_path / 'run'}"]
    _assert_interrupted(*_interrupt_once_started(argv, "rules", tmp_path / "out.txt"))


def test_ctrl_c_while_the_study_runs_a_step_prints_one_line_and_exits_130(tmp_path):
    argv = [sys.executable, "-m", "rlhf.study", "demo=test", "wandb=disabled", f"cache_dir={tmp_path / 'cache'}",
            f"demo.out_dir={tmp_path / 'demo'}"]
    _assert_interrupted(*_interrupt_once_started(argv, "[1/", tmp_path / "out.txt"))


# ---------------------------------------------------------------- secrets

def test_a_secret_in_the_environment_reaches_no_file_of_the_run(bad_inputs, tmp_path):
    """The fake key is refused on the command line, and a run with it in the environment (wandb offline) writes
    it into none of its files: results.json, the log, .hydra/, the wandb offline run."""
    env = _env(WANDB_API_KEY=FAKE_SECRET, HF_TOKEN=FAKE_SECRET)
    env.pop("WANDB_MODE")
    common = [sys.executable, "-m", "measure", "experiment=entropy", "model=tiny_random", "labels=[base]",
              f"cache_dir={bad_inputs['cache']}", "wandb=offline", "sampling.n_samples=4", "sampling.batch_size=4",
              "sampling.n_predict=4", "experiment.n_bootstrap=100"]
    refused = _run([*common, f"+wandb.api_key={FAKE_SECRET}", f"hydra.run.dir={tmp_path / 'refused'}"], env=env)
    assert_one_line(refused, "wandb.api_key", "WANDB_API_KEY")
    assert FAKE_SECRET not in refused.stdout + refused.stderr and not (tmp_path / "refused").exists()

    run = _run([*common, f"hydra.run.dir={tmp_path / 'run'}"], env=env)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"results.json", "measure.log", "config.yaml", "overrides.yaml"} <= names, names
    assert any(p.suffix == ".wandb" for p in files), names  # the offline run is there, and searched too
    leaked = [str(p) for p in files if FAKE_SECRET.encode() in p.read_bytes()]
    assert not leaked and FAKE_SECRET not in run.stdout + run.stderr, leaked


def test_secrets_are_found_inside_list_values_and_not_in_plain_text():
    from measure.config import ConfigError
    from measure.errors import refuse_secret_overrides
    from toy_bandit.cli import refuse_secret_overrides as bandit_refuse

    harmless = ["experiment.prompt=the password: is 1234", "hydra.run.dir=/tmp/test_secret0/run", "-m",
                "pretrain.quality.card_tokens=24", "ppo.prompts=[{key: a, text: b}]"]
    for check in (refuse_secret_overrides, bandit_refuse):
        check(harmless)
        for bad in ('demo.measure_overrides=["+wandb.api_key=V4LUE"]', "wandb={api_key: V4LUE}", "~hf_token",
                    "hydra.job.env_set.WANDB_API_KEY=V4LUE", "++model.base.token=V4LUE"):
            with pytest.raises((ConfigError, ValueError), match="environment variable") as caught:
                check([*harmless, bad])
            assert "V4LUE" not in str(caught.value)


def test_the_scrubber_drops_credentials_by_whole_name_at_any_depth():
    from measure.tracking import scrub

    config = {"wandb": {"api_key": "s1", "mode": "offline"}, "hf_token": "s2", "HF_TOKEN": "s3",
              "pretrain": {"quality": {"card_tokens": 200, "grace_tokens": 128}},
              "prompts": [{"key": "persona", "text": "x", "apiKey": "s4"}], "password": "s5",
              "endpoints": [[{"secret": "s6", "url": "u"}]], "figure_tokens": 16}
    scrubbed = scrub(config)
    assert scrubbed == {"wandb": {"mode": "offline"}, "pretrain": {"quality": {"card_tokens": 200, "grace_tokens": 128}},
                        "prompts": [{"key": "persona", "text": "x"}], "endpoints": [[{"url": "u"}]],
                        "figure_tokens": 16}
    assert config["wandb"]["api_key"] == "s1"  # a copy: the run's own config is untouched


# ---------------------------------------------------------------- the pieces underneath

def test_results_json_is_strict_and_says_why_a_value_is_null(tmp_path):
    from measure.results import write_results
    from toy_bandit.results import write_results as write_bandit_results

    results = {"a": {"b": math.nan, "c": [1.0, math.inf]}, "d": -math.inf, "e": 2}
    for writer, folder in ((write_results, tmp_path / "measure"), (write_bandit_results, tmp_path / "bandit")):
        text = writer(folder, results).read_text()
        assert "NaN" not in text and "Infinity" not in text
        parsed = json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in results.json"))
        assert parsed["a"] == {"b": None, "c": [1.0, None]} and parsed["d"] is None and parsed["e"] == 2
        assert parsed["null_reasons"] == {"a.b": "nan", "a.c.1": "inf", "d": "-inf"}
    assert (tmp_path / "measure" / "results.json").read_text() == (tmp_path / "bandit" / "results.json").read_text()


def test_the_engine_turns_out_of_memory_and_broken_probabilities_into_one_line(tiny_model, monkeypatch, tmp_path):
    import torch

    import measure.sampling as engine
    from measure.config import ConfigError, SamplingConfig

    model, tokenizer = tiny_model
    cfg = SamplingConfig(n_samples=6, batch_size=3, n_predict=4)
    for error, field in ((torch.OutOfMemoryError("CUDA out of memory"), "sampling.batch_size"),
                         (RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 8 GB"),
                          "diversity.sampling.batch_size"),
                         (RuntimeError("probability tensor contains either `inf`, `nan` or element < 0"),
                          "diversity.sampling.temperature")):
        def fail(*args, error=error, **kwargs):
            raise error

        monkeypatch.setattr(engine, "sample_batch", fail)
        name = field.rsplit(".", 1)[0]
        with pytest.raises(ConfigError, match=field.replace(".", r"\.")) as caught:
            engine.sample(model, tokenizer, [tokenizer.bos_token_id], cfg, name=name,
                          progress_file=tmp_path / "g.jsonl")
        assert "\n" not in str(caught.value)
    monkeypatch.undo()
    with pytest.raises(ConfigError, match=r"sampling\.top_k: 100000 .* vocabulary"):
        engine.sample(model, tokenizer, [tokenizer.bos_token_id], SamplingConfig(top_k=100000, n_samples=2))
    with pytest.raises(ConfigError, match=r"sampling\.n_predict: 600 .* 512 positions; accepted n_predict <= 511"):
        engine.sample(model, tokenizer, [tokenizer.bos_token_id], SamplingConfig(n_predict=600, n_samples=2))


@pytest.mark.parametrize("name,secret", [
    ("api_key", True), ("hf_token", True), ("HF_TOKEN", True), ("WANDB_API_KEY", True), ("apiKey", True),
    ("password", True), ("client_secret", True), ("access-key", True), ("card_tokens", False), ("key", False),
    ("figure_tokens", False), ("keyboard", False), ("monkey_patch", False), ("tokenizer", False)])
def test_secret_names_are_whole_words_and_both_copies_agree(name, secret):
    from measure.errors import is_secret_name
    from toy_bandit.cli import is_secret_name as bandit_is_secret_name

    assert is_secret_name(name) is secret and bandit_is_secret_name(name) is secret


def test_both_copies_of_the_unknown_key_check_agree_and_allow_dict_fields():
    from hydra import compose, initialize_config_dir

    from measure.errors import unknown_keys
    from rlhf.config import register_configs
    from toy_bandit.cli import unknown_keys as bandit_unknown_keys

    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        ok = compose(config_name="rlhf", overrides=["+world.mix.extra=0.1"])  # a dict field takes any key
        bad = compose(config_name="rlhf", overrides=["+ppo.prompts.0.keyy=x", "+reward.lrr=1"])
    assert unknown_keys(ok) == bandit_unknown_keys(ok) == []
    found = unknown_keys(bad)
    assert [key for key, _ in found] == ["reward.lrr", "ppo.prompts[0].keyy"]  # lists of dataclasses too
    assert "lr" in dict(found)["reward.lrr"]  # with the names the schema has there
    assert found == bandit_unknown_keys(bad)


def test_every_shipped_preset_and_group_composes_without_unknown_keys():
    """The check refuses nothing the project itself ships (every conf/ group option of every app)."""
    from hydra import compose, initialize_config_dir

    from measure.config import register_configs as register_measure
    from measure.errors import unknown_keys
    from rlhf.config import register_configs as register_rlhf
    from rlhf.study.config import register_configs as register_study
    from toy_bandit.config import register_configs as register_bandit

    register_measure(), register_rlhf(), register_study(), register_bandit()
    groups = {"measure": ["model", "experiment", "wandb"], "rlhf": ["stage", "world", "pretrain", "wandb", "sweep"],
              "study": ["demo", "wandb"], "toy_bandit": ["experiment", "wandb"]}
    bandit_experiments = ("table1", "simulate")
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        for app, names in groups.items():
            for group in names:
                for option in sorted((REPO / "conf" / group).glob("*.yaml")):
                    if group == "experiment" and (app == "toy_bandit") != (option.stem in bandit_experiments):
                        continue
                    overrides = [f"{group}={option.stem}"]
                    if option.stem == "texts":
                        overrides.append("experiment.texts_file=/nonexistent.jsonl")
                    assert unknown_keys(compose(config_name=app, overrides=overrides)) == [], (app, overrides)
