"""The one model loader: a hub id or a local directory through transformers' Auto classes.

Device and dtype are chosen automatically unless the config says otherwise (CUDA when present, else
CPU; bfloat16 on CUDA where supported, float32 on CPU). Weights load as safetensors only: a folder whose
model or adapter weights are pickles (``pytorch_model.bin``, ``adapter_model.bin``; a pickle can run code when
loaded) is refused unless ``model.<label>.allow_pickle=true``, and even then only plain tensors are unpickled
(``weights_only``). ``trust_remote_code`` stays False unless the config sets it. A missing model or pickle
weights are reported in one line, before anything is loaded, by ``check_model_source``; a model that fails to
load (custom code, a pickle that is not plain weights) in one line by ``load_model``.
"""
from __future__ import annotations

import logging
import os
import pickle
import re
from pathlib import Path
from typing import Tuple

import torch

from measure.config import ConfigError, ModelConfig

log = logging.getLogger(__name__)
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("model.device: 'cuda' is not available on this machine; accepted auto | cpu")
    return torch.device(name)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name != "auto":
        return getattr(torch, name)
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def _looks_local(path: str) -> bool:
    return path.startswith(("/", ".", "~")) or path.count("/") > 1 or not HUB_ID.match(path)


def _hub_cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def _refuse_pickle(folder: Path, pickles: str, safe: str, field_name: str, allow_pickle: bool) -> None:
    """ConfigError when ``folder`` holds weights matching ``pickles`` and none matching ``safe`` (unless allowed)."""
    if allow_pickle or not folder.is_dir() or any(folder.glob(safe)):
        return
    found = sorted(p.name for p in folder.glob(pickles))
    if found:
        node = field_name.rsplit(".", 1)[0]
        raise ConfigError(f"{field_name}: {folder} holds pickle weights only ({', '.join(found)}), which can run code "
                          f"when loaded; convert them to safetensors (save_pretrained(..., safe_serialization=True)) "
                          f"or, if you trust the file, set {node}.allow_pickle=true")


def check_weights_format(spec: ModelConfig, field_name: str) -> None:
    """Refuse, in one line, a local model or adapter folder that holds pickle weights only (see module docstring)."""
    _refuse_pickle(Path(os.path.expanduser(spec.path)), "pytorch_model*.bin", "*.safetensors", field_name,
                   spec.allow_pickle)
    if spec.adapter:
        _refuse_pickle(Path(os.path.expanduser(spec.adapter)), "adapter_model*.bin", "adapter_model*.safetensors",
                       f"{field_name.rsplit('.', 1)[0]}.adapter", spec.allow_pickle)


def check_model_source(spec: ModelConfig, field_name: str) -> None:
    """Fail fast, in one line, if ``spec.path`` can be neither found locally nor fetched, or holds pickle weights
    the config does not allow; for a served model (``base_url``), if its server does not answer or lacks the model."""
    if spec.base_url:  # a served model: ask the server now (one line naming the URL if it does not answer)
        from measure.endpoint import EndpointModel

        EndpointModel(spec).close()
        return
    if spec.build:
        return  # built on first use
    path = os.path.expanduser(spec.path)
    if Path(path).is_dir():
        if not (Path(path) / "config.json").exists():
            raise ConfigError(f"{field_name}: {spec.path!r} is a directory without config.json; "
                              "point it at a save_pretrained() directory")
    elif _looks_local(spec.path) or Path(path).exists():
        hint = f" ({spec.missing_hint})" if spec.missing_hint else ""
        raise ConfigError(f"{field_name}: no model directory at {spec.path!r}{hint}; "
                          f"point {field_name} at a save_pretrained() directory")
    elif os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "false", "") and not _hub_cached(spec.path):
        raise ConfigError(f"{field_name}: hub model {spec.path!r} is not in the local cache and HF_HUB_OFFLINE "
                          f"is set; run `huggingface-cli login` and `huggingface-cli download {spec.path}` on a "
                          f"machine with access, or point {field_name} at a local directory")
    if spec.adapter and not (Path(os.path.expanduser(spec.adapter)) / "adapter_config.json").exists():
        hint = f" ({spec.missing_hint})" if spec.missing_hint else ""
        raise ConfigError(f"{field_name.rsplit('.', 1)[0]}.adapter: no PEFT adapter at {spec.adapter!r}{hint}")
    check_weights_format(spec, field_name)


def materialise(spec: ModelConfig) -> str:
    """Build the model at ``spec.path`` if the config says it is built locally and it is not there yet."""
    path = os.path.expanduser(spec.path)
    if spec.build == "tiny_random" and not (Path(path) / "config.json").exists():
        from measure.tiny import build_tiny_llama

        log.info("building tiny random Llama (seed %d, init_std %g) at %s", spec.build_seed, spec.init_std, path)
        build_tiny_llama(path, seed=spec.build_seed, init_std=spec.init_std)
    return path


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _load_error(spec: ModelConfig, err: Exception, what: str) -> ConfigError:
    """One line for a model or adapter that transformers/peft/torch refused to load."""
    node = f"model.{spec.label}"
    if isinstance(err, pickle.UnpicklingError) or "weights only load failed" in str(err).lower():
        # torch's own first line is general advice; the line naming the refused callable says what the file holds
        lines = [line.split("WeightsUnpickler error:")[-1].strip() for line in str(err).splitlines()[1:]]
        why = next((line for line in lines if line and not line.startswith(("Please file", "Check the doc"))), "")
        why = f": {why[:160].rstrip('.')}" if why else ""
        return ConfigError(f"{node}.{what}: a pickle file in {getattr(spec, what)!r} is not plain weights (loading "
                           f"it would run code) and was refused{why}; use safetensors weights")
    if "trust_remote_code" in str(err):
        return ConfigError(f"{node}.path: {spec.path!r} needs its own Python code to load and "
                           f"{node}.trust_remote_code is false; read that code, then set "
                           f"{node}.trust_remote_code=true only if you trust it")
    hint = (f" (log in with `huggingface-cli login`, download it, or point {node}.{what} at a directory)"
            if isinstance(err, OSError) else "")
    return ConfigError(f"model {spec.label}: cannot load {getattr(spec, what)!r}: {_first_line(err)}{hint}")


def load_model(spec: ModelConfig) -> Tuple[torch.nn.Module, object]:
    """Load (model, tokenizer) for one model config; the model is in eval mode on its device."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = materialise(spec)
    check_weights_format(spec, f"model.{spec.label}.path")
    device = resolve_device(spec.device)
    dtype = resolve_dtype(spec.dtype, device)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=spec.trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype,
                                                     use_safetensors=None if spec.allow_pickle else True,
                                                     trust_remote_code=spec.trust_remote_code)
    except (OSError, ValueError, pickle.UnpicklingError) as err:  # gated repo, no network, no such id, custom code
        raise _load_error(spec, err, "path") from err
    if spec.adapter:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, os.path.expanduser(spec.adapter)).merge_and_unload()
        except (OSError, ValueError, pickle.UnpicklingError) as err:
            raise _load_error(spec, err, "adapter") from err
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device).eval()
    log.info("loaded %s (%s) on %s as %s: %.2fM parameters", spec.label, spec.path, device, dtype,
             sum(p.numel() for p in model.parameters()) / 1e6)
    return model, tokenizer
