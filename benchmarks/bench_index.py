"""Index build throughput against plain sentence-transformers ``encode``, and FAISS search
latency and recall@10 (flat and HNSW) at growing sizes."""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from benchmarks.harness import latency
from components.analysis.index_build import build_index
from components.index.embedder import SentenceTransformerEmbedder
from components.nlp.sentiment import VaderSentimentScorer
from components.nlp.summarize import ExtractiveSummarizer
from components.reviews.generate import generate_reviews
from components.settings import DEFAULT_EMBEDDER, Settings


def build_throughput(n_reviews: int, rounds: int = 2) -> dict[str, Any]:
    """Reviews/s of ``build_index`` (offline sentiment, embedding, FAISS, the 7 answers,
    publish) vs ``encode`` alone on the same texts, alternating and keeping each one's best
    round."""
    embedder = SentenceTransformerEmbedder.load(DEFAULT_EMBEDDER)
    frame = generate_reviews(per_emotion=math.ceil(n_reviews / 7), seed=5).iloc[:n_reviews]
    texts = frame["text"].astype(str).tolist()
    model = embedder._model  # the plain SentenceTransformer
    model.encode(texts[:64])  # warm-up
    plain, ours = [], []
    settings = Settings.from_dict({})
    sentiment, summarizer = VaderSentimentScorer(), ExtractiveSummarizer(embedder)
    for _ in range(rounds):
        start = time.perf_counter()
        model.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True)
        plain.append(time.perf_counter() - start)
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            build_index(
                frame, "0" * 64, embedder, settings, sentiment=sentiment, summarizer=summarizer,
                root=Path(folder), progress=False,
            )  # fmt: skip
            ours.append(time.perf_counter() - start)
    plain_rps, ours_rps = n_reviews / min(plain), n_reviews / min(ours)
    return {
        "reviews": n_reviews,
        "plain_encode_reviews_per_s": plain_rps,
        "index_build_reviews_per_s": ours_rps,
        "ratio": ours_rps / plain_rps,
    }


def clustered_vectors(n: int, d: int, rng: np.random.Generator, centers: np.ndarray) -> np.ndarray:
    """Normalised vectors around random centres (embedding-like: clustered, not uniform)."""
    picks = rng.integers(0, len(centers), size=n)
    x = centers[picks] + 0.35 * rng.standard_normal((n, d), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def search_benchmark(
    n: int, d: int = 384, queries: int = 200, ef_search: int = 128, ef_construction: int = 100
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((1000, d), dtype=np.float32)
    base = np.concatenate(
        [clustered_vectors(min(100_000, n - i), d, rng, centers) for i in range(0, n, 100_000)]
    )
    query = clustered_vectors(queries, d, rng, centers)
    flat = faiss.IndexFlatIP(d)
    flat.add(base)
    _, truth = flat.search(query, 10)
    rows = []
    start = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = ef_construction
    hnsw.add(base)
    build_s = time.perf_counter() - start
    hnsw.hnsw.efSearch = ef_search
    for name, index, built in (("flat", flat, None), ("hnsw", hnsw, build_s)):
        samples, found = [], []
        for i in range(queries):
            start = time.perf_counter()
            _, ids = index.search(query[i : i + 1], 10)
            samples.append(time.perf_counter() - start)
            found.append(ids[0])
        recall = float(
            np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
        )
        rows.append(
            {
                "index": name,
                "vectors": n,
                "p50_ms": latency(samples).p50_ms,
                "recall_at_10": recall,
                "build_s": built,
                "params": {"M": 32, "efConstruction": ef_construction, "efSearch": ef_search}
                if name == "hnsw"
                else {},
            }
        )
    return rows


def run(smoke: bool) -> dict[str, Any]:
    sizes = [2_000] if smoke else [10_000, 100_000, 1_000_000]
    search = [row for n in sizes for row in search_benchmark(n, queries=20 if smoke else 200)]
    return {
        "build": build_throughput(140 if smoke else 5_000, rounds=1 if smoke else 2),
        "search": search,
        "faiss_threads": faiss.omp_get_max_threads(),
    }
