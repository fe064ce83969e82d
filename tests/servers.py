"""Real servers started by tests on 127.0.0.1 with free ports."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from components.processes import local_server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def mlflow_server(folder: Path) -> Iterator[str]:
    """A real ``mlflow server`` with a temp sqlite db and artifact store; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(Path(sys.executable).with_name("mlflow")), "server",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination", str(folder / "artifacts"),
    ]  # fmt: skip
    env = {**os.environ, "MLFLOW_TRACKING_URI": ""}
    with local_server(command, f"{url}/health", folder / "mlflow-server.log", env=env):
        yield url


def free_serving_ports() -> dict[str, int]:
    """``serving`` settings that put a test's TorchServe on free loopback ports (its workers'
    socket ports too, so two servers never share ``.ts.sock.<port>``)."""
    return {
        "inference_port": free_port(),
        "management_port": free_port(),
        "metrics_port": free_port(),
        "grpc_inference_port": free_port(),
        "grpc_management_port": free_port(),
        "initial_worker_port": free_port() % 20000 + 30000,
    }
