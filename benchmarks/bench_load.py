"""Load on a real TorchServe serving the benchmark workspace (base-size random NLP models,
a random ResNet-50): a mixed burst, then a soak with a zero-downtime reload every 30 s.

- 1,000 requests at concurrency 16 over ``emotion_reviews``, ``emotion``, ``reviews``
  (half repeated questions, half fresh ones) and ``sentiment``: errors and p50/p95/p99 per
  endpoint.
- A soak at concurrency 4 (10 minutes; ``--smoke``: 40 s) while the champion alternates
  between two registered versions every 30 s (``--smoke``: 15 s), each switch a real
  ``serve reload``: errors, p99 of the first and the last minute, and the resident memory
  of the whole server (frontend + every worker: a reload replaces the workers) at the
  start and the end.

Every request goes through raw HTTP (no retries), so an error counts as an error.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import requests

from benchmarks.bench_serving import serving_settings
from benchmarks.harness import latency
from benchmarks.workspace import BenchWorkspace, fresh_questions
from registry.models import open_registry
from serving.deploy import deploy_champion
from serving.server import TorchServe
from tests.random_models import register_champion, save_classifier

REPEATED = "Why are customers angry about delivery?"
TEXTS = ["The parcel arrived broken and support never answered.", "Lovely, works great!"]


class Traffic:
    """Mixed requests, request ``i`` choosing its endpoint by ``i % 5``; one keep-alive
    session per thread; outcomes and latencies recorded per endpoint and per second."""

    def __init__(self, server: TorchServe, photo: bytes, salt: str) -> None:
        self.url = server.inference_url
        self.key_file = server.folder / "key_file.json"
        self.server = server
        self.photo = photo
        self.fresh = iter(fresh_questions(100_000, salt))
        self.lock = threading.Lock()
        self.local = threading.local()
        self.samples: dict[str, list[tuple[float, float]]] = defaultdict(list)  # (t, s)
        self.errors: list[str] = []
        self.error_times: list[float] = []  # monotonic time each failed request was sent

    def _session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def request(self, i: int) -> None:
        kind = i % 5
        if kind == 0:
            endpoint, kwargs = "emotion_reviews", {"data": self.photo}
        elif kind == 1:
            endpoint, kwargs = "emotion", {"data": self.photo}
        elif kind == 2:
            endpoint, kwargs = "reviews", {"json": {"query": REPEATED}}
        elif kind == 3:
            with self.lock:
                question = next(self.fresh)
            endpoint, kwargs = "reviews", {"json": {"query": question}}
        else:
            endpoint, kwargs = "sentiment", {"json": TEXTS}
        name = "reviews_fresh" if kind == 3 else "reviews_repeated" if kind == 2 else endpoint
        headers = {"Authorization": f"Bearer {self.server.key()}"}
        if "data" in kwargs:
            headers["Content-Type"] = "application/octet-stream"
        start = time.perf_counter()
        try:
            response = self._session().post(
                f"{self.url}/predictions/{endpoint}", headers=headers, timeout=120, **kwargs
            )
            ok = response.status_code == 200
            problem = f"{name}: {response.status_code} {response.text[:200]}"
        except requests.RequestException as error:
            ok, problem = False, f"{name}: {type(error).__name__} {error}"
        seconds = time.perf_counter() - start
        with self.lock:
            if ok:
                self.samples[name].append((time.monotonic(), seconds))
            else:
                self.errors.append(problem)
                self.error_times.append(time.monotonic() - seconds)

    def per_endpoint(self) -> dict[str, Any]:
        return {
            name: latency([s for _, s in samples]).as_dict()
            for name, samples in sorted(self.samples.items())
        }


def server_rss_mb() -> float:
    total = 0.0
    for process in psutil.process_iter(["cmdline", "memory_info"]):
        command = " ".join(process.info["cmdline"] or [])
        if "model_service_worker" in command or "org.pytorch.serve.ModelServer" in command:
            total += process.info["memory_info"].rss / 2**20
    return total


def burst(traffic: Traffic, requests_n: int, concurrency: int) -> dict[str, Any]:
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(traffic.request, range(requests_n)))
    return {
        "requests": requests_n,
        "concurrency": concurrency,
        "seconds": time.perf_counter() - start,
        "errors": len(traffic.errors),
        "first_errors": traffic.errors[:5],
        "per_endpoint": traffic.per_endpoint(),
    }


def soak(
    traffic: Traffic,
    settings: Any,
    versions: tuple[str, str],
    minutes: float,
    reload_every_s: float,
    concurrency: int = 4,
) -> dict[str, Any]:
    stop = threading.Event()
    counter = iter(range(10**9))
    counter_lock = threading.Lock()

    def client() -> None:
        while not stop.is_set():
            with counter_lock:
                i = next(counter)
            traffic.request(i)

    registry = open_registry(settings)
    reloads: list[dict[str, Any]] = []
    memory: list[tuple[float, float]] = []
    begin = time.monotonic()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    next_reload = begin + reload_every_s
    while time.monotonic() - begin < minutes * 60:
        memory.append((time.monotonic() - begin, server_rss_mb()))
        if time.monotonic() >= next_reload:
            target = versions[len(reloads) % 2]
            registry.make_champion(target, {"promotion_reason": "load benchmark"})
            started = time.perf_counter()
            at = time.monotonic() - begin
            try:
                action = deploy_champion(settings, start=False).action
            except Exception as error:  # a failed reload is a finding, not a crash
                action = f"failed: {error}"
            seconds = time.perf_counter() - started
            reloads.append({"to": target, "action": action, "at_s": at, "s": seconds})
            next_reload = time.monotonic() + reload_every_s
        time.sleep(1)
    stop.set()
    for thread in threads:
        thread.join(timeout=150)
    window = min(60.0, minutes * 60 / 4)
    all_samples = [(t - begin, s) for samples in traffic.samples.values() for t, s in samples]
    end = max(t for t, _ in all_samples)
    first = latency([s for t, s in all_samples if t <= window])
    last = latency([s for t, s in all_samples if t >= end - window])
    start_rss = [m for t, m in memory if t <= window]
    end_rss = [m for t, m in memory if t >= memory[-1][0] - window]
    return {
        "minutes": minutes,
        "concurrency": concurrency,
        "requests": len(all_samples) + len(traffic.errors),
        "errors": len(traffic.errors),
        "first_errors": traffic.errors[:5],
        "errors_sent_at_s": [round(t - begin, 1) for t in traffic.error_times],
        "reloads": len(reloads),
        "reload_log": reloads,
        "failed_reloads": [r for r in reloads if r["action"] != "reloaded"],
        "reload_seconds_max": max((r["s"] for r in reloads), default=0.0),
        "window_s": window,
        "first_window": first.as_dict(),
        "last_window": last.as_dict(),
        "p99_last_over_first": last.p99_ms / first.p99_ms,
        "server_rss_mb_start": max(start_rss),
        "server_rss_mb_end": max(end_rss),
        "server_rss_growth": max(end_rss) / max(start_rss) - 1,
    }


def run(
    workspace: BenchWorkspace, smoke: bool, soak_minutes: float | None, mixed_requests: int | None
) -> dict[str, Any]:
    settings = serving_settings(workspace)
    # A second version to alternate with: the champion's weights under a different seed.
    registry = open_registry(settings)
    first = registry.champion_version()
    other = register_champion(
        settings, save_classifier(workspace.weights.with_name("resnet50-random-b.pt"), seed=1)
    )
    registry.make_champion(first, {"promotion_reason": "load benchmark"})
    server = TorchServe(settings)
    if mixed_requests is None:
        mixed_requests = 100 if smoke else 1000
    if soak_minutes is None:
        soak_minutes = 40 / 60 if smoke else 10
    result: dict[str, Any] = {}
    try:
        deploy_champion(settings)
        warm = Traffic(server, workspace.photo, "warm")
        for i in range(10):
            warm.request(i)
        if mixed_requests:
            result["mixed"] = burst(Traffic(server, workspace.photo, "mixed"), mixed_requests, 16)
        result["soak"] = soak(
            Traffic(server, workspace.photo, "soak"), settings, (other, first),
            minutes=soak_minutes, reload_every_s=15 if smoke else 30,
        )  # fmt: skip
    finally:
        server.stop()
    return result


def main() -> None:
    import argparse
    import json
    import os
    import tempfile

    from benchmarks.workspace import prepare

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny models, 100 requests, 40 s")
    parser.add_argument("--out", type=Path, help="write the JSON result here too")
    parser.add_argument("--soak-minutes", type=float, help="soak length [10; smoke: 2/3]")
    parser.add_argument("--mixed-requests", type=int, help="burst size, 0 skips it [1000]")
    parser.add_argument(
        "--keep", type=Path, help="build the workspace here and keep it (TorchServe logs in "
        "<keep>/ws-int8/serving/logs), instead of a temporary folder",
    )  # fmt: skip
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="bench-load-") as scratch:
        root = args.keep or Path(scratch)
        workspace = prepare(root, smoke=args.smoke, int8=True)
        result = run(workspace, args.smoke, args.soak_minutes, args.mixed_requests)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
