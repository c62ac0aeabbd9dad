"""The one-command study (`python -m rlhf stage=pipeline`, `make demo`): every stage, in order, offline.

tiny world + base model -> preferences -> reward model -> LoRA PPO at each beta -> summary across beta
-> the paper's experiments on the base and on every PPO model -> the toy bandit -> one report.

Each step writes into its own folder under `demo.out_dir` (a stable path, not the timestamped Hydra dir),
with `step.json` recording the overrides it ran with. A step whose folder already holds `results.json` for
the same overrides is reused, so an interrupted demo run again continues where it stopped; the stages
underneath also cache their models by config hash. A failing step stops the pipeline with one line naming
the step and its log. Configs of the other apps are composed with Hydra from the same `conf/` tree, so a
step runs exactly what `python -m measure ...` or `python -m toy_bandit ...` with those overrides runs.

With `demo.jobs` > 1, steps whose inputs are ready run side by side in worker processes (rlhf/study/runner.py);
pretraining and the reward models use every core themselves and run alone in this process.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Callable, List, Optional, Tuple

from hydra import compose
from omegaconf import OmegaConf

from measure.config import register_configs as register_measure
from measure.results import read_results, run_dir
from rlhf.config import run_name

log = logging.getLogger("rlhf.study.steps")


@dataclasses.dataclass
class Step:
    name: str  # folder under demo.out_dir, also the name printed in progress and errors
    overrides: List[str]  # what identifies the step's work: same overrides + results.json = reuse
    run: Callable[[Path], dict]  # writes results.json into the folder, returns the results


@dataclasses.dataclass
class StepSpec:
    """A step before it is built: its name and what it waits for are known up front; `build` may read the
    results of the steps in `after` (e.g. an adapter path), so it is called once they are done."""

    name: str
    build: Callable[[], Step]
    after: Tuple[str, ...] = ()  # names of the steps whose outputs this one reads
    exclusive: bool = False  # uses every core itself: runs alone, in the pipeline's own process


def _fmt(x: float) -> str:
    return f"{x:g}"


def compose_typed(config_name: str, overrides: List[str]):
    """A typed config of another app, composed from `conf/` exactly as its entry point would compose it."""
    return OmegaConf.to_object(compose(config_name=config_name, overrides=list(overrides)))


def pipeline_group(out_dir: Path) -> str:
    return f"pipeline-{out_dir.name}"


class Pipeline:
    def __init__(self, cfg, out_dir: Path):
        self.cfg, self.demo, self.out = cfg, cfg.demo, out_dir
        self.group = pipeline_group(out_dir)

    # ---- configs of each stage -------------------------------------------------------------------
    def rlhf_overrides(self) -> List[str]:
        fast = list(self.demo.fast_rlhf_overrides if self.demo.fast else [])  # applied last: fast wins
        return [f"cache_dir={self.cfg.cache_dir}", f"wandb={self.cfg.wandb.mode}", *self.demo.rlhf_overrides, *fast]

    def measure_overrides(self) -> List[str]:
        fast = list(self.demo.fast_measure_overrides if self.demo.fast else [])
        return [f"cache_dir={self.cfg.cache_dir}", f"wandb={self.cfg.wandb.mode}", *self.demo.measure_overrides,
                *fast]

    def rlhf_cfg(self, stage: str, *overrides: str):
        from rlhf.config import register_configs

        register_configs()
        cfg = compose_typed("rlhf", [f"stage={stage}", *self.rlhf_overrides(), *overrides])
        return dataclasses.replace(cfg, wandb=dataclasses.replace(cfg.wandb, group=self.group))

    # ---- the steps -------------------------------------------------------------------------------
    def rlhf_step(self, stage: str, name: str, *overrides: str) -> Step:
        from rlhf.__main__ import stage_function

        return Step(name, [f"stage={stage}", *self.rlhf_overrides(), *overrides],
                    lambda out: stage_function(stage)(self.rlhf_cfg(stage, *overrides), out))

    def summary_step(self) -> Step:
        return self.rlhf_step("summary", "summary", f"summary.runs={self.out / 'ppo'}", "summary.min_seeds=1")

    def ppo_runs(self) -> List[tuple]:
        betas = self.demo.fast_betas if self.demo.fast else self.demo.betas
        return [(a, b, s) for a in self.demo.alphas for b in betas for s in self.demo.seeds]

    def measure_step(self, experiment: str, alpha: float, beta: float, seed: int) -> Step:
        from measure.app import run_experiment

        name = f"measure/{experiment}/{run_name(alpha, beta, seed)}"
        adapter = read_results(self.out / "ppo" / run_name(alpha, beta, seed))["adapter"]
        overrides = [f"experiment={experiment}", "model=tinyworld", f"model.aligned.adapter={adapter}",
                     *self.measure_overrides()]
        if experiment == "attractor":
            overrides.append(f"experiment.source_dir={self.out / 'measure' / 'semantic' / run_name(alpha, beta, seed)}")
        if experiment == "personas":
            overrides.append(f"experiment.ground_truth_file={self.cfg.cache_dir}/tinyworld/current/world/ground_truth.json")

        def run(out: Path) -> dict:
            register_measure()
            mcfg = compose_typed("measure", overrides)
            mcfg = dataclasses.replace(mcfg, wandb=dataclasses.replace(mcfg.wandb, group=self.group))
            self.reuse_base_generations(experiment, out)
            return run_experiment(mcfg, out, {"overrides": overrides}, group=self.group,
                                  name=f"{experiment}-{run_name(alpha, beta, seed)}")

        return Step(name, overrides, run)

    def reuse_base_generations(self, experiment: str, out: Path) -> None:
        """The base model's samples do not depend on beta: copy them from an earlier beta's run (same seed and
        sampling config, so the engine's resume file yields exactly the samples it would have drawn)."""
        for done in sorted((self.out / "measure" / experiment).glob("*/generations_base.jsonl")):
            if done.parent != out and (done.parent / "results.json").exists():
                out.mkdir(parents=True, exist_ok=True)
                if not (out / "generations_base.jsonl").exists():
                    shutil.copy(done, out / "generations_base.jsonl")
                return

    def bandit_step(self, experiment: str) -> Step:
        from toy_bandit.__main__ import run as run_bandit
        from toy_bandit.config import register_configs as register_bandit

        overrides = [f"experiment={experiment}", f"wandb={self.cfg.wandb.mode}", *self.demo.bandit_overrides]

        def run(out: Path) -> dict:
            register_bandit()
            return run_bandit(compose_typed("toy_bandit", overrides), str(out), group=self.group)

        return Step(f"bandit/{experiment}", overrides, run)

    def specs(self) -> List[StepSpec]:
        """Every step in order, with what it waits for. Pretraining and the reward models run alone (they use
        every core); a measurement of a later beta waits for the first beta's one so that it reuses its base
        samples; the attractor test perturbs the semantic experiment's clusters."""
        out = [StepSpec("pretrain", lambda: self.rlhf_step("pretrain", "pretrain"), exclusive=True)]
        for alpha in self.demo.alphas:
            name = f"reward/alpha{_fmt(alpha)}"
            out.append(StepSpec(name, lambda a=alpha, n=name: self.rlhf_step("reward", n, f"rlhf.alpha={a}"),
                                ("pretrain",), exclusive=True))
        runs = self.ppo_runs()
        for a, b, s in runs:
            name = f"ppo/{run_name(a, b, s)}"
            out.append(StepSpec(name, lambda a=a, b=b, s=s, n=name: self.rlhf_step(
                "ppo", n, f"rlhf.alpha={a}", f"rlhf.beta={b}", f"rlhf.seed={s}"), (f"reward/alpha{_fmt(a)}",)))
        out.append(StepSpec("summary", self.summary_step, tuple(f"ppo/{run_name(*r)}" for r in runs)))
        measured = [r for r in runs if r[2] == self.demo.seeds[0]]
        for experiment in self.demo.experiments:
            for i, (a, b, s) in enumerate(measured):
                after = [f"ppo/{run_name(a, b, s)}"]
                if i > 0:
                    after.append(f"measure/{experiment}/{run_name(*measured[0])}")  # its base samples
                if experiment == "attractor":
                    after.append(f"measure/semantic/{run_name(a, b, s)}")
                out.append(StepSpec(f"measure/{experiment}/{run_name(a, b, s)}",
                                    lambda e=experiment, a=a, b=b, s=s: self.measure_step(e, a, b, s), tuple(after)))
        out += [StepSpec("bandit/table1", lambda: self.bandit_step("table1")),
                StepSpec("bandit/simulate", lambda: self.bandit_step("simulate"))]
        return out

    # ---- running ---------------------------------------------------------------------------------
    def reusable(self, step: Step) -> bool:
        folder = self.out / step.name
        marker = folder / "step.json"
        return (folder / "results.json").exists() and marker.exists() and \
            json.loads(marker.read_text()).get("overrides") == step.overrides

    def execute(self, step: Step) -> float:
        """Run one step into its folder (results.json last, then step.json); returns its seconds."""
        folder = self.out / step.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "results.json").unlink(missing_ok=True)
        started = time.time()
        step.run(folder)
        seconds = time.time() - started
        (folder / "step.json").write_text(json.dumps({"overrides": step.overrides, "seconds": seconds}, indent=2))
        return seconds

    def run(self, log_file: Optional[Path]) -> dict:
        from rlhf.study.runner import Scheduler

        manifest = Scheduler(self, log_file).run()
        return {"steps": manifest, "total_seconds": sum(m["seconds"] for m in manifest), "jobs": self.demo.jobs}


def run_stage(cfg, out: Optional[Path] = None) -> dict:
    """`python -m rlhf stage=pipeline`: the whole study into `demo.out_dir`, then the report."""
    from measure.results import write_results
    from rlhf.study.report import write_report

    hydra_dir = Path(out) if out is not None else run_dir()
    out_dir = Path(cfg.demo.out_dir if not cfg.demo.fast else cfg.demo.fast_out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    log.info("pipeline folder: %s (fast=%s); rerunning continues where a run stopped", out_dir, cfg.demo.fast)
    pipeline = Pipeline(cfg, out_dir)
    started = time.time()
    manifest = pipeline.run(hydra_dir / "rlhf.log")
    manifest["wall_seconds"] = time.time() - started
    manifest["fast"] = cfg.demo.fast
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    html, md = write_report(out_dir, manifest)
    log.info("per-step times (s): %s", ", ".join(f"{m['step']} {m['seconds']:.0f}{' (reused)' if m['reused'] else ''}"
                                                 for m in manifest["steps"]))
    log.info("total %.0f s. Report: %s (summary: %s)", manifest["wall_seconds"], html, md)
    results = {**manifest, "report_html": str(html), "report_md": str(md), "out_dir": str(out_dir)}
    write_results(hydra_dir, results)
    return results
