"""``index.kind: ivfpq`` at 1 M and 10 M review vectors (384-d, clustered as in
``bench_index``) on one machine.

Each size runs in two fresh processes, so each one's resident memory is its own:
``build`` draws the vectors in batches of 100,000 (never all of them at once), trains on
a sample, fills the index and streams the full vectors to ``vectors.npy`` with the
components' code, and keeps the exact top 10 of every query (all reviews, and the
query's emotion only) batch by batch; ``search`` loads the index and opens the vectors
file as the product does (rows read with ``pread``), then times one query at a time (the
emotion filter is an ``IDSelectorBitmap``, as in
:class:`~components.index.search.ReviewSearcher`).

    python -m benchmarks.bench_ivfpq 1000000     # one size, prints JSON
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import psutil

from benchmarks.bench_index import clustered_vectors
from benchmarks.harness import latency
from components.emotions import EMOTIONS
from components.index.kinds import (
    VECTORS_FILE,
    ExactVectorsFile,
    ExactVectorsWriter,
    read_faiss_index,
    search_reranked,
    train_ivfpq,
)
from components.settings import IndexSettings

DIMENSION = 384
BATCH = 100_000
K = 10


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def _peak_rss_mb() -> float:
    """This process's own peak resident memory. Linux's ``ru_maxrss`` survives ``exec``: a
    phase started by a big parent (``make bench`` after the 1M flat index) reported the
    parent's 7.8 GB; the kernel's ``VmHWM`` belongs to this process image alone."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _centres() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((1000, DIMENSION), dtype=np.float32)


def _merge_top(
    best: tuple[np.ndarray, np.ndarray], scores: np.ndarray, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The per-row top ``K`` of (kept, new) scores with their ids."""
    all_scores = np.concatenate([best[0], scores], axis=1)
    all_ids = np.concatenate([best[1], ids], axis=1)
    top = np.argpartition(-all_scores, K - 1, axis=1)[:, :K]
    return np.take_along_axis(all_scores, top, 1), np.take_along_axis(all_ids, top, 1)


def build(folder: Path, n: int, queries: int, settings: IndexSettings) -> dict[str, Any]:
    centres = _centres()
    rng = np.random.default_rng(1)
    query = clustered_vectors(queries, DIMENSION, rng, centres)
    query_emotion = rng.integers(0, len(EMOTIONS), queries).astype(np.uint8)
    started = time.perf_counter()
    sample = clustered_vectors(min(settings.ivf_train_sample, n), DIMENSION, rng, centres)
    index = train_ivfpq(sample, n, settings)
    del sample
    trained_s = time.perf_counter() - started
    empty = (np.full((queries, K), -np.inf, np.float32), np.full((queries, K), -1, np.int64))
    exact, exact_filtered = empty, (empty[0].copy(), empty[1].copy())
    labels = np.empty(n, dtype=np.uint8)
    truth_s = 0.0
    with ExactVectorsWriter(folder / VECTORS_FILE, n, DIMENSION) as writer:
        for start in range(0, n, BATCH):
            batch = clustered_vectors(min(BATCH, n - start), DIMENSION, rng, centres)
            batch_labels = rng.integers(0, len(EMOTIONS), len(batch)).astype(np.uint8)
            labels[start : start + len(batch)] = batch_labels
            index.add(batch)
            writer.write(batch)
            truth_started = time.perf_counter()  # the exact answers, not part of the build
            scores = query @ batch.T
            ids = np.broadcast_to(np.arange(start, start + len(batch)), scores.shape)
            exact = _merge_top(exact, scores, ids)
            scores[query_emotion[:, None] != batch_labels[None, :]] = -np.inf
            exact_filtered = _merge_top(exact_filtered, scores, ids)
            truth_s += time.perf_counter() - truth_started
    build_s = time.perf_counter() - started - truth_s
    faiss.write_index(index, str(folder / "index.faiss"))
    np.save(folder / "labels.npy", labels)
    np.savez(
        folder / "queries.npz", query=query, emotion=query_emotion,
        exact=exact[1], exact_filtered=exact_filtered[1],
    )  # fmt: skip
    return {
        "build_s": build_s,
        "train_s": trained_s,
        "lists": int(index.nlist),
        "build_peak_rss_mb": _peak_rss_mb(),
        "index_file_mb": (folder / "index.faiss").stat().st_size / 2**20,
        "vectors_file_mb": (folder / VECTORS_FILE).stat().st_size / 2**20,
    }


def search(folder: Path, settings: IndexSettings) -> dict[str, Any]:
    before = _rss_mb()
    index = read_faiss_index(folder / "index.faiss")
    index.nprobe = settings.ivf_nprobe
    vectors = ExactVectorsFile(folder / VECTORS_FILE)
    labels = np.load(folder / "labels.npy")
    selectors = [
        faiss.IDSelectorBitmap(np.packbits(labels == e, bitorder="little"))
        for e in range(len(EMOTIONS))
    ]
    del labels
    stored = np.load(folder / "queries.npz")
    query, query_emotion = stored["query"], stored["emotion"]
    rows: dict[str, Any] = {"load_rss_mb": _rss_mb() - before}
    for name, truth, filtered in (
        ("all", stored["exact"], False),
        ("emotion", stored["exact_filtered"], True),
    ):
        samples, recalls = [], []
        for i in range(len(query)):
            selector = selectors[int(query_emotion[i])] if filtered else None
            started = time.perf_counter()
            one = query[i : i + 1]
            _, ids, _ = search_reranked(index, vectors, one, K, settings.rerank, selector)
            samples.append(time.perf_counter() - started)
            recalls.append(len(set(ids.tolist()) & set(truth[i].tolist())) / K)
        timing = latency(samples[5:])  # the first few warm the lists' pages
        rows[name] = {
            "p50_ms": timing.p50_ms,
            "p95_ms": timing.p95_ms,
            "recall_at_10": float(np.mean(recalls)),
        }
    rows["search_rss_mb"] = _rss_mb()
    rows["search_peak_rss_mb"] = _peak_rss_mb()
    return rows


def _settings(smoke: bool) -> IndexSettings:
    if smoke:
        return IndexSettings(kind="ivfpq", ivf_train_sample=2_000)
    return IndexSettings(kind="ivfpq")


def _phase(argv: list[str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.bench_ivfpq", *argv]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_size(n: int, queries: int, smoke: bool) -> dict[str, Any]:
    """Build and search ``n`` vectors, each phase in its own process."""
    settings = _settings(smoke)
    with tempfile.TemporaryDirectory(prefix="emoreview-bench-ivfpq-") as folder:
        flags = ["--folder", folder, "--queries", str(queries)] + (["--smoke"] if smoke else [])
        built = _phase([str(n), "--phase", "build", *flags])
        searched = _phase([str(n), "--phase", "search", *flags])
    return {
        "vectors": n,
        "params": {
            "lists": built.pop("lists"),
            "pq_m": settings.pq_m,
            "nprobe": settings.ivf_nprobe,
            "rerank": settings.rerank,
            "train_sample": min(settings.ivf_train_sample, n),
        },
        **built,
        **searched,
    }


def run(smoke: bool) -> dict[str, Any]:
    sizes = [10_000] if smoke else [1_000_000, 10_000_000]
    return {"rows": [measure_size(n, 20 if smoke else 200, smoke) for n in sizes]}


def target_rows(result: dict[str, Any]) -> list[tuple[str, float, str, bool]]:
    """Issue 17's 10M bars (when the run measured 10M): p50, recall@10, resident memory."""
    rows = []
    for row in (r for r in result["rows"] if r["vectors"] == 10_000_000):
        p50 = max(row["all"]["p50_ms"], row["emotion"]["p50_ms"])
        recall = min(row["all"]["recall_at_10"], row["emotion"]["recall_at_10"])
        memory_gb = row["search_peak_rss_mb"] / 1024
        rows += [
            ("10M ivfpq search p50, all or one emotion (ms)", p50, "<= 5", p50 <= 5),
            ("10M ivfpq recall@10, all or one emotion", recall, ">= 0.90", recall >= 0.90),
            ("10M ivfpq search process resident memory (GB)", memory_gb, "<= 4", memory_gb <= 4),
        ]
    return rows


def table(result: dict[str, Any]) -> str:
    lines = [
        "| ivfpq vectors | lists, pq_m, nprobe, rerank | build s (train s) | build peak RSS "
        "MiB | index MiB + vectors.npy MiB | search p50 / p95 ms, recall@10: all | one "
        "emotion | search RSS MiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in result["rows"]:
        p = row["params"]
        every, one = row["all"], row["emotion"]
        lines.append(
            f"| {row['vectors']:,} | {p['lists']}, {p['pq_m']}, {p['nprobe']}, {p['rerank']} | "
            f"{row['build_s']:.0f} ({row['train_s']:.0f}) | {row['build_peak_rss_mb']:.0f} | "
            f"{row['index_file_mb']:.0f} + {row['vectors_file_mb']:.0f} | "
            f"{every['p50_ms']:.2f} / {every['p95_ms']:.2f}, {every['recall_at_10']:.3f} | "
            f"{one['p50_ms']:.2f} / {one['p95_ms']:.2f}, {one['recall_at_10']:.3f} | "
            f"{row['search_peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, help="review vectors")
    parser.add_argument("--phase", choices=["build", "search"], help="one phase (internal)")
    parser.add_argument("--folder", type=Path, help="where the phases keep the index")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    settings = _settings(args.smoke)
    if args.phase == "build":
        out = build(args.folder, args.n, args.queries, settings)
    elif args.phase == "search":
        out = search(args.folder, settings)
    else:
        out = measure_size(args.n, args.queries, args.smoke)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
