"""Assembling an index version in memory from reviews (and their vectors).

Publishing, with the precomputed answers, is :func:`components.analysis.index_build.build_index`,
the one build path the flows, the command line and the benchmarks use.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from components.index.embedder import Embedder
from components.index.kinds import build_faiss_index
from components.index.store import IndexManifest, StoredIndex, new_version_name
from components.progress import Progress
from components.reviews.validate import emotion_counts
from components.settings import IndexSettings

log = logging.getLogger(__name__)


def embed_texts(
    embedder: Embedder, texts: Sequence[str], batch_size: int = 256, progress: bool = True
) -> np.ndarray:
    """Embed ``texts`` in batches with a progress bar; returns (n, d) normalised float32.

    The texts go through longest first (rows back in their own order at the end), as one
    ``encode`` of them all would order them: batches of similar length pad least (chunks
    in the reviews' own order were 5 % slower than one plain ``encode``)."""
    if not texts:
        return np.zeros((0, embedder.dimension), dtype=np.float32)
    order = np.argsort([-len(text) for text in texts], kind="stable")
    vectors = np.empty((len(texts), embedder.dimension), dtype=np.float32)
    with Progress(
        total=len(texts), desc="embedding reviews", unit="review", enabled=progress
    ) as bar:
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            vectors[rows] = embedder.encode([texts[i] for i in rows])
            bar.update(len(rows))
    return vectors


def assemble_review_index(
    reviews: pd.DataFrame,
    data_sha256: str,
    embedder: Embedder,
    settings: IndexSettings,
    vectors: np.ndarray | None = None,
    progress: bool = True,
) -> StoredIndex:
    """Embed (unless ``vectors`` are given) and build an index version in memory.

    Nothing is written: later stages can search it (to precompute answers) before
    :func:`~components.index.store.write_index_version` makes it visible.
    """
    if reviews.empty:
        raise ValueError("cannot build an index from zero reviews")
    texts = reviews["text"].astype(str).tolist()
    if vectors is None:
        vectors = embed_texts(embedder, texts, progress=progress)
    if vectors.shape != (len(texts), embedder.dimension):
        raise ValueError(
            f"vectors have shape {vectors.shape}, expected {(len(texts), embedder.dimension)}"
        )
    index = build_faiss_index(vectors, settings)
    now = datetime.now(UTC)
    manifest = IndexManifest(
        version=new_version_name(data_sha256, now),
        embedder=embedder.model_id,
        dimension=embedder.dimension,
        kind=settings.kind,
        count=len(reviews),
        data_sha256=data_sha256,
        created_at=now,
        params=settings.model_dump(),
        emotion_counts=emotion_counts(reviews),
    )
    return StoredIndex(
        index=index,
        metadata=reviews.reset_index(drop=True),
        manifest=manifest,
        vectors=vectors if settings.kind == "ivfpq" else None,
    )
