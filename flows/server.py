"""A local ``prefect server`` for `emoreview flows serve` when no PREFECT_API_URL is set."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from components.settings import Settings


@contextmanager
def local_prefect_server(settings: Settings) -> Iterator[str]:
    """Start ``prefect server start`` on 127.0.0.1 (state in the workspace); yields its URL
    and stops it on exit."""
    home = (settings.workspace / "prefect").resolve()
    home.mkdir(parents=True, exist_ok=True)
    port = settings.flows.prefect_port
    url = f"http://127.0.0.1:{port}"
    log = (home / "server.log").open("ab")
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("prefect")),
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],  # fmt: skip
        env={**os.environ, "PREFECT_HOME": str(home)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"prefect server exited; see {home / 'server.log'}")
            try:
                if requests.get(f"{url}/api/health", timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        else:
            raise RuntimeError(f"prefect server did not answer within 90 s; see {home}")
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
