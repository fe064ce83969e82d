"""How each FAISS index kind is built, written and searched.

``flat`` and ``hnsw`` keep the full vectors inside the FAISS index. ``ivfpq`` keeps about
``pq_m`` bytes a vector: an ``IndexIVFPQ`` (a k-means of the vectors into inverted lists,
each vector's residual product-quantised), trained on a sample and filled in batches. The
full float32 vectors are kept beside it in ``vectors.npy``, streamed to disk while the
index is filled and read row by row when it is searched: a search scans ``ivf_nprobe`` lists
with the compressed scores, then re-scores its best ``rerank`` candidates exactly on the
full vectors, so only those rows are ever read. An emotion filter is an id selector
applied inside the scan, exact for every kind.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import faiss
import numpy as np

from components.settings import IndexSettings

VECTORS_FILE = "vectors.npy"
MIN_IVFPQ_VECTORS = 1000  # the product quantiser's 256 centroids per sub-vector need rows
MAX_IVF_LISTS = 65536
TRAINING_POINTS_PER_LIST = 39  # faiss's k-means warns below this many points a centroid
ADD_BATCH = 100_000


def build_faiss_index(vectors: np.ndarray, settings: IndexSettings) -> faiss.Index:
    """An inner-product index over ``vectors`` (already L2-normalised); id = row position."""
    if vectors.ndim != 2 or vectors.shape[0] == 0:
        raise ValueError("need a non-empty 2-D array of vectors")
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dimension = int(vectors.shape[1])
    if settings.kind == "ivfpq":
        index = train_ivfpq(training_sample(vectors, settings), len(vectors), settings)
        for batch in row_batches(vectors):
            index.add(batch)
        return index
    if settings.kind == "flat":
        index = faiss.IndexFlatIP(dimension)
    else:
        index = faiss.IndexHNSWFlat(dimension, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = settings.hnsw_ef_construction
        index.hnsw.efSearch = settings.hnsw_ef_search
    index.add(vectors)
    return index


def write_faiss_index(index: faiss.Index, path: Path) -> None:
    """``faiss.write_index``'s format, written by Python: a full disk raises an ``OSError``
    with its errno and the file's name (faiss's own writer raises a bare RuntimeError)."""
    data = faiss.serialize_index(index)
    try:
        with path.open("wb") as handle:
            handle.write(memoryview(data))
    except OSError as error:
        error.filename = error.filename or str(path)
        raise


def read_faiss_index(path: Path) -> faiss.Index:
    """A written index, ready to search. An IVF index scans one query's lists on every core
    (``parallel_mode`` 1; faiss's default splits a batch of queries between threads, which
    leaves a single query on one core: 10M vectors, nprobe 32, 6.6 ms -> 3.5 ms on 2 cores)."""
    index = faiss.read_index(str(path))
    if isinstance(index, faiss.IndexIVF):
        index.parallel_mode = 1
    return index


def ivf_lists_for(count: int, training_rows: int, settings: IndexSettings) -> int:
    """``settings.ivf_lists``, or about 4 x sqrt(count) lists, as many as the sample trains."""
    if settings.ivf_lists:
        return settings.ivf_lists
    wanted = int(4 * math.sqrt(count))
    return max(1, min(wanted, MAX_IVF_LISTS, training_rows // TRAINING_POINTS_PER_LIST))


def training_sample(vectors: np.ndarray, settings: IndexSettings, seed: int = 0) -> np.ndarray:
    """Up to ``ivf_train_sample`` rows of ``vectors``, drawn without replacement."""
    if len(vectors) <= settings.ivf_train_sample:
        return vectors
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(vectors), settings.ivf_train_sample, replace=False)
    return vectors[np.sort(rows)]


def train_ivfpq(sample: np.ndarray, count: int, settings: IndexSettings) -> faiss.IndexIVFPQ:
    """An empty, trained ``IndexIVFPQ`` for ``count`` vectors like ``sample``."""
    dimension = int(sample.shape[1])
    if dimension % settings.pq_m:
        raise ValueError(
            f"index.pq_m {settings.pq_m} does not divide the {dimension}-d vectors: pick a "
            f"divisor of {dimension} (e.g. {dimension // 8})"
        )
    if len(sample) < MIN_IVFPQ_VECTORS:
        raise ValueError(
            f"index.kind ivfpq needs at least {MIN_IVFPQ_VECTORS:,} reviews to train its "
            f"codebooks, got {len(sample):,}: use flat (exact) or hnsw for a corpus this small"
        )
    lists = ivf_lists_for(count, len(sample), settings)
    # "np": no polysemous training (a Hamming-filter ordering of the codes this search does
    # not use; it made training 25x slower)
    index = faiss.index_factory(
        dimension, f"IVF{lists},PQ{settings.pq_m}x8np", faiss.METRIC_INNER_PRODUCT
    )
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    index.nprobe = min(settings.ivf_nprobe, lists)
    return index


def row_batches(vectors: np.ndarray, size: int = ADD_BATCH) -> Iterator[np.ndarray]:
    return (vectors[start : start + size] for start in range(0, len(vectors), size))


class ExactVectorsWriter:
    """Streams float32 rows into a ``.npy`` file of a known shape. Plain writes, not a
    memory map, so rows already written do not stay resident in the writing process."""

    def __init__(self, path: Path, count: int, dimension: int) -> None:
        self.path, self.count, self.dimension, self.written = path, count, dimension, 0
        self._handle = path.open("wb")
        header = {"descr": "<f4", "fortran_order": False, "shape": (count, dimension)}
        np.lib.format.write_array_header_1_0(self._handle, header)

    def write(self, rows: np.ndarray) -> None:
        if rows.ndim != 2 or rows.shape[1] != self.dimension:
            raise ValueError(f"rows of shape {rows.shape}, expected (n, {self.dimension})")
        if self.written + len(rows) > self.count:
            raise ValueError(f"more than the {self.count} rows announced for {self.path}")
        self._handle.write(np.ascontiguousarray(rows, dtype="<f4").tobytes())
        self.written += len(rows)

    def close(self) -> None:
        self._handle.close()
        if self.written != self.count:
            raise ValueError(f"{self.path}: {self.written} rows written of {self.count} announced")

    def __enter__(self) -> ExactVectorsWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:
            self._handle.close()


def write_exact_vectors(path: Path, vectors: np.ndarray) -> None:
    with ExactVectorsWriter(path, len(vectors), int(vectors.shape[1])) as writer:
        for batch in row_batches(vectors):
            writer.write(batch)


class ExactVectorsFile:
    """A published ``vectors.npy``, read a row at a time with ``pread``: never memory-mapped,
    so the rows a search reads do not stay resident in the process (a mapping keeps every
    page it touched, and the pages around it, in the process's resident set). Safe to share
    between threads."""

    def __init__(self, path: Path, expected_shape: tuple[int, int] | None = None) -> None:
        with path.open("rb") as handle:
            np.lib.format.read_magic(handle)
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(handle)
            self._offset = handle.tell()
        if dtype != np.dtype("<f4") or fortran_order or len(shape) != 2:
            raise ValueError(f"{path} is not a C-ordered 2-D float32 array")
        self.shape: tuple[int, int] = (int(shape[0]), int(shape[1]))
        if expected_shape is not None and self.shape != expected_shape:
            raise ValueError(f"{path} holds {self.shape} vectors, expected {expected_shape}")
        self._row_bytes = self.shape[1] * 4
        if path.stat().st_size != self._offset + self.shape[0] * self._row_bytes:
            raise ValueError(f"{path} is shorter or longer than its {self.shape} header says")
        self.path = path
        self._fd = os.open(path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, ids: np.ndarray) -> np.ndarray:
        """Rows ``ids`` (in that order), one ``pread`` each. Every row is announced to the
        kernel first (``POSIX_FADV_WILLNEED``), so the reads of rows not in the page cache
        go to the disk together instead of one after another (200 rows from a cold 14 GiB
        file: about 2 ms instead of 16 ms)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        out = np.empty((len(ids), self.shape[1]), dtype=np.float32)
        view = memoryview(out).cast("B")
        size = self._row_bytes
        offsets = [self._offset + i * size for i in ids.tolist()]
        if len(offsets) > 1:
            for offset in offsets:
                os.posix_fadvise(self._fd, offset, size, os.POSIX_FADV_WILLNEED)
        for j, offset in enumerate(offsets):
            os.preadv(self._fd, [view[j * size : (j + 1) * size]], offset)
        return out

    def read_all(self) -> np.ndarray:
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            return np.fromfile(handle, dtype="<f4").reshape(self.shape)

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
            self._fd = None


def search_reranked(
    index: faiss.IndexIVF,
    vectors: np.ndarray | ExactVectorsFile,
    query: np.ndarray,
    k: int,
    rerank: int,
    selector: faiss.IDSelector | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` best (scores, ids, full vectors) for one query (shape (1, d)): the IVF-PQ
    scan's best ``max(k, rerank)`` candidates, re-scored on their full vectors (``rerank``
    0: the compressed scores as they are). Each candidate's row is read once."""
    params = faiss.SearchParametersIVF()
    params.nprobe = index.nprobe
    if selector is not None:
        params.sel = selector
    scores, ids = index.search(query, max(k, rerank), params=params)
    found = ids[0] >= 0
    scores, ids = scores[0][found], ids[0][found]
    if rerank == 0:
        return scores[:k], ids[:k], np.asarray(vectors[ids[:k]], dtype=np.float32)
    ids = np.sort(ids)  # rows read in file order
    rows = np.asarray(vectors[ids], dtype=np.float32)
    exact = rows @ query[0]
    best = np.argsort(-exact, kind="stable")[:k]
    return exact[best], ids[best], rows[best]
