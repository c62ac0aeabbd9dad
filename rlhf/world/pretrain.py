"""Stage `pretrain`: build the tiny world, train its tokenizer and a tiny Llama from scratch, score it.

Each step is skipped when its output is already in the build directory (``rlhf.world.cache``), so a second call
with the same config only re-reads the cached results, and a killed build resumes from its last checkpoint
(data order and learning rate are functions of the step, so the resumed run sees the same batches). A build
holds ``<build dir>.lock``: a second build of the same config started meanwhile waits, then reuses it.
The model is saved with ``save_pretrained`` (safetensors) and loads with ``AutoModelForCausalLM``.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import tempfile
import time
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import List, Optional, Sequence

import torch
from tqdm.auto import tqdm

from measure.config import ModelConfig
from measure.results import flatten, run_dir, write_results
from measure.tiny import tiny_llama_config, train_bpe_tokenizer
from measure.tracking import wandb_run
from rlhf.world import cache
from rlhf.config import PretrainConfig, RlhfConfig
from rlhf.proc import die_with_parent
from rlhf.world.pretrain_data import BatchSchedule, collate, encode_documents, forward_loss, heldout_loss_nats
from rlhf.world.corpus import document_plain_text, read_documents, write_world

log = logging.getLogger(__name__)
TOKENIZER_DOCS = 6000  # documents the BPE is trained on (more adds time, not merges worth having)
LEXICON_REPEATS = 10  # times the name lexicon is shown to the BPE trainer
PROCESS_TIMEOUT_S = 600  # a data-parallel peer silent this long ends the build with an error


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

    ``lexicon`` (the world's names) is added LEXICON_REPEATS times so that common name pieces get merges; at
    the default vocabulary most names still take two or three tokens.
    """
    texts = [document_plain_text(d) for d in docs[:TOKENIZER_DOCS]]
    texts += [" ".join(lexicon)] * (LEXICON_REPEATS if lexicon else 0)
    return train_bpe_tokenizer(texts, vocab_size=vocab_size)


def lr_at(step: int, cfg: PretrainConfig) -> float:
    """Linear warm-up, then cosine decay to ``lr * min_lr_ratio`` at ``steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


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
    log.info("step %d/%d loss %.4f lr %.2e %.0f tok/s%s", point["step"], cfg.steps, point["loss"], point["lr"],
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


def _backward_and_sync(model, batch: dict, group) -> tuple:
    """Backward of the token-summed loss, gradients summed over processes and divided by the global token
    count: the same update as one process on the whole batch. Returns (mean loss, global token count)."""
    n_local = int((batch["labels"][:, 1:] != -100).sum())
    loss_sum = forward_loss(model, batch) * n_local if n_local else None
    if loss_sum is not None:
        loss_sum.backward()
    params = [p for p in model.parameters() if p.requires_grad]
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
                     + [torch.tensor([float(n_local), float(loss_sum.detach()) if n_local else 0.0])])
    if group is not None:
        import torch.distributed as dist

        dist.all_reduce(flat, group=group)
    n_total, loss_total = float(flat[-2]), float(flat[-1])
    flat = flat[:-2] / max(n_total, 1.0)
    offset = 0
    for p in params:
        p.grad = flat[offset:offset + p.numel()].view_as(p).clone()
        offset += p.numel()
    return loss_total / max(n_total, 1.0), n_total


def _train_loop(directory: Path, cfg: PretrainConfig, tokenizer, train_docs: List[List[int]],
                heldout_docs: List[List[int]], run=None, rank: int = 0, world: int = 1, group=None) -> dict:
    """The training loop of one process; rank 0 logs, evaluates, checkpoints and saves, every rank trains on
    its share of each batch's rows."""
    ckpt = directory / "checkpoints" / "last.pt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    model, opt, start, history, train_s = _init_or_resume(ckpt, cfg, tokenizer)
    schedule = BatchSchedule([len(d) for d in train_docs], cfg.block_size, cfg.batch_size, cfg.seed)
    pad_id, lead = tokenizer.pad_token_id, rank == 0
    if lead:
        log.info("pretraining a %.2fM-parameter Llama for %d steps (%d rows of %d tokens/step, %d documents, "
                 "%.2f epochs, %d process%s)", sum(p.numel() for p in model.parameters()) / 1e6, cfg.steps,
                 cfg.batch_size, cfg.block_size, len(train_docs), cfg.steps / schedule.per_epoch, world,
                 "es" if world > 1 else "")
    model.train()
    bar = tqdm(total=cfg.steps, initial=start, desc="pretrain", unit="step", disable=not lead)
    window_t, window_steps, window_tokens, loss_sum = time.time(), 0, 0, 0.0
    tokens = sum(len(train_docs[i]) for s in range(start) for row in schedule.batch(s) for i in row)
    for step in range(start, cfg.steps):
        t0 = time.time()
        for group_ in opt.param_groups:
            group_["lr"] = lr_at(step, cfg)
        rows = schedule.batch(step)
        batch = collate([[train_docs[i] for i in row] for row in rows[rank::world]], pad_id, cfg.block_size)
        loss, _ = _backward_and_sync(model, batch, group)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        train_s += time.time() - t0
        n_tokens = sum(len(train_docs[i]) for row in rows for i in row)
        tokens, window_tokens = tokens + n_tokens, window_tokens + n_tokens
        loss_sum, window_steps, done = loss_sum + loss, window_steps + 1, step + 1
        bar.update(1)
        if lead and (done % cfg.log_every == 0 or done == cfg.steps):
            point = {"step": done, "loss": loss_sum / window_steps, "lr": lr_at(step, cfg),
                     "tokens_per_s": window_tokens / (time.time() - window_t), "tokens": tokens}
            if done % cfg.eval_every == 0 and done < cfg.steps:
                point["heldout_loss_nats"] = heldout_loss_nats(model, heldout_docs[:cfg.eval_docs], pad_id,
                                                               cfg.block_size, cfg.batch_size)
            history.append(point)
            _log_point(point, cfg, run, bar)
            window_t, window_steps, window_tokens, loss_sum = time.time(), 0, 0, 0.0
        if lead and done % cfg.checkpoint_every == 0 and done < cfg.steps:
            _save_checkpoint(ckpt, model, opt, done, history, train_s)
    bar.close()
    if not lead:
        return {}
    final_heldout = heldout_loss_nats(model, heldout_docs, pad_id, cfg.block_size, cfg.batch_size)
    log.info("held-out loss %.4f nats/token over %d documents", final_heldout, len(heldout_docs))
    if run is not None:
        run.log({"pretrain/heldout_loss_nats": final_heldout}, step=cfg.steps)
    _save_model(model, tokenizer, directory / "model")
    return {"n_params": sum(p.numel() for p in model.parameters()), "steps": cfg.steps, "tokens": tokens,
            "epochs": cfg.steps / schedule.per_epoch, "processes": world, "train_s": train_s,
            "tokens_per_s": tokens / train_s if train_s else None, "heldout_loss_nats": final_heldout,
            "heldout_tokens": sum(len(d) for d in heldout_docs),
            "final_train_loss": history[-1]["loss"] if history else None, "history": history}


def _worker(rank: int, world: int, init_file: str, directory: Path, cfg: PretrainConfig, tokenizer_dir: str,
            train_docs, heldout_docs) -> None:
    """A data-parallel training process other than rank 0 (spawned; one CPU thread; dies with rank 0). Ctrl-C is
    rank 0's to report (one line): this process ignores it and is stopped by rank 0 or dies with it."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import torch.distributed as dist
    from transformers import AutoTokenizer

    torch.set_num_threads(max(1, cfg.threads))
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=PROCESS_TIMEOUT_S))
    try:
        _train_loop(directory, cfg, AutoTokenizer.from_pretrained(tokenizer_dir), train_docs, heldout_docs,
                    rank=rank, world=world, group=dist.group.WORLD)
    finally:
        dist.destroy_process_group()


def train_model(directory: Path, cfg: PretrainConfig, tokenizer, train_docs: List[List[int]],
                heldout_docs: List[List[int]], run=None) -> dict:
    """Train (or resume) the tiny Llama; saves ``model/`` atomically and returns the training record.

    With ``cfg.processes`` > 1 the batch's rows are split over that many processes (gloo, one thread each) whose
    gradients are summed every step, so the update is the one-process update; this process is rank 0.
    """
    if cfg.processes == 1:
        return _train_loop(directory, cfg, tokenizer, train_docs, heldout_docs, run)
    import torch.distributed as dist
    import torch.multiprocessing as mp

    tokenizer_dir = directory / "checkpoints" / "tokenizer"
    tokenizer.save_pretrained(tokenizer_dir)
    init_file = directory / "checkpoints" / f"dist-{os.getpid()}"
    init_file.unlink(missing_ok=True)
    ctx = mp.get_context("spawn")
    workers = [ctx.Process(target=_worker, args=(rank, cfg.processes, str(init_file), directory, cfg,
                                                 str(tokenizer_dir), train_docs, heldout_docs), daemon=True)
               for rank in range(1, cfg.processes)]
    for w in workers:
        w.start()
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=0, world_size=cfg.processes,
                            timeout=timedelta(seconds=PROCESS_TIMEOUT_S))
    finished = False
    try:
        record = _train_loop(directory, cfg, tokenizer, train_docs, heldout_docs, run, 0, cfg.processes,
                             dist.group.WORLD)
        finished = True
    finally:
        dist.destroy_process_group()
        for w in workers:
            w.join(timeout=PROCESS_TIMEOUT_S if finished else 5)  # a failed rank 0 leaves peers blocked
            if w.is_alive():
                w.terminate()
        init_file.unlink(missing_ok=True)
    failed = [w.exitcode for w in workers if w.exitcode != 0]
    if failed:
        raise RuntimeError(f"pretraining worker exited with {failed}")
    return record


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
    train_docs = encode_documents(corpus, tokenizer, cfg.pretrain.block_size)
    heldout_docs = encode_documents(heldout, tokenizer, cfg.pretrain.block_size)
    timings["tokenizer_s"] = time.time() - t
    corpus_tokens = sum(len(d) for d in train_docs)
    log.info("tokenizer: %d tokens; corpus %d tokens in %d documents, held out %d documents", len(tokenizer),
             corpus_tokens, len(train_docs), len(heldout_docs))
    t = time.time()
    record = train_model(directory, cfg.pretrain, tokenizer, train_docs, heldout_docs, run)
    timings["train_wall_s"] = time.time() - t
    record.update(timings, vocab_size=len(tokenizer), corpus_tokens=corpus_tokens,
                  config=cache.build_params(cfg.world, cfg.pretrain))
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
    """The build directory of ``cfg`` with a trained model in it (built now if missing); no quality check.
    The caller holds ``cache.build_lock`` of the directory."""
    directory = cache.build_dir(cfg.cache_dir, cfg.world, cfg.pretrain)
    if not cache.is_built(directory):
        build(cfg, directory, run)
    return directory


def run_stage(cfg: RlhfConfig, out: Optional[Path] = None) -> dict:
    """`python -m rlhf stage=pretrain`: build or reuse the tiny world, write results.json into the run dir."""
    from measure.loading import load_model
    from rlhf.world.quality import measure_quality

    t_start = time.time()
    out = Path(out) if out is not None else run_dir()
    if cfg.pretrain.threads:
        torch.set_num_threads(cfg.pretrain.threads)
    directory = cache.build_dir(cfg.cache_dir, cfg.world, cfg.pretrain)
    quality_path = cache.quality_file(directory, cfg.pretrain.quality)
    with wandb_run(cfg.wandb, str(out), name=f"pretrain-{directory.name}", config=asdict(cfg),
                   job_type="pretrain") as run, cache.build_lock(directory):
        cache_hit = cache.is_built(directory) and quality_path.exists()
        log.info("tiny world build %s (%s)", directory, "cached" if cache_hit else "building what is missing")
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
                            **{f"quality/{k}": v for k, v in flatten(quality).items()
                               if isinstance(v, (int, float, bool))}})
    cache.point_current(cfg.cache_dir, directory)
    if (directory / "samples").exists():
        shutil.copytree(directory / "samples", out / "samples", dirs_exist_ok=True)
    _loss_figure(record["history"], out / "pretrain_loss.png")
    results = {
        "stage": "pretrain", "build_dir": str(directory), "build_hash": directory.name, "cache_hit": cache_hit,
        "model_path": str(directory / "model"),  # this build by its hash (tinyworld/current moves with the next build)
        "train": {k: v for k, v in record.items() if k not in ("history", "config")},
        "quality": quality, "config": asdict(cfg), "wall_s": time.time() - t_start,
    }
    write_results(out, results)
    log.info("results: %s", out / "results.json")
    return results
