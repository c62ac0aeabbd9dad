"""Bring your own texts (`experiment=texts experiment.texts_file=<path>`): every measure that needs no language
model, on generations from any source (an API model, vLLM, NoveltyBench's files, a colleague's `datasets` folder).

The file formats and field names read are those of ``measure.texts_io``: JSONL or a JSON list of records, or a
`datasets` save_to_disk folder; one generation per record (``text``/``output``/``response``/``generation``) or a
list per record (NoveltyBench's ``generations``), labelled by ``model``/``label``/``generator``, with an optional
``prompt``. Labels keep their first-seen order. Empty texts are counted and left out; a label needs >= 2 texts.

``experiment.group_by`` chooses the sets:

- ``pooled`` (cross-input, the default): all texts of a label form one set. Each label gets what Experiment 2
  reports: distinct-1/2/3, EAD, self-BLEU, gzip compression ratio, TF-IDF and SBERT pairwise cosine
  (``tfidf_cosine.{mean,std}``, ``sbert_cosine.{mean,std}``), Vendi score, VADER compound, k-means clusters and the
  t-SNE maps (Figure 10 layout), and the lexical metrics again on texts cut to a common length (``length_matched``).
  Labels are compared pairwise (``comparison`` holds base vs aligned when both exist, else the first two labels;
  ``comparisons`` all pairs) at equal n, by permutation test and over chunks (``measure.experiments.set_compare``).
- ``prompt`` (per-input, as NoveltyBench measures): one set per (label, prompt); every set metric of each prompt's
  texts (``measure.experiments.per_prompt``), at equal n across labels per prompt, then the mean over prompts per
  label with a bootstrap interval, and labels compared over their shared prompts.

At scale (10,000 texts per label in about two minutes on 2 CPU cores, ``bench/texts.py``): self-BLEU against at
most 500 references per set, SBERT measures on at most 2,000 texts per set, k chosen on a 2,000-point sample, the
map on 1,000 points, permutation tests on at most 500 texts per set; the rest is linear in the number of tokens.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List

from measure.config import ConfigError, MeasureConfig
from measure.experiments.per_prompt import measure_per_prompt
from measure.experiments.semantic import analyse_texts, log_wandb
from measure.texts_io import read_records

log = logging.getLogger(__name__)


def read_texts(path: str) -> Dict[str, List[str]]:
    """label -> texts of a texts file (any format of ``measure.texts_io``); a malformed record stops the run."""
    return read_records(path).texts


def run(cfg: MeasureConfig, out_dir: Path) -> dict:
    exp = cfg.experiment
    if not exp.texts_file:
        raise ConfigError("experiment.texts_file: not set; pass experiment.texts_file=<path to JSONL>")
    records = read_records(exp.texts_file)
    texts = records.texts
    log.info("texts (%s, group_by=%s): %s", records.source_format, exp.group_by,
             ", ".join(f"{label} ({len(t)})" for label, t in texts.items()))
    head = {"texts_file": exp.texts_file, "source_format": records.source_format, "labels": list(texts),
            "group_by": exp.group_by,
            "generation_settings": {"known": records.known_settings(),
                                    "note": "temperature and seed as the records give them (null: not given, or "
                                            "records of one label disagree)"}}
    if exp.group_by == "prompt":
        results = {**head, **measure_per_prompt(records, exp, exp.stats_seed)}
        for label, block in results["models"].items():
            block["n_texts"] = len(texts[label])
        return results
    results, sets = analyse_texts(texts, cfg, out_dir, table_title="Texts nearest each k-means centroid")
    results = {**head, **results}
    for label in texts:
        results["models"][label]["n_texts"] = len(texts[label])
    log_wandb("texts", results, out_dir, sets)
    return results
