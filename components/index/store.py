"""The versioned, pickle-free FAISS index of reviews.

Layout under the index root::

    versions/<version>/index.faiss     faiss's index format (inner product, normalised vectors)
    versions/<version>/reviews.parquet review metadata, row i = vector id i
    versions/<version>/manifest.json   embedder, dimension, metric, count, data sha256, ...
    versions/<version>/vectors.npy     ivfpq only: the full vectors, for exact re-ranking
    current                            name of the version readers use

A build writes everything into a hidden staging folder, renames it into ``versions/`` and
only then switches ``current`` with an atomic ``os.replace``: a reader never sees a
half-written version, and a failed build leaves the previous one in place.

Publishing holds a file lock (``.publish.lock`` under the root), so two builds publish one
after the other; ``current`` never moves back to a version older than the one it names
(version names start with their build's UTC time). Staging folders left by a killed build
are removed by the next publish, and pruning never removes the two newest versions, so a
reader that resolved ``current`` a moment ago still finds its version.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np
import pandas as pd
from filelock import FileLock, Timeout
from pydantic import BaseModel, Field

from components.errors import EmoreviewError
from components.files import write_text_atomic
from components.hashing import file_sha256
from components.index.kinds import (
    VECTORS_FILE,
    ExactVectorsFile,
    read_faiss_index,
    write_exact_vectors,
    write_faiss_index,
)
from components.settings import IndexKind

log = logging.getLogger(__name__)

INDEX_FILE = "index.faiss"
METADATA_FILE = "reviews.parquet"
MANIFEST_FILE = "manifest.json"
CURRENT_POINTER = "current"
VERSIONS_DIR = "versions"
FORMAT_VERSION = 1
PUBLISH_LOCK = ".publish.lock"
STAGING_PREFIX = ".staging-"
ALWAYS_KEPT = 2  # the newest versions pruning never removes (current and the one before)


class IndexManifest(BaseModel):
    """What an index version holds and how it was made."""

    format_version: int = FORMAT_VERSION
    version: str
    embedder: str
    dimension: int
    metric: Literal["inner_product"] = "inner_product"
    kind: IndexKind
    count: int
    data_sha256: str = Field(description="sha256 of the reviews file the index was built from")
    created_at: datetime
    files: dict[str, str] = Field(default_factory=dict, description="file name -> sha256")
    params: dict[str, Any] = Field(default_factory=dict)
    emotion_counts: dict[str, int] = Field(default_factory=dict)
    extras: dict[str, Any] = Field(default_factory=dict, description="Added by later stages")


class IndexStoreError(EmoreviewError, RuntimeError):
    """Base for index store errors."""


class IndexNotFoundError(IndexStoreError):
    """No index has been built under the given root."""


class IndexMismatchError(IndexStoreError):
    """The stored index was built with another embedder or dimension than requested."""


class IndexCorruptError(IndexStoreError):
    """An index version's files do not match its manifest."""


class IndexVersionGoneError(IndexNotFoundError):
    """The version vanished while it was being read (pruned by a newer build): retryable."""

    retryable = True


class IndexBusyError(IndexStoreError):
    """Another build held the publish lock for longer than the wait allowed."""


class StaleIndexBuildError(IndexStoreError):
    """A newer version was published while this build ran: this one is not made current."""


def publish_lock(root: Path, timeout_s: float) -> FileLock:
    """The cross-process lock every publish under ``root`` holds."""
    root.mkdir(parents=True, exist_ok=True)
    return FileLock(str(root / PUBLISH_LOCK), timeout=timeout_s, is_singleton=False)


def remove_stale_staging(versions: Path) -> list[str]:
    """Delete staging folders of builds that died; call with the publish lock held."""
    stale = [p for p in versions.iterdir() if p.is_dir() and p.name.startswith(STAGING_PREFIX)]
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)
    if stale:
        log.info("removed %d staging folder(s) left by killed builds", len(stale))
    return [p.name for p in stale]


def remove_abandoned_versions(root: Path) -> list[str]:
    """Delete versions newer than ``current``: a build killed between its rename and the
    pointer switch left them, or ``rollback`` moved away from them. Nothing reads them;
    call with the publish lock held."""
    try:
        current = current_version(root)
    except IndexNotFoundError:
        return []
    abandoned = [v for v in list_versions(root) if v > current]
    for version in abandoned:
        shutil.rmtree(root / VERSIONS_DIR / version, ignore_errors=True)
    if abandoned:
        log.info("removed index version(s) never or no longer current: %s", abandoned)
    return abandoned


def new_version_name(data_sha256: str, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-{data_sha256[:8]}"


def write_index_version(
    root: Path,
    index: faiss.Index,
    metadata: pd.DataFrame,
    manifest: IndexManifest,
    extra_files: dict[str, Callable[[Path], None]] | None = None,
    keep_versions: int = 5,
    lock_timeout_s: float = 600.0,
    vectors: np.ndarray | None = None,
) -> IndexManifest:
    """Publish a new version atomically and point ``current`` at it.

    ``extra_files`` maps a file name to a writer that creates it inside the version folder
    (later stages store precomputed answers this way); each is checksummed in the manifest.
    An ``ivfpq`` index needs its full ``vectors`` (stored beside it for exact re-ranking).
    Waits up to ``lock_timeout_s`` for another publish under ``root`` to finish.
    """
    if index.ntotal != len(metadata):
        raise ValueError(f"index holds {index.ntotal} vectors but metadata {len(metadata)} rows")
    if manifest.kind == "ivfpq":
        if vectors is None or len(vectors) != index.ntotal:
            raise ValueError("an ivfpq index is published with its full vectors, one per row")
        full = vectors
        extra_files = {**(extra_files or {}), VECTORS_FILE: lambda p: write_exact_vectors(p, full)}
    try:
        with publish_lock(root, lock_timeout_s):
            return _publish_locked(root, index, metadata, manifest, extra_files, keep_versions)
    except Timeout as error:
        raise IndexBusyError(
            f"another index build is publishing under {root} (lock {root / PUBLISH_LOCK} held "
            f"for over {lock_timeout_s:g} s): try again when it has finished"
        ) from error


def _publish_locked(
    root: Path,
    index: faiss.Index,
    metadata: pd.DataFrame,
    manifest: IndexManifest,
    extra_files: dict[str, Callable[[Path], None]] | None,
    keep_versions: int,
) -> IndexManifest:
    versions = root / VERSIONS_DIR
    versions.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(versions)
    remove_abandoned_versions(root)
    newest = (list_versions(root) or [""])[-1]
    if newest > manifest.version:
        raise StaleIndexBuildError(
            f"index version {newest} was published while this build ({manifest.version}) ran: "
            "it is newer, so this build was not published; run the build again to index the "
            "latest reviews"
        )
    staging = versions / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        write_faiss_index(index, staging / INDEX_FILE)
        metadata.reset_index(drop=True).to_parquet(staging / METADATA_FILE, index=False)
        for name, writer in (extra_files or {}).items():
            writer(staging / name)
        files = {
            p.name: file_sha256(p) for p in sorted(staging.iterdir()) if p.name != MANIFEST_FILE
        }
        final_manifest = manifest.model_copy(update={"files": files})
        write_text_atomic(staging / MANIFEST_FILE, final_manifest.model_dump_json(indent=2))
        staging.rename(versions / manifest.version)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    write_text_atomic(root / CURRENT_POINTER, manifest.version + "\n")
    log.info("index version %s published (%d vectors)", manifest.version, index.ntotal)
    prune_versions(root, keep=keep_versions)
    return final_manifest


def list_versions(root: Path) -> list[str]:
    """Complete versions (those with a manifest), oldest first. Staging folders are skipped."""
    folder = root / VERSIONS_DIR
    if not folder.is_dir():
        return []
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST_FILE).is_file()
    )


def current_version(root: Path) -> str:
    """The version ``current`` points at."""
    pointer = root / CURRENT_POINTER
    if not pointer.is_file():
        raise IndexNotFoundError(f"no index under {root} (run `emoreview index build` first)")
    return pointer.read_text(encoding="utf-8").strip()


def prune_versions(root: Path, keep: int) -> list[str]:
    """Delete the oldest complete versions beyond ``keep``; never the current one, and never
    the two newest (a reader may have resolved the previous ``current`` a moment ago)."""
    current = current_version(root)
    versions = list_versions(root)
    keep = max(keep, ALWAYS_KEPT)
    doomed = [v for v in versions[: max(0, len(versions) - keep)] if v != current]
    for name in doomed:
        shutil.rmtree(root / VERSIONS_DIR / name, ignore_errors=True)
    return doomed


@dataclass(frozen=True)
class StoredIndex:
    """One loaded index version: the FAISS index, its review rows and its manifest."""

    index: faiss.Index
    metadata: pd.DataFrame
    manifest: IndexManifest
    directory: Path | None = None  # None while assembled in memory, before publishing
    vectors: np.ndarray | ExactVectorsFile | None = None  # ivfpq: the full vectors

    @property
    def version(self) -> str:
        return self.manifest.version

    def vectors_of(self, ids: np.ndarray | None = None) -> np.ndarray:
        """The full stored vectors of rows ``ids`` (default: all), float32, one row each."""
        if isinstance(self.vectors, ExactVectorsFile) and ids is None:
            return self.vectors.read_all()
        if ids is None:
            ids = np.arange(self.index.ntotal)
        if self.vectors is not None:
            return np.asarray(self.vectors[ids], dtype=np.float32)
        return np.asarray(self.index.reconstruct_batch(ids), dtype=np.float32)


def read_manifest(directory: Path) -> IndexManifest:
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise IndexCorruptError(f"{directory} has no {MANIFEST_FILE}: not a complete index version")
    try:
        return IndexManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise IndexCorruptError(f"unreadable manifest {path}: {error}") from error


def verify_files(directory: Path, manifest: IndexManifest | None = None) -> IndexManifest:
    """Check every file of a published version against its manifest's sha256; raise
    :class:`IndexCorruptError` naming the first missing, truncated or altered file."""
    manifest = manifest or read_manifest(directory)
    for file_name, digest in manifest.files.items():
        path = directory / file_name
        if not path.is_file() or file_sha256(path) != digest:
            raise IndexCorruptError(
                f"{path} is missing or does not match its manifest checksum (corrupted or "
                "truncated): `emoreview index rollback` returns to the previous version"
            )
    return manifest


def rollback_index(
    root: Path, to: str | None = None, lock_timeout_s: float = 600.0
) -> tuple[str, str]:
    """Point ``current`` back at ``to`` (default: the newest intact version older than
    current); returns (from, to). The target's files are verified first."""
    with publish_lock(root, lock_timeout_s):
        current = current_version(root)
        versions = list_versions(root)
        if to is not None:
            if to not in versions:
                raise IndexNotFoundError(f"index version {to!r} not found under {root}")
            candidates = [to]
        else:
            candidates = [v for v in reversed(versions) if v < current]
        for candidate in candidates:
            try:
                verify_files(root / VERSIONS_DIR / candidate)
            except IndexCorruptError:
                if to is not None:
                    raise
                log.warning("index version %s is damaged too: skipped", candidate)
                continue
            write_text_atomic(root / CURRENT_POINTER, candidate + "\n")
            log.info("index current rolled back from %s to %s", current, candidate)
            return current, candidate
    raise IndexNotFoundError(
        f"no intact index version older than {current} under {root}: rebuild the index "
        "(`emoreview index build`)"
    )


def load_index(
    root: Path,
    version: str | None = None,
    expected_embedder: str | None = None,
    expected_dimension: int | None = None,
    verify_checksums: bool = True,
) -> StoredIndex:
    """Load ``version`` (default: current), refusing one that does not match expectations.

    A version that disappears while it is read (a newer build pruned it) raises the
    retryable :class:`IndexVersionGoneError`, never a raw ``FileNotFoundError``.
    """
    name = version or current_version(root)
    directory = root / VERSIONS_DIR / name
    if not directory.is_dir():
        raise IndexNotFoundError(f"index version {name!r} not found under {root}")
    try:
        return _load_version(
            directory, name, expected_embedder, expected_dimension, verify_checksums
        )
    except (FileNotFoundError, IndexCorruptError, RuntimeError) as error:
        if directory.is_dir():
            raise
        raise IndexVersionGoneError(
            f"index version {name!r} was removed while it was being loaded (a newer build "
            "pruned it): retry to load the current version"
        ) from error


def _load_version(
    directory: Path,
    name: str,
    expected_embedder: str | None,
    expected_dimension: int | None,
    verify_checksums: bool,
) -> StoredIndex:
    manifest = read_manifest(directory)
    if manifest.format_version != FORMAT_VERSION:
        raise IndexMismatchError(
            f"index {name} has format {manifest.format_version}, this code reads {FORMAT_VERSION}"
        )
    if expected_embedder is not None and manifest.embedder != expected_embedder:
        raise IndexMismatchError(
            f"index {name} was built with embedder {manifest.embedder!r} but {expected_embedder!r} "
            "is configured: rebuild the index (emoreview index build) or configure that embedder"
        )
    if expected_dimension is not None and manifest.dimension != expected_dimension:
        raise IndexMismatchError(
            f"index {name} holds {manifest.dimension}-d vectors but the embedder makes "
            f"{expected_dimension}-d vectors: rebuild the index"
        )
    if verify_checksums:
        verify_files(directory, manifest)
    index = read_faiss_index(directory / INDEX_FILE)
    metadata = pd.read_parquet(directory / METADATA_FILE)
    if {index.ntotal, len(metadata)} != {manifest.count} or index.d != manifest.dimension:
        raise IndexCorruptError(f"index {name} does not match its manifest counts or dimension")
    shape, vectors = (manifest.count, manifest.dimension), None
    try:
        if manifest.kind == "ivfpq":
            vectors = ExactVectorsFile(directory / VECTORS_FILE, shape)
    except ValueError as error:
        raise IndexCorruptError(f"index {name}: {error}") from error
    return StoredIndex(index, metadata, manifest, directory, vectors)
