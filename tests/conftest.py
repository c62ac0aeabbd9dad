"""Shared fixtures: tiny random Llamas built locally from config (nothing from a hub), once per session."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's tests: on a shared 2-core machine, two OpenMP threads spin against each
    other (a 30x slowdown was seen). Use with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_pair_dir(tmp_path_factory) -> Path:
    """A directory holding `base/` and `aligned/`: tiny random Llamas (aligned has peakier logits)."""
    from measure.tiny import build_tiny_llama

    root = tmp_path_factory.mktemp("tiny_pair")
    build_tiny_llama(root / "base", seed=1, init_std=0.02)
    build_tiny_llama(root / "aligned", seed=2, init_std=0.2)
    return root


@pytest.fixture(scope="session")
def tiny_model(tiny_pair_dir):
    """(model, tokenizer) of the tiny base model, loaded through the project's loader."""
    from measure.config import ModelConfig
    from measure.loading import load_model

    return load_model(ModelConfig(path=str(tiny_pair_dir / "base"), label="base", device="cpu"))


def run_app(module: str, *overrides: str, cwd: Path = REPO, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run `python -m <module> overrides...` as a user would; returns the completed process."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", WANDB_MODE="disabled", PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", module, *overrides], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
