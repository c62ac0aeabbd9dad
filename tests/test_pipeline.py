"""The one-command study (`python -m rlhf.study`): its steps are commands in an order that lets no step start
before the steps it reads; every step's config is validated before anything runs; `demo=test` runs the whole
chain, and a rerun reuses exactly the steps whose config and inputs are unchanged; a failing step stops the
study naming the step and its log; a killed study leaves no process behind."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, run_app


def _study(tmp_path, *extra):
    return ["demo=test", "wandb=disabled", f"cache_dir={tmp_path / 'cache'}", f"demo.out_dir={tmp_path / 'demo'}",
            *extra]


def _plan(*overrides, out=Path("/nonexistent/demo")):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from rlhf.study.config import register_configs
    from rlhf.study.steps import plan

    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = OmegaConf.to_object(compose(config_name="study", overrides=["cache_dir=/nonexistent/cache", *overrides]))
        return plan(cfg, out)


def _manifest(tmp_path) -> dict:
    return {m["name"]: m for m in json.loads((tmp_path / "demo" / "manifest.json").read_text())["steps"]}


@pytest.mark.parametrize("overrides", [[], ["demo=fast"], ["demo=test"], ["demo.alphas=[0,0.5]", "demo.seeds=[0,1]"],
                                       ["demo=test", "demo.methods=[ppo,rloo,grpo,dpo,bon,rft,sft_curated]"],
                                       ["demo=methods"]])
def test_every_step_waits_for_the_steps_it_reads(overrides):
    steps = _plan(*overrides)
    order = {step.name: i for i, step in enumerate(steps)}
    assert len(order) == len(steps)  # names are unique: they are folders
    for step in steps:
        assert all(order[dep] < order[step.name] for dep in step.after), step.name  # listed earlier, so it runs
        for ref, _ in __import__("rlhf.study.steps", fromlist=["references"]).references(" ".join(step.overrides)):
            assert ref in step.after, (step.name, ref)  # a step only reads results of steps it waits for
    by_name = {step.name: step for step in steps}
    assert by_name["pretrain"].exclusive and all(by_name[n].exclusive for n in order if n.startswith("reward/"))
    ppo = [n for n in order if n.startswith("ppo/") or n.startswith("align/")]
    assert set(by_name["summary"].after) == set(ppo) | ({"predict"} if "predict" in order else set())
    summary = " ".join(by_name["summary"].overrides)
    assert all(n in summary for n in ppo)  # the summary reads exactly these runs' folders, no stale one
    assert set(by_name["predict"].after) == {n for n in order if n.startswith("reward/")}  # it scores every RM
    for name, step in by_name.items():
        if name.startswith("ppo/control_"):
            assert step.after == ("pretrain",) and "ppo.reward=control" in step.overrides  # no reward model
        elif name.startswith("ppo/"):
            alpha = name.split("/")[1].split("_")[0]
            assert step.after == (f"reward/{alpha}",)
        elif name.startswith("align/"):
            method = name.split("/")[1].split("_alpha")[0].removesuffix("_model").removesuffix("_oracle")
            alpha = "alpha" + name.split("_alpha")[1].split("_")[0]
            assert step.after == (f"reward/{alpha}",) and f"align.method={method}" in step.overrides
        if name.startswith("measure/"):
            _, experiment, run = name.split("/")
            assert f"ppo/{run}" in step.after
            if experiment == "attractor":
                assert f"measure/semantic/{run}" in step.after  # it perturbs semantic's clusters
            first = next(n for n in order if n.startswith(f"measure/{experiment}/"))
            assert name == first or first in step.after or experiment == "attractor"


def test_steps_are_commands_that_name_the_exact_base_build():
    steps = _plan("demo=test")
    ppo = next(s for s in steps if s.name.startswith("ppo/"))
    command = ppo.printable(Path("/out/ppo/x"))
    assert command.startswith("python -m rlhf stage=ppo ") and command.endswith("hydra.run.dir=/out/ppo/x")
    base = next(o for o in ppo.overrides if o.startswith("ppo.base.path=")).split("=", 1)[1]
    assert "/tinyworld/" in base and "current" not in base  # the build by hash, not the moving pointer
    assert base in ppo.reads
    for step in steps:
        assert not any("tinyworld/current" in o for o in step.overrides), step.name
    # a changed base model changes every step that reads it, and nothing else
    other = {s.name: s for s in _plan("demo=test", 'demo.rlhf_overrides=["pretrain.steps=7"]')}
    changed = {s.name for s in steps if s.overrides != other[s.name].overrides}
    assert changed == {s.name for s in steps if not s.name.startswith("bandit/")}


def test_the_default_measures_one_model_and_runs_the_control():
    steps = {s.name for s in _plan()}
    assert {n.split("/")[2] for n in steps if n.startswith("measure/")} == {"alpha0_beta0.2_seed0"}
    assert {"ppo/control_beta0.5_seed0", "ppo/control_beta1_seed1", "predict"} <= steps
    assert len([n for n in steps if n.startswith("ppo/alpha0_")]) == 6  # 2 betas x 3 seeds


def test_user_overrides_come_after_the_preset():
    steps = _plan("demo=test", 'demo.measure_overrides=["sampling.n_samples=7"]')
    entropy = next(s for s in steps if s.name.startswith("measure/entropy/"))
    assert entropy.overrides.index("sampling.n_samples=12") < entropy.overrides.index("sampling.n_samples=7")


@pytest.mark.parametrize("bad,field", [("demo.jobs=0", "demo.jobs"), ("demo.betas=[0.5,0.5]", "demo.betas"),
                                       ("demo.experiments=[attractor]", "demo.experiments"),
                                       ("demo.measure_betas=[0.7]", "demo.measure_betas"),
                                       ("demo.control_betas=[0]", "demo.control_betas")])
def test_demo_fields_are_checked(bad, field):
    with pytest.raises(ValueError, match=field):
        _plan(bad)


def test_a_typo_in_a_late_step_stops_the_study_before_anything_runs(tmp_path):
    started = time.time()
    proc = run_app("rlhf.study", *_study(tmp_path, 'demo.measure_overrides=["sampling.temprature=0.5"]'), timeout=120)
    seconds = time.time() - started
    assert proc.returncode == 2
    out = proc.stdout + proc.stderr
    errors = [line for line in out.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "sampling.temprature" in errors[0] and "step measure/" in errors[0], out[-2000:]
    assert "Traceback" not in out
    assert not (tmp_path / "demo" / "pretrain").exists()  # nothing ran
    assert seconds < 60  # composing every step's config takes seconds (the bar is 20 s on an idle machine)


def test_a_failing_step_stops_the_study_naming_the_step_and_its_log(tmp_path):
    """A step that fails at run time (its cache folder cannot be created) stops the study at once."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    proc = run_app("rlhf.study", *_study(tmp_path), f"cache_dir={blocker / 'cache'}", timeout=300)
    assert proc.returncode == 1
    line = [l for l in (proc.stdout + proc.stderr).splitlines() if "pipeline stopped" in l]
    assert line and "step pretrain failed" in line[0], (proc.stdout + proc.stderr)[-3000:]
    step_log = Path(line[0].rsplit("log: ", 1)[1].strip())
    assert step_log == tmp_path / "demo" / "pretrain" / "step.log" and step_log.exists()
    assert "python -m rlhf stage=pretrain" in proc.stdout + proc.stderr  # the command is in the log
    assert not (tmp_path / "demo" / "manifest.json").exists()


def _children_of(pid: int) -> list:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def test_kill_9_of_the_study_leaves_no_orphans(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", WANDB_MODE="disabled")
    study = subprocess.Popen([sys.executable, "-m", "rlhf.study", *_study(tmp_path)], cwd=REPO, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, children = time.time() + 90, []
    while time.time() < deadline and not children:
        time.sleep(0.5)
        children = _children_of(study.pid)
    assert children, "the study started no step"
    study.send_signal(signal.SIGKILL)
    study.wait()
    deadline = time.time() + 15
    while time.time() < deadline and any(_alive(c) for c in children):
        time.sleep(0.2)
    assert not any(_alive(c) for c in children)


def test_demo_test_end_to_end_then_reuse_by_config_and_inputs(tmp_path):
    first = run_app("rlhf.study", *_study(tmp_path), timeout=900)
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    steps = _manifest(tmp_path)
    names = list(steps)
    assert names[0] == "pretrain" and "summary" in names and "bandit/simulate" in names
    assert any(n.startswith("measure/attractor/") for n in names)
    assert all(set(m) >= {"name", "command", "reused", "seconds"} and not m["reused"] for m in steps.values())
    page = (tmp_path / "demo" / "report.html").read_text()
    assert "What this run shows" in page and "data:image/png;base64," in page
    assert page.index("id='the-answer'") < page.index("alt='frontier.png'") < page.index("id='what-this-run-shows'")

    second = run_app("rlhf.study", *_study(tmp_path), timeout=600)  # unchanged: every step is reused
    assert second.returncode == 0, (second.stdout + second.stderr)[-3000:]
    assert all(m["reused"] for m in _manifest(tmp_path).values())

    third = run_app("rlhf.study", *_study(tmp_path, 'demo.rlhf_overrides=["pretrain.steps=5"]'), timeout=900)
    assert third.returncode == 0, (third.stdout + third.stderr)[-3000:]
    again = _manifest(tmp_path)
    assert [n for n, m in again.items() if m["reused"]] == ["bandit/table1", "bandit/simulate"]


def _numbers(obj, prefix=""):
    """Every number of a results.json by its path, leaving out timings and paths (they differ between runs)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k != "eps" and not k.endswith("_s") and not any(s in k for s in ("seconds", "timing", "wall", "per_s",
                                                                                "cost_share")):
                yield from _numbers(v, f"{prefix}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _numbers(v, f"{prefix}[{i}]")
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield prefix, obj


def test_cold_cold_and_warm_demo_test_runs_give_identical_numbers(tmp_path):
    """Every random init (reward and value heads, LoRA, data order, samples) comes from the config's seeds: two
    cold studies into fresh caches, and a warm one (models and adapters from the cache), write the same numbers in
    every results.json (predictions, PPO runs, positive control, summary, experiments, bandit)."""
    runs = []
    # a and b: cold, each into its own cache; c: warm (a's cache: models, adapters reused) into a new folder
    for name, cache in (("a", "a"), ("b", "b"), ("c", "a")):
        out = tmp_path / name / "demo"
        done = run_app("rlhf.study", "demo=test", "wandb=disabled", f"cache_dir={tmp_path / cache / 'cache'}",
                       f"demo.out_dir={out}", timeout=900)
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        runs.append({str(p.relative_to(out)): dict(_numbers(json.loads(p.read_text())))
                     for p in sorted(out.rglob("results.json"))})
    a = runs[0]
    assert {"predict/results.json", "summary/results.json"} <= set(a)
    assert any(k.startswith("ppo/control_") for k in a)
    assert sum(len(v) for v in a.values()) > 3000
    for other in runs[1:]:
        assert set(other) == set(a)
        differ = [(f, k, v, other[f].get(k)) for f in a for k, v in a[f].items()
                  if not (v == other[f].get(k) or (v != v and other[f].get(k) != other[f].get(k)))]  # NaN == NaN
        assert not differ, differ[:10]


def _bandit_step(tmp_path, **kw):
    from rlhf.study.steps import Step

    return Step("bandit/table1", "toy_bandit", ("experiment=table1", "wandb=disabled"), **kw)


def _with_hydra(fn):
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return fn()


def test_reuse_needs_the_same_inputs_and_untouched_outputs(tmp_path):
    """A step is reused only while what it read and what it made are byte for byte what they were: a changed
    input (a retrained base model) or an artifact rebuilt at the same path (another study sharing the cache)
    makes it run again."""
    from measure.results import write_results
    from rlhf.study.runner import Runner, output_fingerprints, reuse_key

    read, made = tmp_path / "weights.bin", tmp_path / "adapter"
    read.write_bytes(b"v1")
    made.mkdir()
    (made / "adapter_model.safetensors").write_bytes(b"a1")
    step = _bandit_step(tmp_path, reads=(str(read),), outputs=("adapter",))
    folder = tmp_path / "out" / step.name
    write_results(folder, {"adapter": str(made)})
    key = _with_hydra(lambda: reuse_key(step))
    (folder / "step.json").write_text(json.dumps({"key": key, "outputs": output_fingerprints(step, {"adapter": str(made)})}))
    runner = Runner([step], tmp_path / "out", jobs=1, progress_every=30)
    assert runner.reusable(step, folder, key)
    (made / "adapter_model.safetensors").write_bytes(b"a2")  # rebuilt at the same path
    assert not runner.reusable(step, folder, key)
    (made / "adapter_model.safetensors").write_bytes(b"a1")
    read.write_bytes(b"v2")  # a new input
    assert not runner.reusable(step, folder, _with_hydra(lambda: reuse_key(step)))
    other = dataclasses.replace(step, overrides=(*step.overrides, "table1.decimals=3"))
    assert _with_hydra(lambda: reuse_key(other))["config"] != key["config"]  # another resolved config
