"""``results.json`` of the toy bandit: strict JSON, as every run of the project writes it.

The toy bandit imports neither measure nor rlhf, so this is its own copy of ``measure.results.write_results``
(tests/test_bad_input.py checks that the two write the same file): a NaN or infinity becomes null and its dotted
path is listed, with what it was, under ``null_reasons``.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

NULL_REASONS = "null_reasons"


def _jsonable(obj, path: str, reasons: dict):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v, f"{path}{k}.", reasons) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v, f"{path}{i}.", reasons) for i, v in enumerate(obj)]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()  # numpy scalars
    if isinstance(obj, float) and not math.isfinite(obj):
        reasons[path.rstrip(".")] = str(obj)
        return None
    return obj


def write_results(directory: str | os.PathLike, results: dict) -> Path:
    """Write ``results.json`` (strict JSON) atomically into ``directory``; returns its path."""
    reasons: dict = {}
    tree = _jsonable(results, "", reasons)
    if reasons:
        tree[NULL_REASONS] = {**tree.get(NULL_REASONS, {}), **reasons}
    path = Path(directory) / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(tree, indent=2, allow_nan=False))
    os.replace(tmp, path)
    return path
