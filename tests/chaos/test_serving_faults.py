"""Faults of the served system: a worker SIGKILLed in a burst, a flood of uploads at the
size limit, the TorchServe frontend killed. One real TorchServe (random champion, the
default 700 reviews' index) shared by the tests; the frontend test runs last."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
import requests
import yaml
from PIL import Image

from components.analysis.index_build import build_index
from components.nlp.sentiment import VaderSentimentScorer
from components.nlp.summarize import ExtractiveSummarizer
from components.settings import Settings
from serving.client import WORKER_DIED, ClientError, EmoreviewClient
from serving.deploy import deploy_champion
from serving.server import TorchServe
from tests.chaos.conftest import assert_nothing_lost, snapshot
from tests.integration.test_serving import face_png, register_random_model
from tests.servers import free_serving_ports

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

REQUEST_TIMEOUT_S = 30  # a client's patience: no request may take longer, fault or not
RECOVERY_S = 60


@pytest.fixture(scope="module")
def served(tmp_path_factory, reviews_700, minilm):
    folder = tmp_path_factory.mktemp("chaos-serving")
    config = {
        "workspace": str(folder / "ws"),
        "serving": {**free_serving_ports(), "batch_size": 8, "max_batch_delay_ms": 20},
    }
    config_file = folder / "settings.yaml"
    config_file.write_text(yaml.safe_dump(config))
    settings = Settings.load(config_file)
    build_index(
        reviews_700, "c" * 64, minilm, settings, sentiment=VaderSentimentScorer(),
        summarizer=ExtractiveSummarizer(minilm), progress=False,
    )  # fmt: skip
    register_random_model(settings, seed=3, folder=folder)
    server = TorchServe(settings)
    try:
        deploy_champion(settings)
        yield settings, config_file, server
    finally:
        server.stop()


def auth(server: TorchServe) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.key()}"}


def post(
    server: TorchServe, endpoint: str, data: bytes, timeout: float = REQUEST_TIMEOUT_S
) -> tuple[Any, float, Any]:
    """(status or the exception's name, seconds, JSON body or None) of one request."""
    start = time.monotonic()
    try:
        response = requests.post(
            f"{server.inference_url}/predictions/{endpoint}",
            data=data,
            headers={**auth(server), "Content-Type": "application/octet-stream"},
            timeout=timeout,
        )
    except requests.RequestException as error:
        return type(error).__name__, time.monotonic() - start, None
    try:
        body = response.json()
    except ValueError:
        body = None
    return response.status_code, time.monotonic() - start, body


def worker_pids(server: TorchServe, endpoint: str) -> list[int]:
    described = server._management("GET", f"/models/{endpoint}").json()
    return [int(w["pid"]) for w in described[0]["workers"] if w.get("pid", -1) > 0]


def cli(config_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMOREVIEW_")}
    return subprocess.run(
        [sys.executable, "-m", "emoreview", "--config", str(config_file), *args],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip


def burst_with_kill(
    server: TorchServe, send: Callable[[], Any], victim: int, requests_n: int = 96
) -> list[Any]:
    """``requests_n`` calls of ``send`` from 16 threads, the worker ``victim`` SIGKILLed
    0.3 s in."""
    with ThreadPoolExecutor(16) as pool:
        burst = [pool.submit(send) for _ in range(requests_n)]
        time.sleep(0.3)
        os.kill(victim, signal.SIGKILL)
        return [future.result() for future in burst]


def answers_again_within(server: TorchServe, photo: bytes, seconds: float) -> float:
    """Seconds until 10 requests in a row succeed."""
    start = time.monotonic()
    streak = 0
    while streak < 10:
        assert time.monotonic() - start < seconds, f"no recovery within {seconds} s"
        streak = streak + 1 if post(server, "emotion", photo)[0] == 200 else 0
    return time.monotonic() - start


def test_worker_killed_during_burst(served, fault_report) -> None:
    settings, config_file, server = served
    row = fault_report(1, "serving worker SIGKILLed during a burst")
    before = snapshot(settings)
    photo = face_png()
    assert post(server, "emotion", photo)[0] == 200
    (victim,) = worker_pids(server, "emotion")

    # Raw HTTP: what TorchServe itself answers while its worker is dead.
    results = burst_with_kill(server, lambda: post(server, "emotion", photo), victim)
    failed = [(status, seconds, body) for status, seconds, body in results if status != 200]
    assert failed, "the kill hit no request: the burst was over before it"
    for status, seconds, body in failed:
        # The batch inside the dying worker: TorchServe's JSON "Worker died." (507, or 500
        # when it has not yet read the exit code); a full queue would be a 503. Fast, never
        # a hang or a dropped connection.
        assert status in (500, 503, 507), (status, body)
        assert body and body.get("message"), body
        assert status != 500 or body["message"] == WORKER_DIED, body
        assert seconds < 5, f"a failed request took {seconds:.1f} s"
    assert max(seconds for _, seconds, _ in results) < REQUEST_TIMEOUT_S
    row.check(
        f"raw HTTP: {len(failed)} of {len(results)} got a JSON {sorted({s for s, _, _ in failed})}"
        f" in < {max(t for _, t, _ in failed):.1f} s, none hung"
    )
    recovered = answers_again_within(server, photo, RECOVERY_S)
    (restarted,) = worker_pids(server, "emotion")
    assert restarted != victim
    row.check(f"answering again {recovered:.1f} s after the burst")

    status = cli(config_file, "serve", "status")
    assert status.returncode == 0, status.stderr
    assert f"restarted: emotion worker pid [{victim}] died" in status.stdout, status.stdout
    row.check("`serve status` reports the restart")

    # Through the project's client (what the CLI and the app use): the retries on 503 and
    # "Worker died." make the same fault lose nothing.
    client = EmoreviewClient.from_settings(settings)

    def through_client() -> str:
        try:
            client.emotion(photo)
            return "ok"
        except ClientError as error:
            return f"{error.status}"

    outcomes = burst_with_kill(server, through_client, restarted)
    lost = [outcome for outcome in outcomes if outcome != "ok"]
    assert not lost, lost
    row.check(f"through the client: {len(outcomes)} of {len(outcomes)} answered (retries)")
    answers_again_within(server, photo, RECOVERY_S)
    row.requests, row.lost = len(outcomes), len(lost)
    for what in assert_nothing_lost(settings, before):
        row.check(what)


def big_photo(limit_mb: int) -> bytes:
    """A noise PNG just under ``limit_mb`` (noise does not compress)."""
    side = int((limit_mb * 1024 * 1024 * 0.97 / 3) ** 0.5)
    pixels = np.random.default_rng(8).integers(0, 255, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=0)
    data = buffer.getvalue()
    assert len(data) <= limit_mb * 1024 * 1024
    return data


WORKER_MEMORY_BOUND_MB = 2048  # stated in README: one emotion_reviews worker under a flood


def test_flood_of_uploads_at_the_size_limit(served, fault_report) -> None:
    settings, _, server = served
    row = fault_report(8, "64 concurrent uploads at the size limit")
    before = snapshot(settings)
    limit = settings.serving.max_request_mb
    photo = big_photo(limit)
    (worker,) = worker_pids(server, "emotion_reviews")
    process = psutil.Process(worker)
    peak = [process.memory_info().rss]
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.05):
            with contextlib.suppress(psutil.Error):
                peak.append(process.memory_info().rss)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    start = time.monotonic()
    # Each client waits as long as the server answers at most (serving.response_timeout_s):
    # 64 photos of 10 MB queue up behind each other.
    patience = settings.serving.response_timeout_s
    with ThreadPoolExecutor(64) as pool:
        results = list(
            pool.map(lambda _: post(server, "emotion_reviews", photo, patience), range(64))
        )
    stop.set()
    watcher.join()
    seconds = time.monotonic() - start
    statuses = [status for status, _, _ in results]
    answered = [
        s for s in statuses if isinstance(s, int) and (s == 200 or 400 <= s < 500 or s == 503)
    ]
    assert len(answered) == 64, {s: statuses.count(s) for s in set(statuses)}
    row.check(
        f"64 of 64 answered ({ {s: statuses.count(s) for s in set(statuses)} }) in {seconds:.0f} s"
    )
    assert worker_pids(server, "emotion_reviews") == [worker], "the worker died"
    peak_mb = max(peak) / 1024 / 1024
    assert peak_mb < WORKER_MEMORY_BOUND_MB, f"worker peaked at {peak_mb:.0f} MB"
    row.check(f"worker alive, peak RSS {peak_mb:.0f} MB < {WORKER_MEMORY_BOUND_MB} MB")
    oversize = post(server, "emotion_reviews", photo + b"0" * (limit * 1024 * 1024))
    assert oversize[0] == 413, oversize
    row.check("an upload over the limit: 413")
    row.requests, row.lost = 64, 64 - len(answered)
    for what in assert_nothing_lost(settings, before):
        row.check(what)


def test_frontend_killed(served, fault_report) -> None:
    """Runs last in this module: it kills the server the others share."""
    settings, config_file, server = served
    row = fault_report(2, "TorchServe frontend SIGKILLed")
    before = snapshot(settings)
    frontend = int((server.tmp / ".model_server.pid").read_text().split()[0])
    workers = [pid for endpoint in ("emotion", "reviews") for pid in worker_pids(server, endpoint)]
    os.kill(frontend, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while server.is_running() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not server.is_running()

    status = cli(config_file, "serve", "status")
    assert status.returncode == 1
    lines = status.stdout.strip().splitlines()
    assert len(lines) == 1 and f"frontend (pid {frontend}) died" in lines[0], status.stdout
    row.check("`serve status`: one line naming the dead frontend")

    started = cli(config_file, "serve", "start")
    assert started.returncode == 0, started.stderr
    row.check("`serve start` recovered from the stale pid file and tmp folder")
    for pid in workers:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, (
            f"worker {pid} of the dead frontend still runs"
        )
    row.check("the dead frontend's workers are gone")
    assert post(server, "emotion", face_png())[0] == 200
    row.check("answers again")
    for what in assert_nothing_lost(settings, before):
        row.check(what)
