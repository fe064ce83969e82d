"""``emoreview app``: the Streamlit web app over the served endpoints."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from emoreview.cli.common import settings_of
from emoreview.cli.output import out

app = typer.Typer()


@app.command("app")
def run_app(
    ctx: typer.Context,
    port: Annotated[
        int | None,
        typer.Option("--port", "-p", help="Port [default: app.port, 8501].", show_default=False),
    ] = None,
) -> None:
    """Start the web app on 127.0.0.1 (Photo, Ask, Sentiment and Models tabs). It calls the
    served endpoints at serving.url with the token from the key file, so start TorchServe
    first (`emoreview serve start`, or `make app`, which does both). Ctrl+C stops it."""
    from serving.app.launch import app_url, streamlit_command, write_settings
    from serving.client import EmoreviewClient

    settings = settings_of(ctx)
    if port is not None:
        settings.app.port = port
    settings_file = write_settings(settings)
    served = EmoreviewClient.from_settings(settings)
    out.print(
        f"emoreview app at {app_url(settings)} (served endpoints {served.url}, token "
        f"{served.key_file}); Ctrl+C stops it",
        soft_wrap=True,
    )
    command = streamlit_command(settings, settings_file)
    env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    sys.stdout.flush()
    # Streamlit takes this process's place: signals (Ctrl+C, a kill) reach the server.
    os.execve(command[0], command, env)
