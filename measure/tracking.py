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

log = logging.getLogger(__name__)
SECRET_WORDS = ("key", "token", "secret", "password")


def scrub(config: dict) -> dict:
    """A copy of ``config`` without any entry whose name looks like a credential."""
    out = {}
    for k, v in config.items():
        if any(w in str(k).lower() for w in SECRET_WORDS):
            continue
        out[k] = scrub(v) if isinstance(v, dict) else v
    return out


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
