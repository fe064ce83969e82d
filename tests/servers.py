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
def mlflow_server(folder: Path, port: int | None = None) -> Iterator[str]:
    """A real ``mlflow server`` with a sqlite db and artifact store in ``folder`` (a second
    one on the same folder and ``port`` carries on where the first stopped); yields its
    URL."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(Path(sys.executable).with_name("mlflow")), "server",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination", str(folder / "artifacts"),
    ]  # fmt: skip
    # No job runner: only MLflow's GenAI features use it, and its seven huey consumers cost
    # 15 s of CPU to start and 0.65 of a core while idle (README, "Backend").
    env = {**os.environ, "MLFLOW_TRACKING_URI": "", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
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


def postgres_bindir() -> Path:
    """Debian's PostgreSQL server binaries (not on PATH: /usr/lib/postgresql/<v>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: `make postgres` installs it")
    return found[-1].parent


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL on a free loopback port; yields its SQLAlchemy URL.

    PostgreSQL refuses to run as root, so as root the cluster belongs to ``postgres`` (in a
    folder of its own under /tmp: pytest's are private to root)."""
    import shutil
    import subprocess
    import tempfile

    bindir = postgres_bindir()
    folder = Path(tempfile.mkdtemp(prefix="emoreview-pg-"))
    as_owner: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    data = folder / "data"
    pg_ctl = [*as_owner, str(bindir / "pg_ctl"), "-D", str(data)]
    try:
        subprocess.run(
            [*as_owner, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "emo"],
            check=True,
            capture_output=True,
        )
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
        subprocess.run(
            [*pg_ctl, "-o", options, "-l", str(folder / "server.log"), "-w", "start"],
            check=True,
            capture_output=True,
        )
        try:
            yield f"postgresql+psycopg://emo@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], capture_output=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
