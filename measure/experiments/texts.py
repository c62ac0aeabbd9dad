"""Bring your own texts (`experiment=texts experiment.texts_file=<path>`): every measure that needs no language
model, on generations from any source (an API model, vLLM, a colleague's files).

The file is JSONL, one ``{"model": label, "text": ...}`` per line (other keys are ignored); labels keep their
first-seen order. Each label gets what Experiment 2 reports: distinct-1/2/3, EAD, self-BLEU, gzip compression
ratio, TF-IDF and SBERT pairwise cosine (``tfidf_cosine.{mean,std}``, ``sbert_cosine.{mean,std}``), Vendi
score, VADER compound, k-means clusters and the t-SNE maps (Figure 10 layout), and the lexical metrics again on
texts cut to a common length (``length_matched``). Labels are compared pairwise (``comparison`` holds base vs
aligned when both exist, else the first two labels; ``comparisons`` all pairs) at equal n, by permutation test and
over chunks (``measure.experiments.set_compare``). Empty texts are counted and left out; a label needs >= 2 texts.

At scale (10,000 texts per label in about two minutes on 2 CPU cores, ``bench/texts.py``): self-BLEU against at
most 500 references per set, SBERT measures on at most 2,000 texts per set, k chosen on a 2,000-point sample, the
map on 1,000 points, permutation tests on at most 500 texts per set; the rest is linear in the number of tokens.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Dict, List

from measure.config import ConfigError, MeasureConfig
from measure.experiments.semantic import analyse_texts, log_wandb

log = logging.getLogger(__name__)


def _lines(path: str) -> List[str]:
    """The file's lines, each decoded as UTF-8; a line that is not stops the run naming the file and the line."""
    try:
        raw = Path(path).expanduser().read_bytes()
    except OSError as err:
        raise ConfigError(f"experiment.texts_file: cannot read {path!r}: {err.strerror or err}") from err
    lines = []
    for number, line in enumerate(raw.splitlines(), start=1):
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError as err:
            raise ConfigError(f"experiment.texts_file: {path} line {number} is not UTF-8 (byte 0x{line[err.start]:02x} "
                              f"at column {err.start + 1}); save the file as UTF-8") from None
    return lines


def _label(value, number: int, path: str) -> str:
    """A row's model label: a non-empty string (a number is taken as its text); null, true/false, lists refused."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not str(value).strip():
        raise ConfigError(f'experiment.texts_file: {path} line {number}: "model" is {json.dumps(value)}; '
                          f'it needs a label string such as "base"')
    return str(value)


def read_texts(path: str) -> Dict[str, List[str]]:
    """label -> texts from a JSONL file; a malformed line stops the run with its line number."""
    by_label: Dict[str, List[str]] = {}
    for number, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ConfigError(f"experiment.texts_file: line {number} is not JSON ({err.msg})") from err
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or "model" not in row:
            raise ConfigError(f'experiment.texts_file: line {number} needs {{"model": label, "text": string}}')
        by_label.setdefault(_label(row["model"], number, path), []).append(row["text"])
    small = {label: len(t) for label, t in by_label.items() if len(t) < 2}
    if not by_label or small:
        raise ConfigError(f"experiment.texts_file: every label needs >= 2 texts; got {small or 'no texts'}")
    return by_label


def run(cfg: MeasureConfig, out_dir: Path) -> dict:
    if not cfg.experiment.texts_file:
        raise ConfigError("experiment.texts_file: not set; pass experiment.texts_file=<path to JSONL>")
    texts = read_texts(cfg.experiment.texts_file)
    log.info("texts: %s", ", ".join(f"{label} ({len(t)})" for label, t in texts.items()))
    results, sets = analyse_texts(texts, cfg, out_dir, table_title="Texts nearest each k-means centroid")
    results = {"texts_file": cfg.experiment.texts_file, "labels": list(texts), **results}
    log_wandb("texts", results, out_dir, sets)
    return results
