"""Emotion-aware search over a stored index.

An emotion restricts the search exactly: FAISS only scores vectors whose id is in that
emotion's id set (an ``IDSelectorBatch``), so ``k`` results come back whenever the emotion
has ``k`` reviews; this is not a post-filter over a few global candidates. Results are
re-ranked with maximal marginal relevance (MMR) for diversity, and texts are distinct.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import faiss
import numpy as np
import pandas as pd

from components.emotions import EMOTIONS, normalize_emotion
from components.index.embedder import Embedder
from components.index.store import IndexMismatchError, StoredIndex
from components.settings import RetrievalSettings
from components.text import normalize_text


@dataclass(frozen=True)
class SearchHit:
    """One retrieved review: its row, cosine similarity to the query, and its fields."""

    position: int
    score: float
    review: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return str(self.review["text"])


class ReviewSearcher:
    """Search one loaded index version. Construction precomputes per-emotion id sets."""

    def __init__(
        self, stored: StoredIndex, embedder: Embedder, settings: RetrievalSettings
    ) -> None:
        if stored.manifest.dimension != embedder.dimension:
            raise IndexMismatchError(
                f"index {stored.version} holds {stored.manifest.dimension}-d vectors but "
                f"embedder {embedder.model_id!r} makes {embedder.dimension}-d vectors"
            )
        self.stored = stored
        self.embedder = embedder
        self.settings = settings
        labels = stored.metadata["emotion"].astype("string")
        self._emotion_ids: dict[str, np.ndarray] = {
            emotion: np.flatnonzero((labels == emotion).fillna(False).to_numpy()).astype("int64")
            for emotion in EMOTIONS
        }
        self._selectors = {
            emotion: faiss.IDSelectorBatch(ids) for emotion, ids in self._emotion_ids.items()
        }
        self._normalized_texts = stored.metadata["text"].astype(str).map(normalize_text).tolist()

    @property
    def index_version(self) -> str:
        return self.stored.version

    def emotion_size(self, emotion: str) -> int:
        return int(self._emotion_ids[normalize_emotion(emotion)].size)

    def search(
        self,
        query: str,
        emotion: str | None = None,
        k: int | None = None,
        fetch_k: int | None = None,
        mmr_lambda: float | None = None,
    ) -> list[SearchHit]:
        """The ``k`` most relevant, mutually diverse reviews for ``query``."""
        if not query or not query.strip():
            raise ValueError("query must not be empty")
        vector = self.embedder.encode([query])
        return self.search_vector(vector[0], emotion, k, fetch_k, mmr_lambda)

    def search_vector(
        self,
        vector: np.ndarray,
        emotion: str | None = None,
        k: int | None = None,
        fetch_k: int | None = None,
        mmr_lambda: float | None = None,
    ) -> list[SearchHit]:
        k = k or self.settings.k
        fetch_k = max(fetch_k or self.settings.fetch_k, k)
        lam = self.settings.mmr_lambda if mmr_lambda is None else mmr_lambda
        query = np.ascontiguousarray(vector.reshape(1, -1), dtype=np.float32)
        params = self._search_params(normalize_emotion(emotion) if emotion else None)
        scores, ids = self.stored.index.search(query, fetch_k, params=params)
        found = ids[0] >= 0
        ids, scores = ids[0][found], scores[0][found]
        if ids.size == 0:
            return []
        candidates = np.asarray(self.stored.index.reconstruct_batch(ids), dtype=np.float32)
        chosen = mmr_select(
            query[0], candidates, scores, k, lam, keys=[self._normalized_texts[i] for i in ids]
        )
        return [self._hit(int(ids[i]), float(scores[i])) for i in chosen]

    def _search_params(self, emotion: str | None) -> faiss.SearchParameters | None:
        index = self.stored.index
        selector = self._selectors[emotion] if emotion else None
        if isinstance(index, faiss.IndexHNSW):
            params = faiss.SearchParametersHNSW()
            params.efSearch = int(max(index.hnsw.efSearch, self.settings.fetch_k))
            if selector is not None:
                params.sel = selector
            return params
        if selector is None:
            return None
        params = faiss.SearchParameters()
        params.sel = selector
        return params

    def _hit(self, position: int, score: float) -> SearchHit:
        row = self.stored.metadata.iloc[position]
        return SearchHit(position=position, score=score, review=_plain(row))


def mmr_select(
    query: np.ndarray,
    candidates: np.ndarray,
    relevance: np.ndarray,
    k: int,
    lam: float,
    keys: list[str] | None = None,
) -> list[int]:
    """Maximal marginal relevance over candidates (rows), skipping duplicate ``keys``.

    Returns candidate indices in selection order.
    """
    chosen: list[int] = []
    seen_keys: set[str] = set()
    remaining = list(range(len(candidates)))
    similarity = candidates @ candidates.T
    while remaining and len(chosen) < k:
        if chosen:
            redundancy = similarity[np.ix_(remaining, chosen)].max(axis=1)
        else:
            redundancy = np.zeros(len(remaining), dtype=np.float32)
        gains = lam * relevance[remaining] - (1.0 - lam) * redundancy
        best = remaining.pop(int(np.argmax(gains)))
        key = keys[best] if keys is not None else None
        if key is not None and key in seen_keys:
            continue
        if key is not None:
            seen_keys.add(key)
        chosen.append(best)
    return chosen


def _plain(row: pd.Series) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if value is None or (not isinstance(value, (list, dict)) and pd.isna(value)):
            out[str(key)] = None
        elif isinstance(value, pd.Timestamp):
            out[str(key)] = value.isoformat()
        elif isinstance(value, np.generic):
            out[str(key)] = value.item()
        else:
            out[str(key)] = value
    return out
