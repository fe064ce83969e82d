"""index.kind ivfpq: compressed IVF-PQ lists, full vectors stored beside them and read row
by row, the best candidates re-scored exactly, emotion filter exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.emotions import EMOTIONS
from components.index.build import assemble_review_index
from components.index.kinds import (
    VECTORS_FILE,
    ExactVectorsFile,
    ExactVectorsWriter,
    build_faiss_index,
    search_reranked,
)
from components.index.search import ReviewSearcher
from components.index.store import IndexCorruptError, load_index, write_index_version
from components.settings import IndexSettings, RetrievalSettings

DIMENSION = 32
SETTINGS = IndexSettings(kind="ivfpq", pq_m=8, ivf_lists=32, ivf_nprobe=16, rerank=50)


class FixedEmbedder:
    model_id = "test/fixed"
    dimension = DIMENSION


def clustered(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, DIMENSION)).astype(np.float32)
    x = centres[rng.integers(0, 40, n)] + 0.4 * rng.standard_normal((n, DIMENSION))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def corpus() -> tuple[pd.DataFrame, np.ndarray]:
    n = 4000
    reviews = pd.DataFrame(
        {
            "review_id": [f"r{i}" for i in range(n)],
            "text": [f"review number {i}" for i in range(n)],
            "emotion": [EMOTIONS[i % len(EMOTIONS)] for i in range(n)],
        }
    )
    return reviews, clustered(n)


def publish(root: Path, reviews: pd.DataFrame, vectors: np.ndarray) -> None:
    stored = assemble_review_index(
        reviews, "c" * 64, FixedEmbedder(), SETTINGS, vectors=vectors, progress=False
    )  # type: ignore[arg-type]
    write_index_version(
        root, stored.index, stored.metadata, stored.manifest, vectors=stored.vectors
    )


def test_a_published_ivfpq_version_searches_like_the_exact_index(tmp_path: Path, corpus) -> None:
    """Loaded with its vectors read from their file, filtered by emotion exactly, and its top 10
    (re-scored on the full vectors) nearly the exact top 10, with exact scores."""
    reviews, vectors = corpus
    publish(tmp_path, reviews, vectors)
    stored = load_index(tmp_path)
    assert stored.manifest.kind == "ivfpq"
    assert isinstance(stored.vectors, ExactVectorsFile)
    assert np.array_equal(stored.vectors_of(), vectors)
    assert np.array_equal(stored.vectors[np.array([7, 3])], vectors[[7, 3]])
    assert stored.index.code_size == SETTINGS.pq_m  # 8 bytes a vector in memory, not 128
    assert stored.index.parallel_mode == 1  # one query's lists scanned on every core
    searcher = ReviewSearcher(stored, FixedEmbedder(), RetrievalSettings())  # type: ignore[arg-type]
    queries = clustered(50, seed=1)
    recalls = []
    for query in queries:
        emotion = "fear"
        hits = searcher.search_vector(query, emotion=emotion, k=10, fetch_k=10, mmr_lambda=1.0)
        assert len(hits) == 10
        assert {hit.review["emotion"] for hit in hits} == {emotion}
        for hit in hits:
            assert hit.score == pytest.approx(float(vectors[hit.position] @ query), abs=1e-5)
        allowed = np.flatnonzero(reviews["emotion"].to_numpy() == emotion)
        truth = allowed[np.argsort(-(vectors[allowed] @ query))[:10]]
        recalls.append(len({hit.position for hit in hits} & set(truth)) / 10)
    assert np.mean(recalls) >= 0.9


def test_re_ranking_on_the_full_vectors_beats_the_compressed_scores(corpus) -> None:
    reviews, vectors = corpus
    index = build_faiss_index(vectors, SETTINGS)
    queries = clustered(50, seed=2)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]

    def recall(rerank: int) -> float:
        found = [search_reranked(index, vectors, q[None], 10, rerank)[1] for q in queries]
        overlaps = [len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]
        return float(np.mean(overlaps))

    assert recall(SETTINGS.rerank) >= 0.9
    assert recall(SETTINGS.rerank) > recall(0) + 0.1
    for rerank in (SETTINGS.rerank, 0):  # the rows handed back are the kept ids' vectors
        scores, ids, rows = search_reranked(index, vectors, queries[:1], 10, rerank)
        assert np.array_equal(rows, vectors[ids])


def test_a_damaged_vectors_file_is_refused(tmp_path: Path, corpus) -> None:
    reviews, vectors = corpus
    publish(tmp_path, reviews, vectors)
    (path,) = tmp_path.glob(f"versions/*/{VECTORS_FILE}")
    with path.open("r+b") as handle:
        handle.seek(-4, 2)
        handle.write(b"\x00\x00\x80\x7f")
    with pytest.raises(IndexCorruptError, match="checksum"):
        load_index(tmp_path)


def test_a_corpus_too_small_or_a_pq_m_that_does_not_divide_is_a_clear_error(corpus) -> None:
    _, vectors = corpus
    with pytest.raises(ValueError, match="at least 1,000 reviews"):
        build_faiss_index(vectors[:500], SETTINGS)
    with pytest.raises(ValueError, match="does not divide"):
        build_faiss_index(vectors, IndexSettings(kind="ivfpq", pq_m=5))


def test_the_vectors_writer_streams_an_npy_file_and_refuses_a_short_one(tmp_path: Path) -> None:
    rows = clustered(250)
    with ExactVectorsWriter(tmp_path / "v.npy", 250, DIMENSION) as writer:
        writer.write(rows[:100])
        writer.write(rows[100:])
    assert np.array_equal(ExactVectorsFile(tmp_path / "v.npy")[np.arange(250)], rows)
    short = ExactVectorsWriter(tmp_path / "short.npy", 250, DIMENSION)
    short.write(rows[:100])
    with pytest.raises(ValueError, match="100 rows written of 250"):
        short.close()
