"""The sampling engine: batched ancestral sampling (Eq. 3.1) with a KV cache that records, for every
generated token, its id and text, its probability, the top-k probabilities and the entropy of the full
next-token distribution. Every experiment and the PPO diversity callback sample through here.

Probabilities are taken AFTER temperature: they are the distribution of Eq. 3.1 that the token was
actually drawn from, softmax(logits / T). At the paper's T = 1 this equals the model's own distribution.

Reproducibility: batch b draws from its own generator seeded from (seed, b), so the same seed gives the
same samples, and a run resumed from its JSONL file continues exactly where it stopped.
"""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import torch
from tqdm.auto import tqdm

from measure.config import SamplingConfig

log = logging.getLogger(__name__)
LN2 = math.log(2.0)


@dataclass
class Generation:
    """One sampled completion and what the model believed at each of its steps."""

    prompt: str  # the prompt text as given (before any chat template)
    text: str  # decoded completion, special tokens removed
    token_ids: List[int]  # generated ids, EOS included when the model stopped
    token_texts: List[str]  # each generated token decoded on its own
    token_probs: List[float]  # probability of the sampled token under Eq. 3.1 (after temperature)
    topk_ids: List[List[int]]  # per token: the k most likely next-token ids, most likely first
    topk_probs: List[List[float]]  # per token: their probabilities (NOT renormalised)
    entropy_bits: List[float]  # per token: entropy of the full next-token distribution, bits
    stopped_at_eos: bool  # True if the sequence ended with EOS before n_predict
    batch: int = 0  # index of the batch that drew it (resume bookkeeping)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, line: str) -> "Generation":
        return cls(**json.loads(line))


def _batch_generator(seed: int, batch: int, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(seed * 1_000_003 + batch)
    return g


@torch.no_grad()
def sample_batch(model, tokenizer, prompt_ids: Sequence[int], n: int, cfg: SamplingConfig,
                 generator: torch.Generator) -> dict:
    """Draw ``n`` completions of one prompt together; returns stacked CPU tensors (n, steps, ...)."""
    device = next(model.parameters()).device
    eos_ids = _eos_ids(model, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]
    input_ids = torch.tensor([list(prompt_ids)] * n, dtype=torch.long, device=device)
    finished = torch.zeros(n, dtype=torch.bool, device=device)
    eos_tensor = torch.tensor(eos_ids, device=device)
    cache, steps = None, {"ids": [], "p": [], "topk_ids": [], "topk_p": [], "ent": [], "alive": []}
    for _ in range(cfg.n_predict):
        out = model(input_ids=input_ids, cache=cache, use_cache=True, logits_to_keep=1)
        cache = out.cache
        logp = torch.log_softmax(out.logits[:, -1, :].float() / cfg.temperature, dim=-1)
        probs = logp.exp()
        token = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        token = torch.where(finished, torch.full_like(token, pad_id), token)
        topk = probs.topk(cfg.top_k, dim=-1)
        steps["ids"].append(token)
        steps["p"].append(probs.gather(1, token[:, None]).squeeze(1))
        steps["topk_ids"].append(topk.indices)
        steps["topk_p"].append(topk.values)
        steps["ent"].append(torch.special.entr(probs).sum(-1) / LN2)
        steps["alive"].append(~finished)
        finished = finished | torch.isin(token, eos_tensor)
        if bool(finished.all()):
            break
        input_ids = token[:, None]
    return {k: torch.stack(v, dim=1).cpu() for k, v in steps.items()}


def _eos_ids(model, tokenizer) -> List[int]:
    eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id
    return list(eos) if isinstance(eos, (list, tuple)) else [eos]


def _unstack(batch: dict, tokenizer, prompt: str, batch_index: int, eos_ids: List[int]) -> List[Generation]:
    gens = []
    for i in range(batch["ids"].shape[0]):
        n_tok = int(batch["alive"][i].sum())
        ids = batch["ids"][i, :n_tok].tolist()
        gens.append(Generation(
            prompt=prompt,
            text=tokenizer.decode(ids, skip_special_tokens=True),
            token_ids=ids,
            token_texts=[tokenizer.decode([t]) for t in ids],
            token_probs=batch["p"][i, :n_tok].tolist(),
            topk_ids=batch["topk_ids"][i, :n_tok].tolist(),
            topk_probs=batch["topk_p"][i, :n_tok].tolist(),
            entropy_bits=batch["ent"][i, :n_tok].tolist(),
            stopped_at_eos=bool(ids) and ids[-1] in eos_ids,
            batch=batch_index,
        ))
    return gens


def _load_finished_batches(path: Path, sizes: List[int]) -> dict:
    """Complete batches already saved in ``path``; a batch cut short by a kill is dropped and redone."""
    by_batch: dict = {}
    if not path.exists():
        return by_batch
    with open(path) as fh:
        for line in fh:
            try:
                gen = Generation.from_json(line)
            except (json.JSONDecodeError, TypeError):
                continue  # a line cut by a kill
            by_batch.setdefault(gen.batch, []).append(gen)
    return {b: g for b, g in by_batch.items() if b < len(sizes) and len(g) == sizes[b]}


def sample(model, tokenizer, prompt_ids: Sequence[int], cfg: SamplingConfig, *, prompt: str = "",
           n: Optional[int] = None, progress_file: Optional[str | os.PathLike] = None,
           desc: str = "sampling", show_progress: bool = True) -> List[Generation]:
    """Sample ``n`` (default ``cfg.n_samples``) completions of one prompt, in batches of ``cfg.batch_size``.

    ``prompt_ids`` are the prompt's token ids as the model should see them (see ``measure.prompts``).
    With ``progress_file`` every finished batch is appended to that JSONL file, and a rerun reuses the
    complete batches already there, so a killed run loses at most one batch and duplicates nothing.
    """
    n = cfg.n_samples if n is None else n
    if n <= 0:
        raise ValueError(f"n: {n} is out of range; accepted n >= 1")
    if len(prompt_ids) == 0:
        raise ValueError("prompt_ids is empty; a prompt needs at least one token (BOS)")
    device = next(model.parameters()).device
    sizes = [min(cfg.batch_size, n - start) for start in range(0, n, cfg.batch_size)]
    eos_ids = _eos_ids(model, tokenizer)
    path = Path(progress_file) if progress_file else None
    done = _load_finished_batches(path, sizes) if path else {}
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as fh:  # rewrite without any partial batch
            for b in sorted(done):
                fh.writelines(g.to_json() + "\n" for g in done[b])
        if done:
            log.info("%s: resuming, %d of %d batches already in %s", desc, len(done), len(sizes), path)
    was_training = model.training
    model.eval()
    bar = tqdm(total=n, desc=desc, unit="sample", disable=not show_progress)
    bar.update(sum(sizes[b] for b in done))
    try:
        for b, size in enumerate(sizes):
            if b in done:
                continue
            stacked = sample_batch(model, tokenizer, prompt_ids, size, cfg, _batch_generator(cfg.seed, b, device))
            done[b] = _unstack(stacked, tokenizer, prompt, b, eos_ids)
            if path:
                with open(path, "a") as fh:
                    fh.write("".join(g.to_json() + "\n" for g in done[b]))
            bar.update(size)
    finally:
        bar.close()
        model.train(was_training)
    return [g for b in range(len(sizes)) for g in done[b]]
