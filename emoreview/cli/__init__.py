"""The ``emoreview`` command line: one module per command group.

Settings are built once here (defaults -> ``--config`` YAML -> ``EMOREVIEW_*`` env ->
flags) and passed down. Results go to stdout (``--json``: one JSON document), logs and
progress bars to stderr. A user's mistake (any :class:`~components.errors.EmoreviewError`)
exits with code 2 and a one-line message. Command modules import the stack inside their
commands, so ``--help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from components.errors import disk_full_error, is_user_error
from emoreview.cli import (
    analysis,
    feedback,
    flows,
    index,
    registry,
    reviews,
    serve,
    vision,
    webapp,
)
from emoreview.cli.common import AppState, UserError
from emoreview.cli.output import err

app = typer.Typer(
    help="Emotion-driven review analysis: a face's emotion -> why customers felt it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)
app.add_typer(reviews.app, name="reviews")
app.add_typer(index.app, name="index")
app.add_typer(vision.faces_app, name="faces")
app.add_typer(registry.app, name="registry")
app.add_typer(serve.app, name="serve")
app.add_typer(flows.app, name="flows")
app.add_typer(feedback.app, name="feedback")
app.add_typer(index.search_app)
app.add_typer(vision.app)
app.add_typer(serve.predict_app)
app.add_typer(analysis.app)
app.add_typer(webapp.app)


@app.callback()
def configure(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML settings file.", show_default=False)
    ] = None,
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace", "-w", help="State directory [default: ./.emoreview].", show_default=False
        ),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.", show_default=False),
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            help="MLflow tracking URI [default: sqlite in the workspace].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Build the settings once for every command."""
    from pydantic import ValidationError

    from components.settings import Settings
    from emoreview.logs import configure_logging

    try:
        settings = Settings.load(
            config,
            {
                "workspace": workspace,
                "log_level": log_level.upper() if log_level else None,
                "registry": {"tracking_uri": tracking_uri},
            },
        )
    except ValidationError as error:
        raise UserError(f"invalid settings: {error}") from error
    configure_logging(settings.log_level, settings.paths.logs_dir)
    ctx.obj = AppState(settings=settings)


def main() -> None:
    """Console-script entry point: user errors become one line on stderr and exit code 2."""
    try:
        app()
    except Exception as error:
        full = disk_full_error(error)
        if full is not None:  # the machine's state, not a bug: one line, exit code 1
            where = f" writing {full.filename}" if full.filename else ""
            err.print(
                f"[red]error:[/] the disk is full (or a file size limit was hit){where}: "
                f"{full.strerror}. Nothing half-written was published; free space and run "
                "the command again.",
                highlight=False,
                soft_wrap=True,
            )
            sys.exit(1)
        if not is_user_error(error):
            raise
        err.print(f"[red]error:[/] {error}", highlight=False, soft_wrap=True)
        sys.exit(2)


__all__ = ["app", "main"]
