"""The reward model: a ``LlamaForSequenceClassification`` with one output, initialised from the base model
and trained with TRL's ``RewardTrainer`` on the annotator's pairs (Bradley-Terry loss, -log sigmoid(r_c - r_r)).

Held-out pairwise accuracy is measured three ways: against the noisy labels (with a bootstrap CI), against the
noise-free utility ordering the labels were drawn from, and against the Bradley-Terry ceiling E[max(p, 1 - p)]
that no model can beat on noisy labels. Accuracy alone does not say whether the model carries what the
annotator asked, so ``reward_diagnostics`` also regresses its held-out scores on the annotator's terms:

    calibration_slope   d score / d u (u the annotator's utility); its scale: PPO's beta acts as beta / slope on u
    implied_alpha       coef(logp) / coef(u_quality) in  score ~ u_quality + logp + n_tokens + 1  (length held
                        fixed); the configured ``preferences.alpha`` when the model learned the typicality term
    score_sd            the scores' spread: two arms whose score_sd differ by 8x see one nominal beta as two

All with bootstrap CIs over responses; they are saved with the model (metrics.json) and so reach the reward
stage's results.json (``heldout``) and every PPO run's (``reward_model``). The model is cached under
``<cache_dir>/reward/<preferences key>_<hash>`` (trained under a file lock, so concurrent jobs train it once);
its new score head is drawn from ``reward.seed``, so two cold builds give the same model.
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

from measure.stats import bootstrap_ci
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


DIAGNOSTIC_KEYS = ("calibration_slope", "calibration_slope_ci95", "implied_alpha", "implied_alpha_ci95", "regression",
                   "accuracy_ci95", "bt_ceiling", "score_sd")
N_BOOT = 1000  # bootstrap draws of the diagnostics' intervals


def _percentile_ci(values: np.ndarray) -> list:
    """95% percentile interval of bootstrap values; draws that are not finite (a ratio over a zero coefficient,
    a resample without spread) are left out, and none left gives [nan, nan]."""
    finite = values[np.isfinite(values)]
    return [float(np.quantile(finite, q)) for q in (0.025, 0.975)] if finite.size else [float("nan")] * 2


def _slopes(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """OLS slope of y on x along the last axis (one per row of a batch)."""
    xc, yc = x - x.mean(axis=-1, keepdims=True), y - y.mean(axis=-1, keepdims=True)
    return np.sum(xc * yc, axis=-1) / np.sum(xc * xc, axis=-1)


def score_diagnostics(scores_chosen, scores_rejected, heldout, alpha: float, seed: int = 0,
                      n_boot: int = N_BOOT) -> dict:
    """What the reward model learned of the annotator, from its scores of held-out chosen and rejected responses.

    ``heldout`` is a Dataset (or a dict of columns) with u_chosen/_rejected, u_quality_*, logp_* (in the
    preferences' typicality form), n_tokens_* and p_label. Over the 2n responses:

    - ``calibration_slope``: OLS slope of score on the annotator's utility u (any positive slope ranks as u does;
      its size is the score's scale, so one nominal PPO beta acts as beta / slope on u).
    - ``regression``: OLS of score on [u_quality, logp, n_tokens, 1] (coefficients and r2), and
      ``implied_alpha`` = coef(logp) / coef(u_quality): the typicality weight the model carries, length held
      fixed (a calibrated model gives the configured ``alpha``; ``implied_alpha_ratio`` = implied / alpha).
    - ``score_sd``: the scores' standard deviation (``u_sd``: the utility's).
    - ``accuracy`` of the score order against the labels with its ``accuracy_ci95`` (bootstrap over pairs), and the
      Bradley-Terry ``bt_ceiling`` E[max(p, 1 - p)] that no model can beat on these labels.

    The other intervals are percentile bootstraps over responses (``n_boot`` draws from ``seed``).
    """
    r_c, r_r = np.asarray(scores_chosen, np.float64), np.asarray(scores_rejected, np.float64)

    def column(name: str) -> np.ndarray:
        return np.concatenate([np.asarray(heldout[f"{name}_chosen"], np.float64),
                               np.asarray(heldout[f"{name}_rejected"], np.float64)])

    score, u = np.concatenate([r_c, r_r]), column("u")
    design = np.column_stack([column("u_quality"), column("logp"), column("n_tokens"), np.ones(score.size)])
    if r_c.size < 3:
        raise ValueError(f"heldout: {r_c.size} pairs are too few for the reward diagnostics; accepted >= 3")
    coef = np.linalg.lstsq(design, score, rcond=None)[0]
    resid, centred = score - design @ coef, score - score.mean()
    idx = np.random.default_rng(seed).integers(0, score.size, size=(n_boot, score.size))
    boot_coef = (np.linalg.pinv(design[idx]) @ score[idx][..., None])[..., 0]  # (n_boot, 4)
    with np.errstate(divide="ignore", invalid="ignore"):
        implied, boot_implied = coef[1] / coef[0], boot_coef[:, 1] / boot_coef[:, 0]
        boot_slope = _slopes(score[idx], u[idx])
    correct = (r_c > r_r).astype(np.float64)
    out = {
        "calibration_slope": float(_slopes(score, u)), "calibration_slope_ci95": _percentile_ci(boot_slope),
        "implied_alpha": float(implied), "implied_alpha_ci95": _percentile_ci(boot_implied), "alpha": float(alpha),
        "regression": {"u_quality": float(coef[0]), "logp": float(coef[1]), "n_tokens": float(coef[2]),
                       "intercept": float(coef[3]),
                       "r2": float(1 - resid @ resid / (centred @ centred)) if centred.any() else float("nan")},
        "accuracy": float(correct.mean()), "accuracy_ci95": bootstrap_ci(correct, n_boot=n_boot, seed=seed),
        "score_sd": float(np.std(score, ddof=1)), "u_sd": float(np.std(u, ddof=1)), "n_responses": int(score.size),
    }
    if "p_label" in (heldout.column_names if hasattr(heldout, "column_names") else heldout):
        out["bt_ceiling"] = bt_accuracy_ceiling(np.asarray(heldout["p_label"]))
    if alpha > 0:
        out["implied_alpha_ratio"] = float(implied / alpha)
        out["implied_alpha_within_factor2"] = bool(alpha / 2 <= implied <= 2 * alpha)
    return out


def reward_diagnostics(model, heldout, pad_token_id: int, alpha: float, seed: int) -> dict:
    """``score_diagnostics`` of ``model``'s scores of the held-out chosen and rejected responses."""
    return score_diagnostics(score_sequences(model, heldout["chosen_ids"], pad_token_id),
                             score_sequences(model, heldout["rejected_ids"], pad_token_id), heldout, alpha, seed)


def annotator_alpha(preferences) -> float:
    """The typicality alpha the pairs were labelled with, read back from them (u = u_quality + alpha * logp)."""
    du = np.asarray(preferences["u_chosen"], np.float64) - np.asarray(preferences["u_quality_chosen"], np.float64)
    logp = np.asarray(preferences["logp_chosen"], np.float64)
    # rounded past the float error of u - u_quality, so the configured 0.5 reads back as 0.5
    return round(float(du @ logp / (logp @ logp)), 9) if np.any(logp != 0) else 0.0


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


def save_metrics(directory: Path, metrics: dict) -> None:
    """``directory/metrics.json``, replaced atomically (it marks a finished model)."""
    tmp = directory / "metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=2))
    os.replace(tmp, directory / "metrics.json")


def with_diagnostics(metrics: dict, model, heldout, pad_token_id: int, alpha: float, seed: int) -> dict:
    """``metrics`` with ``reward_diagnostics`` merged in (held-out rows without the annotator's columns, as in
    hand-made test pairs, have none to compute)."""
    needed = {f"{c}_{side}" for c in ("u", "u_quality", "logp", "n_tokens") for side in ("chosen", "rejected")}
    if not needed <= set(heldout.column_names):
        return metrics
    return {**metrics, **reward_diagnostics(model, heldout, pad_token_id, alpha, seed)}


def load_or_train_reward_model(base_path: str, tokenizer, preferences, preferences_dir: Path, cfg: RewardConfig,
                               cache_dir: str | os.PathLike, callbacks=(),
                               alpha: Optional[float] = None) -> tuple[Path, dict]:
    """The cached reward model for these preferences, trained on first use; returns (directory, metrics).

    The metrics hold the held-out accuracy and ``reward_diagnostics`` (``alpha``: the preferences' typicality
    alpha, read back from the pairs when not given). A cached model whose metrics.json predates the
    diagnostics gets them computed on load (and saved by the main process), so no run reads a model without them.

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
        alpha = annotator_alpha(preferences) if alpha is None else alpha
        heldout = preferences.filter(lambda s: s == "heldout", input_columns="split", keep_in_memory=True)
        if (final / "metrics.json").exists():
            log.info("reward model: reusing %s", final)
            metrics = json.loads((final / "metrics.json").read_text())
            if not all(k in metrics for k in DIAGNOSTIC_KEYS):
                from transformers import AutoModelForSequenceClassification

                model = AutoModelForSequenceClassification.from_pretrained(str(final), num_labels=1)
                metrics = with_diagnostics(metrics, model, heldout, tokenizer.pad_token_id, alpha, cfg.seed)
                if state.is_main_process:
                    save_metrics(final, metrics)
            return final, metrics
        work = final.with_name(final.name + f".work{os.getpid()}")
        model = init_reward_model(base_path, tokenizer, cfg.seed)
        train = preferences.filter(lambda s: s == "train", input_columns="split", keep_in_memory=True)
        trainer, metrics = train_reward_model(model, tokenizer, train, heldout, cfg, work)
        metrics = with_diagnostics(metrics, trainer.model, heldout, tokenizer.pad_token_id, alpha, cfg.seed)
        if state.is_main_process:
            tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=".building-"))
            trainer.accelerator.unwrap_model(trainer.model).save_pretrained(str(tmp), safe_serialization=True)
            tokenizer.save_pretrained(str(tmp))
            save_metrics(tmp, metrics)
            os.replace(tmp, final)
            log.info("reward model: held-out accuracy %.3f (vs utility %.3f, ceiling %.3f), calibration slope %.3g, "
                     "implied alpha %.3g (configured %g) -> %s", metrics["accuracy"],
                     metrics.get("accuracy_vs_utility", float("nan")), metrics.get("bt_ceiling", float("nan")),
                     metrics.get("calibration_slope", float("nan")), metrics.get("implied_alpha", float("nan")),
                     alpha, final)
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
                                                     cfg.cache_dir, alpha=alpha)
        wb.summary.update(reward_metrics_for_wandb(metrics))
    model = AutoModelForSequenceClassification.from_pretrained(str(rm_dir), num_labels=1)
    heldout = prefs.filter(lambda s: s == "heldout", input_columns="split", keep_in_memory=True)
    score_figure(model, heldout, tokenizer.pad_token_id, out / "reward_vs_utility.png")
    results = {"stage": "reward", "alpha": alpha, "reward_model": str(rm_dir), "heldout": metrics,
               "preferences": preference_summary(prefs), "config": stage_config(cfg, "reward")}
    write_results(out, results)
    log.info("reward model: held-out accuracy %.3f -> %s", metrics["accuracy"], out)
    return results
