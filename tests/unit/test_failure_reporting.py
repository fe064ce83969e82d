"""How failures of the machine and of servers are recognised: a full disk behind any
exception, a worker restart from recorded pids, an abandoned index version."""

from __future__ import annotations

import errno

from components.errors import disk_full_error
from serving.dead_server import worker_restarts
from serving.package import ServedBundle


def test_a_full_disk_is_found_behind_the_error_that_wraps_it() -> None:
    full = OSError(errno.ENOSPC, "No space left on device", "/ws/index.faiss")
    try:
        try:
            raise full
        except OSError as error:
            raise RuntimeError("publishing failed") from error
    except RuntimeError as wrapped:
        assert disk_full_error(wrapped) is full
    assert disk_full_error(OSError(errno.EACCES, "Permission denied")) is None
    assert disk_full_error(ValueError("no")) is None
    assert disk_full_error(OSError(errno.EFBIG, "File too large")) is not None


def _bundle(version: str) -> ServedBundle:
    return ServedBundle(version, {"emotion": f"emotion-{version}"}, "7", "index-a")


def test_a_worker_with_a_new_pid_is_reported_as_restarted() -> None:
    served = _bundle("7.a")
    recorded = {"version": "7.a", "workers": {"emotion": [101], "reviews": [202]}}
    models = {
        "emotion": [{"version": "7.a", "worker_pids": [150]}],
        "reviews": [{"version": "7.a", "worker_pids": [202]}],
    }
    assert worker_restarts(recorded, served, models) == [
        {"endpoint": "emotion", "old_pids": [101], "new_pids": [150]}
    ]
    unchanged = {**models, "emotion": [{"version": "7.a", "worker_pids": [101]}]}
    assert worker_restarts(recorded, served, unchanged) == []
    # pids recorded for another version say nothing about this one
    assert worker_restarts({**recorded, "version": "6.z"}, served, models) == []
