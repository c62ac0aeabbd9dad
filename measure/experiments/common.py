"""What every model-based experiment does first: load each model of the pair once and sample through the engine."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List

from measure.config import MeasureConfig, SamplingConfig
from measure.samplers import open_sampler
from measure.sampling import Generation

log = logging.getLogger(__name__)


def sample_each_model(cfg: MeasureConfig, out_dir: Path, prompt: str, chat: bool = False,
                      sampling: SamplingConfig | None = None,
                      need_logprobs: bool = False) -> Dict[str, List[Generation]]:
    """Completions of ``prompt`` from every model in ``cfg.labels``, one model in memory at a time.

    ``chat=True`` wraps the prompt in the chat template of models whose config says ``chat: true``
    (base models always see plain text). Generations are saved as `generations_<label>.jsonl` in
    ``out_dir`` batch by batch, under a header holding the model's fingerprint and the sampling config, so a
    killed run resumes where it stopped and a run with another model or config starts over. With
    ``sampling.reuse_from`` the file of the same name there is reused when its header matches (the engine
    decides, batch by batch; see ``measure.sampling``). A model with ``base_url`` is sampled through its server
    (``measure.endpoint``); ``need_logprobs`` stops the run in one line if that server returns no log-probabilities.
    """
    sampling = sampling or cfg.sampling
    generations = {}
    for label in cfg.labels:
        spec = getattr(cfg.model, label)
        with open_sampler(spec) as sampler:
            generations[label] = sampler.sample(prompt, sampling, chat=chat and spec.chat,
                                                progress_file=out_dir / f"generations_{label}.jsonl",
                                                desc=f"sampling {label}", need_logprobs=need_logprobs)
    return generations
