"""One way for an experiment to sample from a model, whichever backend holds it: weights loaded in this process
(``measure.sampling``) or a served model behind an OpenAI-compatible API (``measure.endpoint``), chosen by
whether ``model.<label>.base_url`` is set. Both write the same resumable JSONL file and return ``Generation``s::

    with open_sampler(spec) as sampler:
        gens = sampler.sample(prompt, cfg.sampling, chat=spec.chat, progress_file=..., desc=...)
"""
from __future__ import annotations

import contextlib
import gc
import os
from typing import Iterator, List, Optional

from measure.config import ModelConfig, SamplingConfig
from measure.sampling import Generation

FULL_ENTROPY_UNAVAILABLE = ("unavailable: a served model returns its top-k log-probabilities only, and the entropy "
                            "of the full next-token distribution needs every token's probability")


class LocalSampler:
    """The in-process engine: the model and tokenizer are loaded once (``measure.loading.load_model``)."""

    served = False

    def __init__(self, spec: ModelConfig):
        from measure.fingerprint import model_fingerprint
        from measure.loading import load_model

        self.spec = spec
        self.model, self.tokenizer = load_model(spec)
        self.fingerprint = model_fingerprint(spec)

    def sample(self, prompt: str, cfg: SamplingConfig, *, chat: bool = False, n: Optional[int] = None,
               progress_file: Optional[str | os.PathLike] = None, desc: str = "sampling", name: str = "sampling",
               need_logprobs: bool = False) -> List[Generation]:
        from measure.prompts import encode_prompt
        from measure.sampling import sample

        ids = encode_prompt(self.tokenizer, prompt, chat=chat)
        return sample(self.model, self.tokenizer, ids, cfg, prompt=prompt, n=n, progress_file=progress_file,
                      desc=desc, model_fingerprint=self.fingerprint, name=name)

    def close(self) -> None:
        del self.model
        gc.collect()


class EndpointSampler:
    """A served model (``measure.endpoint``): nothing is loaded here; the server must be running."""

    served = True

    def __init__(self, spec: ModelConfig):
        from measure.endpoint import EndpointModel

        self.spec = spec
        self.endpoint = EndpointModel(spec)
        self.fingerprint = self.endpoint.fingerprint

    def sample(self, prompt: str, cfg: SamplingConfig, *, chat: bool = False, n: Optional[int] = None,
               progress_file: Optional[str | os.PathLike] = None, desc: str = "sampling", name: str = "sampling",
               need_logprobs: bool = False) -> List[Generation]:
        from measure.endpoint import sample_endpoint

        return sample_endpoint(self.endpoint, prompt, cfg, chat=chat, n=n, progress_file=progress_file, desc=desc,
                               name=name, need_logprobs=need_logprobs)

    def close(self) -> None:
        self.endpoint.close()


@contextlib.contextmanager
def open_sampler(spec: ModelConfig) -> Iterator[LocalSampler | EndpointSampler]:
    """The sampler of one model config, closed (weights freed) on exit."""
    sampler = EndpointSampler(spec) if spec.base_url else LocalSampler(spec)
    try:
        yield sampler
    finally:
        sampler.close()


def model_source(spec: ModelConfig) -> dict:
    """What results.json records of where a model's samples came from (no key, no key variable's value)."""
    if spec.base_url:
        return {"base_url": spec.base_url, "model_name": spec.model_name, "backend": "endpoint"}
    return {"path": spec.path, "adapter": spec.adapter, "backend": "transformers"}
