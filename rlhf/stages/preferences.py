"""Simulated preference data: pairs of base-model samples for the paper's prompts, labelled by the annotator.

Samples come from the shared sampling engine under ``preferences.sampling`` (T = 1 by default, so each
``Generation.token_probs`` holds the base model's own token probabilities and log p_base(response), the
typicality term, is their log-sum, or their mean per token with ``preferences.typicality=per_token``).
Samples 2i and 2i + 1 of a prompt form pair i. The pairs are a ``datasets.Dataset`` with one row per pair:

    prompt_key, prompt, chosen, rejected            texts (the response only)
    chosen_ids, rejected_ids                        prompt ids + response ids, exactly as PPO's reward model sees them
    u_quality_chosen / _rejected, logp_chosen / _rejected, u_chosen / _rejected     the annotator's view
                                                    (logp in the ``preferences.typicality`` form, in nats)
    n_tokens_chosen / _rejected                     response length in tokens (the reward diagnostics' control)
    p_label                                         Bradley-Terry probability of the label that was drawn
    split                                           "train" or "heldout"

It is cached under ``<cache_dir>/preferences/alpha{alpha}_<hash>`` (one set per typicality alpha, built under
a file lock so that concurrent jobs build it once) and a copy is saved in the run directory.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import List

import numpy as np

from measure.prompts import encode_prompt
from measure.sampling import Generation, sample
from measure.tiny import config_hash
from rlhf.stages.annotator import label_pairs, quality_terms, quality_utility, typicality_logp, utility
from rlhf.config import PreferencesConfig
from rlhf.world.cache import build_lock

log = logging.getLogger(__name__)


def model_fingerprint(path: str | os.PathLike) -> dict:
    """What identifies a saved model for cache keys: its real path and its weights' size and mtime."""
    real = Path(os.path.realpath(os.path.expanduser(str(path))))
    weights = sorted(real.glob("*.safetensors"))
    return {"path": str(real), "weights": [(w.name, w.stat().st_size, int(w.stat().st_mtime)) for w in weights]}


def preferences_key(base_path: str, cfg: PreferencesConfig) -> str:
    return f"alpha{cfg.alpha:g}_" + config_hash({"base": model_fingerprint(base_path),
                                                 "preferences": dataclasses.asdict(cfg)})


def _rows_for_prompt(gens: List[Generation], prompt_ids: List[int], key: str, text: str, cfg: PreferencesConfig,
                     rng: np.random.Generator) -> List[dict]:
    is_persona = key == "persona"
    u_q = [quality_utility(quality_terms(g.text, is_persona, g.stopped_at_eos), cfg.annotator) for g in gens]
    logp = [typicality_logp(g.token_probs, cfg.typicality) for g in gens]
    u = np.array([utility(q, lp, cfg.alpha) for q, lp in zip(u_q, logp)])
    a, b = np.arange(0, len(gens) - 1, 2), np.arange(1, len(gens), 2)
    a_wins, p_a = label_pairs(u[a], u[b], cfg.annotator.bt_scale, rng)
    rows = []
    for i, j, win, p in zip(a, b, a_wins, p_a):
        c, r = (i, j) if win else (j, i)
        rows.append({
            "prompt_key": key, "prompt": text, "chosen": gens[c].text, "rejected": gens[r].text,
            "chosen_ids": list(prompt_ids) + gens[c].token_ids, "rejected_ids": list(prompt_ids) + gens[r].token_ids,
            "u_quality_chosen": u_q[c], "u_quality_rejected": u_q[r], "logp_chosen": logp[c], "logp_rejected": logp[r],
            "u_chosen": float(u[c]), "u_rejected": float(u[r]), "p_label": float(p if win else 1.0 - p),
            "n_tokens_chosen": len(gens[c].token_ids), "n_tokens_rejected": len(gens[r].token_ids),
        })
    return rows


def build_preferences(model, tokenizer, cfg: PreferencesConfig, work_dir: Path):
    """Sample, label and split the pairs; returns the Dataset (not yet saved). Sampling resumes from
    ``work_dir/samples_<key>.jsonl`` after a kill."""
    from datasets import Dataset

    rng = np.random.default_rng(cfg.seed)
    rows = []
    for index, prompt in enumerate(cfg.prompts):
        prompt_ids = encode_prompt(tokenizer, prompt.text, chat=prompt.chat)
        scfg = dataclasses.replace(cfg.sampling, n_samples=2 * cfg.n_pairs_per_prompt,
                                   seed=cfg.sampling.seed * 1000 + index)
        gens = sample(model, tokenizer, prompt_ids, scfg, prompt=prompt.text,
                      progress_file=work_dir / f"samples_{prompt.key}.jsonl", desc=f"preference samples: {prompt.key}",
                      name="preferences.sampling")
        rows += _rows_for_prompt(gens, prompt_ids, prompt.key, prompt.text, cfg, rng)
    heldout = set(rng.permutation(len(rows))[: max(1, round(cfg.heldout_share * len(rows)))].tolist())
    for i, row in enumerate(rows):
        row["split"] = "heldout" if i in heldout else "train"
    return Dataset.from_list(rows)


def load_or_build_preferences(model_loader, base_path: str, cfg: PreferencesConfig, cache_dir: str | os.PathLike):
    """The cached preference set for (base, cfg), built on first use; returns (Dataset, its directory).

    ``model_loader()`` returns (model, tokenizer) and is called only when the set must be built. A job that
    finds another one building the same set waits for it (``build_lock``), then reuses it.
    """
    from datasets import load_from_disk

    final = Path(cache_dir) / "preferences" / preferences_key(base_path, cfg)
    with build_lock(final):
        if (final / "dataset_info.json").exists():
            log.info("preferences: reusing %s", final)
            return load_from_disk(str(final)), final
        work = final.with_name(final.name + ".work")  # samples survive a kill here
        work.mkdir(parents=True, exist_ok=True)
        model, tokenizer = model_loader()
        dataset = build_preferences(model, tokenizer, cfg, work)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=".building-"))
        dataset.save_to_disk(str(tmp))
        os.replace(tmp, final)
        shutil.rmtree(work, ignore_errors=True)
    log.info("preferences: %d pairs saved to %s", len(dataset), final)
    return load_from_disk(str(final)), final


def preference_summary(dataset) -> dict:
    """What the labels look like: pair counts, how often the label agrees with the noise-free utility and
    with the quality utility alone (pairs tied in that utility left out), and the mean Bradley-Terry
    probability of the drawn label."""
    u_c, u_r = np.array(dataset["u_chosen"]), np.array(dataset["u_rejected"])
    q_c, q_r = np.array(dataset["u_quality_chosen"]), np.array(dataset["u_quality_rejected"])
    keys = dataset["prompt_key"]

    def agreement(a, b):
        decided = a != b
        return float(np.mean(a[decided] > b[decided])) if decided.any() else float("nan")

    return {
        "n_pairs": len(dataset),
        "n_heldout": int(sum(s == "heldout" for s in dataset["split"])),
        "by_prompt": {k: int(sum(x == k for x in keys)) for k in sorted(set(keys))},
        "label_agrees_with_utility": agreement(u_c, u_r),
        "label_agrees_with_quality": agreement(q_c, q_r),
        "quality_ties": int(np.sum(q_c == q_r)),
        "mean_p_label": float(np.mean(dataset["p_label"])),
        "chosen_logp_minus_rejected_mean": float(np.mean(np.array(dataset["logp_chosen"]) -
                                                         np.array(dataset["logp_rejected"]))),
    }


def utility_figure(dataset, path: Path) -> None:
    """Quality utility of chosen vs rejected responses per prompt, and the label's log p_base advantage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted(set(dataset["prompt_key"]))
    fig, axes = plt.subplots(1, len(keys) + 1, figsize=(4 * (len(keys) + 1), 3.2))
    for ax, key in zip(axes, keys):
        rows = dataset.filter(lambda k: k == key, input_columns="prompt_key", keep_in_memory=True)
        ax.hist([rows["u_quality_chosen"], rows["u_quality_rejected"]], bins=20, label=["chosen", "rejected"])
        ax.set_title(f"{key}: quality utility")
        ax.legend()
    diff = np.array(dataset["logp_chosen"]) - np.array(dataset["logp_rejected"])
    axes[-1].hist(diff, bins=30)
    axes[-1].set_title("log p_base(chosen) - log p_base(rejected)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_stage(cfg, out: Path | None = None) -> dict:
    """`python -m rlhf stage=preferences preferences.alpha=<alpha>`: build (or reuse) the labelled pairs; a copy of
    the Dataset is saved in the run directory (`preferences/`) beside results.json and the figure."""
    from measure.loading import load_model
    from measure.results import run_dir, write_results
    from measure.tracking import wandb_run
    from rlhf.stages.common import require_base_model, set_threads, stage_config

    out = Path(out) if out is not None else run_dir()
    require_base_model(cfg)
    set_threads(cfg.ppo.threads)
    alpha = cfg.preferences.alpha
    with wandb_run(cfg.wandb, str(out), name=f"preferences-alpha{alpha:g}", job_type="rlhf/preferences",
                   config={"alpha": alpha, **stage_config(cfg, "preferences")}) as wb:
        dataset, cached = load_or_build_preferences(lambda: load_model(cfg.ppo.base), cfg.ppo.base.path,
                                                    cfg.preferences, cfg.cache_dir)
        summary = preference_summary(dataset)
        wb.summary.update({f"preferences/{k}": v for k, v in summary.items() if isinstance(v, (int, float))})
    dataset.save_to_disk(str(out / "preferences"))
    utility_figure(dataset, out / "preferences_utility.png")
    results = {"stage": "preferences", "alpha": alpha, "dataset": str(cached), "dataset_copy": str(out / "preferences"),
               **summary, "config": stage_config(cfg, "preferences")}
    write_results(out, results)
    log.info("preferences: %d pairs, label agrees with the noise-free utility in %.1f%% -> %s", summary["n_pairs"],
             100 * summary["label_agrees_with_utility"], out)
    return results
