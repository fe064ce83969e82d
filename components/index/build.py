"""Building an index version from validated reviews."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from components.index.embedder import Embedder
from components.index.store import (
    IndexManifest,
    StoredIndex,
    build_faiss_index,
    new_version_name,
    write_index_version,
)
from components.reviews.validate import emotion_counts
from components.settings import IndexSettings

log = logging.getLogger(__name__)


def embed_texts(
    embedder: Embedder, texts: Sequence[str], batch_size: int = 256, progress: bool = True
) -> np.ndarray:
    """Embed ``texts`` in batches with a progress bar; returns (n, d) normalised float32."""
    if not texts:
        return np.zeros((0, embedder.dimension), dtype=np.float32)
    chunks = []
    with tqdm(
        total=len(texts), desc="embedding reviews", unit="review", disable=not progress
    ) as bar:
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            chunks.append(embedder.encode(batch))
            bar.update(len(batch))
    return np.concatenate(chunks).astype(np.float32, copy=False)


def assemble_review_index(
    reviews: pd.DataFrame,
    data_sha256: str,
    embedder: Embedder,
    settings: IndexSettings,
    vectors: np.ndarray | None = None,
    extras: dict[str, object] | None = None,
    progress: bool = True,
) -> StoredIndex:
    """Embed (unless ``vectors`` are given) and build an index version in memory.

    Nothing is written: later stages can search it (to precompute answers) before
    :func:`publish_review_index` makes it visible.
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
        extras=dict(extras or {}),
    )
    return StoredIndex(
        index=index, metadata=reviews.reset_index(drop=True), manifest=manifest, directory=None
    )


def publish_review_index(
    stored: StoredIndex,
    root: Path,
    settings: IndexSettings,
    extra_files: dict[str, Callable[[Path], None]] | None = None,
    extras: dict[str, object] | None = None,
) -> IndexManifest:
    """Write an assembled index as a new version and point ``current`` at it."""
    manifest = stored.manifest
    if extras:
        manifest = manifest.model_copy(update={"extras": {**manifest.extras, **extras}})
    return write_index_version(
        root,
        stored.index,
        stored.metadata,
        manifest,
        extra_files=extra_files,
        keep_versions=settings.keep_versions,
        lock_timeout_s=settings.lock_timeout_s,
    )


def build_review_index(
    reviews: pd.DataFrame,
    data_sha256: str,
    embedder: Embedder,
    settings: IndexSettings,
    root: Path,
    vectors: np.ndarray | None = None,
    extra_files: dict[str, Callable[[Path], None]] | None = None,
    extras: dict[str, object] | None = None,
    progress: bool = True,
) -> IndexManifest:
    """Embed (unless ``vectors`` are given), build and publish a new index version."""
    stored = assemble_review_index(
        reviews, data_sha256, embedder, settings, vectors, extras, progress
    )
    return publish_review_index(stored, root, settings, extra_files)
