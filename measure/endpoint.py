"""The sampling engine's second backend: a model served behind an OpenAI-compatible API (vLLM, SGLang, llama.cpp,
TGI, `transformers serve`, OpenAI itself), reached with the ``openai`` client.

A model config names a server instead of weights (``model.<label>.base_url``, ``model_name``; the API key is read
from the environment variable named by ``auth_env`` and never written anywhere). Plain prompts go to
``/v1/completions``, chat prompts to ``/v1/chat/completions`` (the server applies its own chat template). Each
request asks for ``sampling.batch_size`` samples (``n``), at ``temperature`` with ``top_p = 1`` (pure ancestral
sampling, Eq. 3.1), ``max_tokens = n_predict``, ``seed`` derived from (``sampling.seed``, request index) as the
engine derives its per-batch generators (honoured by vLLM and SGLang, best effort at OpenAI), and
``logprobs = top_k`` (chat: ``top_logprobs``).

What a ``Generation`` from a server holds: its text; the sampled tokens' texts and probabilities and the top-k
probabilities, where the server returns log-probabilities (vLLM: after temperature when served with
``--logprobs-mode processed_logprobs``, as ``make serve`` does; raw model probabilities otherwise, which is the
same at T = 1); token ids and top-k ids where the server returns them (vLLM: ``return_token_ids`` and
``return_tokens_as_token_ids``, asked for automatically when the server says it is vLLM, each token's text then from
its ``/detokenize``), else empty; ``entropy_bits`` EMPTY: no server
returns the full next-token distribution, so full-vocabulary entropy is unavailable (``has_full_entropy``), never
estimated. ``stopped_at_eos``: the server's ``finish_reason`` is ``stop``. The completions API returns the top
log-probabilities as a dict keyed by token text, so on a server other than vLLM two top tokens with the same text
(byte fragments that decode to "" or U+FFFD) collapse into one entry; the missing entries are recorded as p = 0.

Requests run concurrently (``model.<label>.concurrency``); the client retries 408/409/429/5xx and dropped
connections with exponential backoff (``max_retries``) and gives up after ``timeout_s`` per request. Every
finished request is appended to the same resumable JSONL file as the in-process engine writes (``measure.sampling``:
header first, one batch per request), so a killed run resumes with nothing lost or duplicated and a file drawn
under another model, prompt or sampling config is discarded. The header's ``model_fingerprint`` hashes the
server's description of its model (id, root, max_model_len) and, when that root is a folder on this machine (a local
vLLM server), the folder's content (``measure.fingerprint``); not the URL: the same model restarted on another port
resumes, and a path that now holds another build does not.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import List, Optional, Sequence

from tqdm.auto import tqdm

from measure.config import ConfigError, ModelConfig, SamplingConfig
from measure.fingerprint import path_fingerprint
from measure.sampling import (HEADER_FORMAT, Generation, request_seed, resumable_batches, batch_sizes,
                              write_progress)

log = logging.getLogger(__name__)
TOKEN_ID = re.compile(r"^token_id:(\d+)$")  # vLLM's --return-tokens-as-token-ids form of a token
# asked of a vLLM server: the sampled ids, and tokens as token_id:N, so that top-k entries are keyed by id (the
# completions API keys them by text, and byte tokens that decode alike, "" or "\ufffd", would collapse into one)
VLLM_EXTRAS = {"return_token_ids": True, "return_tokens_as_token_ids": True}
NO_KEY = "EMPTY"  # what a local server without --api-key accepts; never the environment's OPENAI_API_KEY


def api_key(spec: ModelConfig) -> str:
    """The key from the environment variable ``spec.auth_env`` names; a missing variable is one ConfigError."""
    if not spec.auth_env:
        return NO_KEY
    value = os.environ.get(spec.auth_env)
    if not value:
        raise ConfigError(f"model.{spec.label}.auth_env: environment variable {spec.auth_env} is not set; export "
                          f"the API key as {spec.auth_env} (it is never read from config)")
    return value


def _reason(err: BaseException) -> str:
    inner = err.__cause__ or err.__context__
    text = str(inner or err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:160]


class EndpointModel:
    """One served model: its client, the model id the server knows it by, and its fingerprint.

    Construction asks the server for its models (``GET /models``) once, without retries, within ``timeout_s``: an
    unreachable server, a refused key or an unknown ``model_name`` stop the run here in one line naming the URL."""

    def __init__(self, spec: ModelConfig):
        import openai

        for name in ("httpx", "httpx2"):  # the client logs one line per request otherwise
            logging.getLogger(name).setLevel(logging.WARNING)
        self.spec, self.url = spec, spec.base_url.rstrip("/")
        self.root = self.url[: -len("/v1")] if self.url.endswith("/v1") else self.url  # vLLM's own routes live here
        self._texts: dict = {}  # token id -> its text (``token_texts``)
        self.client = openai.OpenAI(base_url=self.url, api_key=api_key(spec), timeout=spec.timeout_s,
                                    max_retries=spec.max_retries)
        node = f"model.{spec.label}"
        try:
            listed = self.client.with_options(max_retries=0).models.list().data
        except openai.AuthenticationError as err:
            raise ConfigError(f"{node}.auth_env: the server at {self.url} refused the API key "
                              f"({'from ' + spec.auth_env if spec.auth_env else 'none set'}): {_reason(err)}") from None
        except (openai.APIConnectionError, openai.APITimeoutError) as err:
            raise ConfigError(f"{node}.base_url: no OpenAI-compatible server answered at {self.url} within "
                              f"{spec.timeout_s:g} s ({_reason(err)}); start one (make serve MODEL=<dir> PORT=<port>) "
                              f"or fix the URL") from None
        except openai.APIError as err:
            raise ConfigError(f"{node}.base_url: {self.url}/models failed: {_reason(err)}") from None
        ids = [m.id for m in listed]
        if spec.model_name:
            if ids and spec.model_name not in ids:
                raise ConfigError(f"{node}.model_name: {spec.model_name!r} is not served at {self.url}; accepted "
                                  f"one of {ids}")
            self.name = spec.model_name
        elif len(ids) == 1:
            self.name = ids[0]
        else:
            raise ConfigError(f"{node}.model_name: not set and {self.url} serves {len(ids)} models; accepted one of "
                              f"{ids}")
        entry = next((m for m in listed if m.id == self.name), None)
        info = entry.model_dump() if entry is not None else {"id": self.name}
        self.is_vllm = info.get("owned_by") == "vllm"
        described = {k: info.get(k) for k in ("id", "root", "max_model_len", "owned_by")}
        root = info.get("root")
        if isinstance(root, str) and os.path.isdir(os.path.expanduser(root)):  # served from a folder here: its content
            described["content"] = path_fingerprint(root)  # (a path such as tinyworld/current can change builds)
        self.fingerprint = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()
        log.info("%s: served model %r at %s%s", spec.label, self.name, self.url, " (vLLM)" if self.is_vllm else "")

    def header(self, cfg: SamplingConfig, prompt: str, chat: bool, n: int) -> dict:
        """The progress file's first line (measure.sampling's fields; the request shape instead of token ids)."""
        return {"format": HEADER_FORMAT,
                "sampling": {"temperature": float(cfg.temperature), "n_predict": int(cfg.n_predict),
                             "n_samples": int(n), "batch_size": int(cfg.batch_size), "top_k": int(cfg.top_k),
                             "seed": int(cfg.seed)},
                "prompt": prompt, "prompt_ids": None, "api": "chat" if chat else "completions",
                "model_fingerprint": self.fingerprint, "model_name": self.name,
                "extra_body": self.spec.extra_body, "dtype": None, "device": "endpoint"}

    def request(self, prompt: str, cfg: SamplingConfig, chat: bool, size: int, batch: int) -> List[Generation]:
        """``size`` samples of batch ``batch``: one request with ``n = size``, and more (seeded apart) for a server
        that answers fewer choices than asked (``transformers serve`` ignores ``n``)."""
        gens: List[Generation] = []
        while len(gens) < size:
            more = self._request_once(prompt, cfg, chat, size - len(gens), batch, attempt=len(gens))
            if not more:
                raise ConfigError(f"model.{self.spec.label}: {self.url} answered no choices")
            if len(more) < size - len(gens) and not gens:
                log.warning("%s: %s answered %d of %d samples asked for (it ignores `n`); asking again for the rest",
                            self.spec.label, self.url, len(more), size)
            gens += more
        return gens[:size]

    def _request_once(self, prompt: str, cfg: SamplingConfig, chat: bool, size: int, batch: int,
                      attempt: int) -> List[Generation]:
        import openai

        extra = {**(VLLM_EXTRAS if self.is_vllm else {}), **self.spec.extra_body}
        seed = request_seed(cfg.seed, batch) if attempt == 0 else request_seed(cfg.seed * 7919 + batch, attempt)
        common = dict(model=self.name, n=size, temperature=cfg.temperature, top_p=1.0, max_tokens=cfg.n_predict,
                      seed=seed, extra_body=extra or None)
        try:
            if chat:
                out = self.client.chat.completions.create(messages=[{"role": "user", "content": prompt}],
                                                          logprobs=True, top_logprobs=cfg.top_k, **common)
            else:
                out = self.client.completions.create(prompt=prompt, logprobs=cfg.top_k, **common)
        except (openai.APIConnectionError, openai.APITimeoutError) as err:
            raise ConfigError(f"model.{self.spec.label}.base_url: {self.url} stopped answering ({_reason(err)}) "
                              f"after {self.spec.max_retries} retries; finished requests are kept, rerun to "
                              f"continue") from None
        except openai.APIStatusError as err:
            raise ConfigError(f"model.{self.spec.label}: {self.url} refused a request ({err.status_code}: "
                              f"{_server_message(err)})") from None
        gens = [_generation(c, prompt, cfg.top_k, batch, chat) for c in sorted(out.choices, key=lambda c: c.index)]
        for g in gens:  # vLLM's tokens come as token_id:N (distinct top-k keys); their texts from /detokenize
            if g.token_ids and all(TOKEN_ID.match(t) for t in g.token_texts):
                g.token_texts = self.token_texts(g.token_ids)
        return gens

    def token_texts(self, ids: Sequence[int]) -> List[str]:
        """Each token's text, as the server decodes it alone (vLLM ``/detokenize``, once per distinct id); a server
        without that route leaves ``token_id:N``."""
        import openai

        for i in set(ids) - set(self._texts):
            try:
                reply = self.client.post(f"{self.root}/detokenize", body={"model": self.name, "tokens": [int(i)]},
                                         cast_to=object)
                self._texts[i] = reply.get("prompt", f"token_id:{i}") if isinstance(reply, dict) else f"token_id:{i}"
            except openai.APIError:
                self._texts[i] = f"token_id:{i}"
        return [self._texts[i] for i in ids]

    def close(self) -> None:
        self.client.close()


def _server_message(err) -> str:
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            return str(message).strip().splitlines()[0][:200]
    return _reason(err)


def _token_id(token: str) -> Optional[int]:
    match = TOKEN_ID.match(token or "")
    return int(match.group(1)) if match else None


def _top(entries: Sequence[tuple], k: int) -> tuple:
    """(ids, probabilities) of the k most likely (token, logprob) entries, most likely first, padded with p = 0."""
    best = sorted(entries, key=lambda e: -e[1])[:k]
    probs = [math.exp(lp) for _, lp in best] + [0.0] * (k - len(best))
    ids = [_token_id(t) for t, _ in best]
    return (ids if all(i is not None for i in ids) and len(ids) == k else []), probs


def _generation(choice, prompt: str, k: int, batch: int, chat: bool) -> Generation:
    """A Generation from one choice of a completions or chat completions answer (see the module docstring)."""
    extra = choice.model_extra or {}
    if chat:
        text = choice.message.content or ""
        content = (choice.logprobs.content or []) if choice.logprobs else []
        tokens = [c.token for c in content]
        logprobs = [c.logprob for c in content]
        tops = [[(t.token, t.logprob) for t in (c.top_logprobs or [])] for c in content]
    else:
        text = choice.text or ""
        lp = choice.logprobs
        tokens = list(lp.tokens or []) if lp else []
        logprobs = list(lp.token_logprobs or []) if lp else []
        tops = [list((d or {}).items()) for d in (lp.top_logprobs or [])] if lp else []
    ranked = [_top(entries, k) for entries in tops] if tops and any(tops) else []
    ids = extra.get("token_ids") or [_token_id(t) for t in tokens]
    ids = [int(i) for i in ids] if ids and all(i is not None for i in ids) else []
    return Generation(
        prompt=prompt, text=text, token_ids=ids, token_texts=tokens,
        token_probs=[math.exp(lp) if lp is not None else float("nan") for lp in logprobs],
        topk_ids=[r[0] for r in ranked] if ranked and all(r[0] for r in ranked) else [],
        topk_probs=[r[1] for r in ranked], entropy_bits=[],
        stopped_at_eos=choice.finish_reason == "stop", batch=batch)


def has_logprobs(generations: Sequence[Generation]) -> bool:
    """Whether the generations carry top-k probabilities (a server that returns none gives empty lists)."""
    return any(g.topk_probs for g in generations) or not any(g.text for g in generations)


def sample_endpoint(served: EndpointModel, prompt: str, cfg: SamplingConfig, *, chat: bool = False,
                    n: Optional[int] = None, progress_file: Optional[str | os.PathLike] = None,
                    desc: str = "sampling", show_progress: bool = True, name: str = "sampling",
                    need_logprobs: bool = False) -> List[Generation]:
    """``n`` (default ``cfg.n_samples``) completions of ``prompt`` from ``served``, ``cfg.batch_size`` per request,
    up to ``concurrency`` requests at once; resumable exactly as ``measure.sampling.sample``.

    ``need_logprobs``: stop in one line after the first answer if the server returned no log-probabilities."""
    n = cfg.n_samples if n is None else n
    if n <= 0:
        raise ValueError(f"n: {n} is out of range; accepted n >= 1")
    sizes = batch_sizes(n, cfg.batch_size)
    path = Path(progress_file) if progress_file else None
    header = served.header(cfg, prompt, chat, n)
    done = resumable_batches(path, header, sizes, cfg.reuse_from, desc) if path else {}
    if path:
        write_progress(path, header, done)
    todo = [b for b in range(len(sizes)) if b not in done]
    bar = tqdm(total=n, desc=desc, unit="sample", disable=not show_progress)
    bar.update(sum(sizes[b] for b in done))
    pool, futures = ThreadPoolExecutor(max_workers=min(served.spec.concurrency, max(1, len(todo)))), {}
    try:
        futures = {pool.submit(served.request, prompt, cfg, chat, sizes[b], b): b for b in todo}
        for future in as_completed(futures):
            b = futures[future]
            gens = future.result()
            if need_logprobs and not has_logprobs(gens):
                raise ConfigError(f"model.{served.spec.label}: the server at {served.url} returned no "
                                  f"log-probabilities (logprobs/top_logprobs); this experiment needs them: serve the "
                                  f"model with vLLM or SGLang (`make serve`), which return them")
            done[b] = gens
            if path:
                with open(path, "a") as fh:
                    fh.write("".join(g.to_json() + "\n" for g in gens))
            bar.update(sizes[b])
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    return [g for b in range(len(sizes)) for g in done[b]]
