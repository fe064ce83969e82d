"""Emotion-aware search over a stored index.

An emotion restricts the search exactly: FAISS only scores vectors whose id is in that
emotion's id set (an ``IDSelectorBitmap``, one bit a review), so ``k`` results come back
whenever the emotion has ``k`` reviews; this is not a post-filter over a few global
candidates. An ``ivfpq`` index's candidates are re-scored on their full vectors
(:func:`~components.index.kinds.search_reranked`). Results are re-ranked with maximal
marginal relevance (MMR) for diversity, and texts are distinct.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import faiss
import numpy as np
import pandas as pd

from components.emotions import EMOTIONS, normalize_emotion
from components.index.embedder import Embedder
from components.index.kinds import search_reranked
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
        masks = {e: (labels == e).fillna(False).to_numpy(dtype=bool) for e in EMOTIONS}
        self._emotion_sizes = {emotion: int(mask.sum()) for emotion, mask in masks.items()}
        self._selectors = {
            emotion: faiss.IDSelectorBitmap(np.packbits(mask, bitorder="little"))
            for emotion, mask in masks.items()
        }
        self._rerank = int(stored.manifest.params.get("rerank", 0))
        self._normalized_texts = stored.metadata["text"].astype(str).map(normalize_text).tolist()

    @property
    def index_version(self) -> str:
        return self.stored.version

    def emotion_size(self, emotion: str) -> int:
        return self._emotion_sizes[normalize_emotion(emotion)]

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
        selector = self._selectors[normalize_emotion(emotion)] if emotion else None
        if self.stored.vectors is not None:
            scores, ids, candidates = search_reranked(
                self.stored.index, self.stored.vectors, query, fetch_k, self._rerank, selector
            )
        else:
            scores, ids = self.stored.index.search(
                query, fetch_k, params=self._search_params(selector)
            )
            found = ids[0] >= 0
            ids, scores = ids[0][found], scores[0][found]
            candidates = self.stored.vectors_of(ids)
        if ids.size == 0:
            return []
        chosen = mmr_select(
            query[0], candidates, scores, k, lam, keys=[self._normalized_texts[i] for i in ids]
        )
        return [self._hit(int(ids[i]), float(scores[i])) for i in chosen]

    def _search_params(self, selector: faiss.IDSelector | None) -> faiss.SearchParameters | None:
        index = self.stored.index
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
