"""The Prefect API goes away (a real ``prefect server``, SIGKILLed) while ``emoreview flows
run reviews`` runs against it: the run fails with a clear message, nothing is
half-published, and once the API is back a rerun completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from components.index.store import STAGING_PREFIX, VERSIONS_DIR, current_version, load_index
from components.settings import Settings
from flows.server import local_prefect_server
from tests.chaos.test_training_faults import server_processes
from tests.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


def completed_tasks(api: str) -> int:
    response = requests.post(
        f"{api}/task_runs/filter",
        json={"task_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}},
        timeout=10,
    )
    return len(response.json()) if response.ok else 0


def test_prefect_api_goes_away(tmp_path: Path, fault_report) -> None:
    row = fault_report(7, "Prefect API SIGKILLed during a flow run")
    config = tmp_path / "settings.yaml"
    port = free_port()
    config.write_text(
        yaml.safe_dump(
            {
                "workspace": str(tmp_path / "ws"),
                "reviews": {"per_emotion": 30, "min_per_emotion": 20},
                "flows": {"embed_shard_size": 60, "prefect_port": port},
            }
        )
    )
    settings = Settings.load(config)
    root = settings.paths.index_root
    command = [sys.executable, "-m", "emoreview", "--config", str(config), "flows", "run",
               "reviews"]  # fmt: skip
    with local_prefect_server(settings) as url:
        api = f"{url}/api"
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMOREVIEW_")}
        env.update(PREFECT_API_URL=api, PREFECT_CLIENT_MAX_RETRIES="2")
        flow = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
        deadline = time.monotonic() + 300
        while completed_tasks(api) < 1:
            assert flow.poll() is None, flow.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.5)
        for process in server_processes(port):
            process.send_signal(signal.SIGKILL)
        stdout, stderr = flow.communicate(timeout=600)
    print(stderr[-4000:])
    # Prefect's own log handler reports the task that failed (and that it could not ship
    # its logs); the command's verdict is one line naming the API, exit code 2.
    assert flow.returncode == 2, stderr[-3000:]
    verdict = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(verdict) == 1 and "the Prefect API" in verdict[0], stderr[-3000:]
    row.check(f"the run failed with one verdict line ({verdict[0][7:70]}…), exit 2")
    versions = root / VERSIONS_DIR
    assert not versions.is_dir() or not any(
        p.name.startswith(STAGING_PREFIX) for p in versions.iterdir()
    )
    published = [p.name for p in versions.iterdir()] if versions.is_dir() else []
    row.check(f"nothing half-published ({len(published)} index versions, no staging)")

    with local_prefect_server(settings) as url:
        env["PREFECT_API_URL"] = f"{url}/api"
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert load_index(root).version == current_version(root)
    row.check("with the API back, a rerun completes and its index loads")
