"""Metrics: pure functions of arrays, texts or embeddings (never of model names). One module per family."""
