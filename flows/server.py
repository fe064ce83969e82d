"""A local ``prefect server`` for `emoreview flows serve` when no PREFECT_API_URL is set."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from components.processes import local_server
from components.settings import Settings


@contextmanager
def local_prefect_server(settings: Settings) -> Iterator[str]:
    """Start ``prefect server start`` on 127.0.0.1 (state in the workspace); yields its URL
    and stops it on exit."""
    home = (settings.workspace / "prefect").resolve()
    home.mkdir(parents=True, exist_ok=True)
    port = settings.flows.prefect_port
    url = f"http://127.0.0.1:{port}"
    prefect = str(Path(sys.executable).with_name("prefect"))
    with local_server(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        f"{url}/api/health",
        home / "server.log",
        env={**os.environ, "PREFECT_HOME": str(home)},
    ):
        yield url
