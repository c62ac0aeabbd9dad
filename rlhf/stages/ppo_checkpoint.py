"""Checkpoints for TRL's PPOTrainer, which has no resume of its own (its loop restarts at step 0).

A checkpoint holds what a run needs to continue: the trainable weights (LoRA adapter + value model), the
optimiser state and the trainer state (step, episode, log history), plus the hash of the run's config.
Each one is written to its own ``step-<n>`` directory, then ``latest`` is switched to it atomically and
older ones are removed, so a kill at any moment leaves a complete checkpoint behind.

Resuming: ``ResumeCallback`` moves the fresh trainer's step counter to the saved step in
``on_train_begin``, and the caller trains only the remaining steps (the learning rate is constant, so the
schedule needs no rewinding).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Callable, Optional

import torch
from transformers import TrainerCallback

log = logging.getLogger(__name__)
LATEST = "latest"


def _trainable_state(module: torch.nn.Module) -> dict:
    return {n: p.detach().cpu().contiguous() for n, p in module.named_parameters() if p.requires_grad}


def save_checkpoint(root: Path, step: int, episode: int, module: torch.nn.Module, optimizer,
                    log_history: list, config_hash: str, keep: int = 1) -> Path:
    """Write checkpoint ``step`` under ``root`` and point ``root/latest`` at it (main process only)."""
    from safetensors.torch import save_file

    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".step-{step}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(_trainable_state(module), str(tmp / "trainable.safetensors"))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step, "episode": episode, "config_hash": config_hash,
                                                 "log_history": log_history}))
    final = root / f"step-{step}"
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    pointer = root / f".{LATEST}.tmp"
    pointer.write_text(final.name)
    os.replace(pointer, root / LATEST)  # the switch is atomic: a kill leaves the old or the new checkpoint
    for old in sorted(root.glob("step-*"), key=lambda p: int(p.name.split("-")[1]))[:-keep]:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(root: Path) -> Optional[Path]:
    pointer = root / LATEST
    if not pointer.exists():
        return None
    path = root / pointer.read_text().strip()
    return path if (path / "state.json").exists() else None


def read_state(ckpt: Path) -> dict:
    return json.loads((ckpt / "state.json").read_text())


def load_checkpoint(ckpt: Path, module: torch.nn.Module, optimizer) -> dict:
    """Load weights and optimiser state saved by ``save_checkpoint``; returns the saved trainer state."""
    from safetensors.torch import load_file

    saved = load_file(str(ckpt / "trainable.safetensors"))
    expected = set(_trainable_state(module))
    if set(saved) != expected:
        raise ValueError(f"checkpoint {ckpt} does not match the model: {len(set(saved) ^ expected)} differing "
                         "tensors; delete it or set ppo.resume=false")
    module.load_state_dict(saved, strict=False)
    optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=True))
    return read_state(ckpt)


class CheckpointCallback(TrainerCallback):
    """Save a checkpoint every ``every`` steps and at the last step (main process only).

    ``trainables`` returns (the module whose trainable parameters are saved, its optimiser) when called.
    """

    def __init__(self, root: Path, every: int, config_hash: str, trainables: Callable[[], tuple]):
        self.root, self.every, self.config_hash, self.trainables = root, every, config_hash, trainables

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.every and state.global_step < state.max_steps:
            return
        if state.is_world_process_zero:
            module, optimizer = self.trainables()
            path = save_checkpoint(self.root, state.global_step, state.episode, module, optimizer,
                                   state.log_history, self.config_hash)
            log.info("checkpoint: step %d -> %s", state.global_step, path)


class ResumeCallback(TrainerCallback):
    """Continue the step counter of a resumed run: TRL's loop starts from global_step 0 otherwise."""

    def __init__(self, start_step: int, total_steps: int, episodes_per_step: int, log_history: list):
        self.start_step, self.total_steps = start_step, total_steps
        self.episodes_per_step, self.log_history = episodes_per_step, log_history

    def on_train_begin(self, args, state, control, **kwargs):
        state.global_step = self.start_step
        state.episode = self.start_step * self.episodes_per_step
        state.max_steps = self.total_steps
        state.log_history = list(self.log_history) + state.log_history
