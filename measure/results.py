"""The one results layout: every run writes `results.json` (plus figures and its log) in its run directory."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any


def run_dir() -> Path:
    """The Hydra run directory of the current job (where results, figures and the log go)."""
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()  # numpy / torch scalars
    if isinstance(obj, float) and not math.isfinite(obj):
        return None  # JSON has no NaN; null says "not defined"
    return obj


def write_results(directory: str | os.PathLike, results: dict) -> Path:
    """Write ``results.json`` atomically into ``directory`` and return its path."""
    path = Path(directory) / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_jsonable(results), indent=2))
    os.replace(tmp, path)
    return path


def read_results(directory: str | os.PathLike) -> dict:
    return json.loads((Path(directory) / "results.json").read_text())


def flatten(tree: dict, prefix: str = "") -> dict:
    """A nested results dict as one level, keyed "a.b.c" (for tables and wandb summaries); leaves unchanged."""
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
