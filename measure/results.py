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


NULL_REASONS = "null_reasons"  # results.json key: {"a.b.c": "nan" | "inf" | "-inf"} for each value written as null


def _jsonable(obj: Any, path: str, reasons: dict) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v, f"{path}{k}.", reasons) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v, f"{path}{i}.", reasons) for i, v in enumerate(obj)]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()  # numpy / torch scalars
    if isinstance(obj, float) and not math.isfinite(obj):
        reasons[path.rstrip(".")] = str(obj)  # nan: not defined (e.g. SBERT off); inf: it diverged
        return None  # JSON has no NaN or Infinity
    return obj


def strict_json(results: dict) -> str:
    """``results`` as strict JSON: every NaN or infinity becomes null and its dotted path is listed, with what
    it was, under ``null_reasons`` (absent when there is none)."""
    reasons: dict = {}
    tree = _jsonable(results, "", reasons)
    if reasons:
        tree[NULL_REASONS] = {**tree.get(NULL_REASONS, {}), **reasons}
    return json.dumps(tree, indent=2, allow_nan=False)


def write_results(directory: str | os.PathLike, results: dict) -> Path:
    """Write ``results.json`` (strict JSON, see ``strict_json``) atomically into ``directory``; returns its path."""
    path = Path(directory) / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(strict_json(results))
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
