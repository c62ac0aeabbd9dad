"""The sampling engine: batched ancestral sampling (Eq. 3.1) with a KV cache that records, for every
generated token, its id and text, its probability, the top-k probabilities and the entropy of the full
next-token distribution. Every experiment and the PPO diversity callback sample through here.

Probabilities are taken AFTER temperature: they are the distribution of Eq. 3.1 that the token was
actually drawn from, softmax(logits / T). At the paper's T = 1 this equals the model's own distribution.

Reproducibility: batch b draws from its own generator seeded from (seed, b), so the same seed gives the
same samples, and a run resumed from its JSONL file continues exactly where it stopped.

The progress (resume) file is JSONL: its first line is a header saying what the samples were drawn with,
every later line one ``Generation``::

    {"format": "rmc-generations/1",
     "sampling": {"temperature": 1.0, "n_predict": 64, "n_samples": 100, "batch_size": 50, "top_k": 5, "seed": 0},
     "prompt": "Steve is ...", "prompt_ids": [1, 2, ...], "model_fingerprint": "<sha256 hex or null>",
     "dtype": "float32", "device": "cpu"}

(``n_samples`` is the number this call draws, ``n`` when given.) A file is resumed only when its header equals
this call's; otherwise (or when it has none: an older file) it is discarded and sampling starts over, with
one log line naming the fields that differ. ``read_generations`` reads such a file, header skipped.

What the model cannot serve stops the call in one line (``ConfigError``) before its first batch: a top-k above
the vocabulary, a prompt plus ``n_predict`` beyond the model's positions (``check_fits``). A batch that does not
fit in memory stops it in one line suggesting a smaller batch size (the finished batches stay in the progress
file, so the rerun continues), and so does a model whose probabilities are not finite.
"""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch
from tqdm.auto import tqdm

from measure.config import ConfigError, SamplingConfig

log = logging.getLogger(__name__)
LN2 = math.log(2.0)
HEADER_FORMAT = "rmc-generations/1"  # first-line marker of a progress file; bump when sampling changes


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


def request_seed(seed: int, batch: int) -> int:
    """The seed of batch ``batch`` under ``sampling.seed``: the engine's per-batch generator and an endpoint
    request's ``seed`` (kept below 2**31, which every server takes)."""
    return (seed * 1_000_003 + batch) % 2 ** 31


def batch_sizes(n: int, batch_size: int) -> List[int]:
    """Sizes of the batches (engine) or requests (endpoint) that draw ``n`` samples."""
    return [min(batch_size, n - start) for start in range(0, n, batch_size)]


def has_full_entropy(gen: Generation) -> bool:
    """Whether ``gen`` records the full next-token entropy of each of its tokens (the engine does; a served model,
    which returns top-k log-probabilities only, does not: its ``entropy_bits`` is empty)."""
    return len(gen.entropy_bits) == len(gen.token_probs)


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


def check_fits(model, prompt_ids: Sequence[int], cfg: SamplingConfig, name: str = "sampling") -> None:
    """ConfigError, in one line naming ``<name>.top_k`` or ``<name>.n_predict``, when ``cfg`` asks for more top-k
    ids than the model has tokens, or for a prompt plus new tokens longer than its positions."""
    config = getattr(model, "config", None)
    vocab = getattr(config, "vocab_size", None)
    if vocab and cfg.top_k > vocab:
        raise ConfigError(f"{name}.top_k: {cfg.top_k} is out of range for this model's vocabulary of {vocab} "
                          f"tokens; accepted 2 <= top_k <= {vocab}")
    positions = getattr(config, "max_position_embeddings", None)
    if positions and len(prompt_ids) + cfg.n_predict > positions:
        room = positions - len(prompt_ids)
        accepted = f"n_predict <= {room}" if room >= 1 else "a shorter prompt (it fills the context alone)"
        raise ConfigError(f"{name}.n_predict: {cfg.n_predict} new tokens after a {len(prompt_ids)}-token prompt run "
                          f"past the model's context of {positions} positions; accepted {accepted}")


def _is_out_of_memory(err: BaseException) -> bool:
    text = str(err).lower()
    return isinstance(err, (torch.OutOfMemoryError, MemoryError)) or any(
        s in text for s in ("out of memory", "not enough memory", "can't allocate", "cannot allocate"))


def _sampling_failure(err: BaseException, size: int, cfg: SamplingConfig, name: str, device,
                      kept: bool) -> Optional[ConfigError]:
    """The one-line ConfigError for a batch that ran out of memory or met non-finite probabilities; else None.
    ``kept``: finished batches are in a progress file (a rerun continues from them)."""
    if _is_out_of_memory(err):
        if device.type == "cuda":
            torch.cuda.empty_cache()
        what = str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__
        return ConfigError(f"{name}.batch_size: a batch of {size} sequences does not fit in memory on {device.type} "
                           f"({what}); rerun with a smaller {name}.batch_size (e.g. {max(1, size // 2)})"
                           f"{': finished batches are kept' if kept else ''}")
    if "probability tensor contains" in str(err):
        return ConfigError(f"{name}.temperature: at {cfg.temperature:g} the model's next-token probabilities are not "
                           f"finite (inf or nan); try a higher temperature or model.<label>.dtype=float32")
    return None


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


def progress_header(model, cfg: SamplingConfig, prompt_ids: Sequence[int], prompt: str, n: int,
                    model_fingerprint: Optional[str]) -> dict:
    """The first line of a progress file: everything the samples depend on (see the module docstring)."""
    param = next(model.parameters())
    return {
        "format": HEADER_FORMAT,
        "sampling": {"temperature": float(cfg.temperature), "n_predict": int(cfg.n_predict), "n_samples": int(n),
                     "batch_size": int(cfg.batch_size), "top_k": int(cfg.top_k), "seed": int(cfg.seed)},
        "prompt": prompt,
        "prompt_ids": [int(i) for i in prompt_ids],
        "model_fingerprint": model_fingerprint,
        "dtype": str(param.dtype).replace("torch.", ""),
        "device": param.device.type,
    }


def _flat(header: dict) -> Dict[str, object]:
    return {**{k: v for k, v in header.items() if k != "sampling"},
            **{f"sampling.{k}": v for k, v in header.get("sampling", {}).items()}}


def header_differences(expected: dict, found: Optional[dict]) -> List[str]:
    """Why a file with header ``found`` cannot stand for samples drawn under ``expected``: one phrase per
    differing field (``sampling.seed 0, now 1``); empty when they match."""
    if found is None:
        return ["no header (a file written before headers were recorded, or not a generations file)"]
    have, out = _flat(found), []
    for key, want in _flat(expected).items():
        if have.get(key) == want:
            continue
        if key in ("prompt", "prompt_ids"):
            out.append(f"{key} differs")
        elif key == "model_fingerprint":
            out.append(f"model_fingerprint {_short(have.get(key))}, now {_short(want)}")
        else:
            out.append(f"{key} {have.get(key)!r}, now {want!r}")
    return out


def _short(fingerprint):
    return fingerprint[:12] if isinstance(fingerprint, str) else fingerprint


def _is_header(row) -> bool:
    return isinstance(row, dict) and str(row.get("format", "")).startswith("rmc-generations/")


def read_header(path: str | os.PathLike) -> Optional[dict]:
    """The header of a progress file, or None if it has none (an older file) or does not exist."""
    try:
        with open(path) as fh:
            first = fh.readline()
    except FileNotFoundError:
        return None
    try:
        row = json.loads(first)
    except json.JSONDecodeError:
        return None
    return row if _is_header(row) else None


def read_generations(path: str | os.PathLike) -> List[Generation]:
    """Every generation in a progress file (header skipped), in file order; for reading a finished run."""
    gens = []
    with open(path) as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                if not _is_header(row):
                    gens.append(Generation(**row))
    return gens


def _load_finished_batches(path: Path, sizes: List[int]) -> dict:
    """Complete batches already saved in ``path``; a batch cut short by a kill is dropped and redone."""
    by_batch: dict = {}
    if not path.exists():
        return by_batch
    with open(path) as fh:
        for line in fh:
            try:
                row = json.loads(line)
                if _is_header(row):
                    continue
                gen = Generation(**row)
            except (json.JSONDecodeError, TypeError):
                continue  # a line cut by a kill
            by_batch.setdefault(gen.batch, []).append(gen)
    return {b: g for b, g in by_batch.items() if b < len(sizes) and len(g) == sizes[b]}


def resumable_batches(path: Path, header: dict, sizes: List[int], reuse_from: Optional[str], desc: str) -> dict:
    """Finished batches of this call found in ``path`` (when its header matches) and in the file of the same
    name in ``reuse_from`` (likewise); a file whose header differs is ignored, with one log line saying why."""
    done: dict = {}
    if path.exists() and path.stat().st_size > 0:
        why = header_differences(header, read_header(path))
        if why:
            log.info("%s: discarding %s (%s); sampling from the start", desc, path, "; ".join(why))
        else:
            done = _load_finished_batches(path, sizes)
            if done:
                log.info("%s: resuming, %d of %d batches already in %s", desc, len(done), len(sizes), path)
    source = Path(os.path.expanduser(reuse_from)) / path.name if reuse_from else None
    if source is not None and len(done) < len(sizes) and source.exists() and source.resolve() != path.resolve():
        why = header_differences(header, read_header(source))
        if why:
            log.info("%s: not reusing %s (%s)", desc, source, "; ".join(why))
        else:
            found = _load_finished_batches(source, sizes)
            log.info("%s: reusing %d of %d batches from %s (same model, sampling config and prompt)", desc,
                     len(set(found) - set(done)), len(sizes), source)
            done = {**found, **done}
    return done


def write_progress(path: Path, header: dict, done: dict) -> None:
    """Rewrite ``path`` as header + the finished batches (no partial batch), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        fh.write(json.dumps(header) + "\n")
        for b in sorted(done):
            fh.writelines(g.to_json() + "\n" for g in done[b])
    os.replace(tmp, path)


def sample(model, tokenizer, prompt_ids: Sequence[int], cfg: SamplingConfig, *, prompt: str = "",
           n: Optional[int] = None, progress_file: Optional[str | os.PathLike] = None,
           desc: str = "sampling", show_progress: bool = True,
           model_fingerprint: Optional[str] = None, name: str = "sampling") -> List[Generation]:
    """Sample ``n`` (default ``cfg.n_samples``) completions of one prompt, in batches of ``cfg.batch_size``.

    ``prompt_ids`` are the prompt's token ids as the model should see them (see ``measure.prompts``).
    With ``progress_file`` every finished batch is appended to that JSONL file, after a header recording the
    sampling config, the prompt and ``model_fingerprint`` (``measure.fingerprint.model_fingerprint``; None =
    the model is not checked). A rerun reuses the complete batches already there when the header matches, so
    a killed run loses at most one batch and duplicates nothing, and a run with another config starts over.
    With ``cfg.reuse_from``, the file of the same name in that folder is reused the same way. ``name`` is the
    config node of ``cfg`` (``sampling``, ``diversity.sampling``, ...) that one-line errors name.
    """
    n = cfg.n_samples if n is None else n
    if n <= 0:
        raise ValueError(f"n: {n} is out of range; accepted n >= 1")
    if len(prompt_ids) == 0:
        raise ValueError("prompt_ids is empty; a prompt needs at least one token (BOS)")
    check_fits(model, prompt_ids, cfg, name)
    device = next(model.parameters()).device
    sizes = batch_sizes(n, cfg.batch_size)
    eos_ids = _eos_ids(model, tokenizer)
    path = Path(progress_file) if progress_file else None
    done: dict = {}
    if path:
        header = progress_header(model, cfg, prompt_ids, prompt, n, model_fingerprint)
        done = resumable_batches(path, header, sizes, cfg.reuse_from, desc)
        write_progress(path, header, done)
    was_training = model.training
    model.eval()
    bar = tqdm(total=n, desc=desc, unit="sample", disable=not show_progress)
    bar.update(sum(sizes[b] for b in done))
    try:
        for b, size in enumerate(sizes):
            if b in done:
                continue
            try:
                stacked = sample_batch(model, tokenizer, prompt_ids, size, cfg, _batch_generator(cfg.seed, b, device))
            except (RuntimeError, MemoryError) as err:  # torch.OutOfMemoryError is a RuntimeError
                failure = _sampling_failure(err, size, cfg, name, device, kept=path is not None)
                if failure is None:
                    raise
                raise failure from None
            done[b] = _unstack(stacked, tokenizer, prompt, b, eos_ids)
            if path:
                with open(path, "a") as fh:
                    fh.write("".join(g.to_json() + "\n" for g in done[b]))
            bar.update(size)
    finally:
        bar.close()
        model.train(was_training)
    return [g for b in range(len(sizes)) for g in done[b]]
