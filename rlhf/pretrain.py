"""Stage `pretrain`: build the tiny world, train its tokenizer and a tiny Llama from scratch, score it.

Each step is skipped when its output is already in the build directory (``rlhf.cache``), so a second call
with the same config only re-reads the cached results, and a killed build resumes from its last checkpoint
(data order and learning rate are functions of the step, so the resumed run sees the same batches).
The model is saved with ``save_pretrained`` (safetensors) and loads with ``AutoModelForCausalLM``.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import List, Optional, Sequence

import torch
from tqdm.auto import tqdm

from measure.config import ModelConfig
from measure.results import run_dir, write_results
from measure.tiny import tiny_llama_config, train_bpe_tokenizer
from measure.tracking import wandb_run
from rlhf import cache
from rlhf.config import PretrainConfig, RlhfConfig
from rlhf.world import document_plain_text, read_documents, write_world

log = logging.getLogger(__name__)
TOKENIZER_DOCS = 6000  # documents the BPE is trained on (more adds time, not merges worth having)
LEXICON_REPEATS = 10  # times the name lexicon is shown to the BPE trainer


# ---------------------------------------------------------------- data

def name_lexicon(truth: dict) -> List[str]:
    """Every first and last name of the world (from its ground truth), sorted."""
    names = set()
    for key in ("first_names_given_nationality", "last_names_given_nationality"):
        for by_name in truth.get(key, {}).values():
            names.update(by_name)
    return sorted(names)


def train_tokenizer(docs: List[dict], vocab_size: int, lexicon: Sequence[str] = ()):
    """Byte-level BPE on the world's text (chat turns in their [INST] layout), via the project's trainer.

    ``lexicon`` (the world's names) is added LEXICON_REPEATS times, so more names become single tokens: a name
    drawn in one step cannot derail half-way through its spelling, which is where a small model's cards break.
    """
    texts = [document_plain_text(d) for d in docs[:TOKENIZER_DOCS]]
    texts += [" ".join(lexicon)] * (LEXICON_REPEATS if lexicon else 0)
    return train_bpe_tokenizer(texts, vocab_size=vocab_size)


def encode_documents(docs: List[dict], tokenizer) -> List[List[int]]:
    """Token ids of each document as the model is trained on it: BOS text EOS, chat through the template."""
    plain = [d["text"] for d in docs if d["kind"] != "chat"]
    chats = [tokenizer.apply_chat_template(d["messages"], tokenize=False) for d in docs if d["kind"] == "chat"]
    plain_ids = iter(tokenizer(plain, add_special_tokens=True)["input_ids"]) if plain else iter(())
    chat_ids = iter(tokenizer(chats, add_special_tokens=False)["input_ids"]) if chats else iter(())
    eos = tokenizer.eos_token_id
    return [next(chat_ids) if d["kind"] == "chat" else next(plain_ids) + [eos] for d in docs]


def pack_blocks(encoded: List[List[int]], block_size: int) -> torch.Tensor:
    """Documents back to back, cut into (n_blocks, block_size); the tail shorter than a block is dropped."""
    flat = torch.tensor([t for ids in encoded for t in ids], dtype=torch.int32)
    n_blocks = flat.numel() // block_size
    if n_blocks == 0:
        raise ValueError(f"corpus of {flat.numel()} tokens is shorter than one block ({block_size})")
    return flat[: n_blocks * block_size].view(n_blocks, block_size)


@lru_cache(maxsize=2)
def _epoch_order(seed: int, epoch: int, n_blocks: int) -> torch.Tensor:
    return torch.randperm(n_blocks, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


def batch_indices(step: int, n_blocks: int, batch_size: int, seed: int) -> torch.Tensor:
    """Blocks of ``step``: consecutive slices of a per-epoch permutation, so a resumed run continues exactly."""
    positions = range(step * batch_size, (step + 1) * batch_size)
    return torch.tensor([int(_epoch_order(seed, p // n_blocks, n_blocks)[p % n_blocks]) for p in positions])


def lr_at(step: int, cfg: PretrainConfig) -> float:
    """Linear warm-up, then cosine decay to ``lr * min_lr_ratio`` at ``max_steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@torch.no_grad()
def heldout_loss_nats(model, blocks: torch.Tensor, batch_size: int) -> float:
    """Mean next-token cross-entropy (nats/token) over ``blocks``."""
    was_training = model.training
    model.eval()
    losses = [float(model(input_ids=b.long(), labels=b.long()).loss) * b.shape[0]
              for b in blocks.split(batch_size)]
    model.train(was_training)
    return sum(losses) / blocks.shape[0]


# ---------------------------------------------------------------- training

def _optimizer(model, cfg: PretrainConfig) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))


def _save_checkpoint(path: Path, model, opt, step: int, history: list, train_s: float) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optim": opt.state_dict(), "step": step, "history": history,
                "train_s": train_s}, tmp)
    os.replace(tmp, path)


def _log_point(point: dict, cfg: PretrainConfig, run, bar) -> None:
    bar.set_postfix(loss=f"{point['loss']:.3f}", tok_s=f"{point['tokens_per_s']:.0f}")
    held = point.get("heldout_loss_nats")
    log.info("step %d/%d loss %.4f lr %.2e %.0f tok/s%s", point["step"], cfg.max_steps, point["loss"], point["lr"],
             point["tokens_per_s"], "" if held is None else f" held-out {held:.4f}")
    if run is not None:
        run.log({f"pretrain/{k}": v for k, v in point.items() if k != "step"}, step=point["step"])


def _init_or_resume(ckpt: Path, cfg: PretrainConfig, tokenizer):
    """A seeded fresh model and optimizer, or both restored from ``ckpt``; returns (model, opt, step, history, s)."""
    from transformers import LlamaForCausalLM

    torch.manual_seed(cfg.seed)
    model = LlamaForCausalLM(tiny_llama_config(tokenizer, cfg.hidden_size, cfg.num_layers, cfg.num_heads,
                                               max_positions=max(512, cfg.block_size)))
    opt = _optimizer(model, cfg)
    if not ckpt.exists():
        return model, opt, 0, [], 0.0
    state = torch.load(ckpt, weights_only=True)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optim"])
    log.info("resuming pretraining from step %d (%s)", state["step"], ckpt)
    return model, opt, state["step"], state["history"], state["train_s"]


def train_model(directory: Path, cfg: PretrainConfig, tokenizer, train_blocks: torch.Tensor,
                heldout_blocks: torch.Tensor, run=None) -> dict:
    """Train (or resume) the tiny Llama; saves ``model/`` atomically and returns the training record."""
    ckpt = directory / "checkpoints" / "last.pt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    model, opt, start, history, train_s = _init_or_resume(ckpt, cfg, tokenizer)
    n_params = sum(p.numel() for p in model.parameters())
    tokens_per_step = cfg.batch_size * cfg.block_size
    log.info("pretraining a %.2fM-parameter Llama for %d steps (%d tokens/step, %d train blocks)",
             n_params / 1e6, cfg.max_steps, tokens_per_step, train_blocks.shape[0])
    model.train()
    bar = tqdm(total=cfg.max_steps, initial=start, desc="pretrain", unit="step")
    window_t, window_steps, loss_sum = time.time(), 0, 0.0
    for step in range(start, cfg.max_steps):
        t0 = time.time()
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        x = train_blocks[batch_indices(step, train_blocks.shape[0], cfg.batch_size, cfg.seed)].long()
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        train_s += time.time() - t0
        loss_sum, window_steps, done = loss_sum + float(loss.detach()), window_steps + 1, step + 1
        bar.update(1)
        if done % cfg.log_every == 0 or done == cfg.max_steps:
            point = {"step": done, "loss": loss_sum / window_steps, "lr": lr_at(step, cfg),
                     "tokens_per_s": window_steps * tokens_per_step / (time.time() - window_t)}
            if done % cfg.eval_every == 0 and done < cfg.max_steps:
                point["heldout_loss_nats"] = heldout_loss_nats(model, heldout_blocks[:cfg.eval_blocks], cfg.batch_size)
            history.append(point)
            _log_point(point, cfg, run, bar)
            window_t, window_steps, loss_sum = time.time(), 0, 0.0
        if done % cfg.checkpoint_every == 0 and done < cfg.max_steps:
            _save_checkpoint(ckpt, model, opt, done, history, train_s)
    bar.close()
    final_heldout = heldout_loss_nats(model, heldout_blocks, cfg.batch_size)
    log.info("held-out loss %.4f nats/token over %d blocks", final_heldout, heldout_blocks.shape[0])
    if run is not None:
        run.log({"pretrain/heldout_loss_nats": final_heldout}, step=cfg.max_steps)
    _save_model(model, tokenizer, directory / "model")
    return {"n_params": n_params, "steps": cfg.max_steps, "tokens": cfg.max_steps * tokens_per_step,
            "train_s": train_s, "tokens_per_s": cfg.max_steps * tokens_per_step / train_s if train_s else None,
            "heldout_loss_nats": final_heldout, "heldout_tokens": heldout_blocks.numel(),
            "final_train_loss": history[-1]["loss"] if history else None, "history": history}


def _save_model(model, tokenizer, out: Path) -> None:
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=".model-"))
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)


# ---------------------------------------------------------------- build + stage

def build(cfg: RlhfConfig, directory: Path, run=None) -> dict:
    """Build whatever of world, tokenizer and model is missing in ``directory``; returns the training record."""
    from transformers import AutoTokenizer

    timings = {}
    t = time.time()
    world_dir = directory / "world"
    if not (world_dir / "ground_truth.json").exists():
        w = cfg.world
        write_world(w.seed, w.n_docs, w.n_heldout_docs, w.mix, world_dir)
    corpus, heldout = read_documents(world_dir / "corpus.jsonl"), read_documents(world_dir / "heldout.jsonl")
    timings["world_s"] = time.time() - t
    t = time.time()
    tok_dir = directory / "tokenizer"
    if (tok_dir / "tokenizer.json").exists():
        tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    else:
        truth = json.loads((world_dir / "ground_truth.json").read_text())
        tokenizer = train_tokenizer(corpus, cfg.pretrain.vocab_size, name_lexicon(truth))
        tokenizer.save_pretrained(tok_dir)
    train_blocks = pack_blocks(encode_documents(corpus, tokenizer), cfg.pretrain.block_size)
    heldout_blocks = pack_blocks(encode_documents(heldout, tokenizer), cfg.pretrain.block_size)
    timings["tokenizer_s"] = time.time() - t
    log.info("tokenizer: %d tokens; corpus %d tokens in %d blocks, held out %d blocks", len(tokenizer),
             train_blocks.numel(), train_blocks.shape[0], heldout_blocks.shape[0])
    t = time.time()
    record = train_model(directory, cfg.pretrain, tokenizer, train_blocks, heldout_blocks, run)
    timings["train_wall_s"] = time.time() - t
    record.update(timings, vocab_size=len(tokenizer), corpus_tokens=train_blocks.numel(),
                  epochs=record["tokens"] / train_blocks.numel(), config=cache.build_params(cfg.world, cfg.pretrain))
    (directory / "train.json").write_text(json.dumps(record, indent=1))
    shutil.rmtree(directory / "checkpoints", ignore_errors=True)  # the model is saved; checkpoints are spent
    return record


def _loss_figure(history: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([h["step"] for h in history], [h["loss"] for h in history], label="train")
    held = [h for h in history if "heldout_loss_nats" in h]
    if held:
        ax.plot([h["step"] for h in held], [h["heldout_loss_nats"] for h in held], "o-", label="held out")
    ax.set(xlabel="step", ylabel="loss (nats/token)", title="tiny world pretraining", yscale="log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def ensure_built(cfg: RlhfConfig, run=None) -> Path:
    """The build directory of ``cfg`` with a trained model in it (built now if missing); no quality check."""
    directory = cache.build_dir(cfg.cache_dir, cfg.world, cfg.pretrain)
    if not cache.is_built(directory):
        build(cfg, directory, run)
    return directory


def run_stage(cfg: RlhfConfig, out: Optional[Path] = None) -> dict:
    """`python -m rlhf stage=pretrain`: build or reuse the tiny world, write results.json into the run dir."""
    from measure.loading import load_model
    from rlhf.quality import measure_quality

    t_start = time.time()
    out = Path(out) if out is not None else run_dir()
    if cfg.pretrain.threads:
        torch.set_num_threads(cfg.pretrain.threads)
    directory = cache.build_dir(cfg.cache_dir, cfg.world, cfg.pretrain)
    quality_path = cache.quality_file(directory, cfg.pretrain.quality)
    cache_hit = cache.is_built(directory) and quality_path.exists()
    log.info("tiny world build %s (%s)", directory, "cached" if cache_hit else "building what is missing")
    with wandb_run(cfg.wandb, str(out), name=f"pretrain-{directory.name}", config=asdict(cfg),
                   job_type="pretrain") as run:
        ensure_built(cfg, run)
        if not quality_path.exists():
            t = time.time()
            model, tokenizer = load_model(ModelConfig(path=str(directory / "model"), label="tinyworld", device="cpu"))
            truth = json.loads((directory / "world" / "ground_truth.json").read_text())
            quality = measure_quality(model, tokenizer, truth, cfg.pretrain.quality, directory)
            quality["wall_s"] = time.time() - t
            quality_path.write_text(json.dumps(quality, indent=1))
        quality = json.loads(quality_path.read_text())
        record = json.loads((directory / "train.json").read_text())
        run.summary.update({"pretrain/heldout_loss_nats": record["heldout_loss_nats"],
                            "quality/parse_rate": quality["parse_rate"], "quality/passed": quality["passed"]})
    cache.point_current(cfg.cache_dir, directory)
    if (directory / "samples").exists():
        shutil.copytree(directory / "samples", out / "samples", dirs_exist_ok=True)
    _loss_figure(record["history"], out / "pretrain_loss.png")
    results = {
        "stage": "pretrain", "build_dir": str(directory), "build_hash": directory.name, "cache_hit": cache_hit,
        "model_path": str(cache.current_link(cfg.cache_dir) / "model"),
        "train": {k: v for k, v in record.items() if k not in ("history", "config")},
        "quality": quality, "config": asdict(cfg), "wall_s": time.time() - t_start,
    }
    write_results(out, results)
    log.info("results: %s", out / "results.json")
    return results
