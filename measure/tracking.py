"""wandb for every stage: offline by default (no login), keys namespaced `namespace/metric`.

Use as a context manager so the run is finished in `finally`: one failing job of a sweep never leaves
a wandb run open that stalls the others. Config is logged with secrets (keys, tokens) removed.
"""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Iterator, Optional

from measure.config import WandbConfig
from measure.errors import is_secret_name

log = logging.getLogger(__name__)


def scrub(config):
    """A copy of ``config`` without any entry whose name is a credential's (``measure.errors.is_secret_name``:
    whole words, so `api_key` and `hf_token` go and `card_tokens` stays), at any depth, inside lists too."""
    if isinstance(config, dict):
        return {k: scrub(v) for k, v in config.items() if not is_secret_name(str(k))}
    if isinstance(config, (list, tuple)):
        return [scrub(v) for v in config]
    return config


@contextlib.contextmanager
def wandb_run(cfg: WandbConfig, run_dir: str, name: str, config: Optional[dict] = None,
              job_type: Optional[str] = None, group: Optional[str] = None) -> Iterator[object]:
    """Start a wandb run in ``run_dir`` (mode from ``cfg``) and always finish it."""
    import wandb

    os.environ.setdefault("WANDB_SILENT", "true")
    run = wandb.init(mode=cfg.mode, project=cfg.project, entity=cfg.entity, group=group or cfg.group,
                     tags=list(cfg.tags) or None, name=name, job_type=job_type, dir=run_dir,
                     config=scrub(config or {}), reinit="finish_previous")
    ok = False
    try:
        yield run
        ok = True
    finally:
        run.finish(exit_code=0 if ok else 1)
        if cfg.mode == "offline":
            log.info("wandb offline run saved under %s/wandb (upload with `wandb sync`)", run_dir)
