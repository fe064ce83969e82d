"""How `emoreview app` starts the Streamlit server: the resolved settings written where the
script reads them, and Streamlit's command line (loopback, headless, no telemetry)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from components.settings import Settings

SCRIPT = Path(__file__).with_name("main.py")


def write_settings(settings: Settings) -> Path:
    """The settings as one JSON file in the workspace (written whole, then renamed)."""
    folder = settings.paths.app_dir
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "settings.json"
    handle, staging = tempfile.mkstemp(prefix=".settings.", suffix=".json", dir=folder)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(settings.model_dump_json(indent=2))
    Path(staging).replace(target)
    return target


def app_url(settings: Settings) -> str:
    return f"http://{settings.app.host}:{settings.app.port}"


def streamlit_command(settings: Settings, settings_file: Path) -> list[str]:
    """``streamlit run`` of the app's script on ``app.host``:``app.port``. The uploader
    takes up to twice the server's limit, so a file just over it gets the app's own
    message (the app refuses anything above ``serving.max_request_mb`` before sending).

    ``runner.postScriptGC`` off: Streamlit's full collection after every run holds the GIL
    while the run's last elements wait to be sent (50-200 ms on every answer); Python's
    own generational collection still runs."""
    return [
        sys.executable, "-m", "streamlit", "run", str(SCRIPT),
        "--server.address", settings.app.host,
        "--server.port", str(settings.app.port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--server.maxUploadSize", str(2 * settings.serving.max_request_mb),
        "--runner.postScriptGC", "false",
        "--browser.gatherUsageStats", "false",
        "--global.developmentMode", "false",
        "--client.toolbarMode", "viewer",
        "--", "--settings", str(settings_file),
    ]  # fmt: skip
