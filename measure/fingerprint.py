"""Fingerprints of what a result was made from: a model's weights, an adapter, a data file.

A result is reused only when the fingerprints of its inputs match, never because a path or a name does: a
path such as ``tinyworld/current`` can point at a new build tomorrow, and the same build copied elsewhere is
still the same build. So a fingerprint hashes content, not location:

- a local file: the sha256 of its bytes;
- a local directory: the sha256 of the sorted (relative path, file fingerprint) pairs of every file in it,
  skipping hidden entries (``.lock``, ``.cache/``, ``.git/``) and sub-folders named ``checkpoint*`` (a
  trainer's intermediate saves, which do not change what the directory holds as a model);
- a file over ``LARGE_FILE_BYTES`` (256 MB) is represented by its (size, mtime_ns), not its bytes: hashing a
  7B model's shards would take minutes at every start. Such a file is then "the same" only if it was not
  rewritten; a copy (new mtime) counts as different, which costs a recomputation, never a stale reuse;
- anything that is not a local path (a hub id such as ``meta-llama/Llama-2-7b-hf``): the string itself.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import List, Tuple

from measure.config import ModelConfig

LARGE_FILE_BYTES = 256 * 1024 ** 2  # above this, (size, mtime_ns) stands for the content
_CHUNK = 1024 ** 2


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _file_fingerprint(path: Path) -> str:
    stat = path.stat()
    if stat.st_size > LARGE_FILE_BYTES:
        return _sha256(f"large-file:{stat.st_size}:{stat.st_mtime_ns}")
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _directory_entries(root: Path) -> List[Tuple[str, str]]:
    entries = []
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not d.startswith("checkpoint"))
        for name in files:
            if name.startswith("."):
                continue
            path = Path(here) / name
            entries.append((path.relative_to(root).as_posix(), _file_fingerprint(path)))
    return sorted(entries)


def path_fingerprint(path: str | os.PathLike) -> str:
    """sha256 hex of what ``path`` holds (a file's bytes, a directory's files) or, when it is not a local
    path (a hub id), of the string itself. See the module docstring for what is skipped and for large files."""
    local = Path(os.path.expanduser(str(path)))
    if local.is_file():
        return _file_fingerprint(local)
    if local.is_dir():
        return _sha256("directory:" + json.dumps(_directory_entries(local)))
    return _sha256(f"id:{path}")


def model_fingerprint(spec: ModelConfig) -> str:
    """sha256 hex of a model's weights and tokenizer (``spec.path``) and of its adapter, if it has one.

    Only what decides the model's outputs enters; the label, device and dtype choice do not (the sampling
    engine records the dtype and device it actually ran with next to this fingerprint)."""
    parts = {"path": path_fingerprint(spec.path),
             "adapter": path_fingerprint(spec.adapter) if spec.adapter else None}
    return _sha256(json.dumps(parts, sort_keys=True))
