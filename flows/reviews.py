"""``reviews_flow``: generate or ingest -> tag unlabeled -> validate -> embed (sharded,
cached) -> build the index with sentiments and the 7 emotion answers -> log the build."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.tasks import exponential_backoff

from components.hashing import file_sha256
from components.settings import Settings
from flows import worker_models
from flows.common import (
    content_key,
    flow_settings,
    io_task,
    make_task_runner,
    publish_validation_table,
)


@task(name="acquire reviews", retry_delay_seconds=exponential_backoff(2))
def acquire_reviews(settings: Settings, source: str | None) -> dict[str, Any]:
    """``source``: a CSV/JSONL path to ingest; ``"synthetic"`` for seeded synthetic reviews;
    None for the workspace's reviews file (synthetic ones when there is none yet)."""
    from components.reviews.generate import generate_reviews
    from components.reviews.ingest import ColumnMapping, ingest_reviews
    from components.reviews.schema import read_reviews, write_reviews

    path = settings.paths.reviews
    if source is None and path.is_file():
        rows = len(read_reviews(path))
    else:
        if source and source != "synthetic":
            frame = ingest_reviews(Path(source), ColumnMapping())
        else:
            frame = generate_reviews(settings.reviews.per_emotion, settings.reviews.seed)
        write_reviews(frame, path)
        rows = len(frame)
    return {"path": str(path), "sha256": file_sha256(path), "rows": rows}


@task(name="tag unlabeled reviews")
def tag_unlabeled(settings: Settings, reviews: dict[str, Any]) -> dict[str, Any]:
    from components.index.embedder import SentenceTransformerEmbedder
    from components.nlp.tagging import load_emotion_tagger, tag_reviews
    from components.reviews.schema import read_reviews, write_reviews

    frame = read_reviews(Path(reviews["path"]))
    if not frame["emotion"].isna().any():
        return {**reviews, "tagged": 0}
    embedder = SentenceTransformerEmbedder.from_settings(settings.embedder)
    tagger = load_emotion_tagger(settings.nlp, embedder, frame[frame["emotion"].notna()])
    tagged, count = tag_reviews(frame, tagger)
    path = write_reviews(tagged, Path(reviews["path"]))
    get_run_logger().info("tagged %d reviews with %s", count, tagger.model_id)
    return {**reviews, "sha256": file_sha256(path), "tagged": count}


@task(name="validate reviews")
def validate_reviews_task(settings: Settings, reviews: dict[str, Any]) -> dict[str, Any]:
    """The GX suite; a failure fails the flow here with the clear message."""
    from components.reviews.schema import read_reviews
    from components.reviews.validate import validate_reviews
    from components.validation import raise_for_failures

    report = validate_reviews(read_reviews(Path(reviews["path"])), settings.reviews)
    publish_validation_table("reviews-validation", report)
    raise_for_failures(report)
    return {"passed": True, "evaluated": report.evaluated}


NORMALIZED = "l2-normalized float32"  # what Embedder.encode returns; part of the shard key


def _embed_key(context: Any, parameters: dict[str, Any]) -> str:
    # The folder is part of the key: a cached result names a file there.
    key = shard_key(
        parameters["data_sha256"], parameters["start"], parameters["stop"], parameters["embedder"]
    )
    return content_key(key, parameters["shard_dir"])


def shard_key(data_sha256: str, start: int, stop: int, embedder: dict[str, Any]) -> str:
    """Everything that changes a shard's vectors: the reviews (sha256), the rows (start and
    stop, so a changed ``embed_shard_size`` never reuses a shard of another length), the
    embedder settings, and the normalisation the embedder applies."""
    return content_key("embed", data_sha256, start, stop, embedder, NORMALIZED)


@task(
    name="embed shard",
    cache_key_fn=_embed_key,
    persist_result=True,
    result_serializer="json",
)
def embed_shard(
    reviews_path: str,
    data_sha256: str,
    start: int,
    stop: int,
    embedder: dict[str, Any],
    shard_dir: str,
) -> dict[str, Any]:
    """Embed rows [start, stop) of the reviews file on any worker (thread or Dask process,
    the model loaded once there) and write them as ``<shard_dir>/<key>.npy``. Returns the
    file's path, sha256 and row count: arrays never travel through Prefect or Dask."""
    from components.files import save_npy_atomic
    from components.reviews.schema import read_reviews

    frame = read_reviews(Path(reviews_path))
    if len(frame) < stop:
        raise ValueError(f"{reviews_path} has {len(frame)} rows, shard needs rows up to {stop}")
    texts = frame["text"].astype(str).tolist()[start:stop]
    vectors = worker_models.embedder(embedder["model"], embedder["device"]).encode(texts)
    path = Path(shard_dir) / f"{shard_key(data_sha256, start, stop, embedder)}.npy"
    save_npy_atomic(path, np.ascontiguousarray(vectors, dtype=np.float32))
    return {
        "path": str(path),
        "sha256": file_sha256(path),
        "rows": stop - start,
        "start": start,
        "worker_pid": os.getpid(),
    }


@flow(name="embed reviews", result_serializer="json")
def embed_reviews_flow(
    settings: dict[str, Any], reviews: dict[str, Any], refresh_cache: bool = False
) -> list[dict[str, Any]]:
    """The sharded embedding as a subflow, so it runs on ``flows.task_runner`` (threads or
    a Dask cluster) however the parent was started: CLI, retrain flow or a deployment."""
    return embed_reviews(Settings.from_dict(settings), reviews, refresh_cache)


def embed_reviews(
    settings: Settings, reviews: dict[str, Any], refresh_cache: bool = False
) -> list[dict[str, Any]]:
    """Map embedding over shards of ``flows.embed_shard_size`` reviews; returns the shard
    files in row order (same ids as one build)."""
    size = settings.flows.embed_shard_size
    rows = int(reviews["rows"])
    shard_task = embed_shard.with_options(refresh_cache=True) if refresh_cache else embed_shard
    embedder = settings.embedder.model_dump(mode="json")
    shard_dir = str(settings.paths.embedding_shards.resolve())
    futures = [
        shard_task.submit(
            reviews["path"], reviews["sha256"], start, min(start + size, rows), embedder, shard_dir
        )
        for start in range(0, rows, size)
    ]
    return [future.result() for future in futures]


def read_shards(shards: list[dict[str, Any]]) -> np.ndarray:
    """The shards' vectors stacked in row order, each file first checked against its sha256."""
    from components.index.store import IndexCorruptError

    parts = []
    for shard in sorted(shards, key=lambda s: s["start"]):
        path = Path(shard["path"])
        if not path.is_file() or file_sha256(path) != shard["sha256"]:
            raise IndexCorruptError(
                f"embedding shard {path} is missing or changed since it was written: "
                "run the flow again with refresh_cache=true"
            )
        vectors = np.load(path, allow_pickle=False)
        if len(vectors) != shard["rows"]:
            raise IndexCorruptError(f"{path} holds {len(vectors)} rows, expected {shard['rows']}")
        parts.append(vectors)
    return np.concatenate(parts).astype(np.float32, copy=False)


@task(name="unhelpful reviews")
def unhelpful_reviews_task(settings: Settings) -> list[str]:
    """The reviews feedback voted unhelpful at least ``feedback.exclude_unhelpful_after``
    times: this build leaves them out (none when the setting is off)."""
    from components.feedback.store import unhelpful_reviews

    excluded = unhelpful_reviews(settings)
    if excluded:
        create_markdown_artifact(
            key="excluded-reviews",
            markdown="## Reviews left out of this index (voted unhelpful)\n\n"
            + "\n".join(f"- `{review}`" for review in excluded),
            description="Reviews feedback voted unhelpful, left out of the index",
        )
    return excluded


@task(name="build index")
def build_index(
    settings: Settings,
    reviews: dict[str, Any],
    shards: list[dict[str, Any]],
    excluded: list[str] | None = None,
) -> dict[str, Any]:
    """Build and publish the index from the shards' vectors: the reviews are not embedded
    again here (the embedder only encodes the 7 emotion queries of the stored answers).
    ``excluded`` reviews (feedback) are left out with their vectors."""
    from components.analysis import index_build
    from components.feedback.report import index_data_sha256
    from components.index.embedder import SentenceTransformerEmbedder
    from components.reviews.schema import read_reviews

    frame, vectors = read_reviews(Path(reviews["path"])), read_shards(shards)
    if excluded:
        keep = ~frame["review_id"].astype(str).isin(excluded).to_numpy()
        frame, vectors = frame[keep].reset_index(drop=True), vectors[keep]
    manifest = index_build.build_index(
        frame,
        index_data_sha256(reviews["sha256"], excluded or []),
        SentenceTransformerEmbedder.from_settings(settings.embedder),
        settings,
        progress=False,
        vectors=vectors,
    )
    create_markdown_artifact(
        key="review-themes",
        markdown=index_build.version_themes_markdown(settings.paths.index_root, manifest.version),
        description="Why customers feel each emotion: themes over all its reviews",
    )
    return manifest.model_dump(mode="json")


@task(name="log index build", retry_delay_seconds=exponential_backoff(2))
def log_index(
    settings: Settings,
    manifest: dict[str, Any],
    reviews_path: str,
    excluded: list[str] | None = None,
) -> str:
    from components.analysis.index_build import version_themes_markdown
    from components.index.store import IndexManifest
    from registry.tracking import log_index_build

    themes = version_themes_markdown(settings.paths.index_root, manifest["version"])
    return log_index_build(
        settings, IndexManifest.model_validate(manifest), Path(reviews_path), themes, excluded
    )


def current_index_sha(settings: Settings) -> str | None:
    from components.index.store import IndexStoreError, current_version, read_manifest

    root = settings.paths.index_root
    try:
        return read_manifest(root / "versions" / current_version(root)).data_sha256
    except IndexStoreError:
        return None


@flow(name="reviews", log_prints=True, result_serializer="json")
def reviews_flow(
    settings: dict[str, Any] | None = None,
    config_file: str | None = None,
    source: str | None = None,
    force: bool = False,
    refresh_cache: bool = False,
) -> dict[str, Any]:
    """Reviews -> validated, indexed, with precomputed answers. Returns the index version
    and whether it changed (an unchanged reviews file keeps the current index unless
    ``force``; ``refresh_cache`` recomputes cached embeddings)."""
    config = flow_settings(settings, config_file)
    logger = get_run_logger()
    reviews = io_task(acquire_reviews, config)(config, source)
    reviews = tag_unlabeled(config, reviews)
    validate_reviews_task(config, reviews)
    from components.feedback.report import index_data_sha256

    excluded = unhelpful_reviews_task(config)
    if not force and current_index_sha(config) == index_data_sha256(reviews["sha256"], excluded):
        from components.index.store import current_version

        version = current_version(config.paths.index_root)
        logger.info("reviews unchanged (sha256 %s): index %s kept", reviews["sha256"][:12], version)
        return {"index_version": version, "changed": False, "reviews": reviews}
    embedding = embed_reviews_flow.with_options(task_runner=make_task_runner(config))
    shards = embedding(
        settings=config.model_dump(mode="json"), reviews=reviews, refresh_cache=refresh_cache
    )
    manifest = build_index(config, reviews, shards, excluded)
    run_id = io_task(log_index, config)(config, manifest, reviews["path"], excluded)
    logger.info("index %s published (MLflow run %s)", manifest["version"], run_id)
    return {
        "index_version": manifest["version"],
        "changed": True,
        "reviews": reviews,
        "shards": shards,
    }
