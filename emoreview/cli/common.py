"""What every command group shares: the settings from the context, option types, the
user-error type, and the lookups several commands make (served client, latest weights)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from components.errors import EmoreviewError

if TYPE_CHECKING:
    from components.settings import Settings
    from components.vision.prediction import ClassifierSource
    from serving.client import EmoreviewClient

log = logging.getLogger("emoreview")


class UserError(EmoreviewError):
    """A mistake in the user's command line: reported in one line, exit code 2."""


@dataclass
class AppState:
    settings: Settings


def settings_of(ctx: typer.Context) -> Settings:
    """The settings the root callback built once for this invocation."""
    return ctx.ensure_object(AppState).settings


JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url", help="Served inference URL, e.g. http://127.0.0.1:8080.", show_default=False
    ),
]
KeyFileOption = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        help="TorchServe key_file.json [default: the workspace's serving/key_file.json].",
        show_default=False,
    ),
]
EmotionOption = Annotated[
    str | None, typer.Option("--emotion", "-e", help="Only reviews with this emotion.")
]
TopKOption = Annotated[
    int | None, typer.Option("-k", help="Number of reviews [default: 4].", min=1, max=100)
]


def require_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")


def non_empty_query(query: str) -> None:
    if not query.strip():
        raise UserError("query must not be empty")


def served_client(settings: Settings, url: str | None, key_file: Path | None) -> EmoreviewClient:
    """The project's client for the served endpoints (settings' URL unless ``url``)."""
    from serving.client import EmoreviewClient

    return EmoreviewClient.from_settings(settings, url, key_file)


def latest_weights(settings: Settings) -> Path:
    """``best.pt`` of the latest training run in the workspace."""
    pointer = settings.paths.runs_dir / "latest"
    if not pointer.is_file():
        raise UserError(
            "no trained model yet: run `emoreview train --data ...` or pass --checkpoint"
        )
    weights = settings.paths.runs_dir / pointer.read_text().strip() / "best.pt"
    if not weights.is_file():
        raise UserError(f"latest run has no weights: {weights}")
    return weights


def classifier_source(settings: Settings, checkpoint: Path | None) -> ClassifierSource:
    """``checkpoint`` if given, else the registry's champion, else the latest run's weights."""
    from components.vision.prediction import ClassifierSource
    from registry.models import open_registry

    if checkpoint is not None:
        require_file(checkpoint, "checkpoint")
        return ClassifierSource(checkpoint)
    registry = open_registry(settings)
    if registry.champion_version() is not None:
        return registry.fetch("champion", settings.paths.models_dir)
    log.warning("no champion in the registry: using the latest training run's weights")
    return ClassifierSource(latest_weights(settings))
