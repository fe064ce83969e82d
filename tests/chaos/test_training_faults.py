"""Faults of a training run against a real ``mlflow server``: the server SIGKILLed in the
middle of the run. The run must fail clearly after ``registry.http_retries``, leave no
version without its weights and tags and the champion untouched, and the next run must
work once the server is back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import psutil
import pytest
import yaml

from components.settings import Settings
from tests.chaos.conftest import assert_nothing_lost, snapshot
from tests.integration.test_registry import SHORT_RECIPE
from tests.servers import free_port, mlflow_server

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


def server_processes(port: int) -> list[psutil.Process]:
    """Every process of the server started with ``--port <port>`` (its process group:
    ``local_server`` starts each in a session of its own)."""
    for process in psutil.process_iter(["cmdline"]):
        command = process.info.get("cmdline") or []
        if any(a == "--port" and b == str(port) for a, b in pairwise(command)):
            group = _group(process)
            return [p for p in psutil.process_iter() if _group(p) == group]
    return []


def _group(process: psutil.Process) -> int | None:
    try:
        return os.getpgid(process.pid)
    except (ProcessLookupError, psutil.Error):
        return None


def first_epoch_logged(url: str, experiment: str) -> bool:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=url)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return False
    runs = client.search_runs([found.experiment_id], filter_string="attributes.status = 'RUNNING'")
    return any("train_loss" in run.data.metrics for run in runs)


def test_mlflow_server_killed_during_training(tmp_path: Path, synthetic_faces, fault_report):
    from tests.integration.test_serving import register_random_model

    row = fault_report(5, "MLflow server SIGKILLed in the middle of a training run")
    folder = tmp_path / "mlflow"
    folder.mkdir()
    port = free_port()
    config = tmp_path / "settings.yaml"
    settings_dict = {
        "workspace": str(tmp_path / "ws"),
        "train": {**SHORT_RECIPE, "epochs": 6},
        "registry": {"tracking_uri": f"http://127.0.0.1:{port}", "http_retries": 2},
    }
    config.write_text(yaml.safe_dump(settings_dict))
    settings = Settings.load(config)
    command = [sys.executable, "-m", "emoreview", "--config", str(config), "train", "--data",
               str(synthetic_faces)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMOREVIEW_")}
    with mlflow_server(folder, port) as url:
        champion = register_random_model(settings, seed=9, folder=tmp_path)
        before = snapshot(settings)
        training = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)  # fmt: skip
        deadline = time.monotonic() + 300
        while not first_epoch_logged(url, settings.registry.experiment):
            assert training.poll() is None, training.communicate()
            assert time.monotonic() < deadline, "no epoch logged within 300 s"
            time.sleep(1)
        killed_at = time.monotonic()
        for process in server_processes(port):
            process.send_signal(signal.SIGKILL)
        stdout, stderr = training.communicate(timeout=600)
        failed_after = time.monotonic() - killed_at
    assert training.returncode == 2, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert "stopped answering during training" in last and "Traceback" not in stderr, stderr
    row.check(f"the run failed {failed_after:.0f} s after the kill, in one line, exit 2")

    with mlflow_server(folder, port):
        for what in assert_nothing_lost(settings, before, champion=champion):
            row.check(what)
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        assert again.returncode == 0, again.stderr[-3000:]
        row.check("with the server back, the next run trains and registers")
        from registry.models import open_registry

        registry = open_registry(settings)
        newest = registry.record(registry.versions()[-1])
        assert newest.tags.get("weights_sha256") and newest.tags.get("data_sha256")
        row.check(f"version {newest.version} has its weights and lineage tags")


def test_disk_fills_during_training(tmp_path: Path, synthetic_faces, fault_report) -> None:
    """RLIMIT_FSIZE below the weights file's size (ResNet-50: ~95 MB), SIGXFSZ ignored: the
    first checkpoint fails with EFBIG, as on a full disk."""
    import resource

    from registry.models import open_registry
    from tests.integration.test_serving import register_random_model

    row = fault_report(6, "disk full during training (RLIMIT_FSIZE)")
    config = tmp_path / "settings.yaml"
    config.write_text(yaml.safe_dump({"workspace": str(tmp_path / "ws"), "train": SHORT_RECIPE}))
    settings = Settings.load(config)
    champion = register_random_model(settings, seed=11, folder=tmp_path)
    before = snapshot(settings)
    limit = 40 * 1024 * 1024

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {k: v for k, v in os.environ.items() if not k.startswith("EMOREVIEW_")}
    failed = subprocess.run(
        [sys.executable, "-m", "emoreview", "--config", str(config), "train", "--data",
         str(synthetic_faces)],
        env=env, capture_output=True, text=True, timeout=900, preexec_fn=small_disk,
    )  # fmt: skip
    assert failed.returncode == 1, failed.stderr[-3000:]
    last = failed.stderr.strip().splitlines()[-1]
    assert "the disk is full" in last and "Traceback" not in failed.stderr, failed.stderr
    row.check(f"a clear one-line error ({last[:60]}…), exit 1")
    assert open_registry(settings).versions() == [champion], "a version was registered"
    partial = [p.name for p in settings.paths.runs_dir.rglob("*.tmp")]
    assert not partial, partial
    row.check("no new version, no partial weights file left")
    for what in assert_nothing_lost(settings, before):
        row.check(what)
