"""What a TorchServe that died leaves behind, and what its restarts look like.

A frontend killed without ``serve stop`` leaves its pid file (``.model_server.pid``) and
unpacked archives in its private TMPDIR, and possibly Python workers whose socket lives
there; ``serve start`` clears them all first. A worker TorchServe restarted shows as a pid
that is not the one recorded when the version started (``workers.json``).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from pathlib import Path
from typing import Any

import psutil

from serving.package import ServedBundle

log = logging.getLogger(__name__)

PID_FILE = ".model_server.pid"  # TorchServe's, in its TMPDIR
WORKER_SCRIPT = "model_service_worker.py"
FRONTEND_CLASS = "org.pytorch.serve"


def stale_pid(tmp: Path) -> int | None:
    """The pid in TorchServe's pid file when that frontend is gone (killed, crashed)."""
    try:
        pid = int((tmp / PID_FILE).read_text(encoding="utf-8").split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        alive = FRONTEND_CLASS in " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        alive = False
    return None if alive else pid


def orphan_workers(tmp: Path) -> list[psutil.Process]:
    """Python workers whose socket is in ``tmp``: a dead frontend's, once none answers."""
    prefix = f"{tmp.resolve()}/"
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = process.info.get("cmdline") or []
        if any(part.endswith(WORKER_SCRIPT) for part in command) and any(
            part.startswith(prefix) for part in command
        ):
            found.append(process)
    return found


def end_workers(tmp: Path, timeout: float = 10) -> list[psutil.Process]:
    """Tell the Python workers whose socket is in ``tmp`` to exit (SIGTERM; they take 0.1 s,
    against about 2 s on their own once their frontend stopped), killing any still there
    after ``timeout``; returns them."""
    workers = orphan_workers(tmp)
    for process in workers:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(workers, timeout=timeout)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=timeout)
    return workers


def clear_after_stop(tmp: Path) -> None:
    """What a clean stop leaves behind, cleared: its workers (left alone they exit about 2
    s after their frontend) and its private ``tmp`` (unpacked models, sockets). A ``serve
    start`` then has nothing to clear, and its warning means a server died."""
    end_workers(tmp)
    shutil.rmtree(tmp, ignore_errors=True)


def clear_stale_state(tmp: Path) -> list[str]:
    """Kill a dead frontend's workers, remove its pid file, sockets and unpacked archives
    (the whole ``tmp``, which only a running server uses). Call only when no server
    answers; returns what was cleared. A frontend that is alive (still starting, not yet
    answering) is left alone."""
    if (tmp / PID_FILE).is_file() and stale_pid(tmp) is None:
        return []
    cleared = []
    orphans = end_workers(tmp)
    if orphans:
        cleared.append(f"{len(orphans)} orphan worker(s)")
    dead = stale_pid(tmp)
    if dead is not None:
        cleared.append(f"stale pid file (pid {dead})")
    if tmp.is_dir() and any(tmp.iterdir()):
        shutil.rmtree(tmp, ignore_errors=True)
        cleared.append(str(tmp))
    if cleared:
        log.warning("cleared what a dead TorchServe left: %s", ", ".join(cleared))
    return cleared


def worker_restarts(
    recorded: dict[str, Any], served: ServedBundle, models: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Workers of the served version whose pid is not one ``recorded`` at its start:
    ``{"endpoint", "old_pids", "new_pids"}`` each."""
    if recorded.get("version") != served.version:
        return []
    restarts = []
    for endpoint, pids in recorded.get("workers", {}).items():
        for entry in models.get(endpoint, []):
            if entry["version"] != served.version:
                continue
            new = [pid for pid in entry["worker_pids"] if pid not in pids]
            gone = [pid for pid in pids if pid not in entry["worker_pids"]]
            if new or gone:
                restarts.append({"endpoint": endpoint, "old_pids": gone, "new_pids": new})
    return restarts
