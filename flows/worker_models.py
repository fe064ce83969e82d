"""A per-process model cache for task workers (threads or Dask processes): each model is
loaded once per process.

Tasks reach it through the module (``worker_models.embedder(...)``), so pickling a task for a
Dask worker never drags a loaded model along with it.
"""

from __future__ import annotations

from functools import lru_cache

from components.index.embedder import SentenceTransformerEmbedder


@lru_cache(maxsize=4)
def embedder(model: str, device: str) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder.load(model, device)
