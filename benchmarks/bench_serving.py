"""Through a real TorchServe over HTTP: photo -> whole answer and classifier-only latency
at concurrency 1, answers/s at 8 and 16, fresh free-text questions, cold start, and the
resident memory of each worker."""

from __future__ import annotations

import http.client
import threading
import time
import urllib.parse
from collections.abc import Callable
from json import dumps, loads
from typing import Any

import numpy as np
import psutil
import requests

from benchmarks.harness import measure, throughput
from benchmarks.workspace import BenchWorkspace, fresh_questions
from components.settings import Settings
from components.vision.evaluate import predict_probabilities
from components.vision.inference import for_inference
from components.vision.model import load_weights
from serving.deploy import deploy_champion
from serving.server import TorchServe
from tests.servers import free_serving_ports


def serving_settings(workspace: BenchWorkspace) -> Settings:
    """The shipped serving settings (workers, dynamic batching) on free ports."""
    data = workspace.settings.model_dump(mode="json")
    data["serving"].update(free_serving_ports())
    return Settings.from_dict(data)


class Caller:
    """The load generator: one keep-alive connection per thread (the standard library's
    ``http.client``), the inference token attached; every answer's JSON is parsed. It runs
    on the 2 cores the server it measures runs on, so it is kept lean: at c=16 on 48x48
    faces it took 0.08 of a core where a ``requests.Session`` per thread took 0.26, and
    the server answered 306-327 against 220-245 answers/s (hand runs, alternated; README
    "Round two"). `RequestsCaller`, the previous load generator, measures one row beside
    it in each run."""

    def __init__(self, server: TorchServe) -> None:
        address = urllib.parse.urlsplit(server.inference_url)
        self.host, self.port = address.hostname or "127.0.0.1", address.port
        self.headers = {"Authorization": f"Bearer {server.key('inference')}"}
        self.local = threading.local()

    def post(
        self,
        model: str,
        data: bytes | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        headers = {**self.headers, **(headers or {})}
        if json is not None:
            data = dumps(json).encode()
            headers["Content-Type"] = "application/json"
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=300)
            self.local.connection = connection
        try:
            connection.request("POST", f"/predictions/{model}", body=data, headers=headers)
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            connection.close()
            self.local.connection = None  # the next call connects again
            raise
        if response.status >= 400:
            raise RuntimeError(f"/predictions/{model}: HTTP {response.status}: {body[:300]!r}")
        return loads(body)


class RequestsCaller:
    """The previous load generator: a ``requests.Session`` per thread (0.26 of a core at
    c=16 on 48x48 faces, taken from the server it measures)."""

    def __init__(self, server: TorchServe) -> None:
        self.url = server.inference_url
        self.key = server.key("inference")
        self.local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
            self.local.session.headers["Authorization"] = f"Bearer {self.key}"
        return self.local.session

    def post(self, model: str, **kwargs: Any) -> dict[str, Any]:
        response = self._session().post(f"{self.url}/predictions/{model}", timeout=300, **kwargs)
        response.raise_for_status()
        return response.json()


def worker_memory_mb() -> dict[str, float]:
    out: dict[str, float] = {}
    for process in psutil.process_iter(["cmdline", "memory_info"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "model_service_worker" in cmdline:
            out[f"worker {process.pid}"] = process.info["memory_info"].rss / 2**20
        elif "org.pytorch.serve.ModelServer" in cmdline:
            out["frontend (java)"] = process.info["memory_info"].rss / 2**20
    return out


def face48_png() -> bytes:
    """A 48x48 FER-format face (synthetic), as PNG bytes."""
    import io
    import random

    from components.vision.synthetic_faces import draw_face

    buffer = io.BytesIO()
    draw_face("happy", random.Random(0)).save(buffer, format="PNG")
    return buffer.getvalue()


def in_process_classifier_throughput(
    workspace: BenchWorkspace, settings: Settings, batch: int, rounds: int
) -> float:
    """The served classifier's code in process: the same weights and `vision.inference`."""
    model = for_inference(load_weights(workspace.weights), settings.vision.inference)
    faces = np.random.default_rng(0).integers(0, 255, (batch, 48, 48), dtype=np.uint8)
    predict_probabilities(model, faces, batch_size=batch)
    start = time.perf_counter()
    for _ in range(rounds):
        predict_probabilities(model, faces, batch_size=batch)
    return batch * rounds / (time.perf_counter() - start)


def cold_start_with_archives(
    settings: Settings, photo: dict[str, Any], while_up: Callable[[Settings], None] | None
) -> dict[str, float]:
    """`serve start` again over the archives the first start packaged (what a restart of
    the same champion, index and settings does): to all models ready, to a first answer.
    ``while_up`` then runs against the restarted server, before it stops."""
    server = TorchServe(settings)
    start = time.perf_counter()
    try:
        deploy_champion(settings)  # the archives exist: nothing is packaged
        ready = time.perf_counter() - start
        Caller(server).post("emotion_reviews", **photo)
        first = time.perf_counter() - start
        if while_up is not None:
            while_up(settings)
    finally:
        server.stop()
    return {"serve_start_to_ready": ready, "serve_start_to_first_answer": first}


def run(
    workspace: BenchWorkspace,
    smoke: bool,
    while_restarted: Callable[[Settings], None] | None = None,
) -> dict[str, Any]:
    """The measurements above; ``while_restarted`` runs against the server restarted for
    the cold start over unchanged archives (the web app benchmark does: one start less)."""
    n, warmup = (4, 1) if smoke else (200, 5)
    settings = serving_settings(workspace)
    server = TorchServe(settings)
    photo = {"data": workspace.photo, "headers": {"Content-Type": "application/octet-stream"}}
    result: dict[str, Any] = {
        "batching": {
            "workers": settings.serving.workers,
            "batch_size": settings.serving.batch_size,
            "max_batch_delay_ms": settings.serving.max_batch_delay_ms,
        }
    }
    start = time.perf_counter()
    try:
        deploy_champion(settings)  # package + start + wait for every model's workers
        ready = time.perf_counter() - start
        caller = Caller(server)
        caller.post("emotion_reviews", **photo)
        result["cold_start_s"] = {
            "serve_start_to_ready": ready,
            "serve_start_to_first_answer": time.perf_counter() - start,
        }
        result["memory_mb"] = worker_memory_mb()
        for model in ("emotion_reviews", "emotion"):
            stats, answers = measure(lambda i, m=model: caller.post(m, **photo), n, warmup)
            result[f"{model}_c1"] = stats.as_dict()
            result[f"{model}_versions"] = answers[-1]["versions"]
        for model in ("emotion", "emotion_reviews"):
            for concurrency in (8, 16):
                result[f"{model}_c{concurrency}"] = throughput(
                    lambda i, m=model: caller.post(m, **photo), n, concurrency
                )
        # The throughput target compares like with like: 48x48 FER faces, the input size
        # of the in-process classifier measurement below.
        # Four times the requests: at ~300 answers/s, 200 are over in under a second.
        face = {"data": face48_png(), "headers": photo["headers"]}
        for concurrency in (8, 16):
            result[f"emotion_face48_c{concurrency}"] = throughput(
                lambda i: caller.post("emotion", **face), 4 * n, concurrency
            )
        # The same load from the previous load generator, for the runs before this one.
        previous = RequestsCaller(server)
        result["emotion_face48_c16_requests"] = throughput(
            lambda i: previous.post("emotion", **face), 4 * n, 16
        )
        questions, text_warmup = (
            (fresh_questions(5, "served"), 1) if smoke else (fresh_questions(40, "served"), 3)
        )
        stats, _ = measure(
            lambda i: caller.post("reviews", json={"query": questions[i]}),
            len(questions) - text_warmup,
            text_warmup,
        )
        result["reviews_fresh_c1"] = stats.as_dict()
        result["status"] = loads(dumps(server.status()["models"]))
    finally:
        server.stop()
    result["cold_start_s"]["archives_unchanged"] = cold_start_with_archives(
        settings, photo, while_restarted
    )
    result["in_process_classifier_images_per_s"] = in_process_classifier_throughput(
        workspace, settings, batch=settings.serving.batch_size, rounds=3 if smoke else 30
    )
    return result
