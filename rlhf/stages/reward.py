"""The reward model: a ``LlamaForSequenceClassification`` with one output, initialised from the base model
and trained with TRL's ``RewardTrainer`` on the annotator's pairs (Bradley-Terry loss, -log sigmoid(r_c - r_r)).

Held-out pairwise accuracy is measured three ways: against the noisy labels, against the noise-free
utility ordering the labels were drawn from, and against the Bradley-Terry ceiling E[max(p, 1 - p)] that
no model can beat on noisy labels. The model is cached under ``<cache_dir>/reward/<preferences key>_<hash>``
(trained under a file lock, so concurrent jobs train it once); its new score head is drawn from ``reward.seed``,
so two cold builds give the same model.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from measure.tiny import config_hash
from rlhf.stages.annotator import bt_accuracy_ceiling
from rlhf.config import RewardConfig
from rlhf.world.cache import build_lock

log = logging.getLogger(__name__)


def reward_key(preferences_dir: Path, cfg: RewardConfig) -> str:
    return f"{preferences_dir.name}_{config_hash({'reward': dataclasses.asdict(cfg)})}"


def init_reward_model(base_path: str, tokenizer, seed: int):
    """A one-output sequence-classification head on the base model's weights; the new head is drawn from
    ``seed`` (the global RNG is left as it was)."""
    from transformers import AutoModelForSequenceClassification

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForSequenceClassification.from_pretrained(base_path, num_labels=1, use_safetensors=True)
    model.config.pad_token_id = tokenizer.pad_token_id  # the score is read at the last non-pad token
    return model


@torch.no_grad()
def score_sequences(model, sequences, pad_token_id: int, batch_size: int = 64) -> np.ndarray:
    """The reward model's score of each token-id sequence (right-padded batches, last non-pad token)."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(sequences), batch_size):
        batch = sequences[start:start + batch_size]
        width = max(len(s) for s in batch)
        ids = torch.full((len(batch), width), pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, s in enumerate(batch):
            ids[i, :len(s)] = torch.tensor(s)
            mask[i, :len(s)] = 1
        out.append(model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits[:, 0].float().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0)


def pairwise_accuracy(model, dataset, pad_token_id: int) -> dict:
    """Held-out accuracy of the reward model against the labels, the noise-free utility and the BT ceiling."""
    r_c = score_sequences(model, dataset["chosen_ids"], pad_token_id)
    r_r = score_sequences(model, dataset["rejected_ids"], pad_token_id)
    out = {"n_pairs": len(dataset), "accuracy": float(np.mean(r_c > r_r)),
           "mean_margin": float(np.mean(r_c - r_r))}
    if "u_chosen" in dataset.column_names:
        u_c, u_r = np.array(dataset["u_chosen"]), np.array(dataset["u_rejected"])
        decided = u_c != u_r  # ties in utility have no right answer
        agree = np.sign(r_c - r_r) == np.sign(u_c - u_r)
        out["accuracy_vs_utility"] = float(np.mean(agree[decided])) if decided.any() else float("nan")
        out["bt_ceiling"] = bt_accuracy_ceiling(np.array(dataset["p_label"]))
    return out


def train_reward_model(model, tokenizer, train, heldout, cfg: RewardConfig, work_dir: Path, callbacks=()):
    """Train ``model`` with TRL's RewardTrainer on pre-tokenised pairs; returns (trainer, held-out metrics)."""
    from trl import RewardConfig as TrlRewardConfig, RewardTrainer

    columns = ["chosen_ids", "rejected_ids"]
    args = TrlRewardConfig(
        output_dir=str(work_dir / "trl"), num_train_epochs=cfg.epochs, learning_rate=cfg.lr,
        per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=cfg.batch_size,
        center_rewards_coefficient=cfg.center_rewards_coefficient, seed=cfg.seed, max_length=None,
        bf16=False, use_cpu=not torch.cuda.is_available(), report_to=[], save_strategy="no",
        eval_strategy="no", logging_steps=10, gradient_checkpointing=False, disable_tqdm=False,
    )
    trainer = RewardTrainer(model=model, args=args, train_dataset=train.select_columns(columns),
                            processing_class=tokenizer, callbacks=list(callbacks))
    trainer.train()
    metrics = pairwise_accuracy(trainer.model, heldout, tokenizer.pad_token_id)
    metrics["train_accuracy"] = pairwise_accuracy(trainer.model, train, tokenizer.pad_token_id)["accuracy"]
    return trainer, metrics


def load_or_train_reward_model(base_path: str, tokenizer, preferences, preferences_dir: Path, cfg: RewardConfig,
                               cache_dir: str | os.PathLike, callbacks=()) -> tuple[Path, dict]:
    """The cached reward model for these preferences, trained on first use; returns (directory, metrics).

    Under `accelerate launch` every process must call this: they train together (DDP through the Trainer)
    and the main process saves; a process that skipped it would leave the others waiting forever. Another job
    training the same model is waited for (``build_lock``, taken by the main process; the others wait for it
    at the first barrier), then its model is reused.
    """
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    final = Path(cache_dir) / "reward" / reward_key(preferences_dir, cfg)
    with build_lock(final) if state.is_main_process else contextlib.nullcontext():
        state.wait_for_everyone()  # every process sees the same cache state, so all train or none
        if (final / "metrics.json").exists():
            log.info("reward model: reusing %s", final)
            return final, json.loads((final / "metrics.json").read_text())
        work = final.with_name(final.name + f".work{os.getpid()}")
        model = init_reward_model(base_path, tokenizer, cfg.seed)
        train = preferences.filter(lambda s: s == "train", input_columns="split", keep_in_memory=True)
        heldout = preferences.filter(lambda s: s == "heldout", input_columns="split", keep_in_memory=True)
        trainer, metrics = train_reward_model(model, tokenizer, train, heldout, cfg, work)
        if state.is_main_process:
            tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=".building-"))
            trainer.accelerator.unwrap_model(trainer.model).save_pretrained(str(tmp), safe_serialization=True)
            tokenizer.save_pretrained(str(tmp))
            (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))
            os.replace(tmp, final)
            log.info("reward model: held-out accuracy %.3f (vs utility %.3f, ceiling %.3f) -> %s",
                     metrics["accuracy"], metrics.get("accuracy_vs_utility", float("nan")),
                     metrics.get("bt_ceiling", float("nan")), final)
        shutil.rmtree(work, ignore_errors=True)
        state.wait_for_everyone()
    return final, json.loads((final / "metrics.json").read_text())


def reward_metrics_for_wandb(metrics: dict, prefix: str = "reward") -> dict:
    return {f"{prefix}/heldout_{k}" if k != "train_accuracy" else f"{prefix}/train_accuracy": v
            for k, v in metrics.items() if isinstance(v, (int, float))}


def reward_model_dir(cache_dir, preferences_dir: Path, cfg: RewardConfig) -> Optional[Path]:
    path = Path(cache_dir) / "reward" / reward_key(preferences_dir, cfg)
    return path if (path / "metrics.json").exists() else None


def score_figure(model, heldout, pad_token_id: int, path: Path) -> None:
    """Reward-model score against the annotator's utility on held-out responses (chosen and rejected)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = np.concatenate([score_sequences(model, heldout["chosen_ids"], pad_token_id),
                             score_sequences(model, heldout["rejected_ids"], pad_token_id)])
    utility = np.concatenate([heldout["u_chosen"], heldout["u_rejected"]])
    keys = list(heldout["prompt_key"]) * 2
    fig, ax = plt.subplots(figsize=(5, 4))
    for key in sorted(set(keys)):
        mask = np.array([k == key for k in keys])
        ax.scatter(utility[mask], scores[mask], s=8, alpha=0.6, label=key)
    ax.set_xlabel("annotator utility u")
    ax.set_ylabel("reward model score")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_stage(cfg, out: Path | None = None) -> dict:
    """`python -m rlhf stage=reward preferences.alpha=<alpha>`: train (or reuse) the reward model for the
    preference set of ``preferences.alpha``; held-out pairwise accuracy goes to results.json and wandb."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from measure.loading import load_model
    from measure.results import run_dir, write_results
    from measure.tracking import wandb_run
    from rlhf.stages.preferences import load_or_build_preferences, preference_summary
    from rlhf.stages.common import require_base_model, set_threads, stage_config

    out = Path(out) if out is not None else run_dir()
    require_base_model(cfg)
    set_threads(cfg.ppo.threads)
    alpha, base = cfg.preferences.alpha, cfg.ppo.base
    with wandb_run(cfg.wandb, str(out), name=f"reward-alpha{alpha:g}", job_type="rlhf/reward",
                   config={"alpha": alpha, **stage_config(cfg, "preferences", "reward")}) as wb:
        prefs, prefs_dir = load_or_build_preferences(lambda: load_model(base), base.path, cfg.preferences,
                                                     cfg.cache_dir)
        tokenizer = AutoTokenizer.from_pretrained(base.path)
        rm_dir, metrics = load_or_train_reward_model(base.path, tokenizer, prefs, prefs_dir, cfg.reward,
                                                     cfg.cache_dir)
        wb.summary.update(reward_metrics_for_wandb(metrics))
    model = AutoModelForSequenceClassification.from_pretrained(str(rm_dir), num_labels=1)
    heldout = prefs.filter(lambda s: s == "heldout", input_columns="split", keep_in_memory=True)
    score_figure(model, heldout, tokenizer.pad_token_id, out / "reward_vs_utility.png")
    results = {"stage": "reward", "alpha": alpha, "reward_model": str(rm_dir), "heldout": metrics,
               "preferences": preference_summary(prefs), "config": stage_config(cfg, "reward")}
    write_results(out, results)
    log.info("reward model: held-out accuracy %.3f -> %s", metrics["accuracy"], out)
    return results
