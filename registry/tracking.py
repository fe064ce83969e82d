"""MLflow tracking: where runs go, what every run records, index builds.

The default backend is ``sqlite:///<workspace>/mlflow.db`` with artifacts under
``<workspace>/mlartifacts``; ``registry.tracking_uri`` points at an ``mlflow server``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import requests
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from components.errors import EmoreviewError
from components.index.store import IndexManifest
from components.settings import Settings

log = logging.getLogger(__name__)

MAX_PARAM_CHARS = 6000


def tracking_uri(settings: Settings) -> str:
    if settings.registry.tracking_uri:
        return settings.registry.tracking_uri
    return f"sqlite:///{settings.paths.mlflow_db.resolve()}"


def is_local_backend(settings: Settings) -> bool:
    return settings.registry.tracking_uri is None


class TrackingServerError(EmoreviewError, RuntimeError):
    """The MLflow tracking server stopped answering (after ``registry.http_retries``)."""


def connect(settings: Settings) -> MlflowClient:
    """Point MLflow at the configured backend and return a client for it (requests to a
    server retried ``registry.http_retries`` times, each at most ``http_timeout_s``)."""
    uri = tracking_uri(settings)
    if is_local_backend(settings):
        settings.paths.mlflow_db.parent.mkdir(parents=True, exist_ok=True)
    # MLflow reads these on every request.
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(settings.registry.http_retries)
    os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = "1"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(settings.registry.http_timeout_s)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _unreachable(error: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current)
        if isinstance(current, requests.ConnectionError) or "Max retries exceeded" in text:
            return True
        current = current.__cause__ or current.__context__
    return False


@contextmanager
def tracking_server_guard(settings: Settings, doing: str) -> Iterator[None]:
    """Turn "the MLflow server does not answer" during ``doing`` into one clear
    :class:`TrackingServerError` (any other error passes through)."""
    try:
        yield
    except (MlflowException, requests.RequestException) as error:
        if is_local_backend(settings) or not _unreachable(error):
            raise
        raise TrackingServerError(
            f"the MLflow tracking server at {tracking_uri(settings)} stopped answering during "
            f"{doing} (after {settings.registry.http_retries} retries): nothing was promoted "
            "and the champion is unchanged (a version registered before the failure keeps "
            "its weights and tags). Start the server again and rerun."
        ) from error


def run_link(settings: Settings, run_id: str) -> str | None:
    """The MLflow UI address of a run (in its own experiment), when tracking goes to a
    server; None for a local sqlite store."""
    uri = tracking_uri(settings)
    if not uri.startswith("http"):
        return None
    experiment_id = connect(settings).get_run(run_id).info.experiment_id
    return f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def ensure_experiment(client: MlflowClient, settings: Settings, name: str) -> str:
    """The experiment's id, creating it (artifacts in the workspace for the local backend)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if is_local_backend(settings):
        folder = settings.paths.mlflow_artifacts.resolve() / name
        folder.mkdir(parents=True, exist_ok=True)
        location = folder.as_uri()
    return client.create_experiment(name, artifact_location=location)


def git_revision(repo: Path | None = None) -> dict[str, str]:
    """The code's git commit and whether the work tree had uncommitted changes."""
    cwd = repo or Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "unknown", "git_dirty": "unknown"}
    return {"git_commit": commit, "git_dirty": str(dirty).lower()}


def settings_params(settings: Settings) -> dict[str, str]:
    """The full settings flattened to ``section.key`` params (MLflow's value limit kept)."""
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            text = json.dumps(value, default=str) if not isinstance(value, str) else value
            flat[prefix] = text[:MAX_PARAM_CHARS]

    walk("", settings.model_dump(mode="json"))
    return flat


def log_index_build(
    settings: Settings,
    manifest: IndexManifest,
    reviews_path: Path | None = None,
    themes_markdown: str | None = None,
    excluded_reviews: list[str] | None = None,
) -> str:
    """Record an index build in the ``indexes`` experiment (with its themes as
    ``themes.md`` when given, and the reviews feedback left out as
    ``excluded_reviews.json``); returns the run id."""
    client = connect(settings)
    experiment_id = ensure_experiment(client, settings, settings.registry.index_experiment)
    with mlflow.start_run(experiment_id=experiment_id, run_name=manifest.version) as run:
        mlflow.log_params(
            {
                "embedder": manifest.embedder,
                "dimension": manifest.dimension,
                "kind": manifest.kind,
                **{f"index.{k}": v for k, v in manifest.params.items()},
                **{f"retrieval.{k}": v for k, v in settings.retrieval.model_dump().items()},
            }
        )
        mlflow.log_metrics(
            {"reviews": manifest.count}
            | {f"reviews_{emotion}": n for emotion, n in manifest.emotion_counts.items()}
        )
        mlflow.set_tags(
            {
                "index_version": manifest.version,
                "data_sha256": manifest.data_sha256,
                "reviews_path": str(reviews_path or ""),
                "feedback_excluded_reviews": str(len(excluded_reviews or [])),
                **{f"extras.{k}": str(v) for k, v in manifest.extras.items()},
                **git_revision(),
            }
        )
        mlflow.log_dict(manifest.model_dump(mode="json"), "manifest.json")
        if themes_markdown is not None:
            mlflow.log_text(themes_markdown, "themes.md")
        if excluded_reviews:
            mlflow.log_dict(
                {
                    "reason": "voted unhelpful at least feedback.exclude_unhelpful_after times",
                    "review_ids": excluded_reviews,
                },
                "excluded_reviews.json",
            )
    return run.info.run_id
