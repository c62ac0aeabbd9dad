"""Where the tiny world is built: ``<cache_dir>/tinyworld/<hash>/``, keyed by a hash of its config.

A build directory holds ``world/`` (corpus, held-out set, ground_truth.json), ``tokenizer/``,
``checkpoints/``, ``model/`` (save_pretrained, safetensors), ``train.json`` and ``quality_<hash>.json``.
``<cache_dir>/tinyworld/current`` is a symlink to the latest build, so configs can name a fixed path
(``conf/model/tinyworld.yaml``). Settings that do not change the model (logging, threads, the quality
sample) are left out of the key; the quality block is cached under its own hash.

``build_lock`` is the one lock of every cache build in the rlhf app (tiny world, preference sets, reward
models): a second build of the same thing waits for the first, then reuses what it built.
"""
from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from measure.tiny import config_hash
from rlhf.config import PretrainConfig, QualityConfig, WorldConfig

log = logging.getLogger(__name__)
TINYWORLD = "tinyworld"
CURRENT = "current"
# PretrainConfig fields that do not change the built model.
NOT_HASHED = ("eval_every", "eval_docs", "checkpoint_every", "log_every", "threads", "processes", "quality")


def build_params(world: WorldConfig, pretrain: PretrainConfig) -> dict:
    """The settings a build depends on (the cache key's input)."""
    train = {k: v for k, v in asdict(pretrain).items() if k not in NOT_HASHED}
    return {"world": asdict(world), "pretrain": train}


def build_hash(world: WorldConfig, pretrain: PretrainConfig) -> str:
    return config_hash(build_params(world, pretrain))


def build_dir(cache_dir: str | os.PathLike, world: WorldConfig, pretrain: PretrainConfig) -> Path:
    return Path(os.path.expanduser(cache_dir)) / TINYWORLD / build_hash(world, pretrain)


def current_link(cache_dir: str | os.PathLike) -> Path:
    return Path(os.path.expanduser(cache_dir)) / TINYWORLD / CURRENT


def quality_file(directory: Path, quality: QualityConfig) -> Path:
    return directory / f"quality_{config_hash(asdict(quality))}.json"


def is_built(directory: Path) -> bool:
    """True when the model and its training record are complete (both are written last, atomically)."""
    return (directory / "model" / "config.json").exists() and (directory / "train.json").exists()


def point_current(cache_dir: str | os.PathLike, directory: Path) -> Path:
    """Point ``<cache_dir>/tinyworld/current`` at ``directory`` (relative symlink, swapped atomically)."""
    link = current_link(cache_dir)
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{CURRENT}.{os.getpid()}")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(directory.name, tmp)
    os.replace(tmp, link)
    return link


@contextlib.contextmanager
def build_lock(directory: Path) -> Iterator[None]:
    """Hold ``<directory>.lock`` (an OS file lock, released if the process dies) while ``directory`` is built.

    The caller checks for a finished build after taking the lock, so the second of two concurrent builds
    finds the first one's result. The lock file stays behind: removing it could race a process waiting on it.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(f"{directory}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("waiting for another process building %s", directory)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
