"""Index store: round trip, manifest checks, atomic publication."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.index.build import assemble_review_index
from components.index.search import ReviewSearcher, mmr_select
from components.index.store import (
    IndexBusyError,
    IndexCorruptError,
    IndexManifest,
    IndexMismatchError,
    IndexNotFoundError,
    IndexVersionGoneError,
    StaleIndexBuildError,
    StoredIndex,
    current_version,
    list_versions,
    load_index,
    write_index_version,
)
from components.settings import IndexSettings, RetrievalSettings


class BagOfWordsEmbedder:
    """A small deterministic embedder (hashed bag of words) for storage tests."""

    def __init__(self, dimension: int = 64, model_id: str = "test/bag-of-words") -> None:
        self.dimension = dimension
        self.model_id = model_id

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension] += 1.0
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


def publish_review_index(
    stored: StoredIndex,
    root: Path,
    settings: IndexSettings,
    extra_files: dict[str, Callable[[Path], None]] | None = None,
) -> IndexManifest:
    return write_index_version(
        root, stored.index, stored.metadata, stored.manifest, extra_files=extra_files,
        keep_versions=settings.keep_versions, lock_timeout_s=settings.lock_timeout_s,
    )  # fmt: skip


def build_review_index(
    reviews: pd.DataFrame,
    sha: str,
    embedder: BagOfWordsEmbedder,
    settings: IndexSettings,
    root: Path,
    extra_files: dict[str, Callable[[Path], None]] | None = None,
    progress: bool = False,
) -> IndexManifest:
    """The store's part of a build (the analysis build adds sentiments and answers)."""
    stored = assemble_review_index(reviews, sha, embedder, settings, progress=progress)
    return publish_review_index(stored, root, settings, extra_files)


@pytest.fixture
def small_reviews(reviews_700: pd.DataFrame) -> pd.DataFrame:
    return reviews_700.groupby("emotion").head(10).reset_index(drop=True)


def test_round_trip(tmp_path: Path, small_reviews: pd.DataFrame) -> None:
    embedder = BagOfWordsEmbedder()
    manifest = build_review_index(
        small_reviews, "a" * 64, embedder, IndexSettings(), tmp_path, progress=False
    )
    stored = load_index(tmp_path, expected_embedder=embedder.model_id, expected_dimension=64)
    assert stored.version == manifest.version == current_version(tmp_path)
    assert stored.index.ntotal == len(small_reviews) == manifest.count
    pd.testing.assert_frame_equal(stored.metadata, small_reviews)
    assert set(manifest.files) == {"index.faiss", "reviews.parquet"}
    assert manifest.emotion_counts["angry"] == 10
    vector = embedder.encode([small_reviews["text"].iloc[3]])[0]
    assert np.allclose(stored.index.reconstruct(3), vector, atol=1e-6)


def test_hnsw_round_trip(tmp_path: Path, small_reviews: pd.DataFrame) -> None:
    embedder = BagOfWordsEmbedder()
    build_review_index(
        small_reviews,
        "a" * 64,
        embedder,
        IndexSettings(kind="hnsw", hnsw_m=8),
        tmp_path,
        progress=False,
    )
    stored = load_index(tmp_path)
    searcher = ReviewSearcher(stored, embedder, RetrievalSettings(k=3))
    hits = searcher.search(small_reviews["text"].iloc[5], emotion=small_reviews["emotion"].iloc[5])
    assert hits[0].position == 5 and hits[0].score == pytest.approx(1.0, abs=1e-5)


def test_manifest_mismatch_is_refused(tmp_path: Path, small_reviews: pd.DataFrame) -> None:
    build_review_index(
        small_reviews, "a" * 64, BagOfWordsEmbedder(), IndexSettings(), tmp_path, progress=False
    )
    with pytest.raises(IndexMismatchError, match="built with embedder 'test/bag-of-words'"):
        load_index(tmp_path, expected_embedder="sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(IndexMismatchError, match="64-d vectors but the embedder makes 384-d"):
        load_index(tmp_path, expected_dimension=384)
    with pytest.raises(IndexMismatchError, match="makes 32-d vectors"):
        ReviewSearcher(load_index(tmp_path), BagOfWordsEmbedder(dimension=32), RetrievalSettings())


def test_missing_index_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="emoreview index build"):
        load_index(tmp_path)


def test_tampered_file_is_refused(tmp_path: Path, small_reviews: pd.DataFrame) -> None:
    build_review_index(
        small_reviews, "a" * 64, BagOfWordsEmbedder(), IndexSettings(), tmp_path, progress=False
    )
    stored = load_index(tmp_path)
    metadata = stored.directory / "reviews.parquet"
    small_reviews.head(5).to_parquet(metadata, index=False)
    with pytest.raises(IndexCorruptError, match="checksum"):
        load_index(tmp_path)


def test_half_written_version_is_never_picked_up(
    tmp_path: Path, small_reviews: pd.DataFrame
) -> None:
    embedder = BagOfWordsEmbedder()
    first = build_review_index(
        small_reviews, "a" * 64, embedder, IndexSettings(), tmp_path, progress=False
    )
    # A crashed build leaves a staging folder and a version folder without a manifest.
    (tmp_path / "versions" / ".staging-deadbeef").mkdir()
    (tmp_path / "versions" / ".staging-deadbeef" / "index.faiss").write_bytes(b"partial")
    (tmp_path / "versions" / "99999999T999999Z-partial").mkdir()
    assert list_versions(tmp_path) == [first.version]
    assert load_index(tmp_path).version == first.version


def test_failed_build_keeps_previous_version(tmp_path: Path, small_reviews: pd.DataFrame) -> None:
    embedder = BagOfWordsEmbedder()
    first = build_review_index(
        small_reviews, "a" * 64, embedder, IndexSettings(), tmp_path, progress=False
    )

    def explode(path: Path) -> None:
        path.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        build_review_index(
            small_reviews,
            "b" * 64,
            embedder,
            IndexSettings(),
            tmp_path,
            extra_files={"answers.json": explode},
            progress=False,
        )
    assert current_version(tmp_path) == first.version
    assert list_versions(tmp_path) == [first.version]
    assert not [p for p in (tmp_path / "versions").iterdir() if p.name.startswith(".staging")]


def test_old_versions_are_pruned(tmp_path: Path, small_reviews: pd.DataFrame) -> None:
    embedder = BagOfWordsEmbedder()
    names = [
        build_review_index(
            small_reviews,
            f"{i}" * 64,
            embedder,
            IndexSettings(keep_versions=2),
            tmp_path,
            progress=False,
        ).version
        for i in range(3)
    ]
    assert list_versions(tmp_path) == names[1:]
    assert current_version(tmp_path) == names[-1]


def test_emotion_restriction_is_exact(tmp_path: Path, small_reviews: pd.DataFrame) -> None:
    embedder = BagOfWordsEmbedder()
    build_review_index(small_reviews, "a" * 64, embedder, IndexSettings(), tmp_path, progress=False)
    searcher = ReviewSearcher(load_index(tmp_path), embedder, RetrievalSettings(k=10, fetch_k=10))
    # A query that matches happy reviews best still returns all 10 fear reviews when asked.
    hits = searcher.search("excellent fantastic love it", emotion="fear", k=10)
    assert len(hits) == 10 and {h.review["emotion"] for h in hits} == {"fear"}


def test_mmr_prefers_diverse_results() -> None:
    query = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    candidates = np.array(
        [[0.95, 0.31, 0.0], [0.95, 0.31, 0.0], [0.9, 0.0, 0.43]], dtype=np.float32
    )
    relevance = candidates @ query
    assert mmr_select(query, candidates, relevance, 2, lam=1.0) == [0, 1]
    assert mmr_select(query, candidates, relevance, 2, lam=0.5) == [0, 2]
    assert mmr_select(query, candidates, relevance, 3, lam=1.0, keys=["a", "a", "b"]) == [0, 2]


# ----------------------------------------------------------------------------- concurrency


def test_pruning_always_keeps_the_two_newest(tmp_path: Path, small_reviews: pd.DataFrame) -> None:
    embedder = BagOfWordsEmbedder()
    names = [
        build_review_index(
            small_reviews, f"{i}" * 64, embedder, IndexSettings(keep_versions=1), tmp_path,
            progress=False,
        ).version
        for i in range(3)
    ]  # fmt: skip
    assert list_versions(tmp_path) == names[1:], "the version current named a moment ago went"


def test_an_older_build_never_replaces_a_newer_current(
    tmp_path: Path, small_reviews: pd.DataFrame
) -> None:
    embedder = BagOfWordsEmbedder()
    settings = IndexSettings()
    older = assemble_review_index(small_reviews, "1" * 64, embedder, settings, progress=False)
    newer = assemble_review_index(small_reviews, "2" * 64, embedder, settings, progress=False)
    publish_review_index(newer, tmp_path, settings)
    with pytest.raises(StaleIndexBuildError, match="newer"):
        publish_review_index(older, tmp_path, settings)
    assert current_version(tmp_path) == newer.version
    assert list_versions(tmp_path) == [newer.version]
    assert not [p for p in (tmp_path / "versions").iterdir() if p.name.startswith(".")]


def test_a_build_waits_for_the_publish_lock_then_fails_clearly(
    tmp_path: Path, small_reviews: pd.DataFrame
) -> None:
    import subprocess
    import sys

    tmp_path.mkdir(exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable, "-c",
            "import sys, time; from filelock import FileLock\n"
            f"with FileLock({str(tmp_path / '.publish.lock')!r}):\n"
            "    print('held', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(IndexBusyError, match="another index build"):
            build_review_index(
                small_reviews, "a" * 64, BagOfWordsEmbedder(),
                IndexSettings(lock_timeout_s=0.5), tmp_path, progress=False,
            )  # fmt: skip
        assert list_versions(tmp_path) == []
    finally:
        holder.kill()
        holder.wait()
    manifest = build_review_index(
        small_reviews, "a" * 64, BagOfWordsEmbedder(), IndexSettings(lock_timeout_s=0.5),
        tmp_path, progress=False,
    )  # fmt: skip
    assert current_version(tmp_path) == manifest.version


def test_staging_left_by_a_killed_build_is_cleaned_by_the_next(
    tmp_path: Path, small_reviews: pd.DataFrame
) -> None:
    left = tmp_path / "versions" / ".staging-0123456789abcdef"
    left.mkdir(parents=True)
    (left / "index.faiss").write_bytes(b"half written")
    build_review_index(
        small_reviews, "a" * 64, BagOfWordsEmbedder(), IndexSettings(), tmp_path, progress=False
    )
    assert not left.exists()


def test_a_version_never_made_current_is_removed_by_the_next_build(
    tmp_path: Path, small_reviews: pd.DataFrame
) -> None:
    """A build killed between its rename and the pointer switch leaves a complete version
    newer than ``current``: nothing reads it, and the next publish removes it."""
    embedder, settings = BagOfWordsEmbedder(), IndexSettings()
    first = build_review_index(small_reviews, "a" * 64, embedder, settings, tmp_path).version
    orphan = build_review_index(small_reviews, "b" * 64, embedder, settings, tmp_path).version
    (tmp_path / "current").write_text(first + "\n")  # the pointer never switched
    newest = build_review_index(small_reviews, "c" * 64, embedder, settings, tmp_path).version
    assert list_versions(tmp_path) == [first, newest]
    assert orphan not in list_versions(tmp_path)


def test_a_version_pruned_while_loading_is_a_clear_retryable_error(
    tmp_path: Path, small_reviews: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from components.index import store

    build_review_index(
        small_reviews, "a" * 64, BagOfWordsEmbedder(), IndexSettings(), tmp_path, progress=False
    )
    real_read = store.read_manifest

    def read_then_pruned(directory: Path):
        manifest = real_read(directory)
        shutil.rmtree(directory)  # a newer build pruned it right after we resolved it
        return manifest

    monkeypatch.setattr(store, "read_manifest", read_then_pruned)
    with pytest.raises(IndexVersionGoneError, match="retry") as caught:
        load_index(tmp_path)
    assert caught.value.retryable


def test_a_damaged_current_version_is_refused_by_name_and_rolled_back(
    tmp_path: Path, small_reviews: pd.DataFrame
) -> None:
    from components.index.store import rollback_index
    from components.settings import Settings
    from components.vision.prediction import ClassifierSource
    from serving.package import package_archives

    workspace = Settings.load(None, {"workspace": str(tmp_path / "ws")})
    root = workspace.paths.index_root
    embedder, settings = BagOfWordsEmbedder(), IndexSettings()
    first = build_review_index(small_reviews, "a" * 64, embedder, settings, root)
    second = build_review_index(small_reviews.head(40), "b" * 64, embedder, settings, root)
    damaged = root / "versions" / second.version / "index.faiss"
    damaged.write_bytes(damaged.read_bytes()[:100])  # truncated
    with pytest.raises(IndexCorruptError, match="index.faiss"):
        load_index(root)
    source = ClassifierSource(tmp_path / "w.pt", version="1", sha256="0")
    with pytest.raises(IndexCorruptError, match="index.faiss"):
        package_archives(workspace, source)  # what `serve reload` packages
    assert not list(workspace.paths.serving_dir.rglob("*.mar")), "nothing packaged"

    assert rollback_index(root) == (second.version, first.version)
    assert load_index(root).version == first.version
    with pytest.raises(IndexNotFoundError, match="no intact index version older"):
        rollback_index(root)
    with pytest.raises(IndexCorruptError, match="index.faiss"):
        rollback_index(root, to=second.version)
    with pytest.raises(IndexNotFoundError, match="not found"):
        rollback_index(root, to="19990101T000000000000Z-00000000")
    assert load_index(root).version == first.version
