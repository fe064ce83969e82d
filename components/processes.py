"""Local server processes on 127.0.0.1: waiting for a health URL, and a server started in
its own process group and stopped with it (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import requests


def wait_for_http(url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Return once ``url`` answers below 500; fail early if ``process`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode} before {url}")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@contextmanager
def local_server(
    command: Sequence[str],
    health_url: str,
    log_path: Path,
    env: dict[str, str] | None = None,
    timeout: float = 90,
) -> Iterator[None]:
    """Run ``command`` (output appended to ``log_path``) until ``health_url`` answers;
    on exit stop its whole process group."""
    log = log_path.open("ab")
    process = subprocess.Popen(
        list(command), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        try:
            wait_for_http(health_url, timeout, process)
        except (RuntimeError, TimeoutError) as error:
            raise type(error)(f"{command[0]}: {error}; see {log_path}") from error
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
