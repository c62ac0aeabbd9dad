"""The study as a list of commands: `python -m <app> <overrides> hydra.run.dir=<out>/<step>`, in order.

tiny world + base model -> reward model (preferences inside) per alpha -> LoRA PPO per (alpha, beta, seed)
-> summary across beta -> the paper's experiments on the base vs every first-seed PPO model -> the toy bandit.

Every step names the exact build it reads: the base model is ``<cache_dir>/tinyworld/<build hash>/model``
(the hash of the composed world and pretraining config), never the moving ``tinyworld/current`` pointer.
A path that an earlier step produces (a reward model, an adapter) is written ``{<step>:<results key>}`` and
filled in from that step's ``results.json`` when the step starts. ``reads`` lists what a step's result depends
on besides its config (weights, adapters, data); the runner reuses a step only when its resolved config and
the content fingerprints of those inputs are unchanged.
"""
from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Tuple

from hydra import compose
from omegaconf import OmegaConf

from rlhf.config import run_name
from rlhf.study.config import StudyConfig

# app -> its primary config in conf/ (what `python -m <app>` composes)
APPS = {"rlhf": "rlhf", "measure": "measure", "toy_bandit": "toy_bandit"}
REFERENCE = re.compile(r"\{([^{}:]+):([^{}:]+)\}")  # {step name:results.json key}


@dataclass(frozen=True)
class Step:
    name: str  # its folder under demo.out_dir; the name in progress lines, errors and manifest.json
    app: str  # rlhf | measure | toy_bandit
    overrides: Tuple[str, ...]  # the command line; may hold {step:key} references to earlier results
    after: Tuple[str, ...] = ()  # steps whose outputs it reads: it starts once they are done
    reads: Tuple[str, ...] = ()  # paths (or {step:key} references) whose content decides reuse
    outputs: Tuple[str, ...] = ()  # results.json keys naming artifacts outside the folder (must exist to reuse)
    exclusive: bool = False  # uses every core itself: runs alone, with the machine's default threads

    def command(self, folder: Path, overrides: Tuple[str, ...] | None = None) -> List[str]:
        return [sys.executable, "-m", self.app, *(self.overrides if overrides is None else overrides),
                f"hydra.run.dir={folder}"]

    def printable(self, folder: Path, overrides: Tuple[str, ...] | None = None) -> str:
        """The command as a user would type it (`python -m ...`, quoted for a POSIX shell)."""
        return shlex.join(["python", *self.command(folder, overrides)[1:]])


def compose_app(app: str, overrides: List[str], typed: bool = True):
    """The config of `python -m <app> overrides...`, composed from conf/ as its entry point composes it: typed
    (secrets on the command line and settings the schema lacks refused, schema range checks included) or, with
    typed=False, as a plain dict with interpolations resolved. Needs an initialised Hydra (the study's own main,
    or a test's context)."""
    from measure.config import register_configs as register_measure
    from measure.errors import refuse_secret_overrides, typed_config
    from rlhf.config import register_configs as register_rlhf
    from toy_bandit.config import register_configs as register_bandit

    register_measure(), register_rlhf(), register_bandit()
    if typed:
        refuse_secret_overrides(overrides)
    dcfg = compose(config_name=APPS[app], overrides=list(overrides))
    return typed_config(dcfg) if typed else OmegaConf.to_container(dcfg, resolve=True)


def base_build(cfg: StudyConfig, rlhf_common: List[str]) -> Path:
    """The build folder of the base model the preset's pretraining step makes (by its composed config)."""
    from rlhf.world.cache import build_dir

    pretrain = compose_app("rlhf", ["stage=pretrain", *rlhf_common])
    return build_dir(pretrain.cache_dir, pretrain.world, pretrain.pretrain)


def plan(cfg: StudyConfig, out: Path) -> List[Step]:
    """Every step of the study in order (each one after the steps it reads)."""
    demo, group = cfg.demo, f"pipeline-{out.name}"
    shared = [f"cache_dir={cfg.cache_dir}", f"wandb={cfg.wandb.mode}", f"wandb.group={group}"]
    rlhf_common = [*shared, f"seed={cfg.seed}", *demo.stage_overrides.rlhf, *demo.rlhf_overrides]
    measure_common = [*shared, f"seed={cfg.seed}", *demo.stage_overrides.measure, *demo.measure_overrides]
    bandit_common = [f"wandb={cfg.wandb.mode}", f"wandb.group={group}", *demo.stage_overrides.bandit,
                     *demo.bandit_overrides]
    build = base_build(cfg, rlhf_common)
    base, truth = str(build / "model"), str(build / "world" / "ground_truth.json")

    steps = [Step("pretrain", "rlhf", ("stage=pretrain", *rlhf_common), outputs=("build_dir",), exclusive=True)]
    for alpha in demo.alphas:
        steps.append(Step(f"reward/alpha{alpha:g}", "rlhf", (
            "stage=reward", *rlhf_common, f"preferences.alpha={alpha}", f"ppo.base.path={base}"),
            after=("pretrain",), reads=(base,), outputs=("reward_model",), exclusive=True))
    rewards = [f"{{reward/alpha{a:g}:reward_model}}" for a in demo.alphas]
    if demo.predict:
        steps.append(Step("predict", "rlhf", (
            "stage=predict", *rlhf_common, f"ppo.base.path={base}", f"predict.alphas=[{','.join(map(str, demo.alphas))}]",
            f"predict.reward_models=[{','.join(rewards)}]", f"predict.betas=[{','.join(map(str, demo.betas))}]",
            f"predict.control_betas=[{','.join(map(str, demo.control_betas))}]",
            "predict.entropy_n=${diversity.final_n_samples}"),
            after=tuple(f"reward/alpha{a:g}" for a in demo.alphas), reads=(base, *rewards)))
    ppo_common = [*rlhf_common, *demo.stage_overrides.ppo, *demo.rlhf_overrides]
    runs = [(a, b, s) for a in demo.alphas for b in demo.betas for s in demo.seeds]
    for a, b, s in runs:
        reward = f"reward/alpha{a:g}"
        steps.append(Step(f"ppo/{run_name(a, b, s)}", "rlhf", (
            "stage=ppo", *ppo_common, f"preferences.alpha={a}", f"ppo.beta={b}", f"ppo.seed={s}",
            f"ppo.base.path={base}", f"diversity.ground_truth={truth}"),
            after=(reward,), reads=(base, truth, f"{{{reward}:reward_model}}"), outputs=("adapter",)))
    control_common = [*rlhf_common, *demo.stage_overrides.control, *demo.rlhf_overrides]
    controls = [(b, s) for b in demo.control_betas for s in demo.control_seeds]
    for b, s in controls:
        steps.append(Step(f"ppo/control_beta{b:g}_seed{s}", "rlhf", (
            "stage=ppo", *control_common, "ppo.reward=control", f"ppo.beta={b}", f"ppo.seed={s}",
            f"ppo.base.path={base}", f"diversity.ground_truth={truth}"),
            after=("pretrain",), reads=(base, truth), outputs=("adapter",)))
    aligned = align_steps(demo, [*rlhf_common, *demo.stage_overrides.align, *demo.rlhf_overrides], base, truth)
    steps += aligned
    ppo = tuple(f"ppo/{run_name(*r)}" for r in runs) + tuple(f"ppo/control_beta{b:g}_seed{s}" for b, s in controls)
    ppo += tuple(s.name for s in aligned)
    predicted = (f"summary.predict={out / 'predict'}",) if demo.predict else ()
    steps.append(Step("summary", "rlhf", ("stage=summary", *rlhf_common, f"summary.runs={out}",
                                          f"summary.run_dirs=[{','.join(ppo)}]",
                                          "summary.min_seeds=1", *predicted),
                      after=ppo + (("predict",) if demo.predict else ()),
                      reads=tuple(str(out / name / "results.json") for name in ppo + (("predict",) if demo.predict else ()))))
    measured = [r for r in runs if r[2] == demo.seeds[0] and (demo.measure_betas is None or r[1] in demo.measure_betas)]
    steps += measurement_steps(demo.experiments, measured, out, base, truth, measure_common)
    steps += [Step(f"bandit/{e}", "toy_bandit", (f"experiment={e}", *bandit_common)) for e in ("table1", "simulate")]
    return steps


def align_steps(demo, common: List[str], base: str, truth: str) -> List[Step]:
    """The other alignment methods (stage=align), one step per (method, reward arm, alpha, setting, seed); each
    waits for its alpha's reward model. Folder: ``align/<method>[_<arm>]_alpha<a>_<setting>_seed<s>``."""
    betas = demo.method_betas or demo.betas
    seeds = demo.method_seeds or demo.seeds
    steps = []
    for method in [m for m in demo.methods if m != "ppo"]:
        if method in ("rloo", "grpo", "bon"):
            arms = list(demo.reward_arms)
        else:
            arms = ["model"]
        if method in ("rloo", "grpo", "dpo"):
            settings = [(f"beta{b:g}", [f"ppo.beta={b}"]) for b in betas]
        elif method in ("bon", "rft"):
            settings = [(f"n{n}" if method == "bon" else f"k{n}", [f"align.best_of={n}"]) for n in demo.best_of]
        else:
            settings = [("demo", [])]
        for arm in arms:
            tag = f"_{arm}" if method in ("rloo", "grpo", "bon", "rft") else ""
            for alpha in demo.alphas:
                reward = f"reward/alpha{alpha:g}"
                for label, knob in settings:
                    for seed in seeds:
                        steps.append(Step(
                            f"align/{method}{tag}_alpha{alpha:g}_{label}_seed{seed}", "rlhf",
                            ("stage=align", *common, f"align.method={method}", f"align.reward={arm}",
                             f"preferences.alpha={alpha}", *knob, f"ppo.seed={seed}", f"ppo.base.path={base}",
                             f"diversity.ground_truth={truth}"),
                            after=(reward,), reads=(base, truth, f"{{{reward}:reward_model}}")))
    return steps


def measurement_steps(experiments: List[str], runs: List[tuple], out: Path, base: str, truth: str,
                      common: List[str]) -> List[Step]:
    """The paper's experiments, base vs each PPO model. The base model's samples do not depend on beta: a later
    beta's step reuses the first one's (`sampling.reuse_from`; the engine checks the model and sampling
    config), so it waits for it. The attractor test perturbs the semantic experiment's clusters."""
    steps = []
    for experiment in experiments:
        first = f"measure/{experiment}/{run_name(*runs[0])}"
        for i, (a, b, s) in enumerate(runs):
            run, ppo = run_name(a, b, s), f"ppo/{run_name(a, b, s)}"
            adapter = f"{{{ppo}:adapter}}"
            overrides = [f"experiment={experiment}", "model=tinyworld", f"model.base.path={base}",
                         f"model.aligned.path={base}", f"model.aligned.adapter={adapter}", *common]
            after, reads = [ppo], [base, adapter]
            if experiment == "personas":
                overrides.append(f"experiment.ground_truth_file={truth}")
                reads.append(truth)
            if experiment == "attractor":
                semantic = out / "measure" / "semantic" / run
                overrides.append(f"experiment.source_dir={semantic}")
                after.append(f"measure/semantic/{run}")
                reads += [str(semantic / "generations_base.jsonl"), str(semantic / "generations_aligned.jsonl")]
            elif i > 0:
                overrides.append(f"sampling.reuse_from={out / first}")
                after.append(first)
            steps.append(Step(f"measure/{experiment}/{run}", "measure", tuple(overrides), tuple(after), tuple(reads)))
    return steps


def references(text: str) -> List[Tuple[str, str]]:
    return REFERENCE.findall(text)


def fill(step: Step, results: Dict[str, dict]) -> Step:
    """The step with every {step:key} reference replaced by that step's results.json value."""
    def sub(text: str) -> str:
        return REFERENCE.sub(lambda m: str(results[m.group(1)][m.group(2)]), text)

    return replace(step, overrides=tuple(sub(o) for o in step.overrides), reads=tuple(sub(r) for r in step.reads))


def placeholder(step: Step) -> Step:
    """The step with references replaced by placeholders, to validate its config before anything runs."""
    def sub(text: str) -> str:
        return REFERENCE.sub(lambda m: f"/not-yet-built/{m.group(1)}/{m.group(2)}", text)

    return replace(step, overrides=tuple(sub(o) for o in step.overrides), reads=tuple(sub(r) for r in step.reads))
